// Every backend's every operator against the CPU reference operators (cpu/ops.h, dequantize.h)
// on random inputs. Tolerances: weights and activations dequantized exactly agree to float
// rounding (1e-5 relative); products of many tokens run on fp16 copies (CUDA's cuBLAS path), so
// matrix products are held to 4e-3 of the sum of |w x| terms; rotary angles to 2e-4 (CUDA
// computes each angle with powf, the reference by repeated multiplication); attention reads fp16
// keys and values on every backend and is held to 2e-3.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "kernels/backend.h"
#include "kernels/communicator.h"
#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/ops.h"
#include "kernels/random_weights_for_test.h"

namespace weft::kernels {
namespace {

class BackendTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    if (!backend_available(GetParam())) GTEST_SKIP() << "no " << device_name(GetParam()) << " device here";
    Result<std::unique_ptr<Backend>> b = make_backend(GetParam());
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    be = std::move(b).value();
  }
  template <class T>
  Buffer put(const std::vector<T>& v) {
    Buffer b = be->allocate(v.size() * sizeof(T)).value();
    EXPECT_TRUE(be->upload(v.data(), v.size() * sizeof(T), b, 0).is_ok());
    return b;
  }
  template <class T>
  std::vector<T> get(const Buffer& b, size_t count) {
    std::vector<T> out(count);
    Status s = be->download(b, 0, count * sizeof(T), out.data());
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return out;
  }
  // A host weight view over bytes kept alive by the test.
  WeightView view(TensorType t, int64_t rows, int64_t cols, const std::string& bytes) {
    return {t, cols, rows, row_bytes(t, cols).value(), reinterpret_cast<const uint8_t*>(bytes.data()), nullptr};
  }
  std::vector<float> dequantized(const WeightView& w) {
    std::vector<float> out(static_cast<size_t>(w.rows * w.cols));
    for (int64_t r = 0; r < w.rows; ++r)
      EXPECT_TRUE(cpu::dequantize_row(w.type, w.row(r), &out[r * w.cols], w.cols).is_ok());
    return out;
  }
  std::vector<float> random(size_t n, float sd = 1.0f) {
    std::normal_distribution<float> normal(0.0f, sd);
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
  }

  std::unique_ptr<Backend> be;
  std::mt19937 rng{7};
};

const TensorType kTypes[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,
                             TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ8_0,
                             TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K};

TEST_P(BackendTest, EmbedMatchesDequantization) {
  for (TensorType t : kTypes) {
    SCOPED_TRACE(std::string(tensor_type_info(t).name));
    const int64_t rows = 7, cols = 512;
    const std::string bytes = testing::random_rows(t, rows, cols, rng);
    const WeightView w = view(t, rows, cols, bytes);
    Weight dw = be->upload_weight(w, false).value();
    const std::vector<int32_t> ids = {3, 0, 6, 3};
    Buffer id_buf = put(ids);
    Buffer out = be->allocate(ids.size() * cols * 4).value();
    be->embed(dw, id_buf.as<int32_t>(), 4, out.as<float>());
    const std::vector<float> got = get<float>(out, ids.size() * cols);
    const std::vector<float> ref = dequantized(w);
    for (size_t i = 0; i < ids.size(); ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const float r = ref[ids[i] * cols + j];
        ASSERT_NEAR(got[i * cols + j], r, 1e-6 + 1e-5 * std::fabs(r)) << "token " << i << " value " << j;
      }
    }
  }
}

TEST_P(BackendTest, MatmulMatchesReferenceForEveryTypeAndTokenCount) {
  for (TensorType t : kTypes) {
    SCOPED_TRACE(std::string(tensor_type_info(t).name));
    const int64_t rows = 37, cols = 512;
    const std::string bytes = testing::random_rows(t, rows, cols, rng);
    const WeightView w = view(t, rows, cols, bytes);
    Weight dw = be->upload_weight(w, true).value();
    const std::vector<float> wf = dequantized(w);
    for (int n : {1, 3, 8, 9, 16, 17, 40}) {
      for (bool accumulate : {false, true}) {
        SCOPED_TRACE(::testing::Message() << n << " tokens, accumulate " << accumulate);
        const std::vector<float> x = random(static_cast<size_t>(n) * cols);
        const std::vector<float> y0 = random(static_cast<size_t>(n) * rows);
        Buffer xb = put(x), yb = put(y0);
        be->matmul(dw, xb.as<float>(), n, yb.as<float>(), accumulate);
        const std::vector<float> got = get<float>(yb, y0.size());
        for (int i = 0; i < n; ++i) {
          for (int64_t r = 0; r < rows; ++r) {
            double ref = 0, mag = 0;
            for (int64_t j = 0; j < cols; ++j) {
              ref += static_cast<double>(wf[r * cols + j]) * x[i * cols + j];
              mag += std::fabs(static_cast<double>(wf[r * cols + j]) * x[i * cols + j]);
            }
            if (accumulate) ref += y0[i * rows + r];
            ASSERT_NEAR(got[i * rows + r], ref, 4e-3 * mag + 1e-5) << "token " << i << " row " << r;
          }
        }
      }
    }
  }
}

TEST_P(BackendTest, SwigluProductMatchesReference) {
  for (TensorType t : {TensorType::kQ4_1, TensorType::kF16, TensorType::kQ6_K}) {
    SCOPED_TRACE(std::string(tensor_type_info(t).name));
    const int64_t rows = 24, cols = 256;
    const std::string gb = testing::random_rows(t, rows, cols, rng), ub = testing::random_rows(t, rows, cols, rng);
    const WeightView gw = view(t, rows, cols, gb), uw = view(t, rows, cols, ub);
    Weight g = be->upload_weight(gw, true).value(), u = be->upload_weight(uw, true).value();
    const std::vector<float> gf = dequantized(gw), uf = dequantized(uw);
    const std::vector<float> norm = random(cols);
    Buffer nb = put(norm);
    for (int n : {1, 8, 20}) {
      for (bool normalise : {false, true}) {
        std::vector<float> x = random(static_cast<size_t>(n) * cols);
        Buffer xb = put(x), yb = be->allocate(static_cast<size_t>(n) * rows * 4).value();
        be->matmul_swiglu(g, u, xb.as<float>(), n, normalise ? nb.as<float>() : nullptr, 1e-5f, yb.as<float>());
        const std::vector<float> got = get<float>(yb, static_cast<size_t>(n) * rows);
        if (normalise) {
          for (int i = 0; i < n; ++i) cpu::rms_norm(&x[i * cols], norm.data(), cols, 1e-5f, &x[i * cols]);
        }
        for (int i = 0; i < n; ++i) {
          for (int64_t r = 0; r < rows; ++r) {
            double a = 0, b = 0, mag = 0;
            for (int64_t j = 0; j < cols; ++j) {
              a += static_cast<double>(gf[r * cols + j]) * x[i * cols + j];
              b += static_cast<double>(uf[r * cols + j]) * x[i * cols + j];
              mag += std::fabs(gf[r * cols + j] * x[i * cols + j]) + std::fabs(uf[r * cols + j] * x[i * cols + j]);
            }
            const double ref = a / (1 + std::exp(-a)) * b;
            ASSERT_NEAR(got[i * rows + r], ref, 1e-2 * mag * (1 + std::fabs(a) + std::fabs(b)) + 1e-5);
          }
        }
      }
    }
  }
}

// q, k and v as one product of a normalised input, accumulating or not.
TEST_P(BackendTest, SeveralMatricesOfANormalisedInputMatchReference) {
  for (TensorType t : {TensorType::kQ4_1, TensorType::kQ8_0, TensorType::kBF16}) {
    SCOPED_TRACE(std::string(tensor_type_info(t).name));
    const int64_t cols = 576, rows[3] = {40, 13, 13};
    std::string bytes[3];
    WeightView views[3];
    Weight weights[3];
    for (int k = 0; k < 3; ++k) {
      bytes[k] = testing::random_rows(t, rows[k], cols, rng);
      views[k] = view(t, rows[k], cols, bytes[k]);
      weights[k] = be->upload_weight(views[k], true).value();
    }
    const std::vector<float> norm = random(cols);
    Buffer nb = put(norm);
    for (int n : {1, 5, 8, 24}) {
      for (bool accumulate : {false, true}) {
        SCOPED_TRACE(::testing::Message() << n << " tokens, accumulate " << accumulate);
        const std::vector<float> x = random(static_cast<size_t>(n) * cols);
        std::vector<std::vector<float>> y0(3);
        std::vector<Buffer> yb;
        for (int k = 0; k < 3; ++k) {
          y0[k] = random(static_cast<size_t>(n) * rows[k]);
          yb.push_back(put(y0[k]));
        }
        Buffer xb = put(x);
        const MatmulTarget targets[] = {
            {&weights[0], yb[0].as<float>()}, {&weights[1], yb[1].as<float>()}, {&weights[2], yb[2].as<float>()}};
        be->matmul(targets, xb.as<float>(), n, nb.as<float>(), 1e-5f, accumulate);
        std::vector<float> xn(x.size());
        for (int i = 0; i < n; ++i) cpu::rms_norm(&x[i * cols], norm.data(), cols, 1e-5f, &xn[i * cols]);
        for (int k = 0; k < 3; ++k) {
          const std::vector<float> wf = dequantized(views[k]);
          const std::vector<float> got = get<float>(yb[k], y0[k].size());
          for (int i = 0; i < n; ++i) {
            for (int64_t r = 0; r < rows[k]; ++r) {
              double ref = accumulate ? y0[k][i * rows[k] + r] : 0.0, mag = 0;
              for (int64_t j = 0; j < cols; ++j) {
                ref += static_cast<double>(wf[r * cols + j]) * xn[i * cols + j];
                mag += std::fabs(static_cast<double>(wf[r * cols + j]) * xn[i * cols + j]);
              }
              ASSERT_NEAR(got[i * rows[k] + r], ref, 4e-3 * mag + 1e-4) << "matrix " << k << " token " << i;
            }
          }
        }
      }
    }
  }
}

TEST_P(BackendTest, RmsNormMatchesReference) {
  const int n = 5, cols = 576;
  const std::vector<float> x = random(n * cols), w = random(cols);
  Buffer xb = put(x), wb = put(w), yb = be->allocate(n * cols * 4).value();
  be->rms_norm(xb.as<float>(), wb.as<float>(), n, cols, 1e-5f, yb.as<float>());
  const std::vector<float> got = get<float>(yb, n * cols);
  std::vector<float> ref(cols);
  for (int i = 0; i < n; ++i) {
    cpu::rms_norm(&x[i * cols], w.data(), cols, 1e-5f, ref.data());
    for (int j = 0; j < cols; ++j) ASSERT_NEAR(got[i * cols + j], ref[j], 1e-5 + 1e-5 * std::fabs(ref[j]));
  }
}

// Rotary embeddings, the KV store and tree-masked attention together: five tokens of which two
// are siblings, over a committed prefix already in the pool.
TEST_P(BackendTest, RopeStoreAndTreeAttentionMatchReference) {
  for (int hd : {16, 64, 128}) {
    for (bool neox : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "head_dim " << hd << (neox ? " neox" : " normal"));
      const AttentionShape shape{4, 2, hd, 1.0f / std::sqrt(static_cast<float>(hd))};
      const int kvd = shape.n_kv_heads * hd, qd = shape.n_heads * hd, layers = 2, layer = 1, slots = 64;
      KvPool pool{layers, slots, kvd, be->allocate(layers * slots * kvd * 2).value(),
                  be->allocate(layers * slots * kvd * 2).value()};
      // A committed prefix of 20 slots in the pool (scattered, as paged blocks are).
      std::vector<uint16_t> keys(layers * slots * kvd), values(keys.size());
      const std::vector<float> kf = random(keys.size()), vf = random(keys.size());
      for (size_t j = 0; j < keys.size(); ++j) {
        keys[j] = cpu::fp32_to_fp16(kf[j]);
        values[j] = cpu::fp32_to_fp16(vf[j]);
      }
      ASSERT_TRUE(be->upload(keys.data(), keys.size() * 2, pool.keys, 0).is_ok());
      ASSERT_TRUE(be->upload(values.data(), values.size() * 2, pool.values, 0).is_ok());
      std::vector<int32_t> prefix;
      for (int s = 0; s < 20; ++s) prefix.push_back((s * 7) % 40 + 20 * (s % 2));
      std::sort(prefix.begin(), prefix.end());
      prefix.erase(std::unique(prefix.begin(), prefix.end()), prefix.end());
      // Tokens: a chain 0 -> 1, then 2 and 3 both children of 1, then 4 child of 3.
      const int n = 5;
      const std::vector<int32_t> pos = {20, 21, 22, 22, 93}, slot = {60, 61, 62, 63, 59};
      const std::vector<std::vector<int>> parents = {{}, {0}, {0, 1}, {0, 1}, {0, 1, 3}};
      std::vector<int32_t> vstart, visible;
      for (int i = 0; i < n; ++i) {
        vstart.push_back(static_cast<int32_t>(visible.size()));
        visible.insert(visible.end(), prefix.begin(), prefix.end());
        for (int p : parents[i]) visible.push_back(slot[p]);
        visible.push_back(slot[i]);
      }
      vstart.push_back(static_cast<int32_t>(visible.size()));
      std::vector<float> q = random(n * qd), k = random(n * kvd), v = random(n * kvd);
      Buffer qb = put(q), kb = put(k), vb = put(v), pb = put(pos), sb = put(slot), vsb = put(vstart),
             vib = put(visible);
      const Rope rope{hd, hd, 10000.0f, 1.0f, nullptr, neox};
      be->rope_store(qb.as<float>(), kb.as<float>(), vb.as<float>(), n, pb.as<int32_t>(), sb.as<int32_t>(), rope, shape,
                     pool, layer);
      Buffer ob = be->allocate(n * qd * 4).value();
      be->attention(qb.as<float>(), n, vsb.as<int32_t>(), vib.as<int32_t>(), shape, pool, layer, ob.as<float>());
      const std::vector<float> got_q = get<float>(qb, n * qd), got = get<float>(ob, n * qd);
      const std::vector<uint16_t> got_keys = get<uint16_t>(pool.keys, keys.size());

      // Reference: rotate on the host, store as halves, attend over float copies of the halves.
      const cpu::RopeParams rp{hd, hd, 10000.0f, 1.0f, nullptr, neox};
      std::vector<float> cs(hd / 2), sn(hd / 2);
      for (int i = 0; i < n; ++i) {
        cpu::rope_angles(pos[i], rp, cs.data(), sn.data());
        cpu::rope_apply(&q[i * qd], shape.n_heads, cs.data(), sn.data(), rp);
        cpu::rope_apply(&k[i * kvd], shape.n_kv_heads, cs.data(), sn.data(), rp);
        for (int j = 0; j < kvd; ++j) {
          keys[(layer * slots + slot[i]) * kvd + j] = cpu::fp32_to_fp16(k[i * kvd + j]);
          values[(layer * slots + slot[i]) * kvd + j] = cpu::fp32_to_fp16(v[i * kvd + j]);
        }
      }
      for (int j = 0; j < n * qd; ++j) ASSERT_NEAR(got_q[j], q[j], 2e-4 * (1 + std::fabs(q[j]))) << j;
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < kvd; ++j) {
          const size_t at = (layer * slots + slot[i]) * kvd + j;
          ASSERT_NEAR(cpu::fp16_to_fp32(got_keys[at]), cpu::fp16_to_fp32(keys[at]), 2e-3);
        }
      }
      for (int i = 0; i < n; ++i) {
        const int count = vstart[i + 1] - vstart[i];
        std::vector<float> kk(count * hd), vv(count * hd);
        std::vector<const float*> kp(count), vp(count);
        for (int h = 0; h < shape.n_heads; ++h) {
          const int kvh = h / 2;
          for (int j = 0; j < count; ++j) {
            const size_t at = (layer * slots + visible[vstart[i] + j]) * kvd + kvh * hd;
            for (int e = 0; e < hd; ++e) {
              kk[j * hd + e] = cpu::fp16_to_fp32(keys[at + e]);
              vv[j * hd + e] = cpu::fp16_to_fp32(values[at + e]);
            }
            kp[j] = &kk[j * hd];
            vp[j] = &vv[j * hd];
          }
          std::vector<float> ref(hd);
          cpu::attention(&q[(i * shape.n_heads + h) * hd], kp.data(), vp.data(), count, hd, shape.scale, ref.data());
          for (int e = 0; e < hd; ++e) {
            ASSERT_NEAR(got[(i * shape.n_heads + h) * hd + e], ref[e], 2e-3) << "token " << i << " head " << h;
          }
        }
      }
    }
  }
}

TEST_P(BackendTest, GatherBiasAndArgmax) {
  const int n = 6, cols = 1000;
  std::vector<float> x = random(n * cols);
  x[2 * cols + 917] = 50;  // row 2's maximum
  x[4 * cols + 3] = 60;    // row 4's maximum, twice: the first wins
  x[4 * cols + 400] = 60;
  const std::vector<float> bias = random(cols);
  Buffer xb = put(x), bb = put(bias);
  const std::vector<int32_t> rows = {4, 2};
  Buffer rb = put(rows), yb = be->allocate(2 * cols * 4).value(), ab = be->allocate(2 * 4).value();
  be->gather_rows(xb.as<float>(), rb.as<int32_t>(), 2, cols, yb.as<float>());
  be->argmax(yb.as<float>(), 2, cols, ab.as<int32_t>());
  EXPECT_EQ(get<int32_t>(ab, 2), (std::vector<int32_t>{3, 917}));
  be->add_bias(xb.as<float>(), bb.as<float>(), n, cols);
  const std::vector<float> got = get<float>(xb, n * cols);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < cols; ++j) ASSERT_FLOAT_EQ(got[i * cols + j], x[i * cols + j] + bias[j]);
  }
}

// A recorded step replays with the inputs its buffers hold at replay time.
TEST_P(BackendTest, RecordedStepsReadTheirBuffersEachTime) {
  const int cols = 256;
  const std::string bytes = testing::random_rows(TensorType::kQ8_0, 16, cols, rng);
  const WeightView w = view(TensorType::kQ8_0, 16, cols, bytes);
  Weight dw = be->upload_weight(w, true).value();
  Buffer xb = be->allocate(cols * 4).value(), yb = be->allocate(16 * 4).value();
  std::vector<float> first;
  for (int round = 0; round < 4; ++round) {
    const std::vector<float> x = random(cols);
    ASSERT_TRUE(be->upload(x.data(), cols * 4, xb, 0).is_ok());
    ASSERT_TRUE(be->run_recorded(42, [&] { be->matmul(dw, xb.as<float>(), 1, yb.as<float>(), false); }).is_ok());
    const std::vector<float> got = get<float>(yb, 16);
    const std::vector<float> wf = dequantized(w);
    for (int r = 0; r < 16; ++r) {
      double ref = 0;
      for (int j = 0; j < cols; ++j) ref += static_cast<double>(wf[r * cols + j]) * x[j];
      ASSERT_NEAR(got[r], ref, 1e-3) << "round " << round;
    }
  }
}

TEST_P(BackendTest, AddAndOneRankAllReduce) {
  const std::vector<float> x = random(1000), y = random(1000);
  Buffer xb = put(x), yb = put(y);
  be->add(yb.as<float>(), xb.as<float>(), 1000);
  // One rank (NCCL on CUDA): the all-reduce leaves the data as it is.
  Backend* ranks[] = {be.get()};
  auto comms = make_communicators(ranks);
  if (!comms.ok()) GTEST_SKIP() << comms.status();
  ASSERT_TRUE((*comms)[0]->all_reduce_sum(yb.as<float>(), 1000).is_ok());
  const std::vector<float> got = get<float>(yb, 1000);
  for (int i = 0; i < 1000; ++i) ASSERT_FLOAT_EQ(got[i], y[i] + x[i]);
}

TEST(ThreadCommunicator, SumsOverRanksAndEveryRankHoldsTheSameBits) {
  constexpr int kRanks = 3, kCount = 1001;
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<Backend*> ranks;
  for (int r = 0; r < kRanks; ++r) {
    backends.push_back(make_backend(Device::kCpu).value());
    ranks.push_back(backends.back().get());
  }
  auto comms = make_communicators(ranks).value();
  std::vector<std::vector<float>> data(kRanks, std::vector<float>(kCount));
  for (int r = 0; r < kRanks; ++r) {
    for (int j = 0; j < kCount; ++j) data[r][j] = 0.1f * static_cast<float>(r + 1) + static_cast<float>(j);
  }
  for (int round = 0; round < 3; ++round) {  // the group is reused
    std::vector<std::thread> threads;
    for (int r = 0; r < kRanks; ++r) {
      threads.emplace_back([&, r] { EXPECT_TRUE(comms[r]->all_reduce_sum(data[r].data(), kCount).is_ok()); });
    }
    for (auto& t : threads) t.join();
  }
  for (int j = 0; j < kCount; ++j) {
    float expect = 0.1f * 1 + static_cast<float>(j);
    for (int round = 0; round < 3; ++round) {
      float s = 0;
      for (int r = 0; r < kRanks; ++r)
        s += round == 0 ? 0.1f * static_cast<float>(r + 1) + static_cast<float>(j) : expect;
      expect = s;
    }
    for (int r = 0; r < kRanks; ++r) ASSERT_EQ(data[r][j], data[0][j]);
    ASSERT_FLOAT_EQ(data[0][j], expect) << j;
  }
}

// A weight type without kernels is an error (at upload, or at the next synchronize), never
// silently wrong output.
TEST_P(BackendTest, WeightsWithoutKernelsAreAnError) {
  const std::string bytes = testing::random_rows(TensorType::kQ5_0, 4, 64, rng);
  Result<Weight> w = be->upload_weight(view(TensorType::kQ5_0, 4, 64, bytes), true);
  if (!w.ok()) {
    EXPECT_NE(w.status().message().find("Q5_0"), std::string::npos) << w.status();
    return;
  }
  Buffer xb = put(random(64)), yb = be->allocate(4 * 4).value();
  be->matmul(*w, xb.as<float>(), 1, yb.as<float>(), false);
  const Status s = be->synchronize();
  EXPECT_FALSE(s.is_ok());
  EXPECT_TRUE(be->synchronize().is_ok());  // reported once
}

TEST_P(BackendTest, DeviceNamesParse) {
  EXPECT_EQ(parse_device("cuda").value(), Device::kCuda);
  EXPECT_EQ(parse_device("cpu").value(), Device::kCpu);
  EXPECT_FALSE(parse_device("tpu").ok());
  EXPECT_FALSE(be->describe().empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, ::testing::Values(Device::kCpu, Device::kCuda),
                         [](const ::testing::TestParamInfo<Device>& param) {
                           return std::string(device_name(param.param));
                         });

}  // namespace
}  // namespace weft::kernels
