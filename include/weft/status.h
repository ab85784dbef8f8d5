// Status and Result<T>: how weft reports errors across module boundaries.
//
// A Status is either OK or a code plus a human-readable message. An OK status is one null
// pointer, so returning Status on the success path costs nothing. Result<T> holds either a value
// or a non-OK Status. Both are cheap to copy and safe to share between threads once built.
//
//   weft::Result<int> parse(std::string_view s);
//   WEFT_ASSIGN_OR_RETURN(int n, parse("42"));
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "weft/export.h"

namespace weft {

/// What went wrong, in categories callers can act on (as in absl::StatusCode).
enum class StatusCode : uint8_t {
  kOk = 0,              ///< success
  kInvalidArgument,     ///< the caller passed something malformed
  kNotFound,            ///< a named thing does not exist
  kAlreadyExists,       ///< a named thing exists and must not
  kFailedPrecondition,  ///< the system is not in a state that allows the call (e.g. init twice)
  kResourceExhausted,   ///< out of memory, store full, queue full
  kUnavailable,         ///< a peer or feature cannot be reached now
  kDeadlineExceeded,    ///< a timeout expired
  kCancelled,           ///< the work was cancelled (e.g. by shutdown)
  kInternal,            ///< an invariant broke inside weft
  kIoError,             ///< the operating system refused an I/O call
  kCorruption,          ///< data failed validation (bad file, bad message)
  kUnauthenticated,     ///< a peer did not prove who it is (no or the wrong credential)
  kPermissionDenied,    ///< the caller may not do this (e.g. a secret file others can read)
};

/// The last code, for decoders that check a code read from the wire.
inline constexpr StatusCode kLastStatusCode = StatusCode::kPermissionDenied;

/// The code's name, e.g. "invalid argument".
WEFT_API std::string_view to_string(StatusCode code);

/// The outcome of an operation: OK, or a StatusCode with a message. Cheap to copy (OK is a null
/// pointer); must not be ignored.
class [[nodiscard]] WEFT_API Status {
 public:
  /// OK.
  Status() = default;
  /// A status with this code and message (`code` kOk gives OK).
  Status(StatusCode code, std::string message);

  ///@{
  /// A status of the code the factory is named for, carrying message `m`.
  static Status ok() { return Status(); }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status deadline_exceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
  static Status permission_denied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  ///@}

  /// True for OK.
  bool is_ok() const { return rep_ == nullptr; }
  /// is_ok().
  explicit operator bool() const { return is_ok(); }
  /// kOk for OK.
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  /// Empty for OK.
  const std::string& message() const;
  /// "OK" or "<code>: <message>".
  std::string to_string() const;

  /// Same code and message.
  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

/// Writes to_string().
WEFT_API std::ostream& operator<<(std::ostream& os, const Status& s);

/// A value of type T or a non-OK Status.
template <class T>
class [[nodiscard]] Result {
 public:
  /// Holds a value (implicit, so a function returning Result<T> may `return value;`).
  Result(T value) : v_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit by design
  /// Holds an error; an OK status becomes kInternal (a Result always has a value or an error).
  Result(Status status) : v_(std::in_place_index<0>, std::move(status)) {  // NOLINT
    if (std::get<0>(v_).is_ok()) v_.template emplace<0>(StatusCode::kInternal, "Result built from an OK status");
  }

  /// True when it holds a value.
  bool ok() const { return v_.index() == 1; }
  /// ok().
  explicit operator bool() const { return ok(); }
  /// The error, or OK when it holds a value.
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<0>(v_);
  }
  ///@{
  /// The value held; only when ok() (otherwise std::bad_variant_access).
  T& value() & { return std::get<1>(v_); }
  const T& value() const& { return std::get<1>(v_); }
  T&& value() && { return std::get<1>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  ///@}

 private:
  std::variant<Status, T> v_;
};

}  // namespace weft

#define WEFT_PP_CAT_(a, b) a##b
#define WEFT_PP_CAT(a, b) WEFT_PP_CAT_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define WEFT_RETURN_IF_ERROR(expr)                   \
  do {                                               \
    ::weft::Status weft_status_ = (expr);            \
    if (!weft_status_.is_ok()) return weft_status_;  \
  } while (0)

// Declares `lhs` from a Result's value, or returns its Status from the enclosing function.
#define WEFT_ASSIGN_OR_RETURN(lhs, expr) WEFT_ASSIGN_OR_RETURN_(WEFT_PP_CAT(weft_result_, __LINE__), lhs, expr)
#define WEFT_ASSIGN_OR_RETURN_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()
