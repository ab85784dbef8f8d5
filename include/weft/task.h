// weft::task(fn): submit a registered function as a task.
//
//   int square(int x) { return x * x; }
//   WEFT_REMOTE(square);
//
//   weft::ObjectRef<int> a = weft::task(square).remote(3);
//   weft::ObjectRef<int> b = weft::task(square)
//                                .priority(weft::Slo::kLatencyCritical)
//                                .remote(a);            // runs once `a` exists; receives 9
//   int r = weft::get(b);                               // 81
//
// remote() returns at once. Arguments are copied into the task (values) or taken as dependencies
// (ObjectRef<T>, std::vector<ObjectRef<T>>). A builder may be kept and reused for many calls;
// builders are not shared between threads, the refs they return are.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "weft/detail/function_task.h"
#include "weft/detail/task_options.h"
#include "weft/object_ref.h"
#include "weft/registry.h"

namespace weft {

/// Options and submission of a call of a remote function; weft::task(fn) makes one.
template <class Fn>
class TaskBuilder;

/// TaskBuilder for a function returning R from parameters Ps.
template <class R, class... Ps>
class TaskBuilder<R (*)(Ps...)> : public detail::TaskOptionsMixin<TaskBuilder<R (*)(Ps...)>> {
  static_assert(!std::is_reference_v<R> && !std::is_pointer_v<R>,
                "weft: a remote function must return a value (not a reference or pointer)");

 public:
  using Fn = R (*)(Ps...);  ///< the function's type
  using result_type = R;    ///< what the task produces

  /// Throws weft::Error when `fn` is not registered with WEFT_REMOTE.
  explicit TaskBuilder(Fn fn) : fn_(fn) {
    this->common_.registered_name = &detail::lookup_remote(detail::pointer_key(fn), reinterpret_cast<const void*>(fn)).name;
  }

  /// Submits the call and returns at once. Each argument is a value or an ObjectRef (or vector of
  /// them) of the parameter's type: the task runs when those objects exist, with their values.
  template <class... A>
  ObjectRef<R> remote(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(Ps), "weft: wrong number of arguments for this remote function");
    static_assert((detail::check_arg<Ps, A>() && ... && true));
    if constexpr (!std::is_void_v<R>) detail::require_serializable<R>();
    detail::ensure_running();
    detail::check_refs_valid(args...);
    using Task = detail::FunctionTask<Fn, detail::stored_arg_t<Ps, A>...>;
    auto* t = new Task(fn_, this->common_, std::forward<A>(args)...);
    ObjectRef<R> ref = ObjectRef<R>::adopt(t);
    t->start();
    return ref;
  }

 private:
  Fn fn_;
};

/// Starts building a task for a function registered with WEFT_REMOTE.
template <class R, class... Ps>
TaskBuilder<R (*)(Ps...)> task(R (*fn)(Ps...)) {
  return TaskBuilder<R (*)(Ps...)>(fn);
}

}  // namespace weft
