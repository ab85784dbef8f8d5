#include "kernels/cpu/fast_math.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/half.h"

namespace weft::kernels::cpu {
namespace {

float block_max_abs(const float* x) {
  // max is exact and order-independent, so a plain loop equals the SIMD reduction.
  float m = 0.0f;
  for (int j = 0; j < 32; ++j) m = std::fmax(m, std::fabs(x[j]));
  return m;
}

// Rounds to nearest, ties to even (the SSE/AVX rounding mode), independent of the FP environment.
float round_even(float v) {
  float r = std::round(v);  // ties away from zero
  if (std::fabs(v - std::trunc(v)) == 0.5f) r = 2.0f * std::round(v * 0.5f);
  return r;
}

float hsum8(const float* l) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); }

float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// Quantizes one block of 32 to int8 in `qs`; returns the scale d (as float, before fp16 rounding).
float quantize_block(const float* x, int8_t* qs) {
  const float max = block_max_abs(x);
  const float id = max != 0.0f ? 127.0f / max : 0.0f;
  for (int j = 0; j < 32; ++j) qs[j] = static_cast<int8_t>(round_even(x[j] * id));
  return max / 127.0f;
}

}  // namespace

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32) out[b].d = fp32_to_fp16(quantize_block(x, out[b].qs));
}

void quantize_q8_1(const float* x, int64_t n, BlockQ8_1* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    const float d = quantize_block(x, out[b].qs);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += out[b].qs[j];
    out[b].d = fp32_to_fp16(d);
    out[b].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

float dot_q4_0_q8_0(const uint8_t* w, const BlockQ8_0* x, int64_t n) {
  float acc[8] = {};
  for (int64_t b = 0; b < n / 32; ++b, w += 18) {
    const float d = load_half(w) * fp16_to_fp32(x[b].d);
    const uint8_t* qs = w + 2;
    for (int l = 0; l < 8; ++l) {
      int sum = 0;
      for (int k = 0; k < 4; ++k) {
        const int e = 4 * l + k;  // element of the block
        const int q = (e < 16 ? (qs[e] & 0xF) : (qs[e - 16] >> 4)) - 8;
        sum += q * x[b].qs[e];
      }
      acc[l] = std::fma(d, static_cast<float>(sum), acc[l]);
    }
  }
  return hsum8(acc);
}

float dot_q4_1_q8_1(const uint8_t* w, const BlockQ8_1* x, int64_t n) {
  float acc[8] = {};
  float summs = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b, w += 20) {
    const float d = load_half(w) * fp16_to_fp32(x[b].d);
    summs = std::fma(load_half(w + 2), fp16_to_fp32(x[b].s), summs);  // fused, as compiled in ggml
    const uint8_t* qs = w + 4;
    for (int l = 0; l < 8; ++l) {
      int sum = 0;
      for (int k = 0; k < 4; ++k) {
        const int e = 4 * l + k;
        const int q = e < 16 ? (qs[e] & 0xF) : (qs[e - 16] >> 4);
        sum += q * x[b].qs[e];
      }
      acc[l] = std::fma(d, static_cast<float>(sum), acc[l]);
    }
  }
  return hsum8(acc) + summs;
}

float dot_q8_0_q8_0(const uint8_t* w, const BlockQ8_0* x, int64_t n) {
  float acc[8] = {};
  for (int64_t b = 0; b < n / 32; ++b, w += 34) {
    const float d = load_half(w) * fp16_to_fp32(x[b].d);
    const auto* qs = reinterpret_cast<const int8_t*>(w + 2);
    for (int l = 0; l < 8; ++l) {
      int sum = 0;
      for (int k = 0; k < 4; ++k) sum += qs[4 * l + k] * x[b].qs[4 * l + k];
      acc[l] = std::fma(d, static_cast<float>(sum), acc[l]);
    }
  }
  return hsum8(acc);
}

namespace {

template <float (*Widen)(uint16_t)>
float dot_16bit(const uint16_t* a, const uint16_t* b, int64_t n) {
  float acc[4][8] = {};
  for (int64_t i = 0; i < n; ++i) {
    float& lane = acc[(i % 32) / 8][i % 8];
    lane = std::fma(Widen(a[i]), Widen(b[i]), lane);
  }
  for (int l = 0; l < 8; ++l) {
    acc[0][l] += acc[2][l];
    acc[1][l] += acc[3][l];
  }
  for (int l = 0; l < 8; ++l) acc[0][l] += acc[1][l];
  // _mm_hadd_ps twice over (l0+l4, l1+l5, l2+l6, l3+l7).
  const float t0 = acc[0][0] + acc[0][4], t1 = acc[0][1] + acc[0][5], t2 = acc[0][2] + acc[0][6],
              t3 = acc[0][3] + acc[0][7];
  return (t0 + t1) + (t2 + t3);
}

}  // namespace

float dot_f16(const uint16_t* a, const uint16_t* b, int64_t n) { return dot_16bit<fp16_to_fp32>(a, b, n); }
float dot_bf16(const uint16_t* a, const uint16_t* b, int64_t n) { return dot_16bit<bf16_to_fp32>(a, b, n); }

float dot_f16_8lane(const uint16_t* a, const uint16_t* b, int64_t n) {
  float acc[8] = {};
  for (int64_t i = 0; i < n; ++i) acc[i % 8] = std::fma(fp16_to_fp32(a[i]), fp16_to_fp32(b[i]), acc[i % 8]);
  return hsum8(acc);
}

float exp_approx(float x) {
  // Cody-Waite reduction x = n ln2 + b, then a degree-5 polynomial for exp(b) - 1, scaled by 2^n.
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  uint32_t zi;
  std::memcpy(&zi, &z, 4);
  const uint32_t e = zi << 23;
  const uint32_t one = 0x3F800000u;
  float k;
  const uint32_t ki = e + one;
  std::memcpy(&k, &ki, 4);
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  if (!(std::fabs(n) > 126.0f)) return std::fma(j, k, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  float s1, s2;
  const uint32_t s1i = g + 0x7f000000u, s2i = e - g;
  std::memcpy(&s1, &s1i, 4);
  std::memcpy(&s2, &s2i, 4);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
}

double softmax_exp(const float* x, float max, float* y, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i += 8) {
    float chunk[8] = {};
    for (int64_t k = 0; k < 8 && i + k < n; ++k) y[i + k] = chunk[k] = exp_approx(x[i + k] - max);
    sum += static_cast<double>(hsum8(chunk));
  }
  return sum;
}

void swiglu(const float* g, const float* u, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] / (1.0f + exp_approx(0.0f - g[i])) * u[i];
}

}  // namespace weft::kernels::cpu
