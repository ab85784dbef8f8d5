// The device-neutral forward pass (device_model.h): on the CPU backend against the reference
// forward pass (always), and on CUDA against the CPU's fast path on a model of SmolLM2-135M's shape
// (GPU machines; skipped elsewhere).
#include "llm/device_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "llm/llama_model.h"
#include "llm/random_model_for_test.h"
#include "llm/tiny_model_for_test.h"

namespace weft::llm {
namespace {

std::unique_ptr<LlamaModel> from_bytes(const std::string& bytes, const ModelOptions& options) {
  auto f = GgufFile::from_bytes(bytes);
  EXPECT_TRUE(f.ok()) << f.status();
  auto m = LlamaModel::from_file(std::move(*f), options);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

int argmax(const float* row, int n) { return static_cast<int>(std::max_element(row, row + n) - row); }

// Relative L2 distance of two logit rows.
double rel_error(const float* a, const float* b, int n) {
  double num = 0, den = 0;
  for (int i = 0; i < n; ++i) {
    num += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// A prompt chain, then `steps` single-token decode steps feeding back the reference's argmax;
// returns every logit row of both models.
void run_both(const LlamaModel& a, const LlamaModel& b, const std::vector<int32_t>& prompt, int steps,
              std::vector<float>* la, std::vector<float>* lb) {
  KvCache ka = a.new_cache(512).value(), kb = b.new_cache(512).value();
  const int sa = ka.add_sequence(), sb = kb.add_sequence();
  Batch p;
  p.add_chain(sa, 0, prompt);
  for (auto& t : p.tokens) t.logits = true;
  *la = a.forward(p, ka).value();
  for (auto& t : p.tokens) t.seq = sb;
  *lb = b.forward(p, kb).value();
  ka.commit(sa, static_cast<int>(prompt.size()));
  kb.commit(sb, static_cast<int>(prompt.size()));
  const int vocab = a.config().vocab;
  int next = argmax(&lb->back() - vocab + 1, vocab);
  for (int s = 0; s < steps; ++s) {
    const int pos = static_cast<int>(prompt.size()) + s;
    Batch da, db;
    da.add_chain(sa, pos, {next});
    db.add_chain(sb, pos, {next});
    std::vector<float> ra = a.forward(da, ka).value(), rb = b.forward(db, kb).value();
    ka.commit(sa, 1);
    kb.commit(sb, 1);
    la->insert(la->end(), ra.begin(), ra.end());
    lb->insert(lb->end(), rb.begin(), rb.end());
    next = argmax(rb.data(), vocab);
  }
}

TEST(DeviceForwardOnCpu, MatchesTheReferenceForwardPass) {
  for (const char* arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    testing::TinyModelSpec spec;
    spec.arch = arch;
    const std::string bytes = testing::tiny_model_bytes(spec);
    ModelOptions ref_options, dev_options;
    ref_options.mode = ComputeMode::kReference;
    dev_options.device_forward = true;
    auto ref = from_bytes(bytes, ref_options), dev = from_bytes(bytes, dev_options);
    ASSERT_TRUE(ref && dev);
    EXPECT_EQ(dev->device_description(), "cpu (reference operators)");
    std::vector<float> lr, ld;
    run_both(*ref, *dev, {1, 5, 9, 2, 7, 7, 3}, 6, &lr, &ld);
    ASSERT_EQ(lr.size(), ld.size());
    const int vocab = ref->config().vocab;
    for (size_t r = 0; r < lr.size() / vocab; ++r) {
      // The device pass keeps fp16 keys and values; the reference float32.
      EXPECT_LT(rel_error(&ld[r * vocab], &lr[r * vocab], vocab), 5e-3) << "row " << r;
    }
  }
}

// A tree verified in one pass, then one branch kept (the cache's storage moves slots on the
// device): continuing from it gives the logits of having decoded that branch as a chain.
void expect_tree_then_branch_matches_chain(const LlamaModel& m, double tolerance) {
  const int vocab = m.config().vocab;
  KvCache tree_kv = m.new_cache(256).value(), chain_kv = m.new_cache(256).value();
  const int ts = tree_kv.add_sequence(), cs = chain_kv.add_sequence();
  const std::vector<int32_t> prompt = {4, 8, 15, 16, 23, 42};
  for (auto [kv, s] : {std::pair{&tree_kv, ts}, std::pair{&chain_kv, cs}}) {
    Batch p;
    p.add_chain(s, 0, prompt);
    ASSERT_TRUE(m.forward(p, *kv).ok());
    kv->commit(s, static_cast<int>(prompt.size()));
  }
  // Tree: 10 -> {11 -> 13, 12 -> 14}; keep 10, 12, 14.
  const int P = static_cast<int>(prompt.size());
  Batch tree;
  tree.tokens = {{10, ts, P, -1, true},
                 {11, ts, P + 1, 0, true},
                 {12, ts, P + 1, 0, true},
                 {13, ts, P + 2, 1, true},
                 {14, ts, P + 2, 2, true}};
  std::vector<float> tl = m.forward(tree, tree_kv).value();
  const int keep[] = {0, 2, 4};
  ASSERT_TRUE(tree_kv.keep_branch(ts, keep).is_ok());
  Batch chain;
  chain.add_chain(cs, P, {10, 12, 14});
  for (auto& t : chain.tokens) t.logits = true;
  std::vector<float> cl = m.forward(chain, chain_kv).value();
  chain_kv.commit(cs, 3);
  for (int k = 0; k < 3; ++k) {
    EXPECT_LT(rel_error(&tl[keep[k] * vocab], &cl[k * vocab], vocab), tolerance) << "branch token " << k;
  }
  Batch next_t, next_c;
  next_t.add_chain(ts, P + 3, {7});
  next_c.add_chain(cs, P + 3, {7});
  std::vector<float> a = m.forward(next_t, tree_kv).value(), b = m.forward(next_c, chain_kv).value();
  EXPECT_LT(rel_error(a.data(), b.data(), vocab), tolerance);
}

TEST(DeviceForwardOnCpu, TreeThenKeptBranchMatchesChain) {
  ModelOptions options;
  options.device_forward = true;
  auto m = from_bytes(testing::tiny_model_bytes(), options);
  ASSERT_TRUE(m);
  expect_tree_then_branch_matches_chain(*m, 1e-5);
}

// Megatron-style sharding over ranks that are threads (the fake communicator) gives the one-rank
// logits, for llama and qwen2 (whose q/k/v biases are split too), trees and kept branches included.
TEST(DeviceForwardOnCpu, TensorParallelRanksMatchOneRank) {
  for (const char* arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    testing::TinyModelSpec spec;
    spec.arch = arch;
    const std::string bytes = testing::tiny_model_bytes(spec);
    ModelOptions one, two;
    one.device_forward = true;
    two.device_forward = true;
    two.tensor_parallel = 2;
    auto a = from_bytes(bytes, one), b = from_bytes(bytes, two);
    ASSERT_TRUE(a && b);
    EXPECT_NE(b->device_description().find("tensor-parallel over 2 ranks"), std::string::npos);
    std::vector<float> la, lb;
    run_both(*a, *b, {3, 1, 4, 1, 5, 9, 2, 6}, 5, &la, &lb);
    const int vocab = a->config().vocab;
    for (size_t r = 0; r < la.size() / vocab; ++r) {
      // Partial sums added in another order, then rounded to fp16 in the KV cache: ~1e-5 apart.
      EXPECT_LT(rel_error(&lb[r * vocab], &la[r * vocab], vocab), 1e-4) << "row " << r;
    }
    expect_tree_then_branch_matches_chain(*b, 1e-5);
  }
  // Shapes that do not split are refused by name.
  ModelOptions three;
  three.device_forward = true;
  three.tensor_parallel = 3;
  auto f = GgufFile::from_bytes(testing::tiny_model_bytes());
  ASSERT_TRUE(f.ok());
  auto m = LlamaModel::from_file(std::move(*f), three);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("over 3 ranks"), std::string::npos) << m.status();
}

// A cache the device cannot hold: new_cache says so, and make_cache's cache (what the serving
// engine takes) fails its first pass with kResourceExhausted, not a confusing error.
TEST(DeviceForwardOnCpu, ACacheThatCannotBeMadeReportsResourceExhausted) {
  ModelOptions options;
  options.device_forward = true;
  auto m = from_bytes(testing::tiny_model_bytes(), options);
  ASSERT_TRUE(m);
  constexpr int kHuge = INT32_MAX;  // tokens: more slots than a pool can address
  Result<KvCache> kv = m->new_cache(kHuge, 1 << 20);
  ASSERT_FALSE(kv.ok());
  EXPECT_EQ(kv.status().code(), StatusCode::kResourceExhausted) << kv.status();
  KvCache empty = m->make_cache(kHuge, 1 << 20);
  const int s = empty.add_sequence();
  Batch b;
  b.add_chain(s, 0, {1, 2});
  Result<std::vector<float>> r = m->forward(b, empty);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status();
}

TEST(DeviceForwardOnCpu, RejectsACacheFromElsewhere) {
  ModelOptions options;
  options.device_forward = true;
  auto m = from_bytes(testing::tiny_model_bytes(), options);
  auto cpu = from_bytes(testing::tiny_model_bytes(), {});
  ASSERT_TRUE(m && cpu);
  KvCache foreign = cpu->make_cache(64);
  const int s = foreign.add_sequence();
  Batch b;
  b.add_chain(s, 0, {1, 2});
  Result<std::vector<float>> r = m->forward(b, foreign);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cache"), std::string::npos) << r.status();
  // Nothing was left pending.
  EXPECT_EQ(foreign.pending(s), 0);
}

TEST(DeviceForwardOnCpu, CudaWithoutADeviceIsAClearError) {
  if (kernels::backend_available(kernels::Device::kCuda)) GTEST_SKIP() << "this machine has a CUDA device";
  auto f = GgufFile::from_bytes(testing::tiny_model_bytes());
  ASSERT_TRUE(f.ok());
  ModelOptions options;
  options.device = kernels::Device::kCuda;
  auto m = LlamaModel::from_file(std::move(*f), options);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable) << m.status();
  EXPECT_NE(m.status().message().find("CUDA"), std::string::npos) << m.status();
}

// ---- CUDA ------------------------------------------------------------------------------------

class CudaModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!kernels::backend_available(kernels::Device::kCuda)) return;
    path_ = (std::filesystem::temp_directory_path() / "weft_smollm2_shape_q4_1.gguf").string();
    ASSERT_TRUE(testing::write_random_model(path_).is_ok());
    ModelOptions cuda;
    cuda.device = kernels::Device::kCuda;
    auto cpu = LlamaModel::load(path_);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    auto gpu = LlamaModel::load(path_, cuda);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    cpu_ = std::move(cpu).value().release();
    gpu_ = std::move(gpu).value().release();
  }
  static void TearDownTestSuite() {
    delete cpu_;
    delete gpu_;
    cpu_ = gpu_ = nullptr;
    if (!path_.empty()) std::filesystem::remove(path_);
  }
  void SetUp() override {
    if (gpu_ == nullptr) GTEST_SKIP() << "no CUDA device here";
  }
  static std::vector<int32_t> prompt(unsigned seed, int length) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> id(0, 49151);
    std::vector<int32_t> p(static_cast<size_t>(length));
    for (auto& t : p) t = id(rng);
    return p;
  }
  static inline std::string path_;
  static inline LlamaModel* cpu_ = nullptr;
  static inline LlamaModel* gpu_ = nullptr;
};

TEST_F(CudaModelTest, LogitsMatchTheCpuOnSmolLM2Shape) {
  std::printf("device: %s\n", gpu_->device_description().c_str());
  std::vector<float> lc, lg;
  run_both(*cpu_, *gpu_, prompt(1, 100), 12, &lc, &lg);
  const int vocab = cpu_->config().vocab;
  const size_t rows = lc.size() / vocab;
  double worst = 0;
  size_t same = 0;
  for (size_t r = 0; r < rows; ++r) {
    worst = std::max(worst, rel_error(&lg[r * vocab], &lc[r * vocab], vocab));
    same += argmax(&lg[r * vocab], vocab) == argmax(&lc[r * vocab], vocab);
  }
  std::printf("logit rows %zu: worst relative L2 error %.4g, argmax equal in %zu\n", rows, worst, same);
  EXPECT_LT(worst, 0.05);
  EXPECT_GE(same, rows * 9 / 10);
}

// The acceptance figure: greedy tokens equal to the CPU's over 20 prompts (the arithmetic differs,
// so a late divergence now and then is expected; each is printed).
TEST_F(CudaModelTest, GreedyOutputMatchesTheCpu) {
  int equal = 0, total = 0;
  for (unsigned p = 0; p < 20; ++p) {
    const std::vector<int32_t> ids = prompt(100 + p, 8 + static_cast<int>(p) * 3);
    std::vector<int32_t> out[2];
    const LlamaModel* models[2] = {cpu_, gpu_};
    for (int which = 0; which < 2; ++which) {
      const LlamaModel& m = *models[which];
      KvCache kv = m.new_cache(256).value();
      const int s = kv.add_sequence();
      Batch b;
      b.add_chain(s, 0, ids);
      int next = m.forward_argmax(b, kv).value().at(0);
      kv.commit(s, static_cast<int>(ids.size()));
      for (int t = 0; t < 32; ++t) {
        out[which].push_back(next);
        Batch d;
        d.add_chain(s, static_cast<int>(ids.size()) + t, {next});
        next = m.forward_argmax(d, kv).value().at(0);
        kv.commit(s, 1);
      }
    }
    int agree = 0;
    while (agree < 32 && out[0][agree] == out[1][agree]) ++agree;
    if (agree < 32) std::printf("prompt %u: diverges at generated token %d\n", p, agree);
    equal += agree;
    total += 32;
  }
  std::printf("greedy tokens equal to the CPU's: %d of %d (%.1f%%)\n", equal, total, 100.0 * equal / total);
  EXPECT_GE(equal * 100, total * 95);
}

TEST_F(CudaModelTest, BatchedDecodeMatchesEachSequenceAlone) {
  const int vocab = gpu_->config().vocab;
  for (int batch : {8, 64}) {
    SCOPED_TRACE(batch);
    KvCache kv = gpu_->new_cache(batch * 64).value();
    std::vector<int> seqs;
    std::vector<std::vector<int32_t>> prompts;
    Batch prefill;
    for (int i = 0; i < batch; ++i) {
      seqs.push_back(kv.add_sequence());
      prompts.push_back(prompt(500 + i, 5 + i % 7));
      prefill.add_chain(seqs.back(), 0, prompts.back());
    }
    ASSERT_TRUE(gpu_->forward(prefill, kv).ok());
    for (int i = 0; i < batch; ++i) kv.commit(seqs[i], static_cast<int>(prompts[i].size()));
    for (int step = 0; step < 3; ++step) {  // replayed steps too
      Batch d;
      for (int i = 0; i < batch; ++i) d.add_chain(seqs[i], static_cast<int>(prompts[i].size()) + step, {7 + i});
      std::vector<float> together = gpu_->forward(d, kv).value();
      for (int i = 0; i < batch; ++i) kv.commit(seqs[i], 1);
      if (step < 2) continue;
      for (int i = 0; i < batch; i += 7) {
        KvCache alone = gpu_->new_cache(128).value();
        const int s = alone.add_sequence();
        std::vector<int32_t> ids = prompts[i];
        ids.insert(ids.end(), step + 1, 7 + i);
        Batch a;
        a.add_chain(s, 0, ids);
        std::vector<float> one = gpu_->forward(a, alone).value();
        EXPECT_LT(rel_error(&together[i * vocab], one.data(), vocab), 0.02) << "sequence " << i;
      }
    }
  }
}

// The NCCL path with the one GPU there is: one rank whose all-reduces run through NCCL.
TEST_F(CudaModelTest, TensorParallelOneRankOverNcclMatchesPlain) {
  ModelOptions options;
  options.device = kernels::Device::kCuda;
  options.tensor_parallel = 1;
  auto tp = LlamaModel::load(path_, options);
  ASSERT_TRUE(tp.ok()) << tp.status();
  std::printf("device: %s\n", (*tp)->device_description().c_str());
  std::vector<float> lp, lt;
  run_both(*gpu_, **tp, prompt(9, 40), 8, &lp, &lt);
  const int vocab = gpu_->config().vocab;
  for (size_t r = 0; r < lp.size() / vocab; ++r) {
    EXPECT_LT(rel_error(&lt[r * vocab], &lp[r * vocab], vocab), 1e-5) << "row " << r;
  }
}

TEST_F(CudaModelTest, TreeThenKeptBranchMatchesChain) { expect_tree_then_branch_matches_chain(*gpu_, 0.02); }

TEST_F(CudaModelTest, BadInputsAreErrors) {
  KvCache kv = gpu_->new_cache(64).value();
  const int s = kv.add_sequence();
  Batch b;
  b.add_chain(s, 0, {1, 49152});
  EXPECT_FALSE(gpu_->forward(b, kv).ok());
  KvCache host = cpu_->make_cache(64);
  const int hs = host.add_sequence();
  Batch c;
  c.add_chain(hs, 0, {1, 2});
  EXPECT_FALSE(gpu_->forward(c, host).ok());
  // Too many tokens for the cache: kResourceExhausted, and the cache is unchanged.
  Batch big;
  big.add_chain(s, 0, prompt(3, 80));
  Result<std::vector<float>> r = gpu_->forward(big, kv);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(kv.pending(s), 0);
}

}  // namespace
}  // namespace weft::llm
