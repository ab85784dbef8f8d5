#include "llm/lora_adapter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>
#include <nlohmann/json.hpp>

#include "llm/gguf_convert.h"
#include "llm/gguf_writer.h"
#include "llm/llama_model.h"
#include "llm/random_model_for_test.h"
#include "llm/safetensors.h"

namespace weft::llm {
namespace {

namespace fs = std::filesystem;
using kernels::TensorType;

constexpr LoraTarget kAll[] = {LoraTarget::kQ,    LoraTarget::kK,  LoraTarget::kV,   LoraTarget::kO,
                               LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown};

class LoraTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lora_test." + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A small Llama model: 2 layers, d 64, 4 heads of 16 (2 KV heads), ffn 128.
  std::string write_model(TensorType matrices, const std::string& name = "model.gguf") {
    const testing::RandomModelSpec spec{.layers = 2,
                                        .d_model = 64,
                                        .heads = 4,
                                        .kv_heads = 2,
                                        .ffn = 128,
                                        .vocab = 96,
                                        .matrices = matrices,
                                        .embedding = matrices};
    const std::string p = path(name);
    EXPECT_TRUE(testing::write_random_model(p, spec).is_ok());
    return p;
  }

  // An adapter on `targets` with both halves random, large enough to change the model's output.
  static LoraAdapter random_adapter(const ModelConfig& c, std::vector<LoraTarget> targets, uint64_t seed, int rank = 4,
                                    float alpha = 8) {
    auto a = LoraAdapter::create(c, {.rank = rank, .alpha = alpha, .targets = std::move(targets)}, seed);
    EXPECT_TRUE(a.ok()) << a.status();
    std::mt19937 rng(static_cast<unsigned>(seed) + 1);
    std::normal_distribution<float> normal(0.0f, 0.2f);
    for (auto& layer : a->layers) {
      for (LoraMatrix& m : layer) {
        for (float& v : m.b) v = normal(rng);
      }
    }
    return std::move(a).value();
  }

  fs::path dir_;
};

void expect_same(const LoraAdapter& x, const LoraAdapter& y, float scale_tolerance = 0) {
  ASSERT_EQ(x.layers.size(), y.layers.size());
  for (size_t l = 0; l < x.layers.size(); ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const LoraMatrix &a = x.layers[l][t], &b = y.layers[l][t];
      ASSERT_EQ(a.rank, b.rank) << "layer " << l << " " << lora_target_name(static_cast<LoraTarget>(t));
      if (!a.present()) continue;
      EXPECT_EQ(a.a, b.a);
      ASSERT_EQ(a.b.size(), b.b.size());
      for (size_t k = 0; k < a.b.size(); ++k) {
        ASSERT_NEAR(a.scale * a.b[k], b.scale * b.b[k], scale_tolerance + 1e-6f * std::fabs(a.scale * a.b[k]));
      }
    }
  }
}

TEST(Safetensors, RoundTripsAndReadsHalfPrecision) {
  const std::string p = (fs::temp_directory_path() / ("st." + std::to_string(::getpid()))).string();
  ASSERT_TRUE(
      write_safetensors(p, {{"b", {2, 3}, {1, 2, 3, 4, 5, 6}}, {"a", {1}, {-0.5f}}}, {{"format", "pt"}}).is_ok());
  auto f = SafetensorsFile::read(p);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "a");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const auto* b = f->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(*SafetensorsFile::floats(*b), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  fs::remove(p);

  // F16 1.0 and -2.0, BF16 0.5, as Hugging Face writes them.
  const std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                             R"("g":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  bytes += header + std::string("\x00\x3c\x00\xc0\x00\x3f", 6);
  auto g = SafetensorsFile::from_bytes(bytes);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(*SafetensorsFile::floats(*g->find("h")), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(*SafetensorsFile::floats(*g->find("g")), (std::vector<float>{0.5f}));
}

TEST(Safetensors, MalformedFilesSayWhatIsWrong) {
  auto file = [](const std::string& header, size_t data) {
    std::string b(8, '\0');
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return b + header + std::string(data, '\0');
  };
  const std::pair<std::string, std::string> cases[] = {
      {"abc", "shorter"},
      {file("{", 0), "not a JSON object"},
      {file("[1]", 0), "not a JSON object"},
      {file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), "outside the data"},
      {file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16), "16 bytes for 3 elements"},
      {file(R"({"t":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}})", 4), "unknown dtype"},
      {file(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), "malformed shape"},
      {file(R"({"t":{"dtype":"F32"}})", 4), "needs dtype, shape and data_offsets"},
      {file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0), "too many elements"},
  };
  for (const auto& [bytes, want] : cases) {
    auto f = SafetensorsFile::from_bytes(bytes);
    ASSERT_FALSE(f.ok()) << want;
    EXPECT_NE(f.status().message().find(want), std::string::npos) << f.status();
  }
  std::string huge(8, '\0');
  huge[7] = 0x7f;  // a header length far beyond the file
  EXPECT_FALSE(SafetensorsFile::from_bytes(huge).ok());
  auto i64 = SafetensorsFile::from_bytes(file(R"({"t":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8));
  ASSERT_TRUE(i64.ok());
  EXPECT_FALSE(SafetensorsFile::floats(i64->tensors()[0]).ok());
}

TEST(LoraAdapter, HuggingFaceRowsInterleaveTheRotaryHalves) {
  // llama.cpp's converter: per head, rows (0..7) become (0, 4, 1, 5, 2, 6, 3, 7).
  const int want[] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};
  for (int r = 0; r < 16; ++r) EXPECT_EQ(hf_to_gguf_row(r, 8), want[r]) << r;
  EXPECT_TRUE(parse_lora_target("gate_proj").ok());
  EXPECT_EQ(*parse_lora_target("o"), LoraTarget::kO);
  EXPECT_FALSE(parse_lora_target("lm_head").ok());
}

TEST_F(LoraTest, PeftDirectoriesRoundTripWithHuggingFaceRowOrder) {
  auto model = LlamaModel::load(write_model(TensorType::kF32), {.mode = ComputeMode::kReference, .threads = 1});
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = (*model)->config();
  LoraAdapter a = random_adapter(c, {kAll, kAll + kLoraTargets}, 3);
  a.layers[1][static_cast<int>(LoraTarget::kDown)].alpha = 2;  // one module's own alpha
  a.layers[1][static_cast<int>(LoraTarget::kDown)].scale = 0.5f;
  ASSERT_TRUE(a.save_peft(path("peft"), c, "tiny").is_ok());

  auto config = nlohmann::json::parse(std::ifstream(path("peft/adapter_config.json")));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["target_modules"].size(), 7u);
  EXPECT_EQ(config["alpha_pattern"]["model.layers.1.mlp.down_proj"], 2.0);
  // q's B rows are in Hugging Face's order in the file: GGUF row hf_to_gguf_row(r) is file row r.
  auto st = SafetensorsFile::read(path("peft/adapter_model.safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  const auto* qb = st->find("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  ASSERT_NE(qb, nullptr);
  EXPECT_EQ(qb->shape, (std::vector<int64_t>{c.q_dim(), 4}));
  const std::vector<float> file_b = *SafetensorsFile::floats(*qb);
  const LoraMatrix& q = a.layers[0][0];
  for (int r = 0; r < c.q_dim(); ++r) {
    for (int k = 0; k < 4; ++k) ASSERT_EQ(file_b[r * 4 + k], q.b[hf_to_gguf_row(r, c.head_dim) * 4 + k]);
  }
  const auto* vb = st->find("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight");
  ASSERT_NE(vb, nullptr);
  EXPECT_EQ(*SafetensorsFile::floats(*vb), a.layers[0][2].b);  // v is not permuted

  auto back = LoraAdapter::load(path("peft"), c);
  ASSERT_TRUE(back.ok()) << back.status();
  expect_same(a, *back);
  EXPECT_FLOAT_EQ(back->find(1, LoraTarget::kDown)->scale, 0.5f);
  EXPECT_FLOAT_EQ(back->find(0, LoraTarget::kQ)->scale, 2.0f);
}

TEST_F(LoraTest, RsLoraScalesByTheRootOfTheRank) {
  auto model = LlamaModel::load(write_model(TensorType::kF32), {.mode = ComputeMode::kReference, .threads = 1});
  ASSERT_TRUE(model.ok());
  auto a = LoraAdapter::create((*model)->config(), {.rank = 16, .alpha = 8, .rslora = true}, 1);
  ASSERT_TRUE(a.ok());
  EXPECT_FLOAT_EQ(a->find(0, LoraTarget::kQ)->scale, 2.0f);
  EXPECT_EQ(a->find(0, LoraTarget::kK), nullptr);
  ASSERT_TRUE(a->save_peft(path("rs"), (*model)->config(), "tiny").is_ok());
  auto back = LoraAdapter::load(path("rs"), (*model)->config());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->rslora);
  EXPECT_FLOAT_EQ(back->find(1, LoraTarget::kV)->scale, 2.0f);
  // A starts uniform in ±1/√in and B at zero.
  for (float v : back->find(0, LoraTarget::kQ)->a) ASSERT_LE(std::fabs(v), 1.0f / 8.0f);
  for (float v : back->find(0, LoraTarget::kQ)->b) ASSERT_EQ(v, 0.0f);
}

TEST_F(LoraTest, GgufAdaptersRoundTripAndFoldPerModuleScales) {
  auto model = LlamaModel::load(write_model(TensorType::kF32), {.mode = ComputeMode::kReference, .threads = 1});
  ASSERT_TRUE(model.ok());
  const ModelConfig& c = (*model)->config();
  LoraAdapter a = random_adapter(c, {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kUp}, 4);
  a.layers[0][static_cast<int>(LoraTarget::kUp)].scale = 0.25f;
  ASSERT_TRUE(a.save_gguf(path("a.gguf"), c).is_ok());
  auto f = GgufFile::open(path("a.gguf"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f->get_string("general.type"), "adapter");
  EXPECT_EQ(*f->get_float("adapter.lora.alpha"), 8.0);
  const GgufTensor* la = f->tensor("blk.1.attn_k.weight.lora_a");
  ASSERT_NE(la, nullptr);
  EXPECT_EQ(la->ne[0], c.d_model);  // ggml order: [in, rank]
  EXPECT_EQ(la->ne[1], 4);
  auto back = LoraAdapter::load(path("a.gguf"), c);
  ASSERT_TRUE(back.ok()) << back.status();
  expect_same(a, *back);
}

TEST_F(LoraTest, BadAdaptersGetErrorsNamingTheFault) {
  auto model = LlamaModel::load(write_model(TensorType::kF32), {.mode = ComputeMode::kReference, .threads = 1});
  ASSERT_TRUE(model.ok());
  const ModelConfig& c = (*model)->config();
  auto peft = [&](const std::string& name, const nlohmann::json& config, const std::vector<SafetensorsOut>& tensors) {
    fs::create_directories(path(name));
    std::ofstream(path(name + "/adapter_config.json")) << config.dump();
    EXPECT_TRUE(write_safetensors(path(name + "/adapter_model.safetensors"), tensors, {}).is_ok());
    auto r = LoraAdapter::load(path(name), c);
    EXPECT_FALSE(r.ok()) << name;
    return r.ok() ? std::string() : r.status().message();
  };
  const nlohmann::json ok_config = {{"peft_type", "LORA"}, {"r", 2}, {"lora_alpha", 4}};
  const std::string q = "base_model.model.model.layers.0.self_attn.q_proj.";
  const std::vector<float> a2(2 * 64, 0.1f), b2(64 * 2, 0.1f);
  EXPECT_NE(peft("shape", ok_config,
                 {{q + "lora_A.weight", {2, 64}, a2}, {q + "lora_B.weight", {32, 4}, std::vector<float>(128)}})
                .find("q_proj.lora_B.weight' is [32, 4]"),
            std::string::npos);
  EXPECT_NE(peft("half", ok_config, {{q + "lora_A.weight", {2, 64}, a2}}).find("lora_B is missing"), std::string::npos);
  EXPECT_NE(peft("unknown", ok_config, {{"base_model.model.lm_head.lora_A.weight", {2, 64}, a2}}).find("lm_head"),
            std::string::npos);
  EXPECT_NE(peft("layer", ok_config,
                 {{"base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", {2, 64}, a2},
                  {"base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight", {64, 2}, b2}})
                .find("layer 7, but the model has 2 layers"),
            std::string::npos);
  EXPECT_NE(peft("nan", ok_config,
                 {{q + "lora_A.weight", {2, 64}, std::vector<float>(128, NAN)}, {q + "lora_B.weight", {64, 2}, b2}})
                .find("non-finite"),
            std::string::npos);
  nlohmann::json dora = ok_config;
  dora["use_dora"] = true;
  EXPECT_NE(peft("dora", dora, {}).find("DoRA"), std::string::npos);
  nlohmann::json not_bool = ok_config;
  not_bool["use_rslora"] = "yes";
  EXPECT_NE(peft("not_bool", not_bool, {}).find("use_rslora is not a boolean"), std::string::npos);
  EXPECT_NE(peft("long_name", ok_config, {{std::string(100000, 'x'), {2, 64}, a2}}).find("too long"),
            std::string::npos);
  nlohmann::json ia3 = ok_config;
  ia3["peft_type"] = "IA3";
  EXPECT_NE(peft("ia3", ia3, {}).find("IA3"), std::string::npos);
  EXPECT_NE(peft("empty", ok_config, {}).find("no LoRA tensors"), std::string::npos);

  fs::create_directories(path("noconfig"));
  auto none = LoraAdapter::load(path("noconfig"), c);
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("adapter_config.json"), std::string::npos);
  EXPECT_EQ(LoraAdapter::load(path("missing"), c).status().code(), StatusCode::kNotFound);
  // A model is not an adapter; an adapter for another architecture does not load.
  auto not_adapter = LoraAdapter::load(path("model.gguf"), c);
  EXPECT_NE(not_adapter.status().message().find("not a GGUF adapter"), std::string::npos) << not_adapter.status();
  GgufWriter w;
  w.add_string("general.architecture", "qwen2");
  w.add_string("general.type", "adapter");
  w.add_string("adapter.type", "lora");
  ASSERT_TRUE(w.write(path("qwen.gguf")).is_ok());
  EXPECT_NE(LoraAdapter::load(path("qwen.gguf"), c).status().message().find("architecture 'qwen2'"), std::string::npos);
  std::ofstream(path("garbage.gguf")) << "GGUF garbage";
  EXPECT_FALSE(LoraAdapter::load(path("garbage.gguf"), c).ok());
}

// Logits of `prompt` as one sequence, through `adapter` (null: the base model).
std::vector<float> logits(const LlamaModel& m, const std::vector<int32_t>& prompt, const LoraAdapter* adapter) {
  KvCache kv = m.make_cache(64);
  const int seq = kv.add_sequence();
  Batch b;
  b.add_chain(seq, 0, prompt);
  if (adapter != nullptr) {
    b.adapters = {adapter};
    for (BatchToken& t : b.tokens) t.adapter = 0;
  }
  auto out = m.forward(b, kv);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<float>();
}

TEST_F(LoraTest, ForwardEqualsTheMergedModelForEveryTarget) {
  const std::string base = write_model(TensorType::kF32);
  auto model = LlamaModel::load(base, {.mode = ComputeMode::kReference, .threads = 2});
  ASSERT_TRUE(model.ok());
  const ModelConfig& c = (*model)->config();
  const std::vector<int32_t> prompt = {1, 17, 4, 33, 8};
  const std::vector<float> plain = logits(**model, prompt, nullptr);
  for (LoraTarget t : kAll) {
    const LoraAdapter a = random_adapter(c, {t}, 10 + static_cast<int>(t));
    ASSERT_TRUE(merge_lora((*model)->file(), c, a, TensorType::kF32, path("merged.gguf")).is_ok());
    auto merged = LlamaModel::load(path("merged.gguf"), {.mode = ComputeMode::kReference, .threads = 1});
    ASSERT_TRUE(merged.ok()) << merged.status();
    const std::vector<float> want = logits(**merged, prompt, nullptr);
    const std::vector<float> got = logits(**model, prompt, &a);
    ASSERT_EQ(got.size(), want.size());
    double diff = 0, moved = 0, scale = 0;
    for (size_t k = 0; k < got.size(); ++k) {
      diff = std::max(diff, std::fabs(double(got[k]) - want[k]));
      moved = std::max(moved, std::fabs(double(got[k]) - plain[k]));
      scale = std::max(scale, std::fabs(double(want[k])));
    }
    EXPECT_LT(diff, 1e-4 * scale) << lora_target_name(t);
    EXPECT_GT(moved, 1e-2 * scale) << lora_target_name(t) << ": the adapter should change the output";
  }
}

TEST_F(LoraTest, MixedAdaptersInOneBatchGiveEachSequenceItsOwnResult) {
  auto model = LlamaModel::load(write_model(TensorType::kQ8_0), {.threads = 2});
  ASSERT_TRUE(model.ok());
  const ModelConfig& c = (*model)->config();
  const LoraAdapter a = random_adapter(c, {LoraTarget::kQ, LoraTarget::kV}, 1);
  const LoraAdapter b = random_adapter(c, {kAll, kAll + kLoraTargets}, 2, 8, 16);
  const LoraAdapter d = random_adapter(c, {LoraTarget::kDown, LoraTarget::kO}, 3, 2, 2);
  const std::vector<const LoraAdapter*> which = {&a, nullptr, &b, &d, &a};
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < which.size(); ++s) {
    prompts.push_back({static_cast<int32_t>(s + 2), 5, 9, static_cast<int32_t>(40 + s)});
    alone.push_back(logits(**model, prompts.back(), which[s]));
  }
  KvCache kv = (*model)->make_cache(256);
  Batch batch;
  batch.adapters = {&d, &a, &b};
  for (size_t s = 0; s < which.size(); ++s) {
    const int seq = kv.add_sequence();
    const size_t first = batch.tokens.size();
    batch.add_chain(seq, 0, prompts[s]);
    const int16_t index = which[s] == &d ? 0 : which[s] == &a ? 1 : which[s] == &b ? 2 : -1;
    for (size_t k = first; k < batch.tokens.size(); ++k) batch.tokens[k].adapter = index;
  }
  auto out = (*model)->forward(batch, kv);
  ASSERT_TRUE(out.ok()) << out.status();
  const size_t vocab = static_cast<size_t>(c.vocab);
  for (size_t s = 0; s < which.size(); ++s) {
    EXPECT_EQ(std::vector<float>(out->begin() + s * vocab, out->begin() + (s + 1) * vocab), alone[s]) << s;
  }
  EXPECT_NE(alone[0], alone[1]);
  EXPECT_NE(alone[2], alone[1]);
  EXPECT_NE(alone[3], alone[1]);
  // A fresh adapter (B = 0) changes nothing.
  auto fresh = LoraAdapter::create(c, {.targets = {kAll, kAll + kLoraTargets}}, 9);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(logits(**model, prompts[1], &*fresh), alone[1]);
}

TEST_F(LoraTest, BadBatchAdaptersAreRefused) {
  auto model = LlamaModel::load(write_model(TensorType::kQ8_0), {.threads = 1});
  ASSERT_TRUE(model.ok());
  KvCache kv = (*model)->make_cache(64);
  const int seq = kv.add_sequence();
  Batch b;
  b.add_chain(seq, 0, {1, 2});
  b.tokens[1].adapter = 0;
  EXPECT_EQ((*model)->forward(b, kv).status().code(), StatusCode::kInvalidArgument);
  b.adapters = {nullptr};
  EXPECT_EQ((*model)->forward(b, kv).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.pending(seq), 0);
  // An adapter made for another shape of model does not fit.
  ModelConfig other = (*model)->config();
  other.ffn_dim = 64;
  const LoraAdapter wrong = random_adapter(other, {LoraTarget::kUp}, 1);
  b.adapters = {&wrong};
  auto r = (*model)->forward(b, kv);
  EXPECT_NE(r.status().message().find("does not fit"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace weft::llm
