// Picks the next token from a row of logits: greedy, or sampled after the usual filters.
//
//   Sampler s({.temperature = 0.8f, .top_p = 0.95f, .seed = 42});
//   int32_t next = s.sample(logits, history);
//
// The order of operations is llama.cpp's default chain: repetition penalty over the last
// `repeat_last_n` tokens of the history (CTRL's rule: positive logits divided by the penalty,
// negative ones multiplied), then top-k, top-p (nucleus), min-p, temperature, and a draw from
// the renormalised distribution. Temperature 0 is greedy: the highest logit after the penalty,
// the lowest id on a tie. A given seed gives the same draws on every machine (the random
// numbers come from mt19937_64 and are turned into doubles by weft, not by the library).
// Not thread-safe: one Sampler per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

/// How the next token is drawn (llama.cpp's sampler chain: penalty, top-k, top-p, min-p, temperature).
struct WEFT_API SamplingParams {
  float temperature = 0.0f;     ///< 0: greedy
  int top_k = 0;                ///< keep the k most likely tokens; 0: all
  float top_p = 1.0f;           ///< keep the smallest set whose probability reaches p; 1: all
  float min_p = 0.0f;           ///< drop tokens below min_p x the top token's probability; 0: none
  float repeat_penalty = 1.0f;  ///< 1: off
  int repeat_last_n = 64;       ///< how much of the history the penalty looks at
  uint64_t seed = 0;            ///< the random stream's seed

  /// kInvalidArgument naming the bad field (negative temperature, top_p outside (0, 1], ...).
  Status validate() const;
};

/// The tokens a sampler may draw and their probabilities (summing to 1), likeliest first.
struct WEFT_API TokenDistribution {
  std::vector<int32_t> ids;   ///< token ids, likeliest first
  std::vector<double> probs;  ///< their probabilities
};

/// Draws tokens from logits with one random stream; not thread-safe (one per sequence).
class WEFT_API Sampler {
 public:
  /// `params` must be valid (SamplingParams::validate).
  explicit Sampler(const SamplingParams& params);

  /// `logits` is one row of the vocabulary; `history` the sequence so far (prompt and output).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  /// The distribution `sample` draws from (greedy: the top token alone), without drawing.
  void distribution(std::span<const float> logits, std::span<const int32_t> history, TokenDistribution& out);
  /// The next number of this sampler's random stream, in [0, 1).
  double uniform();

  /// The parameters it draws with.
  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  /// Fills candidates_ and probs_ with what survives the penalty and filters; greedy: returns the
  /// top token's id (candidates_ and probs_ are then not filled), else -1.
  int32_t prepare(std::span<const float> logits, std::span<const int32_t> history);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
  std::vector<double> probs_;
};

}  // namespace weft::llm
