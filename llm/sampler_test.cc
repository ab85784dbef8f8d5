#include "llm/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace weft::llm {
namespace {

TEST(Sampler, GreedyTakesTheHighestLogitAndTheLowestIdOnATie) {
  Sampler s({});
  const std::vector<float> logits{0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(logits, {}), 1);
}

TEST(Sampler, RepetitionPenaltyFollowsCtrlsRule) {
  // Token 1 (positive) is divided, token 3 (negative) multiplied: 3.0/2 = 1.5 < 1.6 (token 0).
  Sampler s({.repeat_penalty = 2.0f});
  const std::vector<float> logits{1.6f, 3.0f, -5.0f, -0.1f};
  const std::vector<int32_t> history{1, 3};
  EXPECT_EQ(s.sample(logits, history), 0);
  // Outside the window it has no effect.
  Sampler windowed({.repeat_penalty = 2.0f, .repeat_last_n = 1});
  EXPECT_EQ(windowed.sample(logits, std::vector<int32_t>{1, 3}), 1);
}

TEST(Sampler, SameSeedSameDrawsOtherSeedOtherDraws) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(static_cast<float>(i));
  auto draws = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits, {}));
    return out;
  };
  EXPECT_EQ(draws(7), draws(7));
  EXPECT_NE(draws(7), draws(8));
}

TEST(Sampler, FrequenciesFollowTheDistribution) {
  // Two tokens with probabilities 0.75 and 0.25 at temperature 1.
  const std::vector<float> logits{std::log(3.0f), 0.0f};
  Sampler s({.temperature = 1.0f, .seed = 1});
  int zeros = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) zeros += s.sample(logits, {}) == 0;
  EXPECT_NEAR(zeros / static_cast<double>(n), 0.75, 0.02);
}

TEST(Sampler, TopKTopPAndMinPRestrictTheCandidates) {
  const std::vector<float> logits{3.0f, 2.9f, 2.8f, 0.0f, -1.0f};
  auto seen = [&](SamplingParams p) {
    p.temperature = 1.0f;
    Sampler s(p);
    std::map<int32_t, int> counts;
    for (int i = 0; i < 3000; ++i) ++counts[s.sample(logits, {})];
    return counts;
  };
  auto k2 = seen({.top_k = 2, .seed = 3});
  EXPECT_EQ(k2.size(), 2u);
  EXPECT_TRUE(k2.count(0) && k2.count(1));
  // The top three hold ~0.97 of the mass: top_p 0.9 keeps exactly them.
  auto p90 = seen({.top_p = 0.9f, .seed = 4});
  EXPECT_EQ(p90.size(), 3u);
  // min_p 0.5 drops tokens under half the top probability (token 3: e^-3 of it).
  auto minp = seen({.min_p = 0.5f, .seed = 5});
  EXPECT_EQ(minp.size(), 3u);
  EXPECT_FALSE(minp.count(3));
}

TEST(Sampler, LowTemperatureApproachesGreedy) {
  const std::vector<float> logits{1.0f, 1.5f, 0.5f};
  Sampler s({.temperature = 0.01f, .seed = 9});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(logits, {}), 1);
}

TEST(SamplingParams, BadValuesAreNamed) {
  EXPECT_TRUE(SamplingParams{}.validate().is_ok());
  auto bad = SamplingParams{.temperature = -1.0f}.validate();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("temperature"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_p = 0.0f}.validate().message().find("top_p"), std::string::npos);
  EXPECT_NE(SamplingParams{.top_k = -2}.validate().message().find("top_k"), std::string::npos);
  EXPECT_NE(SamplingParams{.min_p = 2.0f}.validate().message().find("min_p"), std::string::npos);
  EXPECT_NE(SamplingParams{.repeat_penalty = 0.0f}.validate().message().find("repeat_penalty"), std::string::npos);
}

}  // namespace
}  // namespace weft::llm
