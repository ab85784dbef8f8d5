// Fast-mode arithmetic for K-quant weights (Q4_K, Q5_K, Q6_K): activations quantized to Q8_K
// (256 values, a float scale, int8 values, sums of each 16) and exact integer sums per block.
// This is the specification; the SIMD tables reproduce it bit for bit:
//
//   quantize_q8_k: per 256 values, m = the value of largest magnitude (the first on a tie),
//                  q = min(127, round_half_even(x * (-127 / m))), d = 1 / (-127 / m) (as ggml).
//   dot_q*_k_q8_k: per block, the exact integer sum over sub-blocks of scale x (q . y) — Q4_K and
//                  Q5_K also the exact sum of min x (sum of y) over sub-blocks, Q6_K taking
//                  32 x scale x (sum of y) back out for its offset — then one float chain per
//                  row: sum = fma(d_w * d_y, float(isum), sum) block by block (and likewise for the
//                  mins with dmin_w * d_y); the result is sum - mins.
#pragma once

#include <cstdint>

namespace weft::kernels::cpu {

struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];  // sums of each 16 values of qs
};

void quantize_q8_k(const float* x, int64_t n, BlockQ8_K* out);

// One weight row (GGUF block layout, kquant_layout.h) against a Q8_K activation row of n values.
float dot_q4_k_q8_k(const uint8_t* w, const BlockQ8_K* x, int64_t n);
float dot_q5_k_q8_k(const uint8_t* w, const BlockQ8_K* x, int64_t n);
float dot_q6_k_q8_k(const uint8_t* w, const BlockQ8_K* x, int64_t n);

}  // namespace weft::kernels::cpu
