// SpeculativeDecoding verifies the nodes that pay for themselves on this machine: likely nodes are
// taken, unlikely ones are not, and a speculator that overstates its nodes is calibrated down.
#include "serving/speculative_decoding.h"

#include <gtest/gtest.h>

#include <map>

#include "llm/tiny_model_for_test.h"

namespace weft::serving {
namespace {

// Proposes the known continuation of each request (from a plain run), every node with the same
// stated probability.
class Oracle final : public Speculator {
 public:
  Oracle(std::map<uint64_t, std::vector<int32_t>> want, float prob) : want_(std::move(want)), prob_(prob) {}
  void start(uint64_t id, std::span<const int32_t>, const llm::SamplingParams&) override { done_[id] = 0; }
  void extend(uint64_t id, std::span<const int32_t> tokens) override { done_[id] += tokens.size(); }
  void finish(uint64_t id) override { done_.erase(id); }
  Proposal propose(uint64_t id, int max_nodes) override {
    Proposal p;
    const std::vector<int32_t>& w = want_.at(id);
    // The tree's root children are candidates for the next token, want[done].
    for (size_t k = done_[id]; k < w.size() && p.tokens.size() < static_cast<size_t>(max_nodes); ++k) {
      p.parents.push_back(static_cast<int32_t>(p.tokens.size()) - 1);
      p.tokens.push_back(w[k]);
      p.probs.push_back(prob_);
    }
    return p;
  }

 private:
  std::map<uint64_t, std::vector<int32_t>> want_;
  std::map<uint64_t, size_t> done_;
  float prob_;
};

struct Served {
  std::map<uint64_t, std::vector<int32_t>> tokens;
  EngineStats stats;
};

Served serve(std::shared_ptr<const llm::LlamaModel> model, SpeculativeDecoding* spec, int n) {
  Engine e(std::move(model), {.kv_cache_tokens = 2048});
  std::vector<RequestSpec> specs;
  for (int i = 0; i < n; ++i) {
    RequestSpec s;
    s.id = static_cast<uint64_t>(i + 1);
    s.prompt = {1, 2, 3, static_cast<int32_t>(4 + i)};
    s.max_tokens = 60;
    s.ignore_eos = true;
    specs.push_back(s);
  }
  Served out;
  for (StepInput in{.arrivals = specs};; in = {}) {
    if (spec != nullptr) spec->prepare(e, in);
    const StepOutput o = e.step(in);
    if (spec != nullptr) spec->observe(o);
    for (const TokenEvent& ev : o.events)
      out.tokens[ev.id].insert(out.tokens[ev.id].end(), ev.tokens.begin(), ev.tokens.end());
    if (!e.has_work()) break;
  }
  out.stats = e.stats();
  return out;
}

class SpeculativeDecodingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = llm::GgufFile::from_bytes(llm::testing::tiny_model_bytes());
    ASSERT_TRUE(f.ok());
    auto m = llm::LlamaModel::from_file(std::move(*f), {.threads = 1});
    ASSERT_TRUE(m.ok());
    model_ = std::shared_ptr<const llm::LlamaModel>(std::move(*m));
    want_ = serve(model_, nullptr, 2).tokens;
  }
  std::shared_ptr<const llm::LlamaModel> model_;
  std::map<uint64_t, std::vector<int32_t>> want_;
};

TEST_F(SpeculativeDecodingTest, LikelyNodesAreVerifiedAndUnlikelyOnesAreNot) {
  SpeculativeDecoding sure(std::make_unique<Oracle>(want_, 0.99f), {});
  const Served a = serve(model_, &sure, 2);
  EXPECT_EQ(a.tokens, want_);
  EXPECT_GT(a.stats.accepted_tokens, 60);
  EXPECT_GT(sure.calibration(), 0.9);

  SpeculativeDecoding unlikely(std::make_unique<Oracle>(want_, 0.01f), {});
  const Served b = serve(model_, &unlikely, 2);
  EXPECT_EQ(b.tokens, want_);
  EXPECT_EQ(b.stats.draft_tokens, 0);  // never worth a verification, cold or measured
}

TEST_F(SpeculativeDecodingTest, OverstatedEstimatesAreCalibratedDown) {
  // Every stated-sure node but the first is wrong: accepted tokens fall far short of the estimate.
  std::map<uint64_t, std::vector<int32_t>> wrong = want_;
  for (auto& [id, v] : wrong) {
    for (size_t k = 0; k < v.size(); ++k) {
      if (k % 2 == 0) v[k] = (v[k] + 1) % 50;
    }
  }
  SpeculativeDecoding spec(std::make_unique<Oracle>(wrong, 0.99f), {});
  const Served got = serve(model_, &spec, 2);
  EXPECT_EQ(got.tokens, want_);
  EXPECT_LT(spec.calibration(), 0.5);
}

}  // namespace
}  // namespace weft::serving

namespace weft::serving {
namespace {

constexpr int64_t kMs = 1'000'000;

// Steps of 4 decodes that cost 5 ms + 5 ms per token.
StepCost made_up_cost() {
  StepCost cost;
  for (int i = 0; i < 16; ++i) cost.observe(i % 2 == 0 ? 4 : 12, (5 + 5 * (i % 2 == 0 ? 4 : 12)) * kMs);
  return cost;
}

// Four decoding requests with 20 tokens each since t = 0; it is now 600 ms. Request 1 has a 25 ms
// TPOT target (20 tokens should have taken 500 ms: it is behind), the others 1 s.
std::vector<Engine::Decoding> four_decoding() {
  return {{1, 25 * kMs, 20, 0}, {2, 1000 * kMs, 20, 0}, {3, 1000 * kMs, 20, 0}, {4, 1000 * kMs, 20, 0}};
}

class Fixed final : public Speculator {
 public:
  explicit Fixed(float prob) : prob_(prob) {}
  void start(uint64_t, std::span<const int32_t>, const llm::SamplingParams&) override {}
  void extend(uint64_t, std::span<const int32_t>) override {}
  void finish(uint64_t) override {}
  Proposal propose(uint64_t, int max_nodes) override {
    Proposal p;
    for (int k = 0; k < max_nodes; ++k) {
      p.tokens.push_back(k + 1);
      p.parents.push_back(k - 1);
      p.probs.push_back(prob_);
    }
    return p;
  }

 private:
  float prob_;
};

const DraftTree* tree_of(const StepInput& in, uint64_t id) {
  for (const DraftTree& d : in.drafts) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

TEST(SloSpeculation, ARequestBehindItsTargetGetsNodesThatThroughputAloneWouldNotTake) {
  // p = 0.6 per node: for throughput, 0.6 x 25 ms < 5 ms x 4 tokens... only barely; the 25 ms
  // request is worth 0.6 x 25 = 15 ms per 5 ms node, and needs (600 + step) / 25 - 20 > 4 tokens.
  const StepCost cost = made_up_cost();
  SpeculativeDecoding slo(std::make_unique<Fixed>(0.6f), {.max_nodes = 8});
  StepInput in;
  slo.prepare(four_decoding(), cost, 600 * kMs, in);
  const DraftTree* tight = tree_of(in, 1);
  ASSERT_NE(tight, nullptr);
  EXPECT_GT(tight->required, 0);
  EXPECT_EQ(tight->required, static_cast<int>(tight->tokens.size()));
  for (uint64_t id : {2, 3, 4}) {
    const DraftTree* loose = tree_of(in, id);
    EXPECT_TRUE(loose == nullptr || loose->required == 0);
    EXPECT_TRUE(loose == nullptr || loose->tokens.size() < tight->tokens.size());
  }

  SpeculativeDecoding cost_only(std::make_unique<Fixed>(0.6f), {.max_nodes = 8, .policy = SelectionPolicy::kCost});
  StepInput plain;
  cost_only.prepare(four_decoding(), cost, 600 * kMs, plain);
  const DraftTree* t = tree_of(plain, 1);
  EXPECT_TRUE(t == nullptr || t->tokens.size() < tight->tokens.size());
  for (const DraftTree& d : plain.drafts) EXPECT_EQ(d.required, 0);
}

TEST(SloSpeculation, ARequestOnTargetGetsNothingForItsTarget) {
  const StepCost cost = made_up_cost();
  SpeculativeDecoding slo(std::make_unique<Fixed>(0.6f), {.max_nodes = 8});
  StepInput in;
  slo.prepare(four_decoding(), cost, 300 * kMs, in);  // 20 tokens in 300 ms: ahead of 25 ms per token
  for (const DraftTree& d : in.drafts) EXPECT_EQ(d.required, 0);
}

TEST(SloSpeculation, TheNodeBudgetKeepsTheStepWithinWhatTheTightestRequestAffords) {
  // Request 1 (10 ms target, on schedule at 200 ms) affords (1 + its tree's 8 x 0.95) x 10 ms = 86 ms
  // of step: 5 + 5 x tokens <= 86 holds up to 16 tokens — 4 decodes and 12 nodes, whatever the
  // other requests' trees would bring.
  const StepCost cost = made_up_cost();
  SpeculativeDecoding slo(std::make_unique<Fixed>(0.95f), {.max_nodes = 8});
  StepInput in;
  std::vector<Engine::Decoding> d = four_decoding();
  d[0].tpot_ns = 10 * kMs;
  slo.prepare(d, cost, 200 * kMs, in);
  size_t nodes = 0;
  for (const DraftTree& t : in.drafts) nodes += t.tokens.size();
  EXPECT_EQ(nodes, 12u);

  SpeculativeDecoding cost_only(std::make_unique<Fixed>(0.95f), {.max_nodes = 8, .policy = SelectionPolicy::kCost});
  StepInput plain;
  cost_only.prepare(d, cost, 200 * kMs, plain);
  size_t all = 0;
  for (const DraftTree& t : plain.drafts) all += t.tokens.size();
  EXPECT_GT(all, 12u);  // without targets, every node that pays
}

TEST_F(SpeculativeDecodingTest, TightTargetsLeaveTheOutputUnchanged) {
  SpeculativeDecoding spec(std::make_unique<Oracle>(want_, 0.7f), {});
  Engine e(model_, {.kv_cache_tokens = 2048});
  std::map<uint64_t, std::vector<int32_t>> got;
  std::vector<RequestSpec> specs;
  for (int i = 0; i < 2; ++i) {
    RequestSpec s;
    s.id = static_cast<uint64_t>(i + 1);
    s.prompt = {1, 2, 3, static_cast<int32_t>(4 + i)};
    s.max_tokens = 60;
    s.ignore_eos = true;
    s.tpot_ns = i == 0 ? 1000 : 0;  // 1 µs: always behind
    specs.push_back(s);
  }
  for (StepInput in{.arrivals = specs};; in = {}) {
    spec.prepare(e, in);
    const StepOutput o = e.step(in);
    spec.observe(o);
    for (const TokenEvent& ev : o.events) got[ev.id].insert(got[ev.id].end(), ev.tokens.begin(), ev.tokens.end());
    if (!e.has_work()) break;
  }
  EXPECT_EQ(got, want_);
}

}  // namespace
}  // namespace weft::serving
