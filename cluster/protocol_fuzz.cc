// libFuzzer target: any bytes given to the cluster's decoders (as the head, a node or a client
// receives them) yield a message or a Status, never a crash or an unbounded allocation; a decoded
// message re-encodes to the same meaning. Build and run with `scripts/fuzz cluster_protocol [seconds]`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cluster/protocol.h"

namespace {

template <class Variant>
void round_trip(weft::Result<Variant> (*decode)(std::string_view), std::string_view bytes) {
  auto m = decode(bytes);
  if (!m.ok()) return;
  const auto encode = [](const Variant& v) {
    return std::visit([](const auto& x) { return weft::cluster::encode(x); }, v);
  };
  const std::string once = encode(*m);
  auto again = decode(once);
  if (!again.ok() || encode(*again) != once) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft::cluster;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  round_trip<ToHead>(&decode_to_head, bytes);
  round_trip<ToNode>(&decode_to_node, bytes);
  round_trip<ToClient>(&decode_to_client, bytes);
  return 0;
}
