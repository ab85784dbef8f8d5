// Exceptions raised by weft's public API.
//
// weft::Error      misuse of the API: a call before init or after shutdown, get on an empty
//                  ObjectRef, wait asking for more objects than it was given, an unregistered
//                  function. Derives from std::logic_error-like std::runtime_error.
// weft::TimeoutError  a get/wait with a timeout expired before the object was ready.
// weft::TaskError  a task (or actor method) raised, or a task it depended on raised. Carries the
//                  name of the task that failed first and its message, so a failure deep in a
//                  graph reads the same wherever it surfaces.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

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

/// What a failed task left behind: shared, immutable, passed along to every dependent.
struct ErrorInfo {
  std::string task_name;       ///< the task that raised first
  std::string message;         ///< its exception's what()
  std::string exception_type;  ///< demangled type of the exception, or "cancelled"
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
  /// All of the above, shared with every dependent that failed with it.
  const std::shared_ptr<const ErrorInfo>& info() const { return info_; }

 private:
  std::shared_ptr<const ErrorInfo> info_;
};

}  // namespace weft
