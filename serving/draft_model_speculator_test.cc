// Draft-model and merged speculation on tiny models: the engine's output is unchanged, a draft that
// is the target itself is accepted almost always, the draft's cache follows each request without
// computing accepted tokens twice, and a full draft cache costs only the trees.
#include "serving/draft_model_speculator.h"

#include <gtest/gtest.h>

#include <map>

#include "llm/tiny_model_for_test.h"
#include "serving/engine.h"
#include "serving/merged_speculator.h"
#include "serving/speculative_decoding.h"
#include "serving/suffix_speculator.h"

namespace weft::serving {
namespace {

// Every node verified, whatever it costs: these tests are about the trees, not the policy.
const SpeculationOptions kEveryNode{.cold_min_prob = 0, .policy = SelectionPolicy::kEvery};

std::shared_ptr<const llm::LlamaModel> tiny(unsigned seed, int layers = 0) {
  auto f = llm::GgufFile::from_bytes(llm::testing::tiny_model_bytes({.layers = 3, .seed = seed}));
  EXPECT_TRUE(f.ok()) << f.status();
  auto m = llm::LlamaModel::from_file(std::move(*f), {.threads = 1, .layers = layers});
  EXPECT_TRUE(m.ok()) << m.status();
  return std::shared_ptr<const llm::LlamaModel>(std::move(*m));
}

std::vector<RequestSpec> requests(int n, int max_tokens, float temperature = 0.0f) {
  std::vector<RequestSpec> v;
  for (int i = 0; i < n; ++i) {
    RequestSpec s;
    s.id = static_cast<uint64_t>(i + 1);
    for (int k = 0; k < 5 + i; ++k) s.prompt.push_back((7 * i + 3 * k + 1) % 50);
    s.max_tokens = max_tokens;
    s.ignore_eos = true;
    s.temperature = temperature;
    s.seed = 100 + static_cast<uint64_t>(i);
    v.push_back(s);
  }
  return v;
}

struct Served {
  std::map<uint64_t, std::vector<int32_t>> tokens;
  EngineStats stats;
  int iterations = 0;
};

Served serve(std::shared_ptr<const llm::LlamaModel> target, const std::vector<RequestSpec>& specs,
             SpeculativeDecoding* spec) {
  Engine e(std::move(target), {.kv_cache_tokens = 2048});
  Served out;
  for (StepInput in{.arrivals = specs};; in = {}) {
    if (spec != nullptr) spec->prepare(e, in);
    const StepOutput o = e.step(in);
    if (spec != nullptr) spec->observe(o);
    ++out.iterations;
    for (const TokenEvent& ev : o.events) {
      EXPECT_NE(ev.finish, static_cast<uint8_t>(Finish::kError)) << ev.error;
      out.tokens[ev.id].insert(out.tokens[ev.id].end(), ev.tokens.begin(), ev.tokens.end());
    }
    if (!e.has_work()) break;
  }
  out.stats = e.stats();
  return out;
}

TEST(DraftModelSpeculator, TheTargetAsItsOwnDraftIsAcceptedAndChangesNothing) {
  auto target = tiny(11);
  const auto specs = requests(4, 40);
  const Served plain = serve(target, specs, nullptr);
  auto draft =
      std::make_unique<DraftModelSpeculator>(target, DraftModelOptions{.expansion = {1, 1, 1, 1}, .min_prob = 0});
  DraftModelSpeculator* d = draft.get();
  SpeculativeDecoding spec(std::move(draft), kEveryNode);
  const Served got = serve(target, specs, &spec);
  EXPECT_EQ(got.tokens, plain.tokens);
  EXPECT_GT(got.stats.accepted_tokens, got.stats.draft_tokens * 9 / 10);
  EXPECT_LT(got.iterations, plain.iterations / 3);
  // Accepted branches stay in the draft's cache: per step it computes the tokens it has not seen
  // (the last accepted node, never computed as a leaf, and the bonus token) and three tree levels.
  int64_t prompts = 0;
  for (const RequestSpec& s : specs) prompts += static_cast<int64_t>(s.prompt.size());
  EXPECT_LE(d->tokens_computed(), prompts + got.stats.draft_steps * (2 + 3) + 8);
  EXPECT_EQ(d->cache().free_blocks(),
            DraftModelOptions{}.kv_cache_tokens / 16);  // every request's sequence freed at the end
}

TEST(DraftModelSpeculator, EarlyExitAndWiderTreesKeepGreedyOutput) {
  auto target = tiny(11);
  const auto specs = requests(6, 30);
  const Served plain = serve(target, specs, nullptr);
  SpeculativeDecoding spec(std::make_unique<DraftModelSpeculator>(
                               tiny(11, /*layers=*/1), DraftModelOptions{.expansion = {3, 2, 1}, .min_prob = 0}),
                           kEveryNode);
  const Served got = serve(target, specs, &spec);
  EXPECT_EQ(got.tokens, plain.tokens);
  EXPECT_GT(got.stats.draft_tokens, 0);
  EXPECT_GT(got.stats.accepted_tokens, 0);
}

TEST(DraftModelSpeculator, SampledTreesAreAcceptedWhenTheDraftAgrees) {
  auto target = tiny(11);
  const auto specs = requests(3, 40, /*temperature=*/0.8f);
  auto draft = std::make_unique<DraftModelSpeculator>(target, DraftModelOptions{.expansion = {2, 1, 1}, .min_prob = 0});
  SpeculativeDecoding spec(std::move(draft), kEveryNode);
  const Served got = serve(target, specs, &spec);
  for (const RequestSpec& s : specs) EXPECT_EQ(got.tokens.at(s.id).size(), 40u);
  // The draft's distribution is the target's: min(1, p/q) accepts nearly every first child.
  EXPECT_GT(got.stats.accepted_tokens, got.stats.draft_steps * 2);
}

TEST(DraftModelSpeculator, AFullDraftCacheOnlyCostsTheTrees) {
  auto target = tiny(11);
  const auto specs = requests(4, 20);
  const Served plain = serve(target, specs, nullptr);
  // Room for one request's prompt and a few tokens: the others get no tree.
  SpeculativeDecoding spec(std::make_unique<DraftModelSpeculator>(
                               target, DraftModelOptions{.expansion = {1, 1}, .min_prob = 0, .kv_cache_tokens = 16}),
                           {});
  const Served got = serve(target, specs, &spec);
  EXPECT_EQ(got.tokens, plain.tokens);
}

TEST(DraftModelSpeculator, LoadingKeepsOnlyTheLayersAsked) {
  auto f = llm::GgufFile::from_bytes(llm::testing::tiny_model_bytes({.layers = 3}));
  ASSERT_TRUE(f.ok());
  auto m = llm::LlamaModel::from_file(std::move(*f), {.threads = 1, .layers = 4});
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tiny(11, 2)->config().n_layers, 2);
}

TEST(MergedSpeculator, UnitesTreesBestFirstAndKeepsDrawsInOrder) {
  Proposal suffix{.tokens = {5, 6, 7}, .parents = {-1, 0, 1}, .probs = {0.9f, 0.8f, 0.3f}};
  Proposal draft{.tokens = {5, 9, 8, 4},
                 .parents = {-1, -1, 0, 0},
                 .probs = {0.6f, 0.3f, 0.5f, 0.05f},
                 .drawn_from = {0, 0, 1, 1},
                 .dists = {{{5, 9}, {0.6f, 0.4f}}, {{8, 4}, {0.8f, 0.2f}}}};
  const Proposal m = MergedSpeculator::merge(suffix, draft, 5);
  // 5 (both) -> 6 (0.8) -> 8 (0.5) -> 9 (0.3 tie: the older trie node, 7, loses to 9? no: 7 came first)
  ASSERT_EQ(m.tokens.size(), 5u);
  EXPECT_EQ(m.tokens, (std::vector<int32_t>{5, 6, 8, 7, 9}));
  EXPECT_EQ(m.parents, (std::vector<int32_t>{-1, 0, 0, 1, -1}));
  EXPECT_FLOAT_EQ(m.probs[0], 0.9f);
  // 5 was also the suffix's: deterministic. 8 keeps its draw (first of its siblings). 9 was drawn
  // after 5, which is no longer a draw: deterministic.
  EXPECT_EQ(m.drawn_from, (std::vector<int32_t>{-1, -1, 1, -1, -1}));
  EXPECT_EQ(m.dists.size(), 2u);
  const Proposal small = MergedSpeculator::merge(suffix, draft, 2);
  EXPECT_EQ(small.tokens, (std::vector<int32_t>{5, 6}));
}

}  // namespace
}  // namespace weft::serving
