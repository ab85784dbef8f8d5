#include "weft/ids.h"

#include <atomic>
#include <random>

namespace weft {
namespace {

uint32_t process_prefix() {
  static const uint32_t prefix = [] {
    std::random_device rd;
    uint32_t p = rd();
    return p == 0 ? 1u : p;
  }();
  return prefix;
}

std::atomic<uint32_t> g_next_stream{1};

struct IdStream {
  uint64_t hi = (uint64_t{process_prefix()} << 32) | g_next_stream.fetch_add(1, std::memory_order_relaxed);
  uint64_t next_lo = 1;
};

}  // namespace

ObjectId ObjectId::next() {
  thread_local IdStream stream;
  return ObjectId{stream.hi, stream.next_lo++};
}

std::string ObjectId::hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kDigits[(hi >> (4 * i)) & 0xF];
    out[31 - i] = kDigits[(lo >> (4 * i)) & 0xF];
  }
  return out;
}

}  // namespace weft
