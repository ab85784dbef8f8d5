// Block layouts of ggml's K-quants (ggml-common.h), shared by dequantization and dot products.
//   Q4_K (144 bytes / 256 values): d fp16, dmin fp16, scales[12] (6-bit scale and min of each of
//        8 sub-blocks of 32), qs[128] (4-bit: per 64 values, low nibbles then high nibbles)
//   Q5_K (176 bytes): d, dmin, scales[12], qh[32] (the fifth bits), qs[128]
//   Q6_K (210 bytes): ql[128], qh[64], scales[16] (int8, per 16 values), d fp16
#pragma once

#include <cstdint>

namespace weft::kernels::cpu {

inline constexpr int kQ4KBytes = 144, kQ5KBytes = 176, kQ6KBytes = 210;

// The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Sum over the 8 sub-blocks of a Q4_K/Q5_K block of min_j x (the sum of its 32 activations),
// from the activations' sums of 16 (Q8_K bsums).
inline int k4_mins_sum(const uint8_t* scales, const int16_t* bsums) {
  int msum = 0;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, scales, &sc, &m);
    msum += m * (bsums[2 * j] + bsums[2 * j + 1]);
  }
  return msum;
}

}  // namespace weft::kernels::cpu
