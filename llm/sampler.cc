#include "llm/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include <fmt/format.h>

namespace weft::llm {

Status SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    return Status::invalid_argument(fmt::format("temperature must be a finite number >= 0 (got {})", temperature));
  }
  if (top_k < 0) return Status::invalid_argument(fmt::format("top_k must be >= 0 (got {})", top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f)) return Status::invalid_argument(fmt::format("top_p must be in (0, 1] (got {})", top_p));
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return Status::invalid_argument(fmt::format("min_p must be in [0, 1] (got {})", min_p));
  if (!(repeat_penalty > 0.0f) || !std::isfinite(repeat_penalty)) {
    return Status::invalid_argument(fmt::format("repeat_penalty must be a finite number > 0 (got {})", repeat_penalty));
  }
  if (repeat_last_n < 0) return Status::invalid_argument(fmt::format("repeat_last_n must be >= 0 (got {})", repeat_last_n));
  return Status::ok();
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (const int32_t top = prepare(logits, history); top >= 0) return top;
  double r = uniform();
  for (size_t i = 0; i < probs_.size(); ++i) {
    if (r < probs_[i]) return candidates_[i].id;
    r -= probs_[i];
  }
  return candidates_.back().id;
}

void Sampler::distribution(std::span<const float> logits, std::span<const int32_t> history, TokenDistribution& out) {
  out.ids.clear();
  out.probs.clear();
  if (const int32_t top = prepare(logits, history); top >= 0) {
    out.ids.push_back(top);
    out.probs.push_back(1.0);
    return;
  }
  for (const Candidate& c : candidates_) out.ids.push_back(c.id);
  out.probs.assign(probs_.begin(), probs_.end());
}

int32_t Sampler::prepare(std::span<const float> logits, std::span<const int32_t> history) {
  const int vocab = static_cast<int>(logits.size());
  candidates_.resize(static_cast<size_t>(vocab));
  for (int i = 0; i < vocab; ++i) candidates_[i] = {i, logits[i]};

  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n > 0) {
    const size_t n = std::min(history.size(), static_cast<size_t>(params_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= vocab) continue;
      float& l = candidates_[static_cast<size_t>(id)].logit;
      l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }

  auto higher = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  if (params_.temperature == 0.0f) return std::min_element(candidates_.begin(), candidates_.end(), higher)->id;

  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(), higher);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), higher);
  }
  candidates_.resize(keep);

  // Probabilities at temperature 1 for the filters (as llama.cpp's top-p and min-p see them).
  auto softmax = [&](float temperature) {
    probs_.resize(candidates_.size());
    const double top = candidates_.front().logit;
    double total = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      probs_[i] = std::exp((candidates_[i].logit - top) / temperature);
      total += probs_[i];
    }
    for (double& p : probs_) p /= total;
  };
  softmax(1.0f);
  if (params_.top_p < 1.0f) {
    double cumulative = 0;
    size_t n = 0;
    while (n < probs_.size()) {
      cumulative += probs_[n++];
      if (cumulative >= params_.top_p) break;
    }
    candidates_.resize(n);
    probs_.resize(n);
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * probs_.front();
    size_t n = 1;
    while (n < probs_.size() && probs_[n] >= floor) ++n;
    candidates_.resize(n);
  }
  softmax(params_.temperature);
  return -1;
}

}  // namespace weft::llm
