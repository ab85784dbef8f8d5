// `weft node`: the daemon of one machine. It serves the node's shared-memory object store and
// starts, watches and stops worker processes for every driver attached to it; drivers dispatch
// to their own workers directly (as a Ray owner pushes tasks to the workers its raylet leased
// it), so the node never sits on a task's path.
//
//   auto node = NodeDaemon::start({.address = "unix:/run/weft/node.sock"});
//   // drivers: weft::init({.address = "unix:/run/weft/node.sock"})
//
// Each driver's workers run that driver's own executable, with its arguments, environment and
// working directory, so its registered functions and actors are found there. The node's slots
// (one worker process each) are shared among its drivers: while they want more than there are,
// a driver's extra workers wait parked, free slots go to the driver running the fewest, and a
// driver above its fair share (slots / drivers wanting more) is asked to yield idle workers. A driver that dies
// takes its workers and its store objects with it; the others go on. Messages are those of
// node_protocol.h; malformed ones are logged and dropped.
//
// In a cluster (`cluster_host` set, by cluster/node_agent.h), a worker the node has no slot for
// becomes a lease ask the agent takes to the head, and the worker starts on another node, where it
// reaches its driver over TCP (the driver's `Reach`); the driver still sees it parked, then
// started, then exited, as it sees its workers here. The other way, the node runs workers for
// drivers elsewhere (start_leased) in its own slots.
//
// Thread-safe: one thread serves everything; the methods below may be called from any other.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "objectstore/store.h"
#include "weft/status.h"

namespace weft::workers {

struct NodeOptions {
  std::string address;     // "unix:PATH": the socket drivers attach to; the store is PATH.store
  int workers = 0;         // a driver's pool when it asks for none in particular; 0: one per core
  int slots = 0;           // worker processes running at once, all drivers together; 0: one per core
  size_t store_bytes = 0;  // the store's size; 0: 30% of the machine's memory
  // In a cluster: the node's id (leases are named after it) and the host other nodes reach it
  // at, where its drivers listen for workers elsewhere. Empty: a node of its own, no leases.
  std::string node_id, cluster_host;
};

// A worker started on another node for a driver of this one (a lease, cluster/protocol.h), or on
// this node for a driver elsewhere: what to run and how it reaches its driver.
struct LeaseRequest {
  std::string lease_id, owner;  // the owner: the node whose driver it serves
  uint32_t index = 0;
  int64_t driver_pid = 0;
  std::string executable;
  std::vector<std::string> argv, env;
  std::string cwd;
  std::string endpoint, server_public, worker_public, worker_secret;
};

// A leased worker this node runs for a driver elsewhere.
struct LeasedWorker {
  std::string lease_id, owner;
  int64_t pid = 0;  // 0: it could not start (how)
  bool exited = false;
  std::string how;
};

struct NodeCounts {
  size_t drivers = 0, workers = 0, parked = 0;
  uint64_t rejected_messages = 0;
};

class NodeDaemon {
 public:
  // Binds the socket (replacing a stale one) and starts serving.
  static Result<std::unique_ptr<NodeDaemon>> start(const NodeOptions& options);
  // Stops serving and kills every worker.
  ~NodeDaemon();

  std::string address() const;
  std::string store_socket() const;
  size_t slots() const;  // worker processes it runs at once
  NodeCounts counts() const;
  // The store's objects and bytes (objectstore/store.h).
  objectstore::StoreStats store_stats() const;

  // Leases, for the node agent that carries them to and from the cluster's head (any thread):
  // Asks for workers this node has no slot for (taken once each: the agent resends them).
  std::vector<LeaseRequest> take_lease_asks();
  // The leases this node's drivers hold or wait for.
  std::vector<std::string> wanted_leases() const;
  // The head's answer to an ask: the worker runs on `node` as `pid`, or ended (could not be
  // placed, could not start, exited, its node died: `how`).
  void lease_answer(const std::string& lease_id, const std::string& node, int64_t pid, bool ended,
                    const std::string& how);
  // Workers to run here for drivers elsewhere: start (again: ignored), kill, forget once ended.
  void start_leased(LeaseRequest request);
  void kill_leased(const std::string& lease_id);
  void forget_leased(const std::string& lease_id);
  std::vector<LeasedWorker> leased() const;
  // Bumped whenever leased() changes or a new ask waits.
  uint64_t lease_version() const;

 private:
  NodeDaemon() = default;
  struct Server;
  std::unique_ptr<Server> s_;
};

}  // namespace weft::workers
