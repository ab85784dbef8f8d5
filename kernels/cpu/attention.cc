#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/half.h"

namespace weft::kernels::cpu {

void attention_f16(const FastKernels& k, const float* q, const uint16_t* const* keys, const uint16_t* const* values,
                   int n, int dim, float scale, bool lanes8, AttentionScratch& s, float* out) {
  s.q16.resize(static_cast<size_t>(dim));
  s.p16.resize(static_cast<size_t>(n));
  s.score.resize(static_cast<size_t>(n));
  s.prob.resize(static_cast<size_t>(n));
  for (int d = 0; d < dim; ++d) s.q16[d] = fp32_to_fp16(q[d]);
  auto dot = lanes8 ? k.dot_f16_8lane : k.dot_f16;
  float max = -INFINITY;
  for (int j = 0; j < n; ++j) {
    s.score[j] = dot(keys[j], s.q16.data(), dim) * scale;
    max = std::max(max, s.score[j]);
  }
  const double sum = k.softmax_exp(s.score.data(), max, s.prob.data(), n);
  const float inv = static_cast<float>(1.0 / sum);
  for (int j = 0; j < n; ++j) s.p16[j] = fp32_to_fp16(s.prob[j] * inv);
  k.weighted_sum_f16(values, s.p16.data(), n, dim, lanes8, out);
}

}  // namespace weft::kernels::cpu
