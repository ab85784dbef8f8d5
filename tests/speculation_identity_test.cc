// Speculation never changes greedy output: 100 prompts on the real default model, through the
// engine with every speculator — SuffixDecoding, a draft model (the model's own first layers), and
// merged trees — all batched together and each request alone, against the engine without
// speculation. Prints each speculator's acceptance, so a run also shows how much each one proposes.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>

#include "llm/default_model_for_test.h"
#include "serving/draft_model_speculator.h"
#include "serving/engine.h"
#include "serving/merged_speculator.h"
#include "serving/speculative_decoding.h"
#include "serving/suffix_speculator.h"

namespace weft::serving {
namespace {

constexpr int kMaxTokens = 10;
constexpr int kDraftLayers = 4;
const DraftModelOptions kDraft{.expansion = {1, 1, 2, 1}, .kv_cache_tokens = 4096};

// 100 prompts: questions, instructions and text that repeats itself (where suffix trees match).
std::vector<std::string> prompts() {
  const std::vector<std::string> topics = {"the moon", "bread",    "rivers", "chess",  "bees",
                                           "glass",    "printing", "tides",  "copper", "owls"};
  const std::vector<std::string> forms = {
      "Tell me one fact about {}.",
      "Write a short poem about {}.",
      "Explain {} to a child.",
      "What is the history of {}?",
      "List three words related to {}:",
      "Q: Why do people study {}?\nA:",
      "Repeat after me: I like {}. I like {}. I like {}. I like",
      "{}, {}, {}, {}, {},",
      "def describe():\n    return \"{}\"\n\ndef describe_again():\n    return \"",
      "The word is {}. Spell it: {} is spelled",
  };
  std::vector<std::string> out;
  for (const std::string& form : forms) {
    for (const std::string& topic : topics) {
      std::string p;
      for (size_t i = 0; i < form.size(); ++i) {
        if (form.compare(i, 2, "{}") == 0) {
          p += topic;
          ++i;
        } else {
          p += form[i];
        }
      }
      out.push_back(p);
    }
  }
  return out;
}

class SpeculationIdentityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const llm::testing::DefaultModel target = llm::testing::load_default_model({.threads = 2});
    if (!target.model) return;
    model_ = target.model;
    draft_ = llm::testing::load_default_model({.threads = 2, .layers = kDraftLayers}).model;
    ASSERT_TRUE(draft_);
    for (const std::string& p : prompts()) {
      RequestSpec s;
      s.id = specs_.size() + 1;
      s.prompt = *target.tokenizer->encode(p);
      s.max_tokens = kMaxTokens;
      specs_.push_back(s);
    }
  }
  static void TearDownTestSuite() {
    model_.reset();
    draft_.reset();
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "run scripts/setup to fetch the default model";
  }

  // Tokens per request; `alone`: one request at a time. Counts acceptance into `stats`.
  static std::map<uint64_t, std::vector<int32_t>> run(const std::function<std::unique_ptr<Speculator>()>& make,
                                                      bool alone, EngineStats& stats) {
    std::map<uint64_t, std::vector<int32_t>> out;
    Engine e(model_, {.kv_cache_tokens = 4096});
    std::unique_ptr<SpeculativeDecoding> spec;
    // Every proposed node verified, whatever it costs: the more trees, the more the test checks.
    if (make)
      spec = std::make_unique<SpeculativeDecoding>(
          make(), SpeculationOptions{.cold_min_prob = 0, .policy = SelectionPolicy::kEvery});
    auto serve = [&](const std::vector<RequestSpec>& specs) {
      for (StepInput in{.arrivals = specs};; in = {}) {
        if (spec) spec->prepare(e, in);
        const StepOutput o = e.step(in);
        if (spec) spec->observe(o);
        for (const TokenEvent& ev : o.events) {
          EXPECT_NE(ev.finish, static_cast<uint8_t>(Finish::kError)) << ev.error;
          out[ev.id].insert(out[ev.id].end(), ev.tokens.begin(), ev.tokens.end());
        }
        if (!e.has_work()) break;
      }
    };
    if (alone) {
      for (const RequestSpec& s : specs_) serve({s});
    } else {
      serve(specs_);
    }
    stats = e.stats();
    return out;
  }

  static void check(const char* name, const std::function<std::unique_ptr<Speculator>()>& make) {
    EngineStats none;
    static const std::map<uint64_t, std::vector<int32_t>> want = run(nullptr, false, none);
    for (bool alone : {false, true}) {
      EngineStats stats;
      const auto got = run(make, alone, stats);
      for (const RequestSpec& s : specs_) {
        ASSERT_EQ(got.at(s.id), want.at(s.id)) << name << (alone ? " alone" : " batched") << ", request " << s.id;
      }
      std::printf("%-8s %-7s drafted %5lld accepted %5lld (%.0f%%) in %4lld verify steps: %.2f tokens per step\n", name,
                  alone ? "alone" : "batched", static_cast<long long>(stats.draft_tokens),
                  static_cast<long long>(stats.accepted_tokens),
                  100.0 * static_cast<double>(stats.accepted_tokens) / std::max<int64_t>(1, stats.draft_tokens),
                  static_cast<long long>(stats.draft_steps),
                  1.0 + static_cast<double>(stats.accepted_tokens) / std::max<int64_t>(1, stats.draft_steps));
      EXPECT_GT(stats.accepted_tokens, 0) << name;
    }
  }

  static inline std::shared_ptr<const llm::LlamaModel> model_, draft_;
  static inline std::vector<RequestSpec> specs_;
};

TEST_F(SpeculationIdentityTest, Suffix) {
  check("suffix", [] { return std::make_unique<SuffixSpeculator>(); });
}

TEST_F(SpeculationIdentityTest, DraftModel) {
  check("draft", [] { return std::make_unique<DraftModelSpeculator>(draft_, kDraft); });
}

TEST_F(SpeculationIdentityTest, Merged) {
  check("merged", [] {
    return std::make_unique<MergedSpeculator>(std::make_unique<SuffixSpeculator>(),
                                              std::make_unique<DraftModelSpeculator>(draft_, kDraft));
  });
}

}  // namespace
}  // namespace weft::serving
