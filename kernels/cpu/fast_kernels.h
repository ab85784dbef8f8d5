// The fast-mode kernels as a table of functions, one table per instruction set.
//
// Every entry computes exactly what the portable functions of fast_math.h specify, bit for bit:
// the SIMD tables only change how the work is laid out in registers, never the order of a
// floating-point sum (fast_kernels_test.cc holds each table to that). Integer sums are exact, so
// they may use any instructions (AVX2 maddubs/madd, AVX-512 VNNI dpbusd).
//
//   const FastKernels& k = fast_kernels();          // the best table for this CPU
//   k.dot_rows_q4_1(w.data, w.row_bytes, rows, xq, cols, y);
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/kquant_math.h"

namespace weft::kernels::cpu {

struct FastKernels {
  Isa isa;
  void (*quantize_q8_0)(const float* x, int64_t n, BlockQ8_0* out);
  void (*quantize_q8_1)(const float* x, int64_t n, BlockQ8_1* out);
  // y[r] = dot(weight row r, x) for r < rows; weight rows start `row_bytes` apart; n values each.
  void (*dot_rows_q4_0)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_0* x, int64_t n, float* y);
  void (*dot_rows_q4_1)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_1* x, int64_t n, float* y);
  void (*dot_rows_q8_0)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_0* x, int64_t n, float* y);
  // dot_f16 and dot_f16_8lane of fast_math.h.
  float (*dot_f16)(const uint16_t* a, const uint16_t* b, int64_t n);
  float (*dot_f16_8lane)(const uint16_t* a, const uint16_t* b, int64_t n);
  // out[d] = dot over j < n of (v[j][d], p[j]) for d < dim, each sum organised as dot_f16
  // (lanes8 false) or dot_f16_8lane (lanes8 true) over the column v[0..n)[d]: attention's
  // probability-weighted sum of value rows.
  void (*weighted_sum_f16)(const uint16_t* const* v, const uint16_t* p, int n, int dim, bool lanes8, float* out);
  // Attention scores of h query heads (q16: h rows of dim fp16 values) against n key rows:
  // out[k * n + j] = dot(keys[j], query k) * scale, each dot organised as dot_f16 (lanes8 false)
  // or dot_f16_8lane (lanes8 true). The heads of a grouped-query attention group share their
  // keys, so each key row is converted once for all of them.
  void (*scores_f16)(const uint16_t* const* keys, const uint16_t* q16, int h, int n, int dim, float scale, bool lanes8,
                     float* out);
  // out[i] = fp16(x[i] * s), rounded to nearest even (half.h's fp32_to_fp16, NaN included).
  void (*scale_to_f16)(const float* x, float s, int64_t n, uint16_t* out);
  // The same products over weights packed by pack_rows4 (packed_weights.h): y[4g + k] for row k
  // of group g < groups. Null in tables without packed kernels.
  void (*dot_packed4_q4_1)(const uint8_t* packed, int64_t groups, const BlockQ8_1* x, int64_t n, float* y);
  void (*dot_packed4_q8_0)(const uint8_t* packed, int64_t groups, const BlockQ8_0* x, int64_t n, float* y);
  // Those products for m activation rows at once: row t of x starts t * ldx blocks after x, its
  // outputs at y + t * ldy; `scales` holds x's block scales widened to float (activation_scales),
  // laid out as x. Every output is the bits dot_packed4_* gives for that row alone; the kernel
  // loads each weight block once for several rows (register tiling over tokens). Null in tables
  // without them (the caller then loops over rows).
  void (*matmul_packed4_q4_1)(const uint8_t* packed, int64_t groups, const BlockQ8_1* x, const float* scales,
                              int64_t ldx, int64_t m, int64_t n, float* y, int64_t ldy);
  void (*matmul_packed4_q8_0)(const uint8_t* packed, int64_t groups, const BlockQ8_0* x, const float* scales,
                              int64_t ldx, int64_t m, int64_t n, float* y, int64_t ldy);
  // The instruction set's integer-dot primitive (u8 x s8 products summed into int32 lanes) run
  // back to back on independent registers for `iterations` rounds; returns the multiply-adds
  // done (the result feeds `sink` so nothing is optimised away). Benchmarks time it for the
  // machine's compute bound.
  int64_t (*int8_dot_probe)(int64_t iterations, int32_t* sink);
  // softmax_exp and swiglu of fast_math.h.
  double (*softmax_exp)(const float* x, float max, float* y, int64_t n);
  void (*swiglu)(const float* g, const float* u, float* out, int64_t n);
  // Float weights (F16, BF16): activations rounded to the weights' type (scale_to_f16 with s = 1,
  // or round_to_bf16), then y[t * ldy + r] = dot_f16 / dot_bf16 (fast_math.h) of weight row r and
  // activation row t (at x + t * ldx values), for r < rows and t < m; n values each.
  void (*round_to_bf16)(const float* x, int64_t n, uint16_t* out);
  void (*matmul_rows_f16)(const uint8_t* w, size_t row_bytes, int64_t rows, const uint16_t* x, int64_t ldx, int64_t m,
                          int64_t n, float* y, int64_t ldy);
  void (*matmul_rows_bf16)(const uint8_t* w, size_t row_bytes, int64_t rows, const uint16_t* x, int64_t ldx, int64_t m,
                           int64_t n, float* y, int64_t ldy);
  // K-quants (kquant_math.h): Q8_K activations, rows as dot_rows_* above.
  void (*quantize_q8_k)(const float* x, int64_t n, BlockQ8_K* out);
  void (*dot_rows_q4_k)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* x, int64_t n, float* y);
  void (*dot_rows_q5_k)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* x, int64_t n, float* y);
  void (*dot_rows_q6_k)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* x, int64_t n, float* y);
  // Those products for m activation rows at once (row t of x at x + t * ldx blocks, its outputs
  // at y + t * ldy), each weight block unpacked once for several of them; the bits dot_rows_*
  // gives each row alone. Null in tables without them.
  void (*matmul_rows_q4_k)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* x, int64_t ldx, int64_t m,
                           int64_t n, float* y, int64_t ldy);
  void (*matmul_rows_q5_k)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* x, int64_t ldx, int64_t m,
                           int64_t n, float* y, int64_t ldy);
  void (*matmul_rows_q6_k)(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* x, int64_t ldx, int64_t m,
                           int64_t n, float* y, int64_t ldy);
};

// The block scales of `blocks` activation blocks widened to float, as the multi-token kernels read
// them: d per block for Q8_0, (d, s) per block for Q8_1.
void activation_scales(const BlockQ8_0* x, int64_t blocks, float* out);
void activation_scales(const BlockQ8_1* x, int64_t blocks, float* out);

// The table for `isa`, which must be supported (isa_supported); fast_kernels() is best_isa()'s.
const FastKernels& fast_kernels(Isa isa);
const FastKernels& fast_kernels();

namespace detail {
// Per-ISA tables, defined in fast_kernels_*.cc (the x86 ones only where the compiler has them).
extern const FastKernels kPortableKernels;
extern const FastKernels kAvx2Kernels;
extern const FastKernels kAvx512Kernels;
}  // namespace detail

}  // namespace weft::kernels::cpu
