// Generation on the real default model: the generate() loop against llama.cpp's greedy tokens,
// sampling determinism, stop strings, limits, and batches against each request alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llm/generator.h"

namespace weft::llm {
namespace {

class Generation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = std::string(WEFT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (!std::filesystem::exists(path)) return;
    auto m = LlamaModel::load(path);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = m->release();
    auto t = Tokenizer::from_gguf(model_->file());
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = new Tokenizer(std::move(*t));
    data_ = new nlohmann::json(nlohmann::json::parse(std::ifstream(std::string(WEFT_SOURCE_DIR) + "/tests/data/smollm2_greedy.json")));
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "run scripts/setup to fetch the default model";
  }
  static std::vector<int32_t> prompt(int i) { return (*data_)["cases"][i]["prompt_tokens"]; }
  static std::vector<int32_t> reference(int i) { return (*data_)["cases"][i]["generated"]; }

  static inline LlamaModel* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
  static inline nlohmann::json* data_ = nullptr;
};

TEST_F(Generation, GreedyEqualsLlamaCppAndStreamsItsText) {
  for (int i = 0; i < 3; ++i) {
    const auto want = reference(i);
    std::string streamed;
    auto g = generate(*model_, *tokenizer_, prompt(i), {.max_tokens = static_cast<int>(want.size())},
                      [&](std::string_view t) {
                        streamed += t;
                        return true;
                      });
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(g->tokens, want);
    EXPECT_EQ(streamed, g->text);
    EXPECT_EQ(g->prompt_tokens, static_cast<int>(prompt(i).size()));
    std::vector<int32_t> text_tokens = want;
    if (g->finish == FinishReason::kEndOfGeneration) text_tokens.pop_back();
    EXPECT_EQ(g->text, tokenizer_->decode(text_tokens));
  }
}

TEST_F(Generation, SamplingIsDeterministicPerSeed) {
  auto run = [&](uint64_t seed) {
    auto g = generate(*model_, *tokenizer_, prompt(0), {.max_tokens = 24, .sampling = {.temperature = 1.0f, .seed = seed}, .ignore_eos = true});
    EXPECT_TRUE(g.ok());
    return g->tokens;
  };
  EXPECT_EQ(run(11), run(11));
  EXPECT_NE(run(11), run(12));
}

TEST_F(Generation, StopStringsCutTheTextBeforeThem) {
  auto full = generate(*model_, *tokenizer_, prompt(0), {.max_tokens = 48, .ignore_eos = true});
  ASSERT_TRUE(full.ok());
  ASSERT_GT(full->text.size(), 40u);
  const std::string stop = full->text.substr(20, 6);
  const size_t at = full->text.find(stop);
  std::string streamed;
  auto g = generate(*model_, *tokenizer_, prompt(0), {.max_tokens = 48, .stop = {"never appears", stop}, .ignore_eos = true},
                    [&](std::string_view t) {
                      streamed += t;
                      return true;
                    });
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->finish, FinishReason::kStopString);
  EXPECT_EQ(g->text, full->text.substr(0, at));
  EXPECT_EQ(streamed, g->text);  // no part of the stop string was streamed
}

TEST_F(Generation, LimitsAndCancellation) {
  auto g = generate(*model_, *tokenizer_, prompt(1), {.max_tokens = 5, .ignore_eos = true});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->tokens.size(), 5u);
  EXPECT_EQ(g->finish, FinishReason::kLength);
  int calls = 0;
  auto c = generate(*model_, *tokenizer_, prompt(1), {.max_tokens = 30, .ignore_eos = true}, [&](std::string_view) {
    return ++calls < 2;
  });
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->finish, FinishReason::kCancelled);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(generate(*model_, *tokenizer_, {}, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(generate(*model_, *tokenizer_, prompt(1), {.sampling = {.top_p = 2.0f}}).status().code(),
            StatusCode::kInvalidArgument);
}

// Requests of different lengths in one batch (one prefill pass, then decode steps with one
// token per request) get exactly the logits, hence the tokens, they get alone.
TEST_F(Generation, BatchedRequestsEqualEachAlone) {
  const int steps = 12, n = 4;
  const int vocab = model_->config().vocab;
  auto argmax = [&](const float* row) { return static_cast<int32_t>(std::max_element(row, row + vocab) - row); };
  std::vector<std::vector<int32_t>> alone(n);
  for (int r = 0; r < n; ++r) {
    KvCache kv = model_->make_cache(512);
    const int seq = kv.add_sequence();
    Batch b;
    b.add_chain(seq, 0, prompt(r));
    auto logits = model_->forward(b, kv);
    ASSERT_TRUE(logits.ok());
    kv.commit(seq, static_cast<int>(prompt(r).size()));
    for (int s = 0; s < steps; ++s) {
      alone[r].push_back(argmax(logits->data()));
      Batch step;
      step.add_chain(seq, kv.committed(seq), {alone[r].back()});
      logits = model_->forward(step, kv);
      ASSERT_TRUE(logits.ok());
      kv.commit(seq, 1);
    }
  }
  KvCache kv = model_->make_cache(2048);
  std::vector<int> seqs;
  Batch b;
  for (int r = 0; r < n; ++r) {
    seqs.push_back(kv.add_sequence());
    b.add_chain(seqs[r], 0, prompt(r));
  }
  auto logits = model_->forward(b, kv);
  ASSERT_TRUE(logits.ok());
  std::vector<std::vector<int32_t>> batched(n);
  for (int r = 0; r < n; ++r) kv.commit(seqs[r], static_cast<int>(prompt(r).size()));
  for (int s = 0; s < steps; ++s) {
    Batch step;
    for (int r = 0; r < n; ++r) {
      batched[r].push_back(argmax(logits->data() + static_cast<size_t>(r) * vocab));
      step.add_chain(seqs[r], kv.committed(seqs[r]), {batched[r].back()});
    }
    logits = model_->forward(step, kv);
    ASSERT_TRUE(logits.ok());
    for (int r = 0; r < n; ++r) kv.commit(seqs[r], 1);
  }
  for (int r = 0; r < n; ++r) EXPECT_EQ(batched[r], alone[r]) << "request " << r;
  std::set<size_t> lengths;
  for (int r = 0; r < n; ++r) lengths.insert(prompt(r).size());
  EXPECT_GT(lengths.size(), 1u) << "the prompts should differ in length";
}

}  // namespace
}  // namespace weft::llm
