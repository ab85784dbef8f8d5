#include "serving/step_cost.h"

#include <algorithm>
#include <cmath>

namespace weft::serving {

void StepCost::observe(int tokens, int64_t ns) {
  if (tokens <= 0 || ns <= 0) return;
  const double n = tokens, t = static_cast<double>(ns);
  // The first samples set the means (an average of what was seen so far), later ones blend in.
  const double w = samples_ < static_cast<int>(1.0 / weight_) ? 1.0 / (samples_ + 1) : weight_;
  n_ += w * (n - n_);
  t_ += w * (t - t_);
  nn_ += w * (n * n - nn_);
  nt_ += w * (n * t - nt_);
  ++samples_;
}

double StepCost::per_token_ns() const {
  const double var = nn_ - n_ * n_;
  // Iterations all of about one size cannot separate the fixed cost: charge it all per token.
  if (var < 1.0 || n_ <= 0) return n_ > 0 ? t_ / n_ : 0;
  const double slope = (nt_ - n_ * t_) / var;
  return slope > 0 ? slope : t_ / n_;
}

double StepCost::fixed_ns() const { return std::max(0.0, t_ - per_token_ns() * n_); }

int StepCost::tokens_within(int64_t ns) const {
  if (!known()) return -1;
  const double per = per_token_ns();
  if (per <= 0) return -1;
  return static_cast<int>(std::max(0.0, std::floor((static_cast<double>(ns) - fixed_ns()) / per)));
}

}  // namespace weft::serving
