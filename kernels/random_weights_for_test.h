// Random weight rows of any supported tensor type, for tests and benchmarks: quantized blocks get
// random quants and small positive scales (so values stay in a realistic range), float types
// normal values. Speed does not depend on the values; correctness tests compare backends on them.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

#include "kernels/cpu/half.h"
#include "kernels/tensor_type.h"

namespace weft::kernels::testing {

inline std::string random_rows(TensorType type, int64_t rows, int64_t cols, std::mt19937& rng, float scale = 0.05f) {
  const TensorTypeInfo& info = tensor_type_info(type);
  const int64_t blocks = rows * cols / info.block_elems;
  std::string out(static_cast<size_t>(blocks * info.block_bytes), '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, scale);
  std::uniform_real_distribution<float> unit(0.5f, 1.0f);
  auto half = [&](uint8_t* at, float v) {
    const uint16_t h = cpu::fp32_to_fp16(v);
    std::memcpy(at, &h, 2);
  };
  switch (type) {
    case TensorType::kF32:
      for (int64_t i = 0; i < blocks; ++i) {
        const float v = normal(rng);
        std::memcpy(p + 4 * i, &v, 4);
      }
      return out;
    case TensorType::kF16:
      for (int64_t i = 0; i < blocks; ++i) half(p + 2 * i, normal(rng));
      return out;
    case TensorType::kBF16:
      for (int64_t i = 0; i < blocks; ++i) {
        const uint16_t h = cpu::fp32_to_bf16(normal(rng));
        std::memcpy(p + 2 * i, &h, 2);
      }
      return out;
    default:
      break;
  }
  for (auto& c : out) c = static_cast<char>(byte(rng));
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* blk = p + b * info.block_bytes;
    const float d = scale * unit(rng);
    switch (type) {
      case TensorType::kQ4_0:
        half(blk, d / 4);
        break;
      case TensorType::kQ4_1:
        half(blk, d / 4);
        half(blk + 2, -2 * d);
        break;
      case TensorType::kQ8_0:
        half(blk, d / 64);
        break;
      case TensorType::kQ4_K:
      case TensorType::kQ5_K:
        half(blk, d / 64);
        half(blk + 2, d / 64);
        break;
      case TensorType::kQ6_K:
        half(blk + 208, d / 512);
        break;
      default:
        break;
    }
  }
  return out;
}

}  // namespace weft::kernels::testing
