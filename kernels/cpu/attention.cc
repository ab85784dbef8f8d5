#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>

namespace weft::kernels::cpu {

void attention_f16(const FastKernels& k, const float* q, int heads, const uint16_t* const* keys,
                   const uint16_t* const* values, int n, int dim, float scale, bool lanes8, AttentionScratch& s,
                   float* out) {
  s.q16.resize(static_cast<size_t>(heads) * dim);
  s.score.resize(static_cast<size_t>(heads) * n);
  s.p16.resize(static_cast<size_t>(n));
  s.prob.resize(static_cast<size_t>(n));
  k.scale_to_f16(q, 1.0f, static_cast<int64_t>(heads) * dim, s.q16.data());
  k.scores_f16(keys, s.q16.data(), heads, n, dim, scale, lanes8, s.score.data());
  for (int h = 0; h < heads; ++h) {
    const float* score = &s.score[static_cast<size_t>(h) * n];
    float max = -INFINITY;
    for (int j = 0; j < n; ++j) max = std::max(max, score[j]);
    const double sum = k.softmax_exp(score, max, s.prob.data(), n);
    k.scale_to_f16(s.prob.data(), static_cast<float>(1.0 / sum), n, s.p16.data());
    k.weighted_sum_f16(values, s.p16.data(), n, dim, lanes8, out + static_cast<size_t>(h) * dim);
  }
}

}  // namespace weft::kernels::cpu
