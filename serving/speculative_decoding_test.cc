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
