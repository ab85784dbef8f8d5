#include "llm/llama_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "llm/tiny_model_for_test.h"

namespace weft::llm {
namespace {

std::unique_ptr<LlamaModel> tiny(const testing::TinyModelSpec& spec = {}) {
  auto f = GgufFile::from_bytes(testing::tiny_model_bytes(spec));
  EXPECT_TRUE(f.ok()) << f.status();
  auto m = LlamaModel::from_file(std::move(*f));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

void expect_close(const float* a, const float* b, size_t n, float tol = 1e-4f) {
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], tol * (1.0f + std::fabs(b[i]))) << "at " << i;
}

// Logits after running `ids` as one chain on a fresh sequence.
std::vector<float> chain_logits(const LlamaModel& m, const std::vector<int32_t>& ids) {
  KvCache kv = m.make_cache(128);
  int seq = kv.add_sequence();
  Batch b;
  b.add_chain(seq, 0, ids);
  return *m.forward(b, kv);
}

// Computes and commits the prompt 1, 2, 3 in `seq`.
void commit_prompt(const LlamaModel& m, KvCache& kv, int seq) {
  Batch prompt;
  prompt.add_chain(seq, 0, {1, 2, 3});
  ASSERT_TRUE(m.forward(prompt, kv).ok());
  kv.commit(seq, 3);
}

TEST(LlamaModel, TreeVerificationMatchesEachPath) {
  auto m = tiny();
  const int vocab = m->config().vocab;
  KvCache kv = m->make_cache(128);
  const int seq = kv.add_sequence();
  ASSERT_NO_FATAL_FAILURE(commit_prompt(*m, kv, seq));
  // Tree after the prompt:   4 ─┬─ 5 ── 6
  //                              └─ 7
  //                          8 (a second root)
  Batch tree;
  tree.tokens = {{4, seq, 3, -1, true}, {5, seq, 4, 0, true}, {7, seq, 4, 0, true}, {6, seq, 5, 1, true},
                 {8, seq, 3, -1, true}};
  auto got = m->forward(tree, kv);
  ASSERT_TRUE(got.ok()) << got.status();
  const std::vector<std::vector<int32_t>> paths{{1, 2, 3, 4}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 7}, {1, 2, 3, 4, 5, 6},
                                                {1, 2, 3, 8}};
  for (size_t i = 0; i < paths.size(); ++i) {
    expect_close(&(*got)[i * vocab], chain_logits(*m, paths[i]).data(), static_cast<size_t>(vocab));
  }
  // Accept 4 -> 5 -> 6 (pending slots 0, 1, 3), then decode on: same as the straight path.
  ASSERT_TRUE(kv.keep_branch(seq, std::vector<int>{0, 1, 3}).is_ok());
  EXPECT_EQ(kv.committed(seq), 6);
  Batch next;
  next.add_chain(seq, 6, {9});
  auto after = m->forward(next, kv);
  ASSERT_TRUE(after.ok());
  expect_close(after->data(), chain_logits(*m, {1, 2, 3, 4, 5, 6, 9}).data(), static_cast<size_t>(vocab));
}

TEST(LlamaModel, TreesGrowOverSeveralPasses) {
  auto m = tiny();
  const int vocab = m->config().vocab;
  KvCache kv = m->make_cache(128);
  const int seq = kv.add_sequence();
  ASSERT_NO_FATAL_FAILURE(commit_prompt(*m, kv, seq));
  // Pass 1 writes 4 -> {5, 7}; pass 2 grows 6 below 5 and 9 below 7, as a draft model expands a
  // speculation tree level by level.
  Batch level1;
  level1.tokens = {{4, seq, 3, -1, true}, {5, seq, 4, 0, true}, {7, seq, 4, 0, true}};
  ASSERT_TRUE(m->forward(level1, kv).ok());
  Batch level2;
  level2.tokens = {{6, seq, 5, -1, true, SumLayout::kAuto, /*pending_parent=*/1},
                   {9, seq, 5, -1, true, SumLayout::kAuto, /*pending_parent=*/2}};
  auto got = m->forward(level2, kv);
  ASSERT_TRUE(got.ok()) << got.status();
  expect_close(&(*got)[0], chain_logits(*m, {1, 2, 3, 4, 5, 6}).data(), static_cast<size_t>(vocab));
  expect_close(&(*got)[static_cast<size_t>(vocab)], chain_logits(*m, {1, 2, 3, 4, 7, 9}).data(),
               static_cast<size_t>(vocab));
  EXPECT_EQ(kv.pending(seq), 5);
  Batch stale;  // a pending parent that does not exist
  stale.tokens = {{6, seq, 5, -1, true, SumLayout::kAuto, 5}};
  EXPECT_EQ(m->forward(stale, kv).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(kv.keep_branch(seq, std::vector<int>{0, 2, 4}).is_ok());  // 4 -> 7 -> 9
  Batch next;
  next.add_chain(seq, 6, {8});
  auto after = m->forward(next, kv);
  ASSERT_TRUE(after.ok());
  expect_close(after->data(), chain_logits(*m, {1, 2, 3, 4, 7, 9, 8}).data(), static_cast<size_t>(vocab));
}

TEST(LlamaModel, BatchedSequencesMatchEachAlone) {
  auto m = tiny();
  const int vocab = m->config().vocab;
  const std::vector<std::vector<int32_t>> prompts{{3, 1, 4, 1, 5}, {9, 2}, {6, 5, 3, 5, 8, 9, 7}};
  KvCache kv = m->make_cache(256);
  Batch b;
  for (const auto& p : prompts) b.add_chain(kv.add_sequence(), 0, p);
  auto got = m->forward(b, kv);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), prompts.size() * vocab);
  for (size_t i = 0; i < prompts.size(); ++i) {
    expect_close(&(*got)[i * vocab], chain_logits(*m, prompts[i]).data(), static_cast<size_t>(vocab));
  }
}

TEST(LlamaModel, ChunkedPrefillMatchesWholePrefill) {
  auto m = tiny();
  const int vocab = m->config().vocab;
  const std::vector<int32_t> ids{7, 3, 9, 12, 4, 4, 30, 2};
  KvCache kv = m->make_cache(128);
  int seq = kv.add_sequence();
  std::vector<float> last;
  for (size_t start = 0; start < ids.size(); start += 3) {
    std::vector<int32_t> chunk(ids.begin() + static_cast<std::ptrdiff_t>(start),
                               ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), start + 3)));
    Batch b;
    b.add_chain(seq, kv.committed(seq), chunk);
    last = *m->forward(b, kv);
    kv.commit(seq, static_cast<int>(chunk.size()));
  }
  expect_close(last.data(), chain_logits(*m, ids).data(), static_cast<size_t>(vocab));
}

TEST(LlamaModel, MalformedBatchesAreRejected) {
  auto m = tiny();
  KvCache kv = m->make_cache(32);
  int seq = kv.add_sequence();
  Batch bad_token;
  bad_token.add_chain(seq, 0, {999});
  EXPECT_EQ(m->forward(bad_token, kv).status().code(), StatusCode::kInvalidArgument);
  Batch bad_parent;
  bad_parent.tokens = {{1, seq, 0, 0, true}};
  EXPECT_EQ(m->forward(bad_parent, kv).status().code(), StatusCode::kInvalidArgument);
  Batch too_long;
  too_long.add_chain(seq, 0, std::vector<int32_t>(40, 1));
  EXPECT_EQ(m->forward(too_long, kv).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(kv.committed(seq), 0);
}

TEST(LlamaModel, RefusesUnsupportedArchitecturesAndBrokenFiles) {
  testing::TinyModelSpec phi;
  phi.arch = "phi3";
  auto f = GgufFile::from_bytes(testing::tiny_model_bytes(phi));
  ASSERT_TRUE(f.ok());
  auto m = LlamaModel::from_file(std::move(*f));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unsupported model architecture 'phi3'"), std::string::npos);

  GgufWriter w;  // metadata but no tensors
  w.add_string("general.architecture", "llama");
  w.add_uint32("llama.block_count", 1);
  w.add_uint32("llama.embedding_length", 8);
  w.add_uint32("llama.feed_forward_length", 8);
  w.add_uint32("llama.attention.head_count", 2);
  auto empty = LlamaModel::from_file(std::move(*GgufFile::from_bytes(w.bytes())));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("token_embd.weight"), std::string::npos);
}

TEST(LlamaModel, LoadsTheDefaultModel) {
  const std::string path = std::string(WEFT_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "run scripts/setup to fetch " << path;
  auto m = LlamaModel::load(path);
  ASSERT_TRUE(m.ok()) << m.status();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab, 49152);
  EXPECT_FLOAT_EQ(c.rope_base, 100000.0f);
}

}  // namespace
}  // namespace weft::llm
