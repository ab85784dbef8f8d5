// Every instruction set's kernel table must equal the portable one bit for bit.
#include "kernels/cpu/fast_kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/half.h"
#include "kernels/cpu/packed_weights.h"

namespace weft::kernels::cpu {
namespace {

const FastKernels& portable() { return fast_kernels(Isa::kPortable); }

class FastKernelsTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << isa_name(GetParam()) << " is not available on this CPU";
  }
  const FastKernels& simd() { return fast_kernels(GetParam()); }
  std::mt19937 rng_{1234};

  std::vector<float> activations(int64_t n) {
    std::normal_distribution<float> normal(0.0f, 1.5f);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng_);
    // Values that land exactly on rounding ties and an all-zero block.
    for (int64_t i = 0; i + 1 < n && i < 8; ++i) x[i] = 0.5f * static_cast<float>(i) - 1.5f;
    if (n >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
    return x;
  }
  // Random blocks of a weight type: random bytes, with sane fp16 scales.
  std::vector<uint8_t> weights(int64_t rows, int64_t n, int block_bytes, int scales) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    std::vector<uint8_t> w(static_cast<size_t>(rows * (n / 32) * block_bytes));
    for (auto& b : w) b = static_cast<uint8_t>(byte(rng_));
    for (size_t off = 0; off < w.size(); off += static_cast<size_t>(block_bytes)) {
      for (int s = 0; s < scales; ++s) {
        const uint16_t h = fp32_to_fp16(scale(rng_));
        std::memcpy(&w[off + 2 * static_cast<size_t>(s)], &h, 2);
      }
    }
    return w;
  }
  std::vector<uint16_t> halves(int64_t n) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint16_t> h(static_cast<size_t>(n));
    for (auto& v : h) v = fp32_to_fp16(normal(rng_));
    return h;
  }
};

void expect_same_bits(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << "element " << i << ": " << a[i] << " vs " << b[i];
  }
}

TEST_P(FastKernelsTest, QuantizationIsIdentical) {
  const int64_t n = 32 * 20;
  auto x = activations(n);
  std::vector<BlockQ8_0> a0(20), b0(20);
  std::vector<BlockQ8_1> a1(20), b1(20);
  portable().quantize_q8_0(x.data(), n, a0.data());
  simd().quantize_q8_0(x.data(), n, b0.data());
  portable().quantize_q8_1(x.data(), n, a1.data());
  simd().quantize_q8_1(x.data(), n, b1.data());
  EXPECT_EQ(std::memcmp(a0.data(), b0.data(), a0.size() * sizeof(BlockQ8_0)), 0);
  EXPECT_EQ(std::memcmp(a1.data(), b1.data(), a1.size() * sizeof(BlockQ8_1)), 0);
}

TEST_P(FastKernelsTest, QuantizedDotProductsAreIdentical) {
  const int64_t n = 576, rows = 11;  // 11 rows: the 4-row interleave and the 1-row tail
  auto x = activations(n);
  std::vector<BlockQ8_0> x0(n / 32);
  std::vector<BlockQ8_1> x1(n / 32);
  portable().quantize_q8_0(x.data(), n, x0.data());
  portable().quantize_q8_1(x.data(), n, x1.data());
  std::vector<float> a(rows), b(rows);

  auto w40 = weights(rows, n, 18, 1);
  portable().dot_rows_q4_0(w40.data(), 18 * (n / 32), rows, x0.data(), n, a.data());
  simd().dot_rows_q4_0(w40.data(), 18 * (n / 32), rows, x0.data(), n, b.data());
  expect_same_bits(a.data(), b.data(), rows);

  auto w41 = weights(rows, n, 20, 2);
  portable().dot_rows_q4_1(w41.data(), 20 * (n / 32), rows, x1.data(), n, a.data());
  simd().dot_rows_q4_1(w41.data(), 20 * (n / 32), rows, x1.data(), n, b.data());
  expect_same_bits(a.data(), b.data(), rows);

  auto w80 = weights(rows, n, 34, 1);  // random bytes include -128, the int8 extreme
  portable().dot_rows_q8_0(w80.data(), 34 * (n / 32), rows, x0.data(), n, a.data());
  simd().dot_rows_q8_0(w80.data(), 34 * (n / 32), rows, x0.data(), n, b.data());
  expect_same_bits(a.data(), b.data(), rows);
}

TEST_P(FastKernelsTest, PackedDotProductsAreIdentical) {
  const int64_t n = 576, rows = 12;
  auto x = activations(n);
  std::vector<BlockQ8_0> x0(n / 32);
  std::vector<BlockQ8_1> x1(n / 32);
  portable().quantize_q8_0(x.data(), n, x0.data());
  portable().quantize_q8_1(x.data(), n, x1.data());
  std::vector<float> a(rows), b(rows);
  int tested = 0;
  if (simd().dot_packed4_q4_1 != nullptr) {
    auto w = weights(rows, n, 20, 2);
    const WeightView view{TensorType::kQ4_1, n, rows, 20 * (n / 32), w.data()};
    const auto packed = pack_rows4(view);
    portable().dot_rows_q4_1(w.data(), view.row_bytes, rows, x1.data(), n, a.data());
    simd().dot_packed4_q4_1(packed.data(), rows / 4, x1.data(), n, b.data());
    expect_same_bits(a.data(), b.data(), rows);
    ++tested;
  }
  if (simd().dot_packed4_q8_0 != nullptr) {
    auto w = weights(rows, n, 34, 1);
    const WeightView view{TensorType::kQ8_0, n, rows, 34 * (n / 32), w.data()};
    const auto packed = pack_rows4(view);
    portable().dot_rows_q8_0(w.data(), view.row_bytes, rows, x0.data(), n, a.data());
    simd().dot_packed4_q8_0(packed.data(), rows / 4, x0.data(), n, b.data());
    expect_same_bits(a.data(), b.data(), rows);
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "no packed kernels in this table";
}

// Every tile edge: 1..17 tokens (whole tiles and each remainder), three groups of rows, and
// activation and output strides wider than the rows (as when a kernel sees part of a batch).
TEST_P(FastKernelsTest, MultiTokenPackedProductsAreIdentical) {
  const int64_t n = 320, rows = 12, blocks = n / 32, ldx = blocks + 3, ldy = rows + 5, max_tokens = 17;
  std::vector<BlockQ8_0> x0(static_cast<size_t>(max_tokens * ldx));
  std::vector<BlockQ8_1> x1(x0.size());
  for (int64_t t = 0; t < max_tokens; ++t) {
    auto x = activations(n);
    portable().quantize_q8_0(x.data(), n, &x0[t * ldx]);
    portable().quantize_q8_1(x.data(), n, &x1[t * ldx]);
  }
  int tested = 0;
  auto check = [&](TensorType type, int block_bytes, int scale_fields, auto dot_rows, auto matmul, const auto& x) {
    if (matmul == nullptr) return;
    const int per_block = type == TensorType::kQ4_1 ? 2 : 1;
    std::vector<float> scales(x.size() * per_block);
    activation_scales(x.data(), static_cast<int64_t>(x.size()), scales.data());
    auto w = weights(rows, n, block_bytes, scale_fields);
    const WeightView view{type, n, rows, static_cast<size_t>(block_bytes * blocks), w.data()};
    const auto packed = pack_rows4(view);
    for (int64_t m = 1; m <= max_tokens; ++m) {
      std::vector<float> want(static_cast<size_t>(m * ldy), -1.0f), got(want);
      for (int64_t t = 0; t < m; ++t) dot_rows(w.data(), view.row_bytes, rows, &x[t * ldx], n, &want[t * ldy]);
      matmul(packed.data(), rows / 4, x.data(), scales.data(), ldx, m, n, got.data(), ldy);
      SCOPED_TRACE(::testing::Message() << tensor_type_info(type).name << ", " << m << " tokens");
      expect_same_bits(want.data(), got.data(), want.size());  // the gaps between rows stay untouched
    }
    ++tested;
  };
  check(TensorType::kQ4_1, 20, 2, portable().dot_rows_q4_1, simd().matmul_packed4_q4_1, x1);
  check(TensorType::kQ8_0, 34, 1, portable().dot_rows_q8_0, simd().matmul_packed4_q8_0, x0);
  if (tested == 0) GTEST_SKIP() << "no multi-token packed kernels in this table";
}

TEST_P(FastKernelsTest, Fp16DotProductsAreIdenticalForEveryLength) {
  for (int64_t n : {1, 7, 8, 31, 32, 33, 64, 100, 517}) {
    auto a = halves(n), b = halves(n);
    float p = portable().dot_f16(a.data(), b.data(), n), s = simd().dot_f16(a.data(), b.data(), n);
    expect_same_bits(&p, &s, 1);
    p = portable().dot_f16_8lane(a.data(), b.data(), n);
    s = simd().dot_f16_8lane(a.data(), b.data(), n);
    expect_same_bits(&p, &s, 1);
  }
}

TEST_P(FastKernelsTest, WeightedSumsAreIdentical) {
  for (int dim : {64, 12}) {  // 12: not a multiple of 8, takes the portable fallback
    for (int n : {1, 5, 31, 32, 33, 200}) {
      std::vector<std::vector<uint16_t>> rows;
      std::vector<const uint16_t*> v;
      for (int j = 0; j < n; ++j) rows.push_back(halves(dim));
      for (auto& r : rows) v.push_back(r.data());
      auto p = halves(n);
      for (bool lanes8 : {false, true}) {
        std::vector<float> a(static_cast<size_t>(dim)), b(a.size());
        portable().weighted_sum_f16(v.data(), p.data(), n, dim, lanes8, a.data());
        simd().weighted_sum_f16(v.data(), p.data(), n, dim, lanes8, b.data());
        expect_same_bits(a.data(), b.data(), a.size());
      }
    }
  }
}

TEST_P(FastKernelsTest, AttentionScoresAreIdentical) {
  // 64: this model's heads; 40: a partial 32-value round; 12: the fallback (not whole chunks);
  // 9 heads: more than the kernel keeps at once.
  for (int dim : {64, 40, 12}) {
    for (int heads : {1, 3, 9}) {
      const int n = 37;
      std::vector<std::vector<uint16_t>> rows;
      std::vector<const uint16_t*> keys;
      for (int j = 0; j < n; ++j) rows.push_back(halves(dim));
      for (auto& r : rows) keys.push_back(r.data());
      auto q = halves(static_cast<int64_t>(heads) * dim);
      for (bool lanes8 : {false, true}) {
        std::vector<float> a(static_cast<size_t>(heads * n)), b(a.size());
        portable().scores_f16(keys.data(), q.data(), heads, n, dim, 0.125f, lanes8, a.data());
        simd().scores_f16(keys.data(), q.data(), heads, n, dim, 0.125f, lanes8, b.data());
        SCOPED_TRACE(::testing::Message() << "dim " << dim << " heads " << heads << " lanes8 " << lanes8);
        expect_same_bits(a.data(), b.data(), a.size());
        // And each is the dot product it names: head h's score for key j at h * n + j.
        const int h = heads - 1, j = 5;
        auto dot = lanes8 ? dot_f16_8lane : dot_f16;
        EXPECT_EQ(std::bit_cast<uint32_t>(a[h * n + j]),
                  std::bit_cast<uint32_t>(dot(keys[j], &q[h * dim], dim) * 0.125f));
      }
    }
  }
}

TEST_P(FastKernelsTest, HalfConversionIsIdentical) {
  std::vector<float> x;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int i = 0; i < 300; ++i) x.push_back(normal(rng_));
  // Ties, subnormals, overflow, infinities, signed zeros and NaNs with payloads.
  for (uint32_t bits :
       {0x3F801000u, 0x3F803000u, 0x33000000u, 0x33000001u, 0x387FC000u, 0x38800000u, 0x477FEFFFu, 0x477FF000u,
        0x7F800000u, 0xFF800000u, 0x80000000u, 0x00000000u, 0x7FC00000u, 0xFFC00001u, 0x7F800001u, 0x7FBFFFFFu}) {
    x.push_back(std::bit_cast<float>(bits));
  }
  for (float s : {1.0f, 0.37f}) {
    std::vector<uint16_t> a(x.size()), b(x.size());
    portable().scale_to_f16(x.data(), s, static_cast<int64_t>(x.size()), a.data());
    simd().scale_to_f16(x.data(), s, static_cast<int64_t>(x.size()), b.data());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(a[i], b[i]) << "value " << x[i] << " (bits " << std::bit_cast<uint32_t>(x[i]) << ") scale " << s;
      ASSERT_EQ(a[i], fp32_to_fp16(x[i] * s));
    }
  }
}

TEST_P(FastKernelsTest, SoftmaxExponentialsAreIdentical) {
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t n : {1, 8, 13, 64, 300}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng_);
    x[0] = -300.0f;  // far outside the polynomial's range: the scalar fallback lane
    std::vector<float> a(x.size()), b(x.size());
    const double sa = portable().softmax_exp(x.data(), 2.5f, a.data(), n);
    const double sb = simd().softmax_exp(x.data(), 2.5f, b.data(), n);
    EXPECT_EQ(std::bit_cast<uint64_t>(sa), std::bit_cast<uint64_t>(sb)) << n;
    expect_same_bits(a.data(), b.data(), a.size());
  }
}

// K-quant weights for several tokens at once: 1..17 tokens, 5 rows, strides wider than the rows.
TEST_P(FastKernelsTest, MultiTokenKQuantProductsAreIdentical) {
  const int64_t n = 512, rows = 5, nb = n / 256, ldx = nb + 1, ldy = rows + 2, max_tokens = 17;
  std::vector<BlockQ8_K> xk(static_cast<size_t>(max_tokens * ldx));
  for (int64_t t = 0; t < max_tokens; ++t) {
    auto x = activations(n);
    portable().quantize_q8_k(x.data(), n, &xk[t * ldx]);
  }
  struct Type {
    const char* name;
    int block_bytes;
    std::vector<int> half_offsets;  // fp16 scales inside a block
    void (*FastKernels::*dot)(const uint8_t*, size_t, int64_t, const BlockQ8_K*, int64_t, float*);
    void (*FastKernels::*matmul)(const uint8_t*, size_t, int64_t, const BlockQ8_K*, int64_t, int64_t, int64_t, float*,
                                 int64_t);
  };
  int tested = 0;
  for (const Type& t : {Type{"Q4_K", 144, {0, 2}, &FastKernels::dot_rows_q4_k, &FastKernels::matmul_rows_q4_k},
                        Type{"Q5_K", 176, {0, 2}, &FastKernels::dot_rows_q5_k, &FastKernels::matmul_rows_q5_k},
                        Type{"Q6_K", 210, {208}, &FastKernels::dot_rows_q6_k, &FastKernels::matmul_rows_q6_k}}) {
    if (simd().*t.matmul == nullptr) continue;
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.01f, 0.01f);
    std::vector<uint8_t> w(static_cast<size_t>(rows * nb * t.block_bytes));
    for (auto& b : w) b = static_cast<uint8_t>(byte(rng_));
    for (size_t off = 0; off < w.size(); off += static_cast<size_t>(t.block_bytes)) {
      for (int o : t.half_offsets) {
        const uint16_t h = fp32_to_fp16(scale(rng_));
        std::memcpy(&w[off + static_cast<size_t>(o)], &h, 2);
      }
    }
    const size_t rb = static_cast<size_t>(t.block_bytes * nb);
    for (int64_t m = 1; m <= max_tokens; ++m) {
      std::vector<float> want(static_cast<size_t>(m * ldy), -1.0f), got(want);
      for (int64_t k = 0; k < m; ++k) (portable().*t.dot)(w.data(), rb, rows, &xk[k * ldx], n, &want[k * ldy]);
      (simd().*t.matmul)(w.data(), rb, rows, xk.data(), ldx, m, n, got.data(), ldy);
      SCOPED_TRACE(::testing::Message() << t.name << ", " << m << " tokens");
      expect_same_bits(want.data(), got.data(), want.size());
    }
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "no multi-token K-quant kernels in this table";
}

// F16 and BF16 weights: 1..8 tokens, lengths with and without a partial 32-value round and one
// that is not whole 8-value chunks, and bfloat16 rounding of every kind of value.
TEST_P(FastKernelsTest, FloatWeightProductsAreIdentical) {
  std::vector<float> special;
  for (uint32_t bits : {0x3F808000u, 0x3F818000u, 0x7F800000u, 0xFF800000u, 0x80000000u, 0x7FC00000u, 0xFFC00001u,
                        0x7F800001u, 0x7F7FFFFFu, 0x00000001u}) {
    special.push_back(std::bit_cast<float>(bits));
  }
  for (int i = 0; i < 37; ++i) special.push_back(0.37f * static_cast<float>(i) - 5.0f);
  std::vector<uint16_t> a(special.size()), b(special.size());
  portable().round_to_bf16(special.data(), static_cast<int64_t>(special.size()), a.data());
  simd().round_to_bf16(special.data(), static_cast<int64_t>(special.size()), b.data());
  EXPECT_EQ(a, b);

  const int64_t rows = 5, max_tokens = 17;
  for (int64_t n : {64, 40, 12}) {
    for (bool bf16 : {false, true}) {
      const int64_t ldx = n + 3, ldy = rows + 2;
      std::vector<uint16_t> w(static_cast<size_t>(rows * n)), x(static_cast<size_t>(max_tokens * ldx));
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (auto& v : w) v = bf16 ? fp32_to_bf16(normal(rng_)) : fp32_to_fp16(normal(rng_));
      for (auto& v : x) v = bf16 ? fp32_to_bf16(normal(rng_)) : fp32_to_fp16(normal(rng_));
      auto matmul = bf16 ? &FastKernels::matmul_rows_bf16 : &FastKernels::matmul_rows_f16;
      for (int64_t m = 1; m <= max_tokens; ++m) {
        std::vector<float> want(static_cast<size_t>(m * ldy), -1.0f), got(want);
        (portable().*matmul)(reinterpret_cast<const uint8_t*>(w.data()), n * 2, rows, x.data(), ldx, m, n, want.data(),
                             ldy);
        (simd().*matmul)(reinterpret_cast<const uint8_t*>(w.data()), n * 2, rows, x.data(), ldx, m, n, got.data(), ldy);
        SCOPED_TRACE(::testing::Message() << (bf16 ? "BF16" : "F16") << " n " << n << ", " << m << " tokens");
        expect_same_bits(want.data(), got.data(), want.size());
        // The portable table's sums are the dot products fast_math.h names.
        const float dot = (bf16 ? dot_bf16 : dot_f16)(&w[2 * n], &x[(m - 1) * ldx], n);
        EXPECT_EQ(std::bit_cast<uint32_t>(want[(m - 1) * ldy + 2]), std::bit_cast<uint32_t>(dot));
      }
    }
  }
}

TEST_P(FastKernelsTest, KQuantDotProductsAreIdentical) {
  const int64_t n = 512, rows = 3;
  auto x = activations(n);
  std::vector<BlockQ8_K> xk(n / 256);
  portable().quantize_q8_k(x.data(), n, xk.data());
  struct Type {
    int block_bytes;
    std::vector<int> half_offsets;  // fp16 scales inside a block
    void (*FastKernels::*dot)(const uint8_t*, size_t, int64_t, const BlockQ8_K*, int64_t, float*);
  };
  for (const Type& t : {Type{144, {0, 2}, &FastKernels::dot_rows_q4_k}, Type{176, {0, 2}, &FastKernels::dot_rows_q5_k},
                        Type{210, {208}, &FastKernels::dot_rows_q6_k}}) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.01f, 0.01f);
    std::vector<uint8_t> w(static_cast<size_t>(rows * (n / 256) * t.block_bytes));
    for (auto& b : w) b = static_cast<uint8_t>(byte(rng_));
    for (size_t off = 0; off < w.size(); off += static_cast<size_t>(t.block_bytes)) {
      for (int o : t.half_offsets) {
        const uint16_t h = fp32_to_fp16(scale(rng_));
        std::memcpy(&w[off + static_cast<size_t>(o)], &h, 2);
      }
    }
    std::vector<float> a(rows), b(rows);
    const size_t rb = static_cast<size_t>(t.block_bytes * (n / 256));
    (portable().*t.dot)(w.data(), rb, rows, xk.data(), n, a.data());
    (simd().*t.dot)(w.data(), rb, rows, xk.data(), n, b.data());
    expect_same_bits(a.data(), b.data(), rows);
  }
}

TEST_P(FastKernelsTest, SwigluIsIdentical) {
  for (int64_t n : {1, 8, 13, 1536}) {
    auto g = activations(n), u = activations(n);
    if (n > 2) g[1] = -120.0f;  // exp of 120: outside the polynomial's fast range
    std::vector<float> a(g.size()), b(g.size());
    portable().swiglu(g.data(), u.data(), a.data(), n);
    simd().swiglu(g.data(), u.data(), b.data(), n);
    expect_same_bits(a.data(), b.data(), a.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, FastKernelsTest, ::testing::Values(Isa::kAvx2, Isa::kAvx512),
                         [](const auto& param_info) { return std::string(isa_name(param_info.param)); });

TEST(CpuFeatures, BestIsaIsSupportedAndNamesRoundTrip) {
  EXPECT_TRUE(isa_supported(best_isa()));
  EXPECT_TRUE(isa_supported(Isa::kPortable));
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_FALSE(parse_isa("sse9").has_value());
  EXPECT_EQ(fast_kernels().isa, best_isa());
}

}  // namespace
}  // namespace weft::kernels::cpu
