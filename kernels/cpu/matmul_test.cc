#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/half.h"
#include "kernels/cpu/packed_weights.h"

namespace weft::kernels::cpu {
namespace {

// A random quantized matrix: random nibbles/bytes with small fp16 scales (and mins for Q4_1).
struct Matrix {
  std::vector<uint8_t> bytes;
  WeightView view;
};
Matrix random_matrix(TensorType t, int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  const auto& info = tensor_type_info(t);
  Matrix m;
  m.bytes.resize(static_cast<size_t>(rows * cols / info.block_elems * info.block_bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : m.bytes) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.001f, 0.02f);
  if (t == TensorType::kF16 || t == TensorType::kBF16) {  // random finite values, not random bits
    std::normal_distribution<float> normal(0.0f, 0.05f);
    for (size_t i = 0; i + 1 < m.bytes.size(); i += 2) {
      const float v = normal(rng);
      const uint16_t h = t == TensorType::kF16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      std::memcpy(&m.bytes[i], &h, 2);
    }
    m.view = {t, cols, rows, static_cast<size_t>(cols * 2), m.bytes.data()};
    return m;
  }
  // Offsets of the fp16 scale (and min) fields in a block.
  std::vector<size_t> halves{0};
  if (t == TensorType::kQ4_1 || t == TensorType::kQ4_K || t == TensorType::kQ5_K) halves = {0, 2};
  if (t == TensorType::kQ6_K) halves = {208};
  for (size_t off = 0; off < m.bytes.size(); off += static_cast<size_t>(info.block_bytes)) {
    for (size_t s = 0; s < halves.size(); ++s) {
      const uint16_t h = fp32_to_fp16(s == 0 ? scale(rng) : -8.0f * scale(rng));
      std::memcpy(&m.bytes[off + halves[s]], &h, 2);
    }
  }
  m.view = {t, cols, rows, static_cast<size_t>(cols / info.block_elems * info.block_bytes), m.bytes.data()};
  return m;
}

std::vector<float> random_rows(int64_t m, int64_t cols) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * cols));
  for (float& v : x) v = normal(rng);
  return x;
}

class MatmulTest : public ::testing::TestWithParam<TensorType> {};

TEST_P(MatmulTest, SameBitsForEveryThreadCountAndInstructionSet) {
  const int64_t rows = 204, cols = 256, m = 5;
  Matrix w = random_matrix(GetParam(), rows, cols, 3);
  auto x = random_rows(m, cols);
  std::vector<float> want(static_cast<size_t>(m * rows));
  ASSERT_TRUE(matmul(w.view, x.data(), m, want.data(), {nullptr, &fast_kernels(Isa::kPortable), true}).is_ok());
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    for (int threads : {1, 3}) {
      ThreadTeam team(threads);
      std::vector<float> got(want.size());
      WeightView view = w.view;
      std::vector<uint8_t> packed;
      if (uses_packed_weights(fast_kernels(isa), view)) {
        packed = pack_rows4(view);
        view.packed = packed.data();
      }
      ASSERT_TRUE(matmul(view, x.data(), m, got.data(), {&team, &fast_kernels(isa), true}).is_ok());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
            << isa_name(isa) << " threads " << threads << " element " << i;
      }
    }
  }
}

// A row's result does not depend on what it is multiplied with: the multi-token kernels give each
// of 35 rows the bits it gets alone (more rows than one token block of the row chunks holds).
TEST_P(MatmulTest, EachRowIsTheSameAloneOrInABatch) {
  const int64_t rows = 44, cols = 512, m = 35;
  Matrix w = random_matrix(GetParam(), rows, cols, 9);
  auto x = random_rows(m, cols);
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    ThreadTeam team(2);
    WeightView view = w.view;
    std::vector<uint8_t> packed;
    if (uses_packed_weights(fast_kernels(isa), view)) {
      packed = pack_rows4(view);
      view.packed = packed.data();
    }
    const MatmulContext ctx{&team, &fast_kernels(isa), true};
    std::vector<float> batch(static_cast<size_t>(m * rows)), alone(static_cast<size_t>(rows));
    ASSERT_TRUE(matmul(view, x.data(), m, batch.data(), ctx).is_ok());
    for (int64_t i = 0; i < m; ++i) {
      ASSERT_TRUE(matmul(view, &x[i * cols], 1, alone.data(), ctx).is_ok());
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_EQ(std::bit_cast<uint32_t>(alone[r]), std::bit_cast<uint32_t>(batch[i * rows + r]))
            << isa_name(isa) << " token " << i << " row " << r;
      }
    }
  }
}

// Matrices fused into one loop (three of different heights) give what each gives alone.
TEST_P(MatmulTest, FusedEqualsSeparate) {
  const int64_t cols = 512, m = 6;
  Matrix a = random_matrix(GetParam(), 64, cols, 11), b = random_matrix(GetParam(), 20, cols, 12),
         c = random_matrix(GetParam(), 36, cols, 13);
  auto x = random_rows(m, cols);
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    ThreadTeam team(2);
    std::vector<std::vector<uint8_t>> packs;
    std::vector<WeightView> views{a.view, b.view, c.view};
    for (WeightView& v : views) {
      if (uses_packed_weights(fast_kernels(isa), v)) {
        packs.push_back(pack_rows4(v));
        v.packed = packs.back().data();
      }
    }
    const MatmulContext ctx{&team, &fast_kernels(isa), true};
    QuantizedRows in;
    in.set(x.data(), m, cols);
    std::vector<std::vector<float>> fused(3), alone(3);
    for (int i = 0; i < 3; ++i) {
      fused[i].resize(static_cast<size_t>(m * views[i].rows));
      alone[i].resize(fused[i].size());
      ASSERT_TRUE(matmul(views[i], in, alone[i].data(), ctx).is_ok());
    }
    ASSERT_TRUE(matmul_fused({{&views[0], fused[0].data()}, {&views[1], fused[1].data()}, {&views[2], fused[2].data()}},
                             in, ctx)
                    .is_ok());
    for (int i = 0; i < 3; ++i) {
      for (size_t j = 0; j < fused[i].size(); ++j) {
        ASSERT_EQ(std::bit_cast<uint32_t>(alone[i][j]), std::bit_cast<uint32_t>(fused[i][j]))
            << isa_name(isa) << " matrix " << i << " element " << j;
      }
    }
  }
}

TEST_P(MatmulTest, FastIsCloseToReference) {
  const int64_t rows = 64, cols = 512, m = 3;
  Matrix w = random_matrix(GetParam(), rows, cols, 5);
  auto x = random_rows(m, cols);
  ThreadTeam team(2);
  std::vector<float> fast(static_cast<size_t>(m * rows)), ref(fast.size());
  ASSERT_TRUE(matmul(w.view, x.data(), m, fast.data(), {&team, &fast_kernels(), true}).is_ok());
  ASSERT_TRUE(matmul(w.view, x.data(), m, ref.data(), {&team, &fast_kernels(), false}).is_ok());
  double err = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err += (fast[i] - ref[i]) * (fast[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  // 8-bit activations: about 0.5% relative error on random data.
  EXPECT_LT(std::sqrt(err / norm), 0.02);
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTest,
                         ::testing::Values(TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ8_0, TensorType::kQ4_K,
                                           TensorType::kQ5_K, TensorType::kQ6_K, TensorType::kF16, TensorType::kBF16),
                         [](const auto& param_info) { return std::string(tensor_type_info(param_info.param).name); });

TEST(Matmul, RejectsMismatchedShapes) {
  Matrix w = random_matrix(TensorType::kQ8_0, 4, 64, 1);
  std::vector<float> x(32), y(4);
  QuantizedRows rows;
  rows.set(x.data(), 1, 32);
  EXPECT_EQ(matmul(w.view, rows, y.data(), {}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace weft::kernels::cpu
