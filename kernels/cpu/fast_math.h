// Fast-mode arithmetic: activations quantized to 8-bit blocks and integer dot products, fp16
// attention, and a polynomial exp. The lane structure of every sum is fixed and documented, so
// the portable code here and the SIMD kernels give bit-identical results — and the same results
// as llama.cpp's AVX2 build (ggml), which organises these sums the same way:
//
//   quantize_q8_{0,1}: per 32 values, d = max|x| / 127, q = round_half_even(x * (127 / max|x|)),
//                      Q8_1 also stores s = d * sum(q); d and s as fp16.
//   dot_*_q8_*:        8 float lanes; lane l of a block is the exact integer sum of the products
//                      of elements 4l..4l+3 (low nibbles/first half first); per block
//                      lane = fma(d_w * d_x, lane_sum, lane); Q4_1 adds sum(m_w * s_x), accumulated
//                      with fma block by block, at the end.
//   dot_f16:           4 accumulators x 8 lanes; element i goes to accumulator (i % 32) / 8,
//                      lane i % 8, by fma in index order; accumulators 0+2, 1+3, then 0+1.
//   hsum8:             ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)).
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::kernels::cpu {

struct BlockQ8_0 {
  uint16_t d;  // fp16
  int8_t qs[32];
};
struct BlockQ8_1 {
  uint16_t d;  // fp16
  uint16_t s;  // fp16: d * sum(qs)
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out);
void quantize_q8_1(const float* x, int64_t n, BlockQ8_1* out);

// Dot products of one weight row (GGUF block layout) with a quantized activation row of n values.
float dot_q4_0_q8_0(const uint8_t* w, const BlockQ8_0* x, int64_t n);
float dot_q4_1_q8_1(const uint8_t* w, const BlockQ8_1* x, int64_t n);
float dot_q8_0_q8_0(const uint8_t* w, const BlockQ8_0* x, int64_t n);
// fp16 vectors; elements past n count as zero (n need not be a multiple of 32).
float dot_f16(const uint16_t* a, const uint16_t* b, int64_t n);
// dot_f16's sum over bfloat16 vectors (each value widened to fp32 exactly).
float dot_bf16(const uint16_t* a, const uint16_t* b, int64_t n);
// The same product organised as llama.cpp's matrix-matrix kernel (tinyBLAS) does when several
// tokens are evaluated together: one accumulator, element i in lane i % 8, then hsum8.
float dot_f16_8lane(const uint16_t* a, const uint16_t* b, int64_t n);

// ggml's vectorised exp approximation (relative error ~1.5 ulp), exact lane by lane.
float exp_approx(float x);
// y[i] = exp_approx(x[i] - max) for i < n; returns their sum, accumulated in chunks of 8 (float
// hsum8 per chunk, chunks summed in double).
double softmax_exp(const float* x, float max, float* y, int64_t n);
// silu(g) * u with silu(x) = x / (1 + exp_approx(-x)).
void swiglu(const float* g, const float* u, float* out, int64_t n);

}  // namespace weft::kernels::cpu
