// The embedded runtime: one process holding the scheduler and the resource gate, reached by the
// public API through a global pointer set by weft::init and cleared by weft::shutdown.
//
// Two pointers: `api` admits new submissions and is cleared first at shutdown; `live` keeps
// serving the runtime's own internal traffic (dependents made ready by cancellations, wake-ups)
// until the runtime is torn down. Both are only written under the lifecycle mutex.
#pragma once

#include <atomic>
#include <memory>

#include "runtime/actor_directory.h"
#include "scheduler/executor.h"
#include "scheduler/remote_actor_host.h"
#include "scheduler/resource_gate.h"
#include "weft/options.h"

namespace weft::runtime {

class Runtime {
 public:
  // `actors`: where actors of worker processes live (multi-process mode; owned by the executor
  // or outliving it), or null.
  Runtime(std::unique_ptr<sched::Executor> executor, ResourceSet capacity, sched::RemoteActorHost* actors = nullptr);
  ~Runtime();

  // Where ready tasks go: a WorkStealingPool of threads in this process (embedded), or a
  // workers::ProcessExecutor (multi-process mode).
  sched::Executor& executor() { return *executor_; }
  sched::ResourceGate& gate() { return gate_; }
  // Null when embedded.
  sched::RemoteActorHost* remote_actors() { return actors_; }
  ActorDirectory& named_actors() { return named_; }
  // Cancels everything not yet started, waits for running tasks, stops the workers.
  void stop();

 private:
  std::unique_ptr<sched::Executor> executor_;
  sched::RemoteActorHost* actors_;
  sched::ResourceGate gate_;
  ActorDirectory named_;
};

// The running runtime for internal use, or null.
Runtime* live();

// Makes a runtime of these parts the running one: weft::init builds them from Options, tests
// install fakes. kFailedPrecondition if a runtime is running.
Status start(std::unique_ptr<sched::Executor> executor, ResourceSet capacity, sched::RemoteActorHost* actors = nullptr);

}  // namespace weft::runtime
