#include "kernels/cpu/quantize.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/half.h"

namespace weft::kernels::cpu {
Status quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return Status::ok();
    case TensorType::kF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(src[i]);
      return Status::ok();
    }
    case TensorType::kBF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(src[i]);
      return Status::ok();
    }
    case TensorType::kQ8_0: {
      if (n % 32 != 0) return Status::invalid_argument(fmt::format("Q8_0 rows hold whole blocks of 32, not {}", n));
      auto* out = static_cast<BlockQ8_0*>(dst);
      for (int64_t b = 0; b < n / 32; ++b) {
        const float* x = src + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        out[b].d = fp32_to_fp16(d);
        for (int j = 0; j < 32; ++j) out[b].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      }
      return Status::ok();
    }
    default:
      return Status::invalid_argument(fmt::format("cannot write tensors of type {}", tensor_type_info(type).name));
  }
}

}  // namespace weft::kernels::cpu
