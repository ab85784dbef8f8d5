// The engine on the real default model: continuous batching, chunked prefill and preemption all
// give each request exactly the tokens it gets alone from llm::generate.
#include "serving/engine.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "llm/default_model_for_test.h"
#include "llm/generator.h"
#include "llm/tokenizer.h"
#include "serving/speculative_decoding.h"
#include "serving/suffix_speculator.h"
#include "weft/detail/runnable.h"

namespace weft::serving {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    llm::testing::DefaultModel d = llm::testing::load_default_model({.threads = 2});
    model_ = d.model;
    tokenizer_ = d.tokenizer;
  }
  static void TearDownTestSuite() {
    model_.reset();
    tokenizer_.reset();
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "run scripts/setup to fetch the default model";
  }

  static std::vector<int32_t> encode(const std::string& text) { return *tokenizer_->encode(text); }
  static std::vector<int32_t> alone(const std::vector<int32_t>& prompt, int max_tokens) {
    llm::GenerateOptions o{.max_tokens = max_tokens};
    auto g = llm::generate(*model_, *tokenizer_, prompt, o);
    EXPECT_TRUE(g.ok());
    return g->tokens;
  }
  // Runs every spec through one engine until all finish; tokens per id.
  static std::map<uint64_t, std::vector<int32_t>> serve(Engine& e, std::vector<RequestSpec> specs, int stagger = 0) {
    std::map<uint64_t, std::vector<int32_t>> out;
    size_t next = 0;
    for (int round = 0; round < 100000; ++round) {
      StepInput in;
      // Arrivals staggered across iterations, so requests join a running batch.
      while (next < specs.size() && (stagger == 0 || round % stagger == 0)) {
        specs[next].arrival_ns = detail::now_ns();
        in.arrivals.push_back(specs[next++]);
        if (stagger != 0) break;
      }
      StepOutput o = e.step(in);
      for (const TokenEvent& ev : o.events) {
        EXPECT_NE(ev.finish, static_cast<uint8_t>(Finish::kError)) << ev.error;
        auto& v = out[ev.id];
        v.insert(v.end(), ev.tokens.begin(), ev.tokens.end());
      }
      if (next == specs.size() && !e.has_work()) break;
    }
    return out;
  }
  // Like serve, all arriving at once, with a draft tree offered for every request each iteration:
  // from `oracle` (the tokens it should produce) a chain of `depth` right tokens, with a wrong
  // sibling before the right one at every level. Returns tokens per id; counts iterations.
  static std::map<uint64_t, std::vector<int32_t>> serve_drafted(Engine& e, const std::vector<RequestSpec>& specs,
                                                                std::map<uint64_t, std::vector<int32_t>> oracle,
                                                                int depth, int& iterations) {
    std::map<uint64_t, std::vector<int32_t>> out;
    StepInput in{.arrivals = specs};
    for (iterations = 1;; ++iterations) {
      StepOutput o = e.step(in);
      for (const TokenEvent& ev : o.events) {
        EXPECT_NE(ev.finish, static_cast<uint8_t>(Finish::kError)) << ev.error;
        EXPECT_LE(ev.accepted, ev.drafted);
        auto& v = out[ev.id];
        v.insert(v.end(), ev.tokens.begin(), ev.tokens.end());
      }
      if (!e.has_work()) break;
      in = {};
      for (auto& [id, want] : oracle) {
        const size_t g = out[id].size();  // the next token to sample is want[g]
        DraftTree d{.id = id};
        int32_t parent = -1;
        for (size_t k = g; k < want.size() && k < g + static_cast<size_t>(depth); ++k) {
          d.tokens.push_back((want[k] + 1) % 1000);  // wrong
          d.parents.push_back(parent);
          d.tokens.push_back(want[k]);  // right
          d.parents.push_back(parent);
          parent = static_cast<int32_t>(d.tokens.size()) - 1;
        }
        if (!d.tokens.empty()) in.drafts.push_back(std::move(d));
      }
    }
    return out;
  }
  struct Served {
    std::map<uint64_t, std::vector<int32_t>> tokens;
    std::map<uint64_t, int> drafted;           // speculated tokens verified, per request
    std::map<uint64_t, int> token_iterations;  // iterations that gave the request tokens
  };
  // Runs every spec, all arriving at once, with `spec`'s trees when given.
  static Served serve_speculating(Engine& e, const std::vector<RequestSpec>& specs, SpeculativeDecoding* spec) {
    Served out;
    for (StepInput in{.arrivals = specs};; in = {}) {
      if (spec != nullptr) spec->prepare(e, in);
      const StepOutput o = e.step(in);
      if (spec != nullptr) spec->observe(o);
      for (const TokenEvent& ev : o.events) {
        EXPECT_NE(ev.finish, static_cast<uint8_t>(Finish::kError)) << ev.error;
        out.tokens[ev.id].insert(out.tokens[ev.id].end(), ev.tokens.begin(), ev.tokens.end());
        out.drafted[ev.id] += ev.drafted;
        out.token_iterations[ev.id] += ev.tokens.empty() ? 0 : 1;
      }
      if (!e.has_work()) return out;
    }
  }
  static std::vector<RequestSpec> specs(const std::vector<std::string>& prompts, int max_tokens) {
    std::vector<RequestSpec> v;
    for (size_t i = 0; i < prompts.size(); ++i) {
      RequestSpec s;
      s.id = i + 1;
      s.prompt = encode(prompts[i]);
      s.max_tokens = max_tokens;
      s.slo = static_cast<uint8_t>(i % 3);
      v.push_back(s);
    }
    return v;
  }

  static inline std::shared_ptr<const llm::LlamaModel> model_;
  static inline std::shared_ptr<const llm::Tokenizer> tokenizer_;
};

const std::string kVerse = "Row, row, row your boat, gently down the stream. Merrily, merrily, merrily, merrily, ";

const std::vector<std::string> kPrompts = {
    "The capital of France is",
    "Once upon a time, in a land far away, there lived a",
    "def fibonacci(n):",
    "A",
    "The three primary colors are red, blue and",
    "In 1969, the first humans to walk on the moon were",
};

TEST_F(EngineTest, BatchedChunkedAndStaggeredEqualAlone) {
  std::vector<RequestSpec> s = specs(kPrompts, 24);
  EngineOptions o;
  o.scheduler.max_num_batched_tokens = 7;  // prompts in several chunks, decodes beside them
  o.kv_cache_tokens = 4096;
  Engine e(model_, o);
  auto got = serve(e, s, 3);
  for (const RequestSpec& r : s) EXPECT_EQ(got[r.id], alone(r.prompt, 24)) << "request " << r.id;
  EXPECT_EQ(e.cache().free_blocks(),
            e.stats().kv_blocks_total);  // every block back
  EXPECT_EQ(e.stats().preemptions, 0);
}

TEST_F(EngineTest, PreemptionByRecomputeKeepsGreedyOutput) {
  std::vector<RequestSpec> s = specs(kPrompts, 40);
  EngineOptions o;
  o.scheduler.block_tokens = 16;
  o.kv_cache_tokens = 16 * 8;  // 8 blocks for 6 requests of up to 58 tokens: they cannot all fit
  Engine e(model_, o);
  auto got = serve(e, s);
  EXPECT_GT(e.stats().preemptions, 0);
  for (const RequestSpec& r : s) EXPECT_EQ(got[r.id], alone(r.prompt, 40)) << "request " << r.id;
  EXPECT_EQ(e.cache().free_blocks(), 8);
}

TEST_F(EngineTest, StopTokensLimitsAndBadRequests) {
  Engine e(model_, {});
  RequestSpec ok;
  ok.id = 1;
  ok.prompt = encode("Hello");
  ok.max_tokens = 3;
  RequestSpec empty;
  empty.id = 2;
  RequestSpec bad_token = ok;
  bad_token.id = 3;
  bad_token.prompt = {1, 999999};
  RequestSpec bad_sampling = ok;
  bad_sampling.id = 4;
  bad_sampling.top_p = 0;
  StepOutput o = e.step({.arrivals = {ok, empty, bad_token, bad_sampling}});
  int errors = 0;
  for (const TokenEvent& ev : o.events) errors += ev.finish == static_cast<uint8_t>(Finish::kError) ? 1 : 0;
  EXPECT_EQ(errors, 3);
  int produced = 1;
  while (e.has_work()) {
    for (const TokenEvent& ev : e.step({}).events) {
      produced += static_cast<int>(ev.tokens.size());
      if (ev.finish != 0) EXPECT_EQ(ev.finish, static_cast<uint8_t>(Finish::kLength));
    }
  }
  EXPECT_EQ(produced, 3);
  // A request ended by the front end frees its blocks at the next iteration.
  RequestSpec longer = ok;
  longer.id = 5;
  longer.max_tokens = 100;
  e.step({.arrivals = {longer}});
  EXPECT_LT(e.cache().free_blocks(), e.stats().kv_blocks_total);
  e.step({.finish = {5}});
  EXPECT_FALSE(e.has_work());
  EXPECT_EQ(e.cache().free_blocks(), e.stats().kv_blocks_total);
}

TEST_F(EngineTest, LogprobsOfTheChosenToken) {
  Engine e(model_, {});
  RequestSpec r;
  r.id = 1;
  r.prompt = encode("The capital of France is");
  r.max_tokens = 2;
  r.top_logprobs = 3;
  std::vector<TokenEvent> evs;
  for (StepOutput o = e.step({.arrivals = {r}});; o = e.step({})) {
    for (auto& ev : o.events) evs.push_back(ev);
    if (!e.has_work()) break;
  }
  ASSERT_FALSE(evs.empty());
  ASSERT_EQ(evs[0].logprobs.size(), 1u);
  ASSERT_EQ(evs[0].top[0].size(), 3u);
  EXPECT_EQ(evs[0].top[0][0].token,
            evs[0].tokens[0]);  // greedy picks the most likely
  EXPECT_FLOAT_EQ(evs[0].top[0][0].logprob, evs[0].logprobs[0]);
  EXPECT_LE(evs[0].logprobs[0], 0.0f);
  EXPECT_GE(evs[0].top[0][0].logprob, evs[0].top[0][1].logprob);
}

TEST_F(EngineTest, DraftTreesVerifiedInOnePassGiveTheSameTokensInFewerIterations) {
  std::vector<RequestSpec> s = specs(kPrompts, 24);
  std::map<uint64_t, std::vector<int32_t>> want;
  for (const RequestSpec& r : s) want[r.id] = alone(r.prompt, 24);
  EngineOptions o;
  o.kv_cache_tokens = 4096;
  Engine plain(model_, o);
  int plain_iterations = 0;
  EXPECT_EQ(serve_drafted(plain, s, {}, 0, plain_iterations), want);

  Engine e(model_, o);
  int iterations = 0;
  EXPECT_EQ(serve_drafted(e, s, want, 4, iterations), want);
  EXPECT_GT(e.stats().accepted_tokens, 0);
  EXPECT_GT(e.stats().draft_steps, 0);
  EXPECT_GT(e.stats().accepted_tokens, 2 * e.stats().draft_steps);  // trees right for several tokens
  EXPECT_LT(iterations, plain_iterations / 2);                      // about five tokens per iteration instead of one
  EXPECT_EQ(e.cache().free_blocks(), e.stats().kv_blocks_total);

  // Trees that only ever miss cost nothing but their verification.
  std::map<uint64_t, std::vector<int32_t>> wrong = want;
  for (auto& [id, v] : wrong) {
    for (int32_t& t : v) t = (t + 7) % 1000;
  }
  Engine missed(model_, o);
  EXPECT_EQ(serve_drafted(missed, s, wrong, 3, iterations), want);
  EXPECT_EQ(missed.stats().accepted_tokens, 0);
  EXPECT_GT(missed.stats().draft_tokens, 0);
}

// The engine on the device-neutral forward pass (the CPU backend's operators; a GPU runs the same
// code): its cache's storage lives with the backend, so batching, draft trees and the branches
// kept from them go through it. Tokens equal each request's alone, in fewer iterations drafted.
TEST_F(EngineTest, OnTheDeviceForwardPassBatchingAndDraftTreesKeepTheTokens) {
  llm::ModelOptions mo;
  mo.device_forward = true;
  auto device = std::shared_ptr<const llm::LlamaModel>(
      llm::LlamaModel::load(llm::testing::default_model_path(), mo).value().release());
  const std::vector<RequestSpec> s = specs({kPrompts[0], kPrompts[2]}, 10);
  EngineOptions o;
  o.kv_cache_tokens = 1024;
  std::map<uint64_t, std::vector<int32_t>> want;
  for (const RequestSpec& r : s) {
    Engine one(device, o);
    int iterations = 0;
    want[r.id] = serve_drafted(one, {r}, {}, 0, iterations).at(r.id);
    ASSERT_EQ(want[r.id].size(), 10u);
  }
  Engine plain(device, o);
  int plain_iterations = 0;
  EXPECT_EQ(serve_drafted(plain, s, {}, 0, plain_iterations), want);
  Engine drafted(device, o);
  int iterations = 0;
  EXPECT_EQ(serve_drafted(drafted, s, want, 4, iterations), want);
  EXPECT_GT(drafted.stats().accepted_tokens, 0);
  EXPECT_LT(iterations, plain_iterations);
  EXPECT_EQ(drafted.cache().free_blocks(), drafted.stats().kv_blocks_total);
}

TEST_F(EngineTest, DraftTreesKeepSeededSamplingExact) {
  std::vector<RequestSpec> s = specs({kPrompts[0], kPrompts[1]}, 20);
  for (RequestSpec& r : s) {
    r.temperature = 0.9f;
    r.top_k = 40;
    r.seed = 1234 + r.id;
  }
  Engine plain(model_, {});
  int iterations = 0;
  auto want = serve_drafted(plain, s, {}, 0, iterations);
  Engine e(model_, {});
  EXPECT_EQ(serve_drafted(e, s, want, 3, iterations), want);
  EXPECT_GT(e.stats().accepted_tokens, 0);
}

TEST_F(EngineTest, LatencyCriticalArrivalBehind32BatchRequestsGetsItsFirstTokenWithinTwoIterations) {
  EngineOptions o;
  o.scheduler.max_num_seqs = 32;
  o.scheduler.max_num_batched_tokens = 512;
  o.kv_cache_tokens = 8192;
  Engine e(model_, o);
  std::vector<RequestSpec> batch;
  for (uint64_t i = 1; i <= 32; ++i) {
    RequestSpec r;
    r.id = i;
    r.prompt = encode(kPrompts[i % kPrompts.size()] + " (" + std::to_string(i) + ")");
    r.max_tokens = 200;
    r.ignore_eos = true;
    r.slo = static_cast<uint8_t>(Slo::kBatch);
    r.arrival_ns = detail::now_ns();
    batch.push_back(r);
  }
  e.step({.arrivals = batch});
  for (int i = 0; i < 3; ++i) e.step({});
  ASSERT_EQ(e.stats().running, 32);  // every slot taken by batch work, decoding

  RequestSpec lc;
  lc.id = 100;
  lc.prompt = encode("Quick: what is two plus two?");
  lc.max_tokens = 4;
  lc.slo = static_cast<uint8_t>(Slo::kLatencyCritical);
  lc.arrival_ns = detail::now_ns();
  int iterations = 0;
  bool first = false;
  for (StepInput in{.arrivals = {lc}}; !first && iterations < 10; in = {}) {
    ++iterations;
    for (const TokenEvent& ev : e.step(in).events) first |= ev.id == 100 && !ev.tokens.empty();
  }
  EXPECT_TRUE(first);
  EXPECT_LE(iterations, 2);
  EXPECT_EQ(e.stats().preemptions, 1);  // one batch request gave up its slot
}

TEST_F(EngineTest, SuffixDecodingGivesTheSameTokensInFewerIterations) {
  std::vector<std::string> prompts = kPrompts;
  prompts.push_back(kVerse + "life is but a dream. " + kVerse + "life is but a dream. " + kVerse);
  prompts.push_back("1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3,");
  std::vector<RequestSpec> s = specs(prompts, 32);
  // Iterations in which the repetitive requests (the last two) got tokens.
  auto repetitive_iterations = [&](const Served& r) { return r.token_iterations.at(7) + r.token_iterations.at(8); };
  Engine plain(model_, {.kv_cache_tokens = 4096});
  const Served want = serve_speculating(plain, s, nullptr);
  for (const RequestSpec& r : s) EXPECT_EQ(want.tokens.at(r.id), alone(r.prompt, 32)) << "request " << r.id;
  Engine e(model_, {.kv_cache_tokens = 4096});
  SpeculativeDecoding spec(std::make_unique<SuffixSpeculator>(), {});
  const Served got = serve_speculating(e, s, &spec);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_GT(e.stats().accepted_tokens, 16);
  EXPECT_LT(repetitive_iterations(got), repetitive_iterations(want));
}

TEST_F(EngineTest, ARequestMayTurnSpeculationOff) {
  std::vector<RequestSpec> s =
      specs({kVerse + "life is but a dream. " + kVerse, kVerse + "life is but a dream. " + kVerse}, 16);
  s[0].speculate = 0;
  Engine e(model_, {.kv_cache_tokens = 4096});
  SpeculativeDecoding spec(std::make_unique<SuffixSpeculator>(), {});
  const Served got = serve_speculating(e, s, &spec);
  EXPECT_EQ(got.drafted.at(1), 0);
  EXPECT_GT(got.drafted.at(2), 0);
  EXPECT_EQ(got.tokens.at(1), alone(s[0].prompt, 16));
  EXPECT_EQ(got.tokens.at(2), got.tokens.at(1));
}

TEST_F(EngineTest, MalformedDraftTreesAreIgnored) {
  std::vector<RequestSpec> s = specs({kPrompts[0]}, 6);
  const std::vector<int32_t> want = alone(s[0].prompt, 6);
  Engine e(model_, {});
  std::vector<int32_t> got;
  StepInput in{.arrivals = s};
  while (true) {
    for (const TokenEvent& ev : e.step(in).events) got.insert(got.end(), ev.tokens.begin(), ev.tokens.end());
    if (!e.has_work()) break;
    in = {};
    in.drafts = {{.id = 1, .tokens = {want[got.size()]}, .parents = {0}},     // parent not earlier
                 {.id = 1, .tokens = {-5}, .parents = {-1}},                  // not a token
                 {.id = 1, .tokens = {1, 2}, .parents = {-1}},                // sizes differ
                 {.id = 77, .tokens = {want[got.size()]}, .parents = {-1}}};  // no such request
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(e.stats().draft_tokens, 0);
}

// A random adapter on `targets` of the model (both halves random, so it changes the output).
std::shared_ptr<const llm::LoraAdapter> random_adapter(const llm::ModelConfig& c, std::vector<llm::LoraTarget> targets,
                                                       uint64_t seed) {
  auto a = llm::LoraAdapter::create(c, {.rank = 4, .alpha = 8, .targets = std::move(targets)}, seed);
  EXPECT_TRUE(a.ok());
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (auto& layer : a->layers) {
    for (llm::LoraMatrix& m : layer) {
      for (float& v : m.b) v = normal(rng);
    }
  }
  return std::make_shared<const llm::LoraAdapter>(std::move(a).value());
}

TEST_F(EngineTest, RequestsThroughDifferentAdaptersShareIterationsAndGetWhatTheyGetAlone) {
  using llm::LoraTarget;
  const llm::ModelConfig& c = model_->config();
  Engine e(model_, {});
  ASSERT_TRUE(e.add_adapter("qv", random_adapter(c, {LoraTarget::kQ, LoraTarget::kV}, 1)).is_ok());
  ASSERT_TRUE(
      e.add_adapter("mlp", random_adapter(c, {LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown}, 2)).is_ok());
  ASSERT_TRUE(e.add_adapter("all", random_adapter(c,
                                                  {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV, LoraTarget::kO,
                                                   LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown},
                                                  3))
                  .is_ok());
  EXPECT_EQ(e.add_adapter("qv", random_adapter(c, {LoraTarget::kQ}, 4)).code(), StatusCode::kAlreadyExists);
  const std::vector<std::string> adapters = {"qv", "", "mlp", "all", "qv"};
  std::vector<RequestSpec> specs;
  std::map<uint64_t, std::vector<int32_t>> alone;
  for (size_t k = 0; k < adapters.size(); ++k) {
    RequestSpec s{
        .id = k + 1, .prompt = encode(k % 2 == 0 ? "The capital of France is" : "Once upon a time"), .max_tokens = 12};
    s.ignore_eos = true;
    s.adapter = adapters[k];
    specs.push_back(s);
    alone[s.id] = serve(e, {s})[s.id];
  }
  EXPECT_EQ(serve(e, specs, /*stagger=*/2), alone);
  EXPECT_EQ(alone[2], this->alone(specs[1].prompt, 12)) << "no adapter: the base model's tokens";
  RequestSpec base = specs[0];
  base.adapter.clear();
  EXPECT_NE(alone[1], serve(e, {base})[1]) << "the adapter changes the output";

  // Unloaded while a request runs: it finishes with the adapter; new requests naming it fail.
  RequestSpec running = specs[0];
  running.id = 50;
  StepOutput first = e.step({.arrivals = {running}});
  ASSERT_TRUE(e.remove_adapter("qv").is_ok());
  EXPECT_EQ(e.remove_adapter("qv").code(), StatusCode::kNotFound);
  std::vector<int32_t> got = first.events.empty() ? std::vector<int32_t>() : first.events[0].tokens;
  RequestSpec late = specs[0];
  late.id = 51;
  bool refused = false;
  for (StepInput in{.arrivals = {late}}; e.has_work() || !in.arrivals.empty(); in = {}) {
    for (const TokenEvent& ev : e.step(in).events) {
      if (ev.id == 51)
        refused = ev.finish == static_cast<uint8_t>(Finish::kError) &&
                  ev.error.find("no LoRA adapter named 'qv'") != std::string::npos;
      if (ev.id == 50) got.insert(got.end(), ev.tokens.begin(), ev.tokens.end());
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(got, alone[1]);
}

}  // namespace
}  // namespace weft::serving
