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
// Thread-safe: one thread serves everything; the methods below may be called from any other.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "objectstore/store.h"
#include "weft/status.h"

namespace weft::workers {

struct NodeOptions {
  std::string address;     // "unix:PATH": the socket drivers attach to; the store is PATH.store
  int workers = 0;         // a driver's pool when it asks for none in particular; 0: one per core
  int slots = 0;           // worker processes running at once, all drivers together; 0: one per core
  size_t store_bytes = 0;  // the store's size; 0: 30% of the machine's memory
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
  NodeCounts counts() const;
  // The store's objects and bytes (objectstore/store.h).
  objectstore::StoreStats store_stats() const;

 private:
  NodeDaemon() = default;
  struct Server;
  std::unique_ptr<Server> s_;
};

}  // namespace weft::workers
