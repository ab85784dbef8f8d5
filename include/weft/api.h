// Runtime lifetime and object access: init, shutdown, put, get, wait.
//
//   weft::init();                                   // embedded: one worker per core
//   auto r = weft::put(std::vector<int>{1, 2, 3});
//   const std::vector<int>& v = weft::get(r);       // no copy; valid while `r` lives
//   weft::shutdown();
//
// get and wait block. Inside a task, the blocked worker runs other ready tasks meanwhile, so a
// task may submit tasks and get their results even on a one-worker runtime; other threads (the
// driver) simply sleep until the object exists. All functions here are
// safe to call from any thread, including from inside tasks, between init and shutdown.
#pragma once

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/errors.h"
#include "weft/export.h"
#include "weft/object_ref.h"
#include "weft/options.h"
#include "weft/serialization.h"
#include "weft/status.h"

namespace weft {

/// Starts the runtime. Errors: kFailedPrecondition if already running; kAlreadyExists if two
/// functions were registered under one name; kInvalidArgument for bad options; kUnavailable for a
/// cluster address (not in this build), a node that does not answer, or worker processes that did
/// not start; kFailedPrecondition when a node refuses this driver.
/// With Options::processes > 0 the driver's binary is started again as worker processes, where
/// this call (which must come first in main) serves tasks and never returns.
WEFT_API Status init(const Options& options = {});

/// In a worker process started by a multi-process driver, serves tasks and exits the process;
/// anywhere else returns at once. weft::init calls it first; a program that does other work
/// before init (a test runner's main, say) calls it at the top of main.
WEFT_API void serve_if_worker();

/// Stops the runtime: tasks that have not started are cancelled (their get raises
/// weft::TaskCancelled), running tasks finish, worker threads exit. Objects already produced stay
/// readable through their refs. Must not race with submissions from other threads.
/// kFailedPrecondition if the runtime is not running.
WEFT_API Status shutdown();

/// True between a successful init and shutdown.
WEFT_API bool is_initialized();
/// Worker threads (or worker processes, with Options::processes) of the running runtime (0 when
/// not running).
WEFT_API int num_workers();

/// Stores a value as an object.
template <class T>
ObjectRef<std::decay_t<T>> put(T&& value) {
  using V = std::decay_t<T>;
  static_assert(!is_object_ref_v<V>, "weft: put of an ObjectRef; pass the ref itself instead");
  detail::require_serializable<V>();
  detail::ensure_running();
  // Values that can live in the node's shared-memory store (weft::Array) move there now, once,
  // so tasks in other processes read them in place.
  if constexpr (requires(const V& v) { v.share(); }) value.share();
  auto* o = new detail::Object<V>(1);
  o->set_value(std::forward<T>(value));
  return ObjectRef<V>::adopt(o);
}

namespace detail {
/// Waits for `o`, raising TimeoutError or the object's TaskError.
inline void await(ObjectBase* o, int64_t deadline_ns) {
  if (!o->done()) {
    ObjectBase* one[1] = {o};
    if (!wait_done(one, 1, 1, deadline_ns)) throw TimeoutError("weft::get: timed out waiting for object " + o->id().hex());
  }
  if (o->failed()) throw_task_error(o->error());
}
template <class Rep, class Period>
int64_t deadline_after(std::chrono::duration<Rep, Period> d) {
  return now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}
}  // namespace detail

/// The value of a ref, waiting for it. Raises weft::TaskError if its task (or one it depended on)
/// failed, weft::Error on an empty ref. The reference stays valid while `ref` (or a copy) lives.
template <class T>
  requires(!std::is_void_v<T>)
const T& get(const ObjectRef<T>& ref) {
  detail::Object<T>* o = ref.checked();
  detail::await(o, detail::kNoDeadline);
  return o->value();
}

/// As above, for a temporary ref: returns the value itself (moved out when nothing else refers to
/// the object, copied otherwise).
template <class T>
  requires(!std::is_void_v<T>)
T get(ObjectRef<T>&& ref) {
  detail::Object<T>* o = ref.checked();
  detail::await(o, detail::kNoDeadline);
  if (o->unique()) return std::move(o->mutable_value());
  return o->value();
}

/// Waits for a task that returns nothing; raises its error if it failed.
inline void get(const ObjectRef<void>& ref) { detail::await(ref.checked(), detail::kNoDeadline); }

/// As get(ref), raising weft::TimeoutError when the object is not ready within `timeout`.
template <class T, class Rep, class Period>
decltype(auto) get(const ObjectRef<T>& ref, std::chrono::duration<Rep, Period> timeout) {
  detail::Object<T>* o = ref.checked();
  detail::await(o, detail::deadline_after(timeout));
  if constexpr (!std::is_void_v<T>) return static_cast<const T&>(o->value());
}

/// The values of several refs, in order. Raises the first failure found in order.
template <class T>
  requires(!std::is_void_v<T>)
std::vector<T> get(const std::vector<ObjectRef<T>>& refs) {
  std::vector<T> out;
  out.reserve(refs.size());
  for (const auto& r : refs) out.push_back(get(r));
  return out;
}
/// Waits for every ref of a list of void tasks, raising the first failure.
inline void get(const std::vector<ObjectRef<void>>& refs) {
  for (const auto& r : refs) get(r);
}

/// What weft::wait returns: the refs split by readiness.
template <class T>
struct WaitResult {
  std::vector<ObjectRef<T>> ready;      ///< at most num_ready refs, in input order
  std::vector<ObjectRef<T>> not_ready;  ///< the rest, in input order
};

namespace detail {
/// Blocks until `k` of `objs` are done or the deadline passes (then returns whatever is ready).
WEFT_API void wait_some(ObjectBase* const* objs, size_t n, size_t k, int64_t deadline_ns);
}  // namespace detail

/// Waits until `num_ready` of `refs` are ready (or `timeout` passes) and splits them. A failed
/// object counts as ready. Raises weft::Error if num_ready > refs.size() or a ref is empty.
template <class T, class Rep = int64_t, class Period = std::ratio<1>>
WaitResult<T> wait(const std::vector<ObjectRef<T>>& refs, size_t num_ready,
                   std::chrono::duration<Rep, Period> timeout = std::chrono::duration<Rep, Period>::max()) {
  if (num_ready > refs.size()) {
    throw Error("weft::wait: num_ready (" + std::to_string(num_ready) + ") exceeds the number of refs (" +
                std::to_string(refs.size()) + ")");
  }
  std::vector<detail::ObjectBase*> objs;
  objs.reserve(refs.size());
  for (const auto& r : refs) objs.push_back(r.checked());
  int64_t deadline = timeout == std::chrono::duration<Rep, Period>::max() ? detail::kNoDeadline
                                                                         : detail::deadline_after(timeout);
  detail::wait_some(objs.data(), objs.size(), num_ready, deadline);
  WaitResult<T> out;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (out.ready.size() < num_ready && objs[i]->done()) {
      out.ready.push_back(refs[i]);
    } else {
      out.not_ready.push_back(refs[i]);
    }
  }
  return out;
}

}  // namespace weft
