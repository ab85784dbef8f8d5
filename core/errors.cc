#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>
#include <unordered_map>

#include "weft/detail/hooks.h"
#include "weft/errors.h"

namespace weft {
namespace {

std::string format_task_error(const ErrorInfo& e) {
  if (e.kind == ErrorKind::kCancelled) return "task '" + e.task_name + "' was cancelled: " + e.message;
  return "task '" + e.task_name + "' failed: " + e.message + " (" + e.exception_type + ")";
}

}  // namespace

TaskError::TaskError(std::shared_ptr<const ErrorInfo> info) : Error(format_task_error(*info)), info_(std::move(info)) {}

namespace {
// Exception types registered with WEFT_EXCEPTION, by demangled name (what ErrorInfo carries).
struct ExceptionTypes {
  std::mutex mu;
  std::unordered_map<std::string, detail::ExceptionThrower> by_name;
};
ExceptionTypes& exception_types() {
  static ExceptionTypes* types = new ExceptionTypes();  // used during static initialisation
  return *types;
}
}  // namespace

namespace detail {
bool register_exception(const std::type_info& type, ExceptionThrower thrower) noexcept {
  try {
    ExceptionTypes& t = exception_types();
    std::lock_guard<std::mutex> lock(t.mu);
    t.by_name[demangle(type.name())] = thrower;
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace detail

void throw_task_error(std::shared_ptr<const ErrorInfo> info) {
  if (info->kind == ErrorKind::kRaised) {
    detail::ExceptionThrower thrower = nullptr;
    {
      ExceptionTypes& t = exception_types();
      std::lock_guard<std::mutex> lock(t.mu);
      if (auto it = t.by_name.find(info->exception_type); it != t.by_name.end()) thrower = it->second;
    }
    if (thrower != nullptr) thrower(info);  // does not return
  }
  switch (info->kind) {
    case ErrorKind::kCancelled:
      throw TaskCancelled(std::move(info));
    case ErrorKind::kWorkerDied:
      throw WorkerDied(std::move(info));
    case ErrorKind::kRemote:
      throw RemoteError(std::move(info));
    case ErrorKind::kObjectLost:
      throw ObjectLost(std::move(info));
    case ErrorKind::kOwnerDied:
      throw OwnerDied(std::move(info));
    case ErrorKind::kRaised:
      break;
  }
  throw TaskError(std::move(info));
}

namespace detail {

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

ErrorPtr error_from_current_exception(const std::string& task_name) {
  try {
    throw;
  } catch (const TaskError& e) {
    return e.info();  // a failure from further up the graph keeps its original cause
  } catch (const std::exception& e) {
    // A registered exception type raised again by get carries the original failure nested.
    if (const auto* nested = dynamic_cast<const std::nested_exception*>(&e); nested && nested->nested_ptr()) {
      try {
        nested->rethrow_nested();
      } catch (const TaskError& original) {
        return original.info();
      } catch (...) {
      }
    }
    return std::make_shared<ErrorInfo>(ErrorInfo{task_name, e.what(), demangle(typeid(e).name())});
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    return std::make_shared<ErrorInfo>(
        ErrorInfo{task_name, "non-standard exception", t ? demangle(t->name()) : std::string("unknown")});
  }
}

ErrorPtr cancelled_error(const std::string& task_name) {
  return std::make_shared<ErrorInfo>(
      ErrorInfo{task_name, "the runtime shut down before it ran", "cancelled", ErrorKind::kCancelled});
}

}  // namespace detail
}  // namespace weft
