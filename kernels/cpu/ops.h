// Reference CPU implementations of the operators a Llama-family forward pass needs (matrix
// products are in matmul.h).
//
// These are the portable, obviously-correct versions: every faster path (SIMD, threads, CUDA) is
// tested against them. Numerics follow ggml where it matters for matching llama.cpp: RMSNorm sums
// squares in double, RoPE advances theta by repeated multiplication.
#pragma once

#include <cstdint>

#include "kernels/weight_view.h"
#include "weft/status.h"

namespace weft::kernels::cpu {

// One row of a weight matrix as float32 (an embedding lookup).
Status weight_row(const WeightView& w, int64_t row, float* out);

// y = x / sqrt(mean(x^2) + eps) * weight, over n values.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* y);

struct RopeParams {
  int head_dim = 0;
  int rope_dims = 0;               // leading dims that rotate
  float base = 10000.0f;
  float freq_scale = 1.0f;         // 1 / linear scaling factor
  const float* freq_factors = nullptr;  // [rope_dims / 2] divisors of theta (llama3), or null
  bool neox = false;               // rotate (i, i + rope_dims/2) instead of (2i, 2i + 1)
};
// Rotary embeddings in two steps, so one position's angles serve every head and layer: the
// rotation's cosines and sines for position `pos` (rope_dims / 2 each), then their application
// to `n_heads` heads of `x` ([n_heads][head_dim]) in place.
void rope_angles(int pos, const RopeParams& p, float* cos, float* sin);
void rope_apply(float* x, int n_heads, const float* cos, const float* sin, const RopeParams& p);

// out[i] = silu(gate[i]) * up[i].
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// Single-head attention over `n_keys` gathered key/value rows:
// out = softmax(q · k_j * scale) · v_j, with q, k_j, v_j, out of `head_dim` floats.
void attention(const float* q, const float* const* keys, const float* const* values, int n_keys, int head_dim,
               float scale, float* out);

}  // namespace weft::kernels::cpu
