// Kernels against independent reference implementations (Python packages in .venv), on data
// the reference writes as GGUF files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/cpu/dequantize.h"
#include "llm/gguf_file.h"

namespace weft::kernels::cpu {
namespace {

// Every supported type against gguf-py's independent numpy implementation, on random blocks.
TEST(Dequantize, MatchesTheReferenceImplementation) {
  const std::string python = std::string(WEFT_SOURCE_DIR) + "/.venv/bin/python";
  if (!std::filesystem::exists(python)) GTEST_SKIP() << "run scripts/setup to create .venv";
  const std::string out = ::testing::TempDir() + "/weft_quant_cases.gguf";
  const std::string cmd = python + " " + WEFT_SOURCE_DIR + "/tests/reference/quant_cases.py " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto file = llm::GgufFile::open(out);
  ASSERT_TRUE(file.ok()) << file.status();
  int checked = 0;
  for (const char* name : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"}) {
    const llm::GgufTensor* q = file->tensor(name);
    const llm::GgufTensor* e = file->tensor(std::string(name) + ".expected");
    ASSERT_TRUE(q && e) << name;
    ASSERT_EQ(q->elements(), e->elements());
    const size_t row = q->nbytes / static_cast<size_t>(q->rows());
    std::vector<float> got(static_cast<size_t>(q->ne[0]));
    for (int64_t r = 0; r < q->rows(); ++r) {
      ASSERT_TRUE(dequantize_row(q->type, q->data + r * row, got.data(), q->ne[0]).is_ok());
      const auto* want = reinterpret_cast<const float*>(e->data) + r * q->ne[0];
      for (int64_t i = 0; i < q->ne[0]; ++i) {
        // Same arithmetic in float32; allow one rounding of difference in operation order.
        ASSERT_NEAR(got[i], want[i], 1e-6f * (1.0f + std::fabs(want[i]))) << name << " row " << r << " value " << i;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 9);
}

}  // namespace
}  // namespace weft::kernels::cpu
