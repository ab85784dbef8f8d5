// Where ready tasks go: the seam between the task layer and whatever runs tasks.
//
// The embedded runtime plugs in a WorkStealingPool (threads in this process). A node daemon plugs
// in an executor that dispatches to worker processes (several tasks in flight per worker, idle
// workers stealing from busy ones) behind the same interface, so the task, object and actor code
// above does not change.
#pragma once

#include <cstdint>
#include <functional>

#include "weft/detail/runnable.h"

namespace weft::sched {

class Executor {
 public:
  virtual ~Executor() = default;

  // Takes a ready runnable. Thread-safe; never blocks on other tasks. The executor calls exactly
  // one of run()/cancel() on it, once.
  virtual void submit(detail::Runnable* r) = 0;

  // Blocks the calling thread until `done()` is true. A worker thread of this executor runs other
  // ready work meanwhile (so nested waits cannot starve the pool); other threads sleep.
  // Before sleeping it calls `prepare_sleep()`; that must arrange for wake_sleepers() to be called
  // when `done()` may have become true, and return false if it already is (then no sleep).
  // Returns false if `deadline_ns` (steady clock) passes first. A wait with a deadline only
  // sleeps: running a task inline could overshoot the deadline by the task's duration.
  virtual bool help_until(const std::function<bool()>& done, const std::function<bool()>& prepare_sleep,
                          int64_t deadline_ns) = 0;

  // Wakes every thread sleeping in help_until (and idle workers) to re-check its condition.
  virtual void wake_sleepers() = 0;

  // Cancels work that has not started, waits for running work, stops the threads. Idempotent.
  virtual void shutdown() = 0;

  // After shutdown: cancels, on the calling thread, whatever was submitted since (for instance the
  // dependents that cancellations made ready), until nothing is left.
  virtual void cancel_pending() = 0;

  // True on a thread that runs this executor's tasks.
  virtual bool in_worker_thread() const = 0;

  virtual int num_workers() const = 0;
};

}  // namespace weft::sched
