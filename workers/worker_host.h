// Where a driver's worker processes are started and watched, and the store they share: the
// driver itself (a private node, what weft::init({.processes = N}) makes) or a `weft node` daemon
// several drivers attach to (weft::init({.address = "unix:PATH"})). The dispatcher
// (process_executor.cc) is the same over both.
//
// Called from the dispatcher thread only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "weft/status.h"
#include "workers/transport.h"

namespace weft::workers {

struct WorkerExit {
  uint32_t index = 0;
  pid_t pid = -1;
  std::string how;  // "killed by signal 9 (Killed)", "exited with status 1", ...
};

class WorkerHost {
 public:
  virtual ~WorkerHost() = default;

  // The node store's socket (the driver and every worker connect to it).
  virtual std::string store_socket() const = 0;
  // Workers wanted when the driver asks for none in particular.
  virtual int default_workers() const = 0;
  // Starts worker `index` (again, after a death); returns its pid. The worker connects to the
  // driver's endpoint and says hello with this pid. 0: parked, the host has no slot for it now
  // (a node shared by several drivers); granted() says when it starts.
  virtual Result<pid_t> start(uint32_t index) = 0;
  // Appends what the dispatcher must poll for this host's events; after the poll, exits() reads
  // the same items (starting at `first`) and returns the workers that are gone.
  virtual void add_poll_items(std::vector<zmq::pollitem_t>& items) = 0;
  virtual std::vector<WorkerExit> exits(const zmq::pollitem_t* first) = 0;
  // In a cluster: the host other nodes reach this machine at (empty: not in one). The driver
  // then listens there (Transport::expose) and offers it, so that workers the node has no slot
  // for may start on other nodes.
  virtual std::string cluster_host() const { return ""; }
  virtual Status offer_reach(const RemoteReach& reach) {
    (void)reach;
    return Status::ok();
  }
  // After exits(): parked workers that started since (index, pid).
  virtual std::vector<std::pair<uint32_t, pid_t>> granted() { return {}; }
  // After exits(): how many workers the host asks the driver to retire once idle (another driver
  // waits for slots); each retired worker's exit frees one, and the driver asks for it again.
  virtual uint32_t take_yield() { return 0; }
  // At shutdown, once every worker was told to stop: waits up to `grace` for them, then kills
  // those left (and those still starting).
  virtual void stop(std::chrono::milliseconds grace) = 0;
};

// The environment of worker `index` of a driver whose workers connect to `endpoint`: the
// driver's own (`environ`, less any WEFT_WORKER_ variable) plus where to connect.
std::vector<std::string> worker_environment(const std::vector<std::string>& driver_env, const std::string& endpoint,
                                            uint32_t index, const std::string& store_socket, pid_t driver);
std::vector<std::string> current_environment();
// This process's command line and executable, which workers run again.
std::vector<std::string> own_command_line();
std::string own_executable();
// "killed by signal 9 (Killed)", from a waitpid status.
std::string describe_exit(int status);

// A private node in the driver: starts the workers as its children and serves the store
// (`store_bytes`; 0: 30% of the machine's memory) on a socket in `dir`.
Result<std::unique_ptr<WorkerHost>> make_private_host(const std::string& dir, const std::string& endpoint,
                                                      size_t store_bytes, int default_workers);
// Attaches to the `weft node` daemon at `address` ("unix:PATH"); its workers connect to `endpoint`.
Result<std::unique_ptr<WorkerHost>> attach_to_node(const std::string& address, const std::string& endpoint);

}  // namespace weft::workers
