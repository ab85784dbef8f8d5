// Attention of one query head over gathered key/value rows, in fast-mode arithmetic: fp16
// scores, softmax with the exp approximation, probabilities rounded to fp16, then the
// probability-weighted sum of fp16 value rows (fast_math.h gives each sum's lane structure).
// `lanes8` selects how the dot products are organised: as llama.cpp's matrix-matrix kernel when
// a pass evaluates several tokens, as its vector kernel for a single token.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/fast_kernels.h"

namespace weft::kernels::cpu {

// Buffers reused across calls (one per thread).
struct AttentionScratch {
  std::vector<uint16_t> q16, p16;
  std::vector<float> score, prob;
};

// For each of `heads` query heads h sharing these keys and values (a grouped-query attention
// group; q and out hold the heads one after another, dim values each):
// out[h][0..dim) = softmax(q[h] . keys[j] * scale) . values[j] over j < n (n >= 1). Each key row
// is read once for all the heads.
void attention_f16(const FastKernels& k, const float* q, int heads, const uint16_t* const* keys,
                   const uint16_t* const* values, int n, int dim, float scale, bool lanes8, AttentionScratch& scratch,
                   float* out);

}  // namespace weft::kernels::cpu
