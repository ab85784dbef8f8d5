// The forward pass against tests/reference/llama_reference.py (numpy, float64) on tiny random
// models of every weight type, written and read by gguf-py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llm/llama_model.h"

namespace weft::llm {
namespace {

struct Case {
  const char* type;
  const char* arch;
};

class LlamaReference : public ::testing::TestWithParam<Case> {};

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// Writes the tiny model of this case and numpy's logits for `tokens`; returns the model's path.
std::string make_case(const Case& c, const std::vector<int32_t>& tokens, std::vector<float>* want) {
  const std::string python = std::string(WEFT_SOURCE_DIR) + "/.venv/bin/python";
  const std::string script = std::string(WEFT_SOURCE_DIR) + "/tests/reference/llama_reference.py";
  const std::string dir = ::testing::TempDir();
  const std::string model = dir + "/tiny_" + c.type + "_" + c.arch + ".gguf";
  const std::string expected = model + ".logits";
  std::ostringstream make, logits;
  make << python << ' ' << script << " make " << model << " --type " << c.type << " --arch " << c.arch;
  logits << python << ' ' << script << " logits " << model << ' ' << expected;
  for (int32_t t : tokens) logits << ' ' << t;
  EXPECT_EQ(std::system(make.str().c_str()), 0) << make.str();
  EXPECT_EQ(std::system(logits.str().c_str()), 0) << logits.str();
  *want = read_f32(expected);
  return model;
}

std::vector<float> run(const std::string& model, ComputeMode mode, const std::vector<int32_t>& tokens) {
  auto m = LlamaModel::load(model, {mode});
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return {};
  KvCache kv = (*m)->make_cache(64);
  int seq = kv.add_sequence();
  Batch b;
  b.add_chain(seq, 0, tokens, false);
  for (auto& t : b.tokens) t.logits = true;
  auto got = (*m)->forward(b, kv);
  EXPECT_TRUE(got.ok()) << got.status();
  return got.ok() ? *got : std::vector<float>{};
}

const std::vector<int32_t> kTokens{5, 17, 42, 99, 3, 250, 7, 7, 120};

TEST_P(LlamaReference, LogitsMatchNumpy) {
  if (!std::filesystem::exists(std::string(WEFT_SOURCE_DIR) + "/.venv/bin/python")) GTEST_SKIP() << "run scripts/setup to create .venv";
  std::vector<float> want;
  const std::string model = make_case(GetParam(), kTokens, &want);
  const std::vector<float> got = run(model, ComputeMode::kReference, kTokens);
  ASSERT_EQ(got.size(), want.size());
  double max_err = 0;
  for (size_t i = 0; i < want.size(); ++i) max_err = std::max(max_err, std::fabs(double(got[i]) - want[i]));
  EXPECT_LT(max_err, 1e-4) << GetParam().type << " " << GetParam().arch;
  RecordProperty("max_abs_error", std::to_string(max_err));
}

// Fast mode (8-bit activations, fp16 KV cache and attention) stays close to the float64
// reference for every weight type: the largest error is a small fraction of the logits' range.
// K-quants take activations in blocks of 256 (Q8_K) rather than 32, so their activation error is
// larger; kquant_math_test.cc shows their dot products are otherwise exact.
TEST_P(LlamaReference, FastModeIsCloseToNumpy) {
  if (!std::filesystem::exists(std::string(WEFT_SOURCE_DIR) + "/.venv/bin/python")) GTEST_SKIP() << "run scripts/setup to create .venv";
  std::vector<float> want;
  const std::string model = make_case(GetParam(), kTokens, &want);
  const std::vector<float> got = run(model, ComputeMode::kFast, kTokens);
  ASSERT_EQ(got.size(), want.size());
  double max_err = 0, range = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_err = std::max(max_err, std::fabs(double(got[i]) - want[i]));
    range = std::max(range, std::fabs(double(want[i])));
  }
  const bool k_quant = std::string(GetParam().type).find("_K") != std::string::npos;
  EXPECT_LT(max_err / range, k_quant ? 0.08 : 0.03) << GetParam().type << " " << GetParam().arch << ": max error " << max_err
                                   << " of logits up to " << range;
  RecordProperty("relative_error", std::to_string(max_err / range));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, LlamaReference,
                         ::testing::Values(Case{"F32", "llama"}, Case{"F16", "llama"}, Case{"BF16", "llama"},
                                           Case{"Q8_0", "llama"}, Case{"Q4_0", "llama"}, Case{"Q4_1", "llama"},
                                           Case{"Q4_K", "llama"}, Case{"Q5_K", "llama"}, Case{"Q6_K", "llama"},
                                           Case{"Q8_0", "qwen2"}),
                         [](const auto& p) { return std::string(p.param.type) + "_" + p.param.arch; });

}  // namespace
}  // namespace weft::llm
