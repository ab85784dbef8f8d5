#include "kernels/cpu/packed_weights.h"

#include <cstring>

#include "core/check.h"

namespace weft::kernels::cpu {

bool can_pack_rows4(const WeightView& w) {
  return (w.type == TensorType::kQ4_1 || w.type == TensorType::kQ8_0) && w.rows % 4 == 0 && w.cols % 32 == 0;
}

size_t packed_group_bytes(const WeightView& w) { return 4 * w.row_bytes; }

std::vector<uint8_t> pack_rows4(const WeightView& w) {
  WEFT_CHECK(can_pack_rows4(w));
  const bool q41 = w.type == TensorType::kQ4_1;
  const size_t block = q41 ? 20 : 34, scales = q41 ? 2 : 1, values = block - 2 * scales;
  const int64_t blocks = w.cols / 32;
  std::vector<uint8_t> out(static_cast<size_t>(w.rows) * w.row_bytes);
  uint8_t* dst = out.data();
  for (int64_t g = 0; g < w.rows / 4; ++g) {
    for (int64_t b = 0; b < blocks; ++b) {
      for (size_t s = 0; s < scales; ++s) {
        for (int k = 0; k < 4; ++k) {
          std::memcpy(dst, w.row(4 * g + k) + b * block + 2 * s, 2);
          dst += 2;
        }
      }
      for (int k = 0; k < 4; ++k) {
        std::memcpy(dst, w.row(4 * g + k) + b * block + 2 * scales, values);
        dst += values;
      }
    }
  }
  return out;
}

}  // namespace weft::kernels::cpu
