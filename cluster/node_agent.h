// A node of a cluster: the machine's `weft node` daemon (workers/node_daemon.h: its object store
// and worker processes), joined to the head. It registers, sends a heartbeat every
// `heartbeat` with its load and the state of its jobs, and runs the jobs the head places on it:
// each job's working directory is fetched from the head (once per package) and unpacked into a
// directory of the job's own, and its driver runs there (job_process.h) with WEFT_ADDRESS naming
// this node, so `weft::init()` in the driver attaches to it.
//
//   auto node = NodeAgent::start({.head_address = "10.0.0.1:7380", .credential = c,
//                                 .resources = {{"CPU", 8}}, .work_dir = "/run/user/1000/weft/node-1"});
//
// The head may go away and come back (restarted, a partition healed): the node reconnects by
// itself, its jobs run on meanwhile, and it sends their output and ends when the head is back
// (it reports state, not events: see protocol.h). Messages it cannot decode are logged and
// dropped.
//
// Thread-safe: the node serves on one thread of its own; destroying it stops its jobs (SIGTERM,
// then SIGKILL after `kill_grace`) and its daemon.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/credential.h"
#include "weft/status.h"

namespace weft::cluster {

struct NodeAgentOptions {
  std::string head_address;  // HOST:PORT
  Credential credential;
  std::map<std::string, double> resources;  // {"CPU": cores} when empty
  std::string work_dir;                     // jobs' directories and output, the daemon's socket
  int slots = 0;                            // the daemon's worker processes (0: one per core)
  size_t store_bytes = 0;                   // its object store (0: 30% of memory)
  // Jobs are confined (job_sandbox.h) to their directory, the system's files, their program's
  // directory and these paths (read-only); false runs them unconfined.
  bool sandbox = true;
  std::vector<std::string> job_paths;
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds kill_grace{5000};
};

class NodeAgent {
 public:
  static Result<std::unique_ptr<NodeAgent>> start(NodeAgentOptions options);
  ~NodeAgent();

  std::string node_id() const;
  // "unix:PATH": where drivers on this machine attach.
  std::string node_socket() const;

 private:
  NodeAgent() = default;
  struct Server;
  std::unique_ptr<Server> s_;
};

}  // namespace weft::cluster
