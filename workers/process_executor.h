// Multi-process mode: an Executor that runs tasks of registered functions in worker processes.
//
//   weft::init({.processes = 4, .pipeline_depth = 4});   // see weft/options.h
//
// The driver starts `processes` workers (its own binary, re-executed; weft::init in the worker
// never returns) and talks to them over ZeroMQ (ipc) with the messages of control.h. A
// dispatcher thread owns the socket: ready remote tasks wait in one queue ordered by SLO class,
// then deadline (EDF), then submission; each worker gets up to `pipeline_depth` tasks in flight,
// so it never idles on a round trip. When the queue is empty and a worker is idle, the
// dispatcher asks the busiest worker to give back tasks it has not started (stealing) and hands
// them to the idle one. Workers are watched through pidfds: a dead worker's in-flight tasks are
// retried elsewhere while their max_retries allow, and otherwise fail with an error naming the
// death; the worker is restarted. Everything that cannot travel (actor calls, tasks taking
// ObjectRef parameters) runs on a local thread pool, which also serves get/wait. Actors whose
// factory takes its arguments by value are built in a worker (the least loaded one) and their
// calls go there, one at a time in the actor's order; if that worker dies, the actor's pending
// and later calls fail with weft::WorkerDied.
//
// Refs travel in task arguments, results and actor calls (weft/detail/ref_wire.h): a worker
// that reads a ref to a pending object of the driver's asks for it (ObjectWait), and the
// dispatcher answers once the object is done (ObjectReady), keeping it alive for that worker
// until it says it has the value (BorrowDone) or dies (workers/borrowers.h). On a node, the other
// drivers borrow the same way (PeerHello), and this driver borrows from them (workers/peer_drivers.h):
// named actors are found across the node's drivers.
//
// The driver also serves the node's shared-memory object store (objectstore/) on a socket next
// to the control socket; workers connect to it at start (weft::Array travels through it).
//
// Thread safety: submit may be called from any thread; the dispatcher thread completes remote
// tasks (so dependents become ready there).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/actor_exports.h"
#include "scheduler/executor.h"
#include "scheduler/ref_service.h"
#include "scheduler/remote_actor_host.h"
#include "scheduler/work_stealing_pool.h"
#include "weft/detail/hooks.h"
#include "weft/status.h"
#include "workers/peer_drivers.h"

namespace weft::workers {

class Transport;
class WorkerHost;

struct ProcessOptions {
  int processes = 2;         // 0 with a node: the node's default
  std::string node_address;  // empty: a private node in this process; "unix:PATH": a `weft node`
  int pipeline_depth = 4;  // tasks in flight per worker (>= 1)
  int local_threads = 1;   // threads for work that stays in the driver
  size_t store_bytes = 0;  // the node store's size; 0: 30% of the machine's memory
  sched::RefService* refs = nullptr;  // the driver's refs: workers wait on its pending objects
  sched::ActorExports* actors = nullptr;  // the driver's named actors, as workers reach them
};

struct ProcessStats {
  uint64_t dispatched = 0, completed = 0, stolen = 0, retried = 0, worker_deaths = 0, rejected_messages = 0;
  uint64_t actor_restarts = 0;
  uint64_t object_waits = 0;  // pending objects of the driver's that workers asked for
  uint64_t retired = 0;       // workers stopped to give their node slot to another driver
};

class ProcessExecutor final : public sched::Executor, public sched::RemoteActorHost {
 public:
  // Starts the workers and waits (up to 30 s) until each has said hello.
  static Result<std::unique_ptr<ProcessExecutor>> start(const ProcessOptions& options);
  // The same over a given transport and worker host (tests pass in-memory fakes), and links to the
  // node's other drivers (none: private node).
  static Result<std::unique_ptr<ProcessExecutor>> start_with(const ProcessOptions& options,
                                                             std::unique_ptr<Transport> transport,
                                                             std::unique_ptr<WorkerHost> host,
                                                             std::unique_ptr<PeerDrivers> peers = nullptr);
  ~ProcessExecutor() override;

  void submit(detail::Runnable* r) override;
  bool help_until(const std::function<bool()>& done, const std::function<bool()>& prepare_sleep,
                  int64_t deadline_ns) override;
  void wake_sleepers() override;
  void shutdown() override;
  void cancel_pending() override;
  bool in_worker_thread() const override;
  int num_workers() const override;

  // Actors hosted in worker processes (see weft/detail/hooks.h). create and call block the
  // calling thread until the worker answers; never call them on the dispatcher thread.
  detail::RemoteOutcome create_actor(const std::string& factory, std::string args, const std::string& call_name,
                                     int max_restarts) override;
  detail::RemoteOutcome call_actor(uint64_t actor, const std::string& method, std::string args,
                                   const std::string& call_name) override;
  void drop_actor(uint64_t actor) override;
  // On a node, actors of the node's other drivers too: found by name, called through their driver.
  void borrow_actor(uint64_t actor) override;
  Result<uint64_t> find_named(const std::string& name, const std::string& class_name) override;
  Status publish_name(const std::string& name, const std::string& class_name) override;

  // The node store's socket (the driver and every worker connect to it).
  std::string store_socket() const;
  // For tests and tools.
  std::string endpoint() const;
  std::vector<pid_t> worker_pids() const;
  ProcessStats stats() const;

 private:
  explicit ProcessExecutor(const ProcessOptions& options);
  struct Dispatcher;
  std::unique_ptr<sched::WorkStealingPool> local_;
  std::unique_ptr<PeerDrivers> peers_;  // declared before d_: outlives the dispatcher's use of it
  std::unique_ptr<Dispatcher> d_;
  std::thread thread_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace weft::workers
