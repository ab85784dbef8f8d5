#include "kernels/cpu/dequantize.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/half.h"

namespace weft::kernels::cpu {
namespace {

TEST(Half, ConversionsAreExact) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(fp16_to_fp32(0x7C00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), h) << "round trip of 0x" << std::hex << h;
  }
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
}

TEST(Dequantize, RejectsPartialBlocksAndUnsupportedTypes) {
  float out[64];
  uint8_t in[64] = {};
  EXPECT_EQ(dequantize_row(TensorType::kQ4_0, in, out, 31).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dequantize_row(TensorType::kQ2_K, in, out, 256).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace weft::kernels::cpu
