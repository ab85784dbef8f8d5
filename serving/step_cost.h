// What an iteration costs, learnt as the engine runs: time = fixed + per_token x tokens, fitted by
// least squares over recent iterations (exponentially weighted, so it follows the machine's load).
// The planner sizes iterations with it so that a running request's next token comes within its
// TPOT target.
//
//   StepCost cost;
//   cost.observe(tokens, elapsed_ns);             // after each forward pass
//   int n = cost.tokens_within(200'000'000);      // tokens an iteration may take to last 200 ms
#pragma once

#include <cstdint>

namespace weft::serving {

class StepCost {
 public:
  // `weight`: how much one new iteration counts (0..1).
  explicit StepCost(double weight = 0.05) : weight_(weight) {}

  void observe(int tokens, int64_t ns);
  bool known() const { return samples_ >= kWarmup; }
  double fixed_ns() const;
  double per_token_ns() const;
  // The most tokens an iteration can take and still finish within `ns`; -1 while unknown.
  int tokens_within(int64_t ns) const;

 private:
  static constexpr int kWarmup = 8;
  double weight_;
  int samples_ = 0;
  double n_ = 0, t_ = 0, nn_ = 0, nt_ = 0;  // weighted means of tokens, time, tokens², tokens x time
};

}  // namespace weft::serving
