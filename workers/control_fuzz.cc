// libFuzzer target: any bytes given to the control-message decoder yield a message or a Status,
// never a crash or an unbounded allocation; a decoded message re-encodes to the same bytes' meaning.
// Build and run with `scripts/fuzz control [seconds]`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "workers/control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = weft::workers::decode_control(std::string_view(reinterpret_cast<const char*>(data), size));
  if (m.ok()) {
    const std::string once = weft::workers::encode(*m);
    auto again = weft::workers::decode_control(once);
    if (!again.ok() || weft::workers::encode(*again) != once) std::abort();
  }
  return 0;
}
