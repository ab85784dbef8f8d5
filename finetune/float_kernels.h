// Float32 matrix products for training: the forward pass through frozen (often quantized) base
// weights, dequantized a tile at a time, and the products backward propagation needs — through a
// base matrix transposed, and into the gradients of LoRA's small matrices. Sums run in float32 over
// eight lanes in a fixed order, so results do not depend on the thread count. The inner loops are
// compiled for AVX2+FMA and for baseline x86-64 and chosen at load (function multiversioning).
//
//   matmul_nt(wq, xn, n, q, /*accumulate=*/false, team);   // q[i] = Wq xn[i]
//   matmul_nn(wq, g_q, n, g_xn, team);                       // g_xn[i] += Wq^T g_q[i]
#pragma once

#include <cstdint>

#include "kernels/weight_view.h"
#include "weft/parallel.h"
#include "weft/status.h"

namespace weft::finetune {

/// y[i][r] (+)= dot(x[i], W row r) for i < n: y is [n][w.rows], x is [n][w.cols].
Status matmul_nt(const kernels::WeightView& w, const float* x, int n, float* y, bool accumulate,
                 weft::ParallelFor& team);
/// dx[i][c] += sum_r g[i][r] W[r][c] for i < n: g is [n][w.rows], dx is [n][w.cols].
Status matmul_nn(const kernels::WeightView& w, const float* g, int n, float* dx, weft::ParallelFor& team);

/// The same on a float32 matrix a [rows][cols] held in memory (LoRA's A and B), on this thread.
void float_nt(const float* a, int rows, int cols, const float* x, int n, float* y, bool accumulate);
void float_nn(const float* a, int rows, int cols, const float* g, int n, float* dx);
/// out[r][c] += scale * sum_i p[i][r] q[i][c]: p is [n][rows], q is [n][cols] (a weight gradient).
void float_tn(const float* p, int rows, const float* q, int cols, int n, float scale, float* out);

}  // namespace weft::finetune
