#include "workers/control.h"

#include <unistd.h>

namespace weft::workers {

std::string encode(const ControlMessage& m) {
  return std::visit([](const auto& msg) { return wire::encode(kControl, msg); }, m);
}

Result<ControlMessage> decode_control(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(wire::Envelope e, wire::open(kControl, bytes));
  return wire::body_of<ControlMessage>(kControl, e);
}

uint64_t largest_payload() {
  static const uint64_t bytes =
      static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return bytes;
}

Failure to_failure(const ErrorInfo& e) { return Failure{static_cast<uint8_t>(e.kind), e.exception_type, e.message}; }

ErrorInfo from_failure(const std::string& task_name, const Failure& f) {
  ErrorKind kind = ErrorKind::kRemote;
  switch (f.kind) {
    case static_cast<uint8_t>(ErrorKind::kRaised):
    case static_cast<uint8_t>(ErrorKind::kCancelled):
    case static_cast<uint8_t>(ErrorKind::kWorkerDied):
    case static_cast<uint8_t>(ErrorKind::kRemote):
    case static_cast<uint8_t>(ErrorKind::kObjectLost):
    case static_cast<uint8_t>(ErrorKind::kOwnerDied):
      kind = static_cast<ErrorKind>(f.kind);
  }
  return ErrorInfo{task_name, f.message, f.type, kind};
}

}  // namespace weft::workers
