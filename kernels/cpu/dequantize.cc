#include "kernels/cpu/dequantize.h"

#include <cstring>

#include <fmt/format.h>

#include "kernels/cpu/half.h"
#include "kernels/cpu/kquant_layout.h"

namespace weft::kernels::cpu {
namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float load_half(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }

void dequant_q4_0(const uint8_t* b, float* y) {  // d, qs[16]
  const float d = load_half(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void dequant_q4_1(const uint8_t* b, float* y) {  // d, m, qs[16]
  const float d = load_half(b);
  const float m = load_half(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0xF) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void dequant_q8_0(const uint8_t* b, float* y) {  // d, qs[32]
  const float d = load_half(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// Scales and mins of the two 32-value sub-blocks of group g (64 values) of a Q4_K/Q5_K block.
void group_scales(int g, const uint8_t* scales, float d, float dmin, float* d1, float* m1, float* d2, float* m2) {
  uint8_t sc, m;
  scale_min_k4(2 * g, scales, &sc, &m);
  *d1 = d * sc;
  *m1 = dmin * m;
  scale_min_k4(2 * g + 1, scales, &sc, &m);
  *d2 = d * sc;
  *m2 = dmin * m;
}

void dequant_q4_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qs[128]
  const float d = load_half(b);
  const float dmin = load_half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int g = 0; g < 4; ++g) {
    float d1, m1, d2, m2;
    group_scales(g, scales, d, dmin, &d1, &m1, &d2, &m2);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
  }
}

void dequant_q5_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qh[32], qs[128]
  const float d = load_half(b);
  const float dmin = load_half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int g = 0; g < 4; ++g) {
    float d1, m1, d2, m2;
    group_scales(g, scales, d, dmin, &d1, &m1, &d2, &m2);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

void dequant_q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], scales[16] (int8), d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_half(b + 208);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0] * q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2] * q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4] * q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6] * q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

Status dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  const TensorTypeInfo& info = tensor_type_info(type);
  if (n < 0 || n % info.block_elems != 0) {
    return Status::invalid_argument(fmt::format("{} values are not whole {} blocks", n, info.name));
  }
  const auto* s = static_cast<const uint8_t*>(src);
  const int64_t blocks = n / info.block_elems;
  void (*block_fn)(const uint8_t*, float*) = nullptr;
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return Status::ok();
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_half(s + 2 * i);
      return Status::ok();
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(s + 2 * i));
      return Status::ok();
    case TensorType::kQ4_0: block_fn = dequant_q4_0; break;
    case TensorType::kQ4_1: block_fn = dequant_q4_1; break;
    case TensorType::kQ8_0: block_fn = dequant_q8_0; break;
    case TensorType::kQ4_K: block_fn = dequant_q4_k; break;
    case TensorType::kQ5_K: block_fn = dequant_q5_k; break;
    case TensorType::kQ6_K: block_fn = dequant_q6_k; break;
    default:
      return Status::invalid_argument(fmt::format("tensor type {} is not supported", info.name));
  }
  for (int64_t b = 0; b < blocks; ++b) block_fn(s + b * info.block_bytes, dst + b * info.block_elems);
  return Status::ok();
}

}  // namespace weft::kernels::cpu
