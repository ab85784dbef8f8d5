// The training pass on tiny models: its loss is the model's own cross-entropy, its gradients match
// finite differences, chunked forward and layer-by-layer backward give the same bits as one piece,
// and the optimizers and the dataset reader do what PyTorch and OpenAI's format say.
#include "finetune/training_pass.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include <unistd.h>

#include "finetune/dataset.h"
#include "finetune/finetuner.h"
#include "finetune/optimizer.h"
#include "kernels/cpu/thread_team.h"
#include "llm/default_model_for_test.h"
#include "llm/random_model_for_test.h"

namespace weft::finetune {
namespace {

namespace fs = std::filesystem;
using kernels::TensorType;
using llm::LoraAdapter;
using llm::LoraTarget;

constexpr LoraTarget kAll[] = {LoraTarget::kQ,    LoraTarget::kK,  LoraTarget::kV,   LoraTarget::kO,
                               LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown};

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("training_test." + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<llm::LlamaModel> model(TensorType type, const std::string& arch = "llama") {
    const llm::testing::RandomModelSpec spec{.arch = arch,
                                             .layers = 2,
                                             .d_model = 64,
                                             .heads = 4,
                                             .kv_heads = 2,
                                             .ffn = 96,
                                             .vocab = 80,
                                             .matrices = type,
                                             .embedding = type};
    const std::string p = (dir_ / ("model-" + arch + ".gguf")).string();
    EXPECT_TRUE(llm::testing::write_random_model(p, spec).is_ok());
    auto m = llm::LlamaModel::load(p, {.mode = llm::ComputeMode::kReference, .threads = 1});
    EXPECT_TRUE(m.ok()) << m.status();
    return std::move(m).value();
  }
  static LoraAdapter adapter(const llm::ModelConfig& c, uint64_t seed, float std = 0.1f) {
    auto a = LoraAdapter::create(c, {.rank = 4, .alpha = 8, .targets = {kAll, kAll + 7}}, seed);
    EXPECT_TRUE(a.ok());
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::normal_distribution<float> normal(0.0f, std);
    for (auto& layer : a->layers) {
      for (llm::LoraMatrix& m : layer) {
        for (float& v : m.b) v = normal(rng);
      }
    }
    return std::move(a).value();
  }
  static TrainingExample example(int n, int vocab) {
    TrainingExample e;
    for (int t = 0; t < n; ++t) {
      e.tokens.push_back((t * 37 + 11) % vocab);
      e.trained.push_back(t >= n / 3 ? 1 : 0);
    }
    return e;
  }
  // Loss sum and gradients of `e`: forward in chunks of `chunk` tokens, `forward_layers` layers a
  // piece; the output `output` tokens a piece; backward `layers` at a time.
  static std::pair<double, LoraAdapter> run(const llm::LlamaModel& m, const LoraAdapter& a, const TrainingExample& e,
                                            weft::ParallelFor& team, int chunk = 1000, int layers = 1000,
                                            int forward_layers = 1000, int output = 0) {
    auto pass = TrainingPass::start(m, a, e, team);
    EXPECT_TRUE(pass.ok()) << pass.status();
    while (!pass->forward_done()) EXPECT_TRUE(pass->forward(chunk, forward_layers).is_ok());
    while (output > 0 && pass->output_left() > 0) EXPECT_TRUE(pass->output(output).is_ok());
    LoraAdapter g = zero_gradients(a);
    while (!pass->done()) EXPECT_TRUE(pass->backward(layers, g).is_ok());
    return {pass->loss_sum(), std::move(g)};
  }

  fs::path dir_;
  kernels::cpu::ThreadTeam team_{2};
};

TEST_F(TrainingTest, LossIsTheModelsOwnCrossEntropy) {
  for (const char* arch : {"llama", "qwen2"}) {
    auto m = model(TensorType::kF32, arch);
    const LoraAdapter a = adapter(m->config(), 1);
    const TrainingExample e = example(12, m->config().vocab);
    // The model's reference forward through the same adapter.
    llm::KvCache kv = m->make_cache(64);
    const int seq = kv.add_sequence();
    llm::Batch b;
    b.add_chain(seq, 0, e.tokens);
    b.adapters = {&a};
    for (auto& t : b.tokens) t = {t.token, t.seq, t.pos, t.parent, true, t.layout, -1, 0};
    auto logits = m->forward(b, kv);
    ASSERT_TRUE(logits.ok()) << logits.status();
    const int vocab = m->config().vocab;
    double want = 0;
    for (size_t t = 1; t < e.tokens.size(); ++t) {
      if (!e.trained[t]) continue;
      const float* row = &(*logits)[(t - 1) * vocab];
      double z = 0;
      for (int j = 0; j < vocab; ++j) z += std::exp(static_cast<double>(row[j]));
      want += std::log(z) - row[e.tokens[t]];
    }
    EXPECT_NEAR(run(*m, a, e, team_).first, want, 1e-4 * want) << arch;
  }
}

TEST_F(TrainingTest, GradientsMatchFiniteDifferencesForEveryTarget) {
  auto m = model(TensorType::kF32);
  LoraAdapter a = adapter(m->config(), 2, 0.3f);
  const TrainingExample e = example(10, m->config().vocab);
  const auto [loss, g] = run(*m, a, e, team_);
  std::mt19937 rng(3);
  for (int l = 0; l < 2; ++l) {
    for (int t = 0; t < llm::kLoraTargets; ++t) {
      for (int half = 0; half < 2; ++half) {
        std::vector<float>& p = half == 0 ? a.layers[l][t].a : a.layers[l][t].b;
        const std::vector<float>& gp = half == 0 ? g.layers[l][t].a : g.layers[l][t].b;
        for (int trial = 0; trial < 3; ++trial) {
          const size_t i = std::uniform_int_distribution<size_t>(0, p.size() - 1)(rng);
          const float keep = p[i], h = 1e-2f;
          p[i] = keep + h;
          const double up = run(*m, a, e, team_).first;
          p[i] = keep - h;
          const double down = run(*m, a, e, team_).first;
          p[i] = keep;
          const double numeric = (up - down) / (2 * h);
          EXPECT_NEAR(gp[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
              << "layer " << l << " " << lora_target_name(static_cast<LoraTarget>(t)) << (half == 0 ? " A" : " B");
        }
      }
    }
  }
}

TEST_F(TrainingTest, PiecesGiveTheSameBitsAsOnePass) {
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_1, TensorType::kF16}) {
    auto m = model(type);
    const LoraAdapter a = adapter(m->config(), 4);
    const TrainingExample e = example(23, m->config().vocab);
    const auto [loss, g] = run(*m, a, e, team_);
    kernels::cpu::ThreadTeam one(1);
    const auto [loss2, g2] = run(*m, a, e, one, /*chunk=*/5, /*layers=*/1, /*forward_layers=*/1, /*output=*/3);
    EXPECT_EQ(loss, loss2);
    for (int l = 0; l < 2; ++l) {
      for (int t = 0; t < llm::kLoraTargets; ++t) {
        EXPECT_EQ(g.layers[l][t].a, g2.layers[l][t].a);
        EXPECT_EQ(g.layers[l][t].b, g2.layers[l][t].b);
      }
    }
  }
}

TEST_F(TrainingTest, BadExamplesAndCallsAreRefused) {
  auto m = model(TensorType::kQ8_0);
  const LoraAdapter a = adapter(m->config(), 5);
  EXPECT_FALSE(TrainingPass::start(*m, a, {{1}, {1}}, team_).ok());
  EXPECT_FALSE(TrainingPass::start(*m, a, {{1, 2, 3}, {0, 0, 0}}, team_).ok());
  EXPECT_FALSE(TrainingPass::start(*m, a, {{1, 999}, {0, 1}}, team_).ok());
  auto pass = TrainingPass::start(*m, a, example(6, 80), team_);
  ASSERT_TRUE(pass.ok());
  LoraAdapter g = zero_gradients(a);
  EXPECT_EQ(pass->backward(1, g).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(pass->forward(100).is_ok());
  EXPECT_LT(pass->saved_bytes(), pass->all_activation_bytes());
}

TEST_F(TrainingTest, OptimizersFollowPyTorch) {
  auto m = model(TensorType::kF32);
  const llm::ModelConfig& c = m->config();
  auto a = LoraAdapter::create(c, {.rank = 1, .alpha = 1, .targets = {LoraTarget::kQ}}, 1);
  ASSERT_TRUE(a.ok());
  LoraAdapter g = zero_gradients(*a);
  const float p0 = a->layers[0][0].a[0];
  // AdamW, two steps with gradient 0.5 then -0.25 (tokens = 2 halves them), lr 0.1, wd 0.1.
  Optimizer adam({.kind = OptimizerKind::kAdamW, .lr = 0.1f, .weight_decay = 0.1f, .max_grad_norm = 0}, *a);
  g.layers[0][0].a[0] = 1.0f;
  adam.step(*a, g, 2);
  EXPECT_EQ(g.layers[0][0].a[0], 0.0f);
  double p = p0 * (1 - 0.01), m1 = 0.1 * 0.5, v1 = 0.001 * 0.25;
  p -= 0.1 * (m1 / 0.1) / (std::sqrt(v1 / 0.001) + 1e-8);
  EXPECT_NEAR(a->layers[0][0].a[0], p, 1e-6);
  g.layers[0][0].a[0] = -0.5f;
  adam.step(*a, g, 2);
  p *= 1 - 0.01;
  const double m2 = 0.9 * m1 + 0.1 * -0.25, v2 = 0.999 * v1 + 0.001 * 0.0625;
  p -= 0.1 * (m2 / (1 - 0.81)) / (std::sqrt(v2 / (1 - 0.999 * 0.999)) + 1e-8);
  EXPECT_NEAR(a->layers[0][0].a[0], p, 1e-6);
  // SGD with momentum 0.9 and weight decay 0.1.
  auto s = LoraAdapter::create(c, {.rank = 1, .alpha = 1, .targets = {LoraTarget::kV}}, 2);
  Optimizer sgd({.kind = OptimizerKind::kSgd, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f, .max_grad_norm = 0},
                *s);
  const float q0 = s->layers[1][2].a[3];
  LoraAdapter gs = zero_gradients(*s);
  gs.layers[1][2].a[3] = 1.0f;
  sgd.step(*s, gs, 1);
  const double b1 = 1.0 + 0.1 * q0, q1 = q0 - 0.1 * b1;
  EXPECT_NEAR(s->layers[1][2].a[3], q1, 1e-6);
  gs.layers[1][2].a[3] = 1.0f;
  sgd.step(*s, gs, 1);
  EXPECT_NEAR(s->layers[1][2].a[3], q1 - 0.1 * (0.9 * b1 + 1.0 + 0.1 * q1), 1e-6);
  // Clipping scales the whole gradient to the norm.
  Optimizer clipped({.kind = OptimizerKind::kSgd, .lr = 1.0f, .max_grad_norm = 1.0f}, *s);
  const float r0 = s->layers[0][2].b[0], r1 = s->layers[1][2].b[0];
  gs.layers[0][2].b[0] = 3.0f;
  gs.layers[1][2].b[0] = 4.0f;
  EXPECT_FLOAT_EQ(clipped.step(*s, gs, 1), 5.0f);
  EXPECT_NEAR(s->layers[0][2].b[0], r0 - 0.6f, 1e-5);
  EXPECT_NEAR(s->layers[1][2].b[0], r1 - 0.8f, 1e-5);
}

TEST_F(TrainingTest, FinetuningLearnsARepeatedSequence) {
  auto m = model(TensorType::kQ8_0);
  std::vector<TrainingExample> data(4, example(16, m->config().vocab));
  FinetuneOptions o;
  o.lora = {.rank = 8, .alpha = 16, .targets = {kAll, kAll + 7}};
  o.optimizer.lr = 1e-2f;
  o.epochs = 10;
  o.batch_size = 2;
  auto run = Finetuner::create(*m, data, o, team_);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ((*run)->total_steps(), 20);
  double first = 0, last = 0;
  while (!(*run)->done()) {
    auto r = (*run)->step();
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->step == 1) first = r->loss;
    last = r->loss;
    EXPECT_EQ(r->tokens, 22);
  }
  EXPECT_LT(last, 0.5 * first);
}

TEST(PieceCost, FitsAFixedAndAPerUnitCost) {
  PieceCost c;
  EXPECT_FALSE(c.known());
  c.observe(10, 110);
  EXPECT_DOUBLE_EQ(c.predict(20), 220);  // one size seen: proportional
  c.observe(20, 210);
  c.observe(10, 110);
  c.observe(20, 210);
  EXPECT_NEAR(c.predict(30), 310, 1e-6);  // 10 + 10 per unit
  EXPECT_NEAR(c.predict(0), 10, 1e-6);
  EXPECT_EQ(c.units_within(155, 100), 14);
  EXPECT_EQ(c.units_within(155, 5), 5);
  EXPECT_EQ(c.units_within(15, 100), 0);
}

TEST(Dataset, ConversationsTrainOnAssistantTurnsAndBadLinesAreNamed) {
  llm::testing::DefaultModel d = llm::testing::load_default_model({.threads = 1});
  if (!d.model) GTEST_SKIP() << "run scripts/setup to fetch the default model";
  auto chat = llm::ChatTemplate::from_gguf(d.model->file());
  ASSERT_TRUE(chat.ok());
  const std::string jsonl =
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, )"
      R"({"role": "user", "content": "Again"}, {"role": "assistant", "content": "Hello again!"}]})"
      "\n\n"
      R"({"prompt": "2+2=", "completion": "4"})"
      "\n"
      "{not json\n"
      R"({"messages": []})"
      "\n"
      R"({"messages": [{"role": "user", "content": "no answer"}]})"
      "\n"
      R"({"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]})"
      "\n"
      R"({"prompt": "x"})"
      "\n"
      R"({"prompt": "long", "completion": ")" +
      std::string(3000, 'a') + "\"}\n";
  Dataset ds = read_dataset(jsonl, *d.tokenizer, &*chat, 256);
  ASSERT_EQ(ds.examples.size(), 2u);
  std::vector<int> lines;
  for (const DatasetError& e : ds.errors) lines.push_back(e.line);
  EXPECT_EQ(lines, (std::vector<int>{4, 5, 6, 7, 8, 9}));
  EXPECT_NE(ds.errors[1].message.find("empty conversation"), std::string::npos);
  EXPECT_NE(ds.errors[2].message.find("no assistant"), std::string::npos);
  EXPECT_NE(ds.errors[3].message.find("wizard"), std::string::npos);
  EXPECT_NE(ds.errors[5].message.find("limit is 256"), std::string::npos);
  // The trained tokens are exactly the assistant turns with their end-of-turn marks.
  const TrainingExample& e = ds.examples[0];
  std::vector<int32_t> trained;
  for (size_t t = 0; t < e.tokens.size(); ++t) {
    if (e.trained[t]) trained.push_back(e.tokens[t]);
  }
  auto want = d.tokenizer->encode("Hello!<|im_end|>\nHello again!<|im_end|>\n", false, true);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(trained, *want);
  auto whole = d.tokenizer->encode(
      *chat->render({{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Again"}, {"assistant", "Hello again!"}}, false),
      true, true);
  EXPECT_EQ(e.tokens, *whole);
  EXPECT_EQ(ds.examples[1].trained_tokens(), 1);
}

}  // namespace
}  // namespace weft::finetune
