// The embedded runtime: one process holding the scheduler and the resource gate, reached by the
// public API through a global pointer set by weft::init and cleared by weft::shutdown.
//
// Two pointers: `api` admits new submissions and is cleared first at shutdown; `live` keeps
// serving the runtime's own internal traffic (dependents made ready by cancellations, wake-ups)
// until the runtime is torn down. Both are only written under the lifecycle mutex.
#pragma once

#include <atomic>
#include <memory>

#include "scheduler/resource_gate.h"
#include "scheduler/executor.h"
#include "weft/options.h"

namespace weft::runtime {

class Runtime {
 public:
  Runtime(std::unique_ptr<sched::Executor> executor, ResourceSet capacity);
  ~Runtime();

  // Where ready tasks go: a WorkStealingPool of threads in this process (embedded), or a
  // workers::ProcessExecutor (multi-process mode).
  sched::Executor& executor() { return *executor_; }
  sched::ResourceGate& gate() { return gate_; }
  // Cancels everything not yet started, waits for running tasks, stops the workers.
  void stop();

 private:
  std::unique_ptr<sched::Executor> executor_;
  sched::ResourceGate gate_;
};

// The running runtime for internal use, or null.
Runtime* live();

}  // namespace weft::runtime
