// libFuzzer target: any byte string given to the store's message decoders yields a message or
// a Status, never a crash, hang or unbounded allocation; a decoded message re-encodes to the
// same meaning. Build and run with `scripts/fuzz store_protocol [seconds]`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "objectstore/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto q = weft::objectstore::decode_request(bytes); q.ok()) {
    auto again = weft::objectstore::decode_request(weft::objectstore::encode(*q));
    if (!again.ok() || again->type != q->type || again->object != q->object || again->size != q->size) std::abort();
  }
  if (auto r = weft::objectstore::decode_reply(bytes); r.ok()) {
    auto again = weft::objectstore::decode_reply(weft::objectstore::encode(*r));
    if (!again.ok() || again->message != r->message || again->offset != r->offset) std::abort();
  }
  return 0;
}
