// Exceptions raised by weft's public API.
//
// weft::Error      misuse of the API: a call before init or after shutdown, get on an empty
//                  ObjectRef, wait asking for more objects than it was given, an unregistered
//                  function. Derives from std::logic_error-like std::runtime_error.
// weft::TimeoutError  a get/wait with a timeout expired before the object was ready.
// weft::TaskError  a task (or actor method) raised, or a task it depended on raised. Carries the
//                  name of the task that failed first and its message, so a failure deep in a
//                  graph reads the same wherever it surfaces. Failures that are weft's own, not the
//                  task's, are subclasses, catchable by type wherever they surface (in another
//                  process too: the kind travels with the error):
//   weft::WorkerDied     the worker process running the task or hosting the actor died
//   weft::TaskCancelled  the runtime shut down before the task ran
//   weft::RemoteError    a worker process could not run it (not registered in its binary, say)
//   weft::ObjectLost     an object owned by another process could not be read there
//   weft::OwnerDied      (an ObjectLost) the process that owned it died before it was read
// A program's own exception types registered with WEFT_EXCEPTION (at the end of this file) are
// raised again as themselves, in any process, with the TaskError nested inside.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "weft/export.h"

namespace weft {

/// Misuse of the API (see the top of this file).
class WEFT_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A get or wait with a timeout expired before the object was ready.
class WEFT_API TimeoutError : public Error {
 public:
  using Error::Error;
};

/// Why a task failed: which TaskError get raises.
enum class ErrorKind : uint8_t {
  kRaised = 0,      ///< the task raised an exception (TaskError)
  kCancelled = 1,   ///< the runtime shut down before it ran (TaskCancelled)
  kWorkerDied = 2,  ///< its worker process died (WorkerDied)
  kRemote = 3,      ///< a worker process could not run it (RemoteError)
  kObjectLost = 4,  ///< an object it read from another process is gone (ObjectLost)
  kOwnerDied = 5,   ///< the process owning an object it read died (OwnerDied)
};

/// What a failed task left behind: shared, immutable, passed along to every dependent.
struct ErrorInfo {
  std::string task_name;       ///< the task that raised first
  std::string message;         ///< its exception's what()
  std::string exception_type;  ///< demangled type of the exception, or "cancelled"
  ErrorKind kind = ErrorKind::kRaised;  ///< which TaskError get raises
};

/// A task (or actor method), or a task it depended on, raised: get re-raises it wherever the
/// failure surfaces. what() reads "<task> raised <type>: <message>".
class WEFT_API TaskError : public Error {
 public:
  /// The error of the task that failed first.
  explicit TaskError(std::shared_ptr<const ErrorInfo> info);

  /// The task that raised first.
  const std::string& task_name() const { return info_->task_name; }
  /// Its exception's what().
  const std::string& message() const { return info_->message; }
  /// The exception's demangled type, or "cancelled".
  const std::string& exception_type() const { return info_->exception_type; }
  /// Why it failed.
  ErrorKind kind() const { return info_->kind; }
  /// All of the above, shared with every dependent that failed with it.
  const std::shared_ptr<const ErrorInfo>& info() const { return info_; }

 private:
  std::shared_ptr<const ErrorInfo> info_;
};

/// The worker process running the task (or hosting the actor) died: a crash, a kill, the OOM
/// killer. Tasks with retries left are retried first.
class WEFT_API WorkerDied : public TaskError {
 public:
  using TaskError::TaskError;
};

/// The runtime shut down before the task ran.
class WEFT_API TaskCancelled : public TaskError {
 public:
  using TaskError::TaskError;
};

/// A worker process could not run the task: its function or actor is not registered in the
/// worker's binary, or its arguments did not decode there.
class WEFT_API RemoteError : public TaskError {
 public:
  using TaskError::TaskError;
};

/// An object owned by another process could not be read: its owner no longer has it (it was
/// freed, or a ref to a pending object was packed outside a task's arguments), or its copy in the
/// node's store is gone.
class WEFT_API ObjectLost : public TaskError {
 public:
  using TaskError::TaskError;
};

/// The process that owned an object (another driver on the node) died before the object could be
/// read here; nothing waits for it any more.
class WEFT_API OwnerDied : public ObjectLost {
 public:
  using ObjectLost::ObjectLost;
};

/// Raises the TaskError subclass of `info`'s kind, or the task's own exception type when that
/// type is registered with WEFT_EXCEPTION.
[[noreturn]] WEFT_API void throw_task_error(std::shared_ptr<const ErrorInfo> info);

/// @cond INTERNAL
namespace detail {
using ExceptionThrower = void (*)(std::shared_ptr<const ErrorInfo>);
WEFT_API bool register_exception(const std::type_info& type, ExceptionThrower thrower) noexcept;

template <class E>
[[noreturn]] void throw_as(std::shared_ptr<const ErrorInfo> info) {
  try {
    throw TaskError(info);
  } catch (...) {
    std::throw_with_nested(E(info->message));
  }
}
}  // namespace detail
/// @endcond

}  // namespace weft

/// Registers an exception type, so that when a task raises it, get raises it again as that type
/// wherever the failure surfaces (in another process too), instead of as weft::TaskError:
///
///   struct ParseError : std::runtime_error { using std::runtime_error::runtime_error; };
///   WEFT_EXCEPTION(ParseError);
///   try { weft::get(ref); } catch (const ParseError& e) { ... e.what() is the task's message ... }
///
/// The type must be constructible from a std::string (its what()). The TaskError (which task,
/// its name) is nested inside: std::rethrow_if_nested(e) raises it. At namespace scope, in a
/// .cc file linked into the program.
#define WEFT_EXCEPTION(E)                                                                         \
  static_assert(std::is_constructible_v<E, std::string>,                                          \
                "WEFT_EXCEPTION: " #E " must be constructible from a std::string (its message)"); \
  [[maybe_unused]] static const bool WEFT_PP_CAT(weft_exception_, __COUNTER__) =                  \
      ::weft::detail::register_exception(typeid(E), &::weft::detail::throw_as<E>)
