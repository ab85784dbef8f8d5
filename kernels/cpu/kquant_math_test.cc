// The K-quant dot products equal the exact dot product of the dequantized weights with the
// dequantized Q8_K activations (up to float rounding): this checks every scale, min, offset and
// bit position of the integer formulas against dequantize.cc, which is checked against gguf-py.
#include "kernels/cpu/kquant_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/half.h"

namespace weft::kernels::cpu {
namespace {

struct Case {
  TensorType type;
  int block_bytes;
  std::vector<int> halves;  // offsets of fp16 fields
  float (*dot)(const uint8_t*, const BlockQ8_K*, int64_t);
};

TEST(KQuantMath, DotEqualsDequantizedDot) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.01f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 768;
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  std::vector<BlockQ8_K> xq(n / 256);
  quantize_q8_k(x.data(), n, xq.data());
  std::vector<float> xd(n);
  for (int64_t i = 0; i < n; ++i) xd[i] = xq[i / 256].d * static_cast<float>(xq[i / 256].qs[i % 256]);
  for (int64_t b = 0; b < n / 256; ++b) {  // the block sums are the sums of the values
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int k = 0; k < 16; ++k) s += xq[b].qs[16 * j + k];
      ASSERT_EQ(xq[b].bsums[j], s);
    }
  }
  for (const Case& c : {Case{TensorType::kQ4_K, 144, {0, 2}, dot_q4_k_q8_k}, Case{TensorType::kQ5_K, 176, {0, 2}, dot_q5_k_q8_k},
                        Case{TensorType::kQ6_K, 210, {208}, dot_q6_k_q8_k}}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<uint8_t> w(static_cast<size_t>(c.block_bytes * (n / 256)));
      for (auto& v : w) v = static_cast<uint8_t>(byte(rng));
      for (size_t off = 0; off < w.size(); off += static_cast<size_t>(c.block_bytes)) {
        for (int o : c.halves) {
          const uint16_t h = fp32_to_fp16(scale(rng));
          std::memcpy(&w[off + static_cast<size_t>(o)], &h, 2);
        }
      }
      std::vector<float> wd(n);
      ASSERT_TRUE(dequantize_row(c.type, w.data(), wd.data(), n).is_ok());
      double exact = 0, magnitude = 0;
      for (int64_t i = 0; i < n; ++i) {
        exact += static_cast<double>(wd[i]) * xd[i];
        magnitude += std::fabs(static_cast<double>(wd[i]) * xd[i]);
      }
      const float got = c.dot(w.data(), xq.data(), n);
      EXPECT_NEAR(got, exact, 1e-5 * magnitude) << tensor_type_info(c.type).name << " trial " << trial;
    }
  }
}

TEST(KQuantMath, QuantizationMatchesItsDefinition) {
  std::vector<float> x(256, 0.0f);
  x[3] = 2.0f;
  x[7] = -2.0f;  // the same magnitude later: the first one sets the sign of the scale
  x[9] = 0.5f;
  BlockQ8_K q;
  quantize_q8_k(x.data(), 256, &q);
  EXPECT_EQ(q.qs[3], -127);
  EXPECT_EQ(q.qs[7], 127);
  EXPECT_EQ(q.qs[9], -32);  // -31.75 rounds to -32
  EXPECT_FLOAT_EQ(q.d, 1.0f / (-127.0f / 2.0f));
  std::vector<float> zeros(256, 0.0f);
  quantize_q8_k(zeros.data(), 256, &q);
  EXPECT_EQ(q.d, 0.0f);
}

}  // namespace
}  // namespace weft::kernels::cpu
