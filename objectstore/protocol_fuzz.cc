// libFuzzer target: any byte string given to the store's message decoders yields a message or
// a Status, never a crash, hang or unbounded allocation; a decoded message re-encodes to bytes
// that decode to the same message. Build and run with `scripts/fuzz store_protocol [seconds]`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "objectstore/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto q = weft::objectstore::decode_request(bytes); q.ok()) {
    const std::string once = weft::objectstore::encode(*q);
    auto again = weft::objectstore::decode_request(once);
    if (!again.ok() || weft::objectstore::encode(*again) != once) std::abort();
  }
  if (auto r = weft::objectstore::decode_reply(bytes); r.ok()) {
    const std::string once = weft::objectstore::encode(*r);
    auto again = weft::objectstore::decode_reply(once);
    if (!again.ok() || weft::objectstore::encode(*again) != once) std::abort();
  }
  return 0;
}
