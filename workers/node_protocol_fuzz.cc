// libFuzzer target: any bytes given to the node-message decoder yield a message or a Status,
// never a crash or an unbounded allocation; a decoded message re-encodes to the same meaning.
// Build and run with `scripts/fuzz node_protocol [seconds]`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "workers/node_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft::workers::node;
  auto m = decode_node(std::string_view(reinterpret_cast<const char*>(data), size));
  if (m.ok()) {
    const std::string once = encode(*m);
    auto again = decode_node(once);
    if (!again.ok() || encode(*again) != once) std::abort();
  }
  return 0;
}
