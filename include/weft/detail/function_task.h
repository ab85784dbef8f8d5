// A submitted call of a remote function: its result object and its pending work in one
// allocation. Internal.
//
// Lifetime: created with two references, one for the ObjectRef handed to the caller and one held
// by the task itself until it has run (or been cancelled); the arguments, and with them the
// references to dependency objects, are dropped as soon as the task finishes.
#pragma once

#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "weft/detail/args.h"
#include "weft/detail/hooks.h"
#include "weft/detail/object.h"
#include "weft/detail/remote_task.h"
#include "weft/detail/task_options.h"
#include "weft/registry.h"
#include "weft/serialization.h"

namespace weft::detail {

// Whether an argument can go to a worker process as it is now (types with a hidden friend
// weft_travels_now decide at run time: an ActorHandle to an actor living in the driver does not).
template <class S>
bool travels_now(const S& s) {
  if constexpr (requires { weft_travels_now(s); }) {
    return weft_travels_now(s);
  } else {
    (void)s;
    return true;
  }
}

// Shared by function tasks and actor calls: retries, resources and error naming.
class TaskLifecycle {
 public:
  explicit TaskLifecycle(const TaskCommon& c) : common_(c), retries_left_(c.extras ? c.extras->max_retries : 0) {}
  const std::string& name() const { return common_.name(); }
  const TaskCommon& common() const { return common_; }

 protected:
  bool consume_retry() {
    if (!common_.extras || !common_.extras->retry_exceptions || retries_left_ <= 0) return false;
    --retries_left_;
    return true;
  }

  TaskCommon common_;
  int retries_left_;
};

template <class Fn, class... S>
class FunctionTask;

template <class R, class... Ps, class... S>
class FunctionTask<R (*)(Ps...), S...> final : public Object<R>, public TaskBase, public TaskLifecycle, public RemoteTask {
 public:
  using Fn = R (*)(Ps...);

  template <class... A>
  FunctionTask(Fn fn, const TaskCommon& common, A&&... a)
      : Object<R>(2), TaskLifecycle(common), fn_(fn), args_(std::in_place, std::forward<A>(a)...) {
    set_priority(common.slo, common.deadline_ns);
  }

  // Links dependencies; the task is scheduled now or when the last one finishes.
  void start() { start_with_dependencies(*this, *args_); }

  void run() override {
    if (ObjectBase* dep = failed_dependency()) {
      this->fail(dep->error());
    } else {
      try {
        invoke(std::index_sequence_for<Ps...>{});
      } catch (...) {
        ErrorPtr err = error_from_current_exception(name());
        if (consume_retry()) {
          submit(this);
          return;
        }
        this->fail(std::move(err));
      }
    }
    finish_task(true);
  }

  void cancel() override {
    this->fail(cancelled_error(name()));
    finish_task(true);
  }

  // ---- RemoteTask: running in a worker process ----
  // Whether every parameter can travel (values, and refs as records): only then can a worker
  // process decode the arguments.
  static constexpr bool kTravels = (travels_by_value_v<Ps> && ...);

  RemoteTask* remote() override { return this; }
  const RemoteEntry* remote_entry() override {
    if constexpr (!kTravels) return nullptr;
    if (failed_dependency() != nullptr) return nullptr;
    if (!std::apply([](const auto&... a) { return (travels_now(a) && ... && true); }, *args_)) return nullptr;
    const RemoteEntry* e = Registry::global().find_by_key(pointer_key(fn_));
    return e != nullptr && e->invoker != nullptr ? e : nullptr;
  }
  Result<std::string> pack_arguments() override {
    if constexpr (!kTravels) return Status::failed_precondition("this task's parameters cannot travel by value");
    try {
      return pack_args(std::index_sequence_for<Ps...>{});
    } catch (const std::exception& e) {
      return Status::invalid_argument(std::string("arguments could not be encoded: ") + e.what());
    }
  }
  void finish_remote(std::string_view packed) override {
    if constexpr (std::is_void_v<R>) {
      this->set_value();
    } else {
      auto value = unpack<R>(packed);
      if (value.ok()) {
        this->set_value(std::move(*value));
      } else {
        this->fail(std::make_shared<ErrorInfo>(ErrorInfo{name(), value.status().message(), "weft::RemoteError"}));
      }
    }
    finish_task(true);
  }
  void fail_remote(ErrorPtr error) override {
    this->fail(std::move(error));
    finish_task(true);
  }
  bool retry_after_worker_death() override {
    if (retries_left_ <= 0) return false;
    --retries_left_;
    return true;
  }
  const std::string& task_name() const override { return name(); }

 private:
  template <size_t... I>
  std::string pack_args(std::index_sequence<I...> seq) {
    if constexpr (kTravels) {
      return pack_resolved<std::tuple<Ps...>>(*args_, seq);
    } else {
      return {};
    }
  }

  void on_ready() noexcept override {
    if (common_.has_resources() && failed_dependency() == nullptr) {
      std::string why;
      switch (acquire_resources(this, common_.extras->resources, &why)) {
        case Admission::kNow:
          break;
        case Admission::kParked:
          return;
        case Admission::kInfeasible:
          this->fail(std::make_shared<ErrorInfo>(ErrorInfo{name(), why, "weft::ResourceError"}));
          finish_task(false);
          return;
      }
    }
    submit(this);
  }

  template <size_t... I>
  void invoke(std::index_sequence<I...>) {
    auto& a = *args_;
    using P = std::tuple<Ps...>;
    if constexpr (std::is_void_v<R>) {
      fn_(resolve_arg<std::tuple_element_t<I, P>>(std::get<I>(a))...);
      this->set_value();
    } else {
      this->set_value(fn_(resolve_arg<std::tuple_element_t<I, P>>(std::get<I>(a))...));
    }
  }

  void finish_task(bool held_resources) {
    if (held_resources && common_.has_resources() && failed_dependency() == nullptr) {
      release_resources(common_.extras->resources);
    }
    args_.reset();
    this->release();
  }

  Fn fn_;
  std::optional<std::tuple<S...>> args_;
};

}  // namespace weft::detail
