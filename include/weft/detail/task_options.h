// Options chained on task and actor-call builders. Internal base of the public builders.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "weft/detail/runnable.h"
#include "weft/options.h"

namespace weft::detail {

// Options users rarely set, shared by every task a builder submits (copy-on-write).
struct TaskExtras {
  std::string name;
  ResourceSet resources;
  int max_retries = 0;
  bool retry_exceptions = false;
  int max_restarts = 0;  // actors: rebuilds after their worker process dies
};

struct TaskCommon {
  const std::string* registered_name = nullptr;  // lives as long as the registry (forever)
  Slo slo = Slo::kStandard;
  int64_t deadline_ns = kNoDeadline;
  std::shared_ptr<const TaskExtras> extras;

  const std::string& name() const {
    return extras && !extras->name.empty() ? extras->name : *registered_name;
  }
  bool has_resources() const { return extras && !extras->resources.empty(); }
};

template <class Derived>
class TaskOptionsMixin {
 public:
  // SLO class of the task (default kStandard).
  Derived& priority(Slo slo) {
    common_.slo = slo;
    return self();
  }
  // Within its class, the task runs earliest-deadline-first, ahead of tasks with no deadline.
  Derived& deadline(Clock::time_point when) {
    common_.deadline_ns = to_ns(when);
    return self();
  }
  // Resources the task holds while it runs; a task that can never fit fails with a clear error.
  Derived& resources(ResourceSet need) {
    extras().resources = std::move(need);
    return self();
  }
  // Re-runs after a system failure (a dead worker process), or after an exception when
  // retry_exceptions(true), up to n times; then the last error is the result.
  Derived& max_retries(int n) {
    extras().max_retries = n < 0 ? 0 : n;
    return self();
  }
  Derived& retry_exceptions(bool on = true) {
    extras().retry_exceptions = on;
    return self();
  }
  // The name used in errors and logs (default: the registered name).
  Derived& name(std::string n) {
    extras().name = std::move(n);
    return self();
  }

 protected:
  TaskCommon common_;

 private:
  Derived& self() { return static_cast<Derived&>(*this); }

 protected:
  TaskExtras& extras() {
    auto fresh = common_.extras ? std::make_shared<TaskExtras>(*common_.extras) : std::make_shared<TaskExtras>();
    TaskExtras& ref = *fresh;
    common_.extras = std::move(fresh);
    return ref;
  }
};

}  // namespace weft::detail
