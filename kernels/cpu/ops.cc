#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/dequantize.h"

namespace weft::kernels::cpu {

Status weight_row(const WeightView& w, int64_t row, float* out) {
  if (row < 0 || row >= w.rows) return Status::invalid_argument("row " + std::to_string(row) + " out of range");
  return dequantize_row(w.type, w.row(row), out, w.cols);
}

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* y) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);  // square in float, as ggml
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * weight[i];
}

void rope_angles(int pos, const RopeParams& p, float* cos, float* sin) {
  const float theta_scale = std::pow(p.base, -2.0f / static_cast<float>(p.rope_dims));
  float theta_base = static_cast<float>(pos);
  for (int i = 0; i < p.rope_dims / 2; ++i) {
    float theta = p.freq_scale * theta_base;
    if (p.freq_factors != nullptr) theta /= p.freq_factors[i];
    cos[i] = std::cos(theta);
    sin[i] = std::sin(theta);
    theta_base *= theta_scale;
  }
}

void rope_apply(float* x, int n_heads, const float* cos, const float* sin, const RopeParams& p) {
  const int half = p.rope_dims / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<size_t>(h) * p.head_dim;
    for (int i = 0; i < half; ++i) {
      const int a = p.neox ? i : 2 * i;
      const int b = p.neox ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      // One product rounded, the other fused: the form ggml's compiled rotation computes.
      v[a] = std::fma(x0, cos[i], -(x1 * sin[i]));
      v[b] = std::fma(x0, sin[i], x1 * cos[i]);
    }
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void attention(const float* q, const float* const* keys, const float* const* values, int n_keys, int head_dim,
               float scale, float* out) {
  std::vector<float> score(static_cast<size_t>(n_keys));
  float max_score = -INFINITY;
  for (int j = 0; j < n_keys; ++j) {
    float dot = 0;
    for (int d = 0; d < head_dim; ++d) dot += q[d] * keys[j][d];
    score[j] = dot * scale;
    max_score = std::max(max_score, score[j]);
  }
  double total = 0;
  for (int j = 0; j < n_keys; ++j) {
    score[j] = std::exp(score[j] - max_score);
    total += score[j];
  }
  std::fill(out, out + head_dim, 0.0f);
  for (int j = 0; j < n_keys; ++j) {
    const float w = static_cast<float>(score[j] / total);
    for (int d = 0; d < head_dim; ++d) out[d] += w * values[j][d];
  }
}

}  // namespace weft::kernels::cpu
