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

TEST_P(LlamaReference, LogitsMatchNumpy) {
  const std::string python = std::string(WEFT_SOURCE_DIR) + "/.venv/bin/python";
  if (!std::filesystem::exists(python)) GTEST_SKIP() << "run scripts/setup to create .venv";
  const std::string script = std::string(WEFT_SOURCE_DIR) + "/tests/reference/llama_reference.py";
  const std::string dir = ::testing::TempDir();
  const std::string model = dir + "/tiny_" + GetParam().type + "_" + GetParam().arch + ".gguf";
  const std::string expected = model + ".logits";
  const std::vector<int32_t> tokens{5, 17, 42, 99, 3, 250, 7, 7, 120};
  std::ostringstream make, logits;
  make << python << ' ' << script << " make " << model << " --type " << GetParam().type << " --arch " << GetParam().arch;
  logits << python << ' ' << script << " logits " << model << ' ' << expected;
  for (int32_t t : tokens) logits << ' ' << t;
  ASSERT_EQ(std::system(make.str().c_str()), 0) << make.str();
  ASSERT_EQ(std::system(logits.str().c_str()), 0) << logits.str();
  std::vector<float> want = read_f32(expected);

  auto m = LlamaModel::load(model, {ComputeMode::kReference});
  ASSERT_TRUE(m.ok()) << m.status();
  KvCache kv = (*m)->make_cache(64);
  int seq = kv.add_sequence();
  Batch b;
  b.add_chain(seq, 0, tokens, false);
  for (auto& t : b.tokens) t.logits = true;
  auto got = (*m)->forward(b, kv);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), want.size());
  double max_err = 0;
  for (size_t i = 0; i < want.size(); ++i) max_err = std::max(max_err, std::fabs(double((*got)[i]) - want[i]));
  EXPECT_LT(max_err, 1e-4) << GetParam().type << " " << GetParam().arch;
  RecordProperty("max_abs_error", std::to_string(max_err));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, LlamaReference,
                         ::testing::Values(Case{"F32", "llama"}, Case{"F16", "llama"}, Case{"BF16", "llama"},
                                           Case{"Q8_0", "llama"}, Case{"Q4_0", "llama"}, Case{"Q4_1", "llama"},
                                           Case{"Q4_K", "llama"}, Case{"Q5_K", "llama"}, Case{"Q6_K", "llama"},
                                           Case{"Q8_0", "qwen2"}),
                         [](const auto& p) { return std::string(p.param.type) + "_" + p.param.arch; });

}  // namespace
}  // namespace weft::llm
