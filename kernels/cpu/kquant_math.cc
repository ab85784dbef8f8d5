#include "kernels/cpu/kquant_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/half.h"
#include "kernels/cpu/kquant_layout.h"

namespace weft::kernels::cpu {
namespace {

float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// Round half to even, whatever the floating-point environment.
int round_even(float v) {
  float r = std::round(v);
  if (std::fabs(v - std::trunc(v)) == 0.5f) r = 2.0f * std::round(v * 0.5f);
  return static_cast<int>(r);
}

}  // namespace

void quantize_q8_k(const float* x, int64_t n, BlockQ8_K* out) {
  for (int64_t b = 0; b < n / 256; ++b, x += 256) {
    BlockQ8_K& y = out[b];
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; ++j) y.qs[j] = static_cast<int8_t>(std::min(127, round_even(iscale * x[j])));
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += y.qs[16 * j + k];
      y.bsums[j] = static_cast<int16_t>(sum);
    }
    y.d = 1.0f / iscale;
  }
}

namespace {

// Q4_K and Q5_K: 4-bit values, plus a fifth bit from qh for Q5_K.
template <int kBlockBytes, bool kFifthBit>
float dot_q45_k(const uint8_t* w, const BlockQ8_K* x, int64_t n) {
  float sum = 0.0f, mins = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b, w += kBlockBytes) {
    const uint8_t* scales = w + 4;
    const uint8_t* qh = w + 16;
    const uint8_t* q = w + (kFifthBit ? 48 : 16);
    const int8_t* y = x[b].qs;
    int isum = 0;
    for (int g = 0; g < 4; ++g, q += 32, y += 64) {
      uint8_t sc_lo, sc_hi, m;
      scale_min_k4(2 * g, scales, &sc_lo, &m);
      scale_min_k4(2 * g + 1, scales, &sc_hi, &m);
      int lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        const int high_lo = kFifthBit ? ((qh[l] >> (2 * g)) & 1) << 4 : 0;
        const int high_hi = kFifthBit ? ((qh[l] >> (2 * g + 1)) & 1) << 4 : 0;
        lo += ((q[l] & 0xF) | high_lo) * y[l];
        hi += ((q[l] >> 4) | high_hi) * y[32 + l];
      }
      isum += sc_lo * lo + sc_hi * hi;
    }
    sum = std::fma(load_half(w) * x[b].d, static_cast<float>(isum), sum);
    mins = std::fma(load_half(w + 2) * x[b].d, static_cast<float>(k4_mins_sum(scales, x[b].bsums)), mins);
  }
  return sum - mins;
}

}  // namespace

float dot_q4_k_q8_k(const uint8_t* w, const BlockQ8_K* x, int64_t n) { return dot_q45_k<kQ4KBytes, false>(w, x, n); }
float dot_q5_k_q8_k(const uint8_t* w, const BlockQ8_K* x, int64_t n) { return dot_q45_k<kQ5KBytes, true>(w, x, n); }

float dot_q6_k_q8_k(const uint8_t* w, const BlockQ8_K* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b, w += kQ6KBytes) {
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    int isum = 0;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w + 64 * h;
      const uint8_t* qh = w + 128 + 32 * h;
      const int8_t* y = x[b].qs + 128 * h;
      for (int k = 0; k < 4; ++k) {
        int part[2] = {0, 0};
        for (int l = 0; l < 32; ++l) {
          // Quarters 0..3: low nibbles of ql[0..32), of ql[32..64), then the high nibbles.
          const uint8_t low = ql[l + 32 * (k % 2)];
          const int nib = k < 2 ? (low & 0xF) : (low >> 4);
          const int q = nib | (((qh[l] >> (2 * k)) & 3) << 4);
          part[l / 16] += q * y[32 * k + l];
        }
        isum += sc[8 * h + 2 * k] * part[0] + sc[8 * h + 2 * k + 1] * part[1];
      }
    }
    int offset = 0;
    for (int j = 0; j < 16; ++j) offset += sc[j] * x[b].bsums[j];
    isum -= 32 * offset;
    sum = std::fma(load_half(w + 208) * x[b].d, static_cast<float>(isum), sum);
  }
  return sum;
}

}  // namespace weft::kernels::cpu
