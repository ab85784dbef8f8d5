// Multi-step speculative sampling keeps the target's distribution exactly: many seeded trials of a
// two-level tree drawn from a different model, and a chi-square test of the two tokens produced
// against the target's own joint distribution. The same test rejects a verifier that accepts what
// the draft proposes, so it can fail.
#include "serving/speculative_sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "llm/llama_model.h"
#include "llm/tiny_model_for_test.h"

namespace weft::serving {
namespace {

constexpr int kVocab = 50;  // the tiny models'

std::unique_ptr<llm::LlamaModel> tiny(unsigned seed) {
  auto f = llm::GgufFile::from_bytes(llm::testing::tiny_model_bytes({.seed = seed}));
  EXPECT_TRUE(f.ok()) << f.status();
  auto m = llm::LlamaModel::from_file(std::move(*f), {.threads = 1});
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

// Logits after `context`, then after context + x for every token x: [1 + vocab][vocab].
std::vector<float> two_levels(const llm::LlamaModel& m, const std::vector<int32_t>& context) {
  llm::KvCache kv = m.make_cache(256);
  const int seq = kv.add_sequence();
  llm::Batch b;
  b.add_chain(seq, 0, context);
  const int32_t last = static_cast<int32_t>(b.tokens.size()) - 1;
  for (int32_t x = 0; x < kVocab; ++x) b.tokens.push_back({x, seq, static_cast<int32_t>(context.size()), last, true});
  auto logits = m.forward(b, kv);
  EXPECT_TRUE(logits.ok()) << logits.status();
  return *logits;
}

std::span<const float> row(const std::vector<float>& logits, int r) {
  return {logits.data() + static_cast<size_t>(r) * kVocab, kVocab};
}

DraftDist softmax(std::span<const float> logits, float temperature) {
  DraftDist d;
  const float top = *std::max_element(logits.begin(), logits.end());
  double total = 0;
  for (float l : logits) total += std::exp((l - top) / temperature);
  for (int32_t x = 0; x < kVocab; ++x) {
    d.ids.push_back(x);
    d.probs.push_back(static_cast<float>(std::exp((logits[x] - top) / temperature) / total));
  }
  return d;
}

// `n` tokens drawn from `d` without replacement.
std::vector<int32_t> draw(const DraftDist& d, int n, std::mt19937_64& rng) {
  std::vector<float> w = d.probs;
  std::vector<int32_t> out;
  for (int k = 0; k < n; ++k) {
    std::discrete_distribution<int> pick(w.begin(), w.end());
    const int i = pick(rng);
    out.push_back(d.ids[static_cast<size_t>(i)]);
    w[static_cast<size_t>(i)] = 0;
  }
  return out;
}

// Pearson's statistic over bins with an expected count of at least 5 (the rest pooled), and the
// critical value at significance 1e-5 (Wilson-Hilferty).
struct ChiSquare {
  double statistic = 0, critical = 0;
};
ChiSquare chi_square(const std::map<int, double>& expected_p, const std::map<int, int>& observed, int n) {
  ChiSquare c;
  double pooled_e = 0, pooled_o = 0;
  int bins = 0;
  for (const auto& [bin, p] : expected_p) {
    const double e = p * n;
    const auto it = observed.find(bin);
    const double o = it == observed.end() ? 0 : it->second;
    if (e < 5) {
      pooled_e += e;
      pooled_o += o;
      continue;
    }
    c.statistic += (o - e) * (o - e) / e;
    ++bins;
  }
  for (const auto& [bin, o] : observed) {
    if (expected_p.count(bin) == 0) pooled_o += o;  // outside the target's support
  }
  if (pooled_e > 0) {
    c.statistic += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    ++bins;
  } else if (pooled_o > 0) {
    c.statistic = INFINITY;
  }
  const double df = bins - 1, z = 4.265;
  c.critical = df * std::pow(1 - 2 / (9 * df) + z * std::sqrt(2 / (9 * df)), 3);
  return c;
}

class SpeculativeSamplingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_ = two_levels(*tiny(11), context_);
    draft_ = two_levels(*tiny(12), context_);
  }
  // Tree per trial: the draft's top token (deterministic), then three children drawn from the
  // draft without replacement, and under each of those two more.
  DraftTree tree(std::mt19937_64& rng) const {
    DraftTree t;
    const DraftDist q1 = softmax(row(draft_, 0), 1.0f);
    const auto top = std::max_element(q1.probs.begin(), q1.probs.end()) - q1.probs.begin();
    t.tokens.push_back(static_cast<int32_t>(top));
    t.parents.push_back(-1);
    t.drawn_from.push_back(-1);
    t.dists.push_back(q1);
    for (int32_t x : draw(q1, 3, rng)) {
      t.tokens.push_back(x);
      t.parents.push_back(-1);
      t.drawn_from.push_back(0);
    }
    for (int32_t parent = 1; parent <= 3; ++parent) {
      t.dists.push_back(softmax(row(draft_, 1 + t.tokens[static_cast<size_t>(parent)]), 1.0f));
      for (int32_t x : draw(t.dists.back(), 2, rng)) {
        t.tokens.push_back(x);
        t.parents.push_back(parent);
        t.drawn_from.push_back(static_cast<int32_t>(t.dists.size()) - 1);
      }
    }
    return t;
  }

  std::vector<int32_t> context_ = {1, 2, 3};
  std::vector<float> target_, draft_;
};

TEST_F(SpeculativeSamplingTest, TwoTokensFollowTheTargetsDistribution) {
  const llm::SamplingParams params{.temperature = 0.6f, .top_k = 40};
  // The target's joint distribution of the next two tokens.
  std::map<int, double> expected;
  llm::TokenDistribution p1, p2;
  llm::Sampler(params).distribution(row(target_, 0), context_, p1);
  for (size_t i = 0; i < p1.ids.size(); ++i) {
    std::vector<int32_t> h = context_;
    h.push_back(p1.ids[i]);
    llm::Sampler(params).distribution(row(target_, 1 + p1.ids[i]), h, p2);
    for (size_t j = 0; j < p2.ids.size(); ++j) expected[p1.ids[i] * kVocab + p2.ids[j]] = p1.probs[i] * p2.probs[j];
  }

  const int trials = 40000;
  std::map<int, int> observed, naive;
  std::mt19937_64 draft_rng(7);
  SpeculativeSampler verify;
  int accepted = 0;
  for (int trial = 0; trial < trials; ++trial) {
    const DraftTree t = tree(draft_rng);
    const int nodes = static_cast<int>(t.tokens.size());
    llm::Sampler s({.temperature = params.temperature, .top_k = params.top_k, .seed = static_cast<uint64_t>(trial)});
    std::vector<int32_t> h = context_;
    const int32_t t1 = verify.next(s, row(target_, 0), h, t, nodes, -1);
    h.push_back(t1);
    int child = -1;
    for (int j = 0; j < nodes && child < 0; ++j) {
      if (t.parents[static_cast<size_t>(j)] == -1 && t.tokens[static_cast<size_t>(j)] == t1) child = j;
    }
    const int32_t t2 = verify.next(s, row(target_, 1 + t1), h, t, child < 0 ? 0 : nodes, child);
    observed[t1 * kVocab + t2]++;
    accepted += child >= 0 ? 1 : 0;
    // A verifier that takes the first sampled child at each level, unchecked: the draft's choice.
    int bad2 = 4;
    while (t.parents[static_cast<size_t>(bad2)] != 1) ++bad2;
    naive[t.tokens[1] * kVocab + t.tokens[static_cast<size_t>(bad2)]]++;
  }
  const ChiSquare good = chi_square(expected, observed, trials);
  EXPECT_LT(good.statistic, good.critical);
  const ChiSquare bad = chi_square(expected, naive, trials);
  EXPECT_GT(bad.statistic, bad.critical) << "the test cannot tell the draft's distribution from the target's";
  EXPECT_GT(accepted, trials / 4) << "the tree should be accepted often";
}

TEST_F(SpeculativeSamplingTest, DeterministicTreesDrawWhatTheSamplerWouldAlone) {
  DraftTree t{.tokens = {5, 9, 17}, .parents = {-1, -1, 0}};
  SpeculativeSampler verify;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    llm::Sampler with({.temperature = 0.8f, .seed = seed}), without({.temperature = 0.8f, .seed = seed});
    EXPECT_EQ(verify.next(with, row(target_, 0), context_, t, 3, -1), without.sample(row(target_, 0), context_));
    EXPECT_EQ(with.uniform(), without.uniform());  // the same random numbers used
  }
}

TEST_F(SpeculativeSamplingTest, GreedyTakesTheTopTokenWhateverTheDraft) {
  std::mt19937_64 rng(3);
  SpeculativeSampler verify;
  llm::Sampler greedy({});
  const int32_t top = greedy.sample(row(target_, 0), context_);
  for (int trial = 0; trial < 50; ++trial) {
    const DraftTree t = tree(rng);
    EXPECT_EQ(verify.next(greedy, row(target_, 0), context_, t, static_cast<int>(t.tokens.size()), -1), top);
  }
}

}  // namespace
}  // namespace weft::serving
