// The head of a cluster: the directory of its nodes (registered, watched by heartbeats), its job
// manager (jobs placed on nodes, their states and output kept), and the store of uploaded
// working directories. One per cluster, reached at HOST:PORT over CURVE (secure_socket.h) by
// nodes and clients holding the cluster's credential; messages are protocol.h's.
//
//   auto head = Head::start({.port = 7380, .state_dir = "/home/me/.weft/head", .credential = c});
//   // nodes: NodeAgent::start({.head_address = (*head)->address(), ...})
//
// Faults: a node whose heartbeats stop for `node_timeout` is dead; the jobs it ran fail, naming it
// (they are not run again elsewhere: a job's driver may have had side effects). If it comes back
// (a paused process, a healed partition) it registers again and is told to stop those jobs, so
// nothing the head gave up on keeps running. Everything the head knows of jobs and nodes is in
// its database (head_store.h) and its output files, so a head killed and restarted loses none of
// it; nodes reconnect by themselves and report what ran meanwhile. Malformed or unexpected
// messages are answered with an error (clients) or dropped (nodes), logged and counted.
//
// Thread-safe: the head serves on one thread of its own; the methods below may be called from
// any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "cluster/credential.h"
#include "cluster/package.h"
#include "weft/status.h"

namespace weft::cluster {

struct HeadOptions {
  std::string bind = "127.0.0.1";  // the address to listen at; loopback unless told otherwise
  int port = 7380;                 // 0: any free port (address() says which)
  std::string state_dir;           // its database, uploaded packages and jobs' output
  Credential credential;
  std::chrono::milliseconds node_timeout{5000};
  uint64_t max_package_bytes = kMaxPackageBytes;
};

class Head {
 public:
  static Result<std::unique_ptr<Head>> start(HeadOptions options);
  ~Head();

  // "HOST:PORT", to give nodes and clients.
  std::string address() const;
  uint64_t rejected_messages() const;
  uint64_t refused_connections() const;

 private:
  Head() = default;
  struct Server;
  std::unique_ptr<Server> s_;
};

// A new random id with this prefix: "job-3f9a1c2b7d4e".
std::string random_id(const std::string& prefix);
int64_t now_ms();

}  // namespace weft::cluster
