// The CPU kernels against this machine's compute bound: the integer-dot primitive's peak rate
// (fast_kernels.h int8_dot_probe) and the quantized matrix products at 1..128 tokens, so the
// gain from loading each weight block once for several tokens is visible kernel by kernel.
//
//   kernel_bench [--isa portable|avx2|avx512] [--threads N]
//
// Lines: int8_dot_peak (multiply-adds per second, one thread and N threads at once), and
// matmul_<type>_m<M> (one thread, a 1536 x 576 weight matrix as the model's FFN, multiply-adds
// per second) with the peak of one thread as baseline: ratio = the fraction of the bound reached.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/int8_peak.h"
#include "bench/json_line.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed_weights.h"

namespace {

using namespace weft::kernels;
using namespace weft::kernels::cpu;
using weft::bench::Clock;
using weft::bench::seconds_since;

// Multiply-adds per second of `fn` (which returns the multiply-adds it did), best of 3 runs of
// at least 0.2 s each.
template <class F>
double rate(F&& fn) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    int64_t macs = 0;
    const auto t = Clock::now();
    double s = 0;
    do {
      macs += fn();
      s = seconds_since(t);
    } while (s < 0.2);
    best = std::max(best, static_cast<double>(macs) / s);
  }
  return best;
}

std::vector<uint8_t> random_weights(TensorType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  const auto& info = tensor_type_info(type);
  const int64_t blocks = cols / info.block_elems;
  std::vector<uint8_t> w(static_cast<size_t>(rows * blocks) * info.block_bytes);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
  if (type == TensorType::kF16 || type == TensorType::kBF16) {  // finite values, not random bits
    std::normal_distribution<float> normal(0.0f, 0.05f);
    for (size_t i = 0; i + 1 < w.size(); i += 2) {
      const uint16_t h = type == TensorType::kF16 ? fp32_to_fp16(normal(rng)) : fp32_to_bf16(normal(rng));
      std::memcpy(&w[i], &h, 2);
    }
    return w;
  }
  const int scales = type == TensorType::kQ8_0 ? 1 : 2;  // d (and m or dmin) lead every block
  for (size_t off = 0; off < w.size(); off += info.block_bytes) {
    for (int s = 0; s < scales; ++s) {
      const uint16_t h = fp32_to_fp16(0.01f);
      std::memcpy(&w[off + 2 * static_cast<size_t>(s)], &h, 2);
    }
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = best_isa();
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--isa" && i + 1 < argc) {
      auto parsed = parse_isa(argv[++i]);
      if (!parsed || !isa_supported(*parsed)) {
        std::fprintf(stderr, "kernel_bench: unknown or unsupported --isa\n");
        return 2;
      }
      isa = *parsed;
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: kernel_bench [--isa NAME] [--threads N]\n");
      return 2;
    }
  }
  const FastKernels& k = fast_kernels(isa);
  const std::string isa_json = "\"" + std::string(isa_name(isa)) + "\"";
  const double peak1 = weft::bench::int8_peak(k, 1);
  const double peak_all = weft::bench::int8_peak(k, threads);
  weft::bench::JsonLine{
      "int8_dot_peak", "GMAC/s", peak1 / 1e9, "", std::nullopt, true, {{"isa", isa_json}, {"threads", "1"}}}
      .print();
  weft::bench::JsonLine{"int8_dot_peak",
                        "GMAC/s",
                        peak_all / 1e9,
                        "",
                        std::nullopt,
                        true,
                        {{"isa", isa_json}, {"threads", std::to_string(threads)}}}
      .print();

  std::mt19937 rng(7);
  const int64_t rows = 576, cols = 1536;  // the FFN down projection
  for (TensorType type : {TensorType::kQ4_1, TensorType::kQ8_0, TensorType::kQ4_K, TensorType::kQ6_K, TensorType::kF16,
                          TensorType::kBF16}) {
    auto bytes = random_weights(type, rows, cols, rng);
    WeightView w{type, cols, rows, bytes.size() / rows, bytes.data()};
    std::vector<uint8_t> packed;
    if (uses_packed_weights(k, w)) {
      packed = pack_rows4(w);
      w.packed = packed.data();
    }
    for (int64_t m : {1, 2, 4, 8, 16, 32, 64, 128}) {
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> x(static_cast<size_t>(m * cols)), y(static_cast<size_t>(m * rows));
      for (float& v : x) v = normal(rng);
      QuantizedRows in;
      in.set(x.data(), m, cols);
      const MatmulContext ctx{nullptr, &k, true};
      const double macs = rate([&] {
        if (!matmul(w, in, y.data(), ctx).is_ok()) std::abort();
        return rows * cols * m;
      });
      weft::bench::JsonLine{
          std::string("matmul_") + std::string(tensor_type_info(type).name) + "_m" + std::to_string(m),
          "GMAC/s",
          macs / 1e9,
          "int8_dot_peak",
          peak1 / 1e9,
          true,
          {{"isa", isa_json}, {"threads", "1"}, {"packed", w.packed != nullptr ? "true" : "false"}}}
          .print();
    }
  }
  return 0;
}
