// Matrix products of the forward pass on the CPU: y[i][r] = dot(W row r, x[i]) for m activation
// rows x[i], split across a team of threads (weft::ParallelFor) by output rows.
//
//   QuantizedRows in(ctx);
//   in.set(xn.data(), n, d);                 // quantized on first use, once per block format
//   matmul(wq, in, q.data(), ctx);           // wq, wk and wv share one quantization of xn
//   matmul(wk, in, k.data(), ctx);
//
// Fast mode (fast_math.h, kquant_math.h) quantizes activations to Q8_1 for Q4_1 weights, to Q8_0
// for Q4_0 and Q8_0 weights and to Q8_K for Q4_K, Q5_K and Q6_K, and takes integer dot products;
// for F16 and BF16 weights it rounds them to the weights' type and takes dot_f16-shaped float sums.
// F32 weights, and reference mode, use float32 rows with double accumulation. Results do not depend
// on the thread count, the instruction set or how many rows are multiplied at once. Not
// thread-safe: one QuantizedRows per caller.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kernels/cpu/fast_kernels.h"
#include "kernels/cpu/thread_team.h"
#include "kernels/weight_view.h"
#include "weft/status.h"

namespace weft::kernels::cpu {

struct MatmulContext {
  weft::ParallelFor* team = nullptr;                // null: the calling thread alone
  const FastKernels* kernels = &fast_kernels();     // the instruction set's table
  bool fast = true;                                 // false: reference arithmetic
};

// Whether fast mode has integer kernels for weights of type t.
bool has_fast_matmul(TensorType t);

// Whether the kernels `k` read `w` faster from a packed copy (packed_weights.h): pack it once
// with pack_rows4 and point w.packed at the copy.
bool uses_packed_weights(const FastKernels& k, const WeightView& w);

// Activation rows, with their 8-bit block quantizations made on demand and kept until set().
class QuantizedRows {
 public:
  // `x` ([m][cols] floats) must stay alive and unchanged until the next set().
  void set(const float* x, int64_t m, int64_t cols);
  const float* data() const { return x_; }
  int64_t rows() const { return m_; }
  int64_t cols() const { return cols_; }
  const BlockQ8_0* q8_0(const MatmulContext& ctx);
  const BlockQ8_1* q8_1(const MatmulContext& ctx);
  const BlockQ8_K* q8_k(const MatmulContext& ctx);
  // The Q8_0 / Q8_1 blocks' scales as float (activation_scales in fast_kernels.h).
  const float* q8_0_scales(const MatmulContext& ctx);
  const float* q8_1_scales(const MatmulContext& ctx);
  const uint16_t* f16(const MatmulContext& ctx);   // rows rounded to fp16
  const uint16_t* bf16(const MatmulContext& ctx);  // rows rounded to bfloat16

 private:
  template <class Block>
  const Block* quantized(std::vector<Block>& out, bool& have, int64_t block_elems,
                         void (*quantize)(const float*, int64_t, Block*), const MatmulContext& ctx);

  const float* x_ = nullptr;
  int64_t m_ = 0, cols_ = 0;
  std::vector<BlockQ8_0> q8_0_;
  std::vector<BlockQ8_1> q8_1_;
  std::vector<BlockQ8_K> q8_k_;
  std::vector<uint16_t> f16_, bf16_;
  std::vector<float> q8_0_scales_, q8_1_scales_;
  bool have_q8_0_ = false, have_q8_1_ = false, have_q8_k_ = false, have_f16_ = false, have_bf16_ = false;
};

// y is [x.rows()][w.rows]. kInvalidArgument when x.cols() != w.cols, or when fast mode meets a
// row that is not whole 32-value blocks.
Status matmul(const WeightView& w, QuantizedRows& x, float* y, const MatmulContext& ctx);

// One matrix of a fused product and where its outputs go ([rows of x][w->rows]).
struct MatmulTarget {
  const WeightView* w;
  float* y;
};

// Several matrices times the same activation rows (q, k and v; gate and up) as one parallel loop
// over all their rows: one fork-join instead of one per matrix, the same results as a matmul
// each. Matrices that cannot share a loop (different types, row counts not a multiple of four,
// one packed and one not) are multiplied one after another.
Status matmul_fused(std::initializer_list<MatmulTarget> targets, QuantizedRows& x, const MatmulContext& ctx);

// Convenience for one-off products (tests, tools): y = matmul of m rows of x.
Status matmul(const WeightView& w, const float* x, int64_t m, float* y, const MatmulContext& ctx);

}  // namespace weft::kernels::cpu
