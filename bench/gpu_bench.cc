// The CUDA backend on a model of SmolLM2-135M's shape (random weights written by weft's GGUF
// writer: speed does not depend on their values) against Hugging Face transformers on the same
// GPU (bf16, the same shapes; figures measured by bench/peers/transformers_gpu.py just before and
// passed in with --peer-json), and against the memory bound: weight bytes read per step over the
// measured device-to-device copy bandwidth.
//
//   gpu_bench [--type q4_1|q8_0|f16|bf16] [--peer-json FILE] [--model PATH] [--decode-only N]
//
// --decode-only N: only decode at batch N (with WEFT_CUDA_PROFILE=1, the device time of each
// replayed step is printed at the end: the step's host overhead is the rest).
//
// Workloads (best of three each):
//   decode_b{1,8,64}   N sequences with 32-token prompts, then 64 greedy steps of N tokens
//                      (argmax on the device; only token ids leave it)
//   prefill_512        one 512-token prompt as one batch, the last token's logits
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/bench_util.h"
#include "bench/json_line.h"
#include "bench/peer_json.h"
#include "kernels/backend.h"
#include "llm/llama_model.h"
#include "llm/random_model_for_test.h"

namespace {

using weft::bench::Clock;
using weft::bench::JsonLine;
using weft::bench::seconds_since;
using weft::llm::Batch;
using weft::llm::KvCache;
using weft::llm::LlamaModel;

constexpr const char* kTool = "gpu_bench";
template <class T>
T must(weft::Result<T> r) {
  return weft::bench::must(std::move(r), kTool);
}
void must(const weft::Status& s) { weft::bench::must(s, kTool); }

int32_t token(int64_t i) { return static_cast<int32_t>(100 + (i * 7919) % 49000); }

// Device-to-device copy bandwidth, bytes read plus bytes written per second (as PyTorch's
// figure is usually quoted).
double copy_bandwidth(weft::kernels::Backend& be) {
  const size_t bytes = size_t{1} << 30;
  weft::kernels::Buffer a = must(be.allocate(bytes)), b = must(be.allocate(bytes));
  must(be.copy(a, 0, b, 0, bytes));
  must(be.synchronize());
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 10; ++i) must(be.copy(a, 0, b, 0, bytes));
    must(be.synchronize());
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * 10 * static_cast<double>(bytes) / best;
}

double decode(const LlamaModel& m, int batch, int steps) {
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    KvCache kv = must(m.new_cache(batch * (32 + steps + 16)));
    std::vector<int> seqs;
    Batch prefill;
    for (int s = 0; s < batch; ++s) {
      seqs.push_back(kv.add_sequence());
      std::vector<int32_t> ids;
      for (int i = 0; i < 32; ++i) ids.push_back(token(s * 1000 + i));
      prefill.add_chain(seqs.back(), 0, ids);
    }
    std::vector<int32_t> next = must(m.forward_argmax(prefill, kv));
    for (int s : seqs) kv.commit(s, 32);
    const auto t0 = Clock::now();
    for (int step = 0; step < steps; ++step) {
      Batch d;
      for (int s = 0; s < batch; ++s) d.add_chain(seqs[s], 32 + step, {next[s]});
      next = must(m.forward_argmax(d, kv));
      for (int s : seqs) kv.commit(s, 1);
    }
    best = std::min(best, seconds_since(t0));
  }
  return batch * steps / best;
}

double prefill(const LlamaModel& m, int tokens) {
  std::vector<int32_t> ids;
  for (int i = 0; i < tokens; ++i) ids.push_back(token(i));
  double best = 1e30;
  KvCache kv = must(m.new_cache(tokens + 16));
  for (int rep = 0; rep < 4; ++rep) {
    const int s = kv.add_sequence();
    Batch b;
    b.add_chain(s, 0, ids);
    const auto t0 = Clock::now();
    must(m.forward_argmax(b, kv));
    if (rep > 0) best = std::min(best, seconds_since(t0));  // the first sizes buffers
    kv.remove_sequence(s);
  }
  return tokens / best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string type = "q4_1", peer_json, model;
  int decode_only = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--type") type = argv[i + 1];
    if (a == "--peer-json") peer_json = argv[i + 1];
    if (a == "--model") model = argv[i + 1];
    if (a == "--decode-only") decode_only = std::atoi(argv[i + 1]);
  }
  weft::llm::testing::RandomModelSpec spec;
  if (type == "q8_0") spec.matrices = weft::kernels::TensorType::kQ8_0;
  if (type == "f16") spec.matrices = spec.embedding = weft::kernels::TensorType::kF16;
  if (type == "bf16") spec.matrices = spec.embedding = weft::kernels::TensorType::kBF16;
  bool temporary = false;
  if (model.empty()) {
    model = (std::filesystem::temp_directory_path() / fmt::format("weft_gpu_bench_{}.gguf", type)).string();
    must(weft::llm::testing::write_random_model(model, spec));
    temporary = true;
  }
  weft::llm::ModelOptions options;
  options.device = weft::kernels::Device::kCuda;
  auto m = must(LlamaModel::load(model, options));
  auto be = must(weft::kernels::make_backend(weft::kernels::Device::kCuda));
  const double bandwidth = copy_bandwidth(*be);
  be.reset();
  const auto peers = weft::bench::read_peer_json(peer_json);
  const double weight_bytes = static_cast<double>(m->matrix_bytes_per_step());
  std::fprintf(stderr, "%s; %s weights, %.0f MB per step; copy bandwidth %.2f TB/s (read + write)\n",
               m->device_description().c_str(), type.c_str(), weight_bytes / 1e6, bandwidth / 1e12);

  auto line = [&](const std::string& bench, double value, double bound) {
    JsonLine j{bench, "tokens/s", value, "transformers (bf16, same GPU)", weft::bench::peer(peers, bench)};
    j.extras.push_back({"bound_tokens_per_s", fmt::format("{:.0f}", bound)});
    j.extras.push_back({"of_bound", fmt::format("{:.3f}", value / bound)});
    j.extras.push_back({"weights", fmt::format("\"{}\"", type)});
    j.extras.push_back({"device", fmt::format("\"{}\"", m->device_description())});
    j.print();
  };
  if (decode_only > 0) {
    line(fmt::format("decode_b{}", decode_only), decode(*m, decode_only, 64),
         decode_only * (bandwidth / 2) / weight_bytes);
    if (temporary) std::filesystem::remove(model);
    return 0;
  }
  for (int batch : {1, 8, 64}) {
    const double tps = decode(*m, batch, 64);
    // A step reads every weight once (bandwidth / 2: bytes read alone).
    line(fmt::format("decode_b{}", batch), tps, batch * (bandwidth / 2) / weight_bytes);
  }
  const double p = prefill(*m, 512);
  line("prefill_512", p, 512 * (bandwidth / 2) / weight_bytes);
  if (temporary) std::filesystem::remove(model);
  return 0;
}
