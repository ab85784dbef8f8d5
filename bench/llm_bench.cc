// The LLM engine's forward pass against llama.cpp on the same GGUF file and thread count
// (numbers measured by bench/peers/llamacpp_llm.py just before, passed in with --peer-json).
//
//   llm_bench --model PATH [--threads N] [--peer-json FILE] [--isa portable|avx2|avx512] [--only NAME]
//
// Workloads (the same token ids and shapes as the peer script; best of three each):
//   prefill_512  one 512-token prompt as one batch, logits for the last token
//   decode_b1    a 32-token prompt, then 64 single-token steps with logits
//   decode_b8    8 sequences with 32-token prompts, then 32 steps of 8 tokens (one per sequence)
// Decode lines also carry the memory-bandwidth bound: weight bytes read per step over the
// measured memcpy bandwidth.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/json_line.h"
#include "bench/peer_json.h"
#include "llm/llama_model.h"

namespace {

using weft::bench::JsonLine;
using weft::llm::Batch;
using weft::llm::KvCache;
using weft::llm::LlamaModel;
using Clock = std::chrono::steady_clock;

int32_t token(int64_t i, int vocab) { return static_cast<int32_t>(100 + (i * 7919) % (vocab - 200)); }

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void must(const weft::Status& s) {
  if (!s.is_ok()) {
    std::fprintf(stderr, "llm_bench: %s\n", s.to_string().c_str());
    std::exit(1);
  }
}

void run(const LlamaModel& m, const Batch& b, KvCache& kv) {
  auto r = m.forward(b, kv);
  must(r.status());
}

// Tokens per second, best of `reps`.
template <class F>
double best(int reps, F&& once) {
  double top = 0;
  for (int r = 0; r < reps; ++r) top = std::max(top, once());
  return top;
}

double prefill(const LlamaModel& m, int n) {
  const int vocab = m.config().vocab;
  return best(3, [&] {
    KvCache kv = m.make_cache(n + 16);
    const int seq = kv.add_sequence();
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) ids[i] = token(i, vocab);
    Batch b;
    b.add_chain(seq, 0, ids);
    const auto t = Clock::now();
    run(m, b, kv);
    return n / seconds_since(t);
  });
}

double decode(const LlamaModel& m, int seqs, int prompt, int steps) {
  const int vocab = m.config().vocab;
  return best(3, [&] {
    KvCache kv = m.make_cache(seqs * (prompt + steps + 16));
    Batch b;
    std::vector<int> ids;
    for (int q = 0; q < seqs; ++q) {
      ids.push_back(kv.add_sequence());
      std::vector<int32_t> p(static_cast<size_t>(prompt));
      for (int i = 0; i < prompt; ++i) p[i] = token(q * 1000 + i, vocab);
      b.add_chain(ids.back(), 0, p);
    }
    run(m, b, kv);
    for (int s : ids) kv.commit(s, prompt);
    const auto t = Clock::now();
    for (int step = 0; step < steps; ++step) {
      Batch next;
      for (int q = 0; q < seqs; ++q) next.add_chain(ids[q], prompt + step, {token(q * 1000 + prompt + step, vocab)});
      run(m, next, kv);
      for (int s : ids) kv.commit(s, 1);
    }
    return seqs * steps / seconds_since(t);
  });
}

// Bytes per second of memcpy over a buffer far larger than the caches (bytes copied / time).
double memcpy_bandwidth() {
  const size_t bytes = size_t{256} << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  return best(3, [&] {
    const auto t = Clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    const double s = seconds_since(t);
    if (b[bytes / 2] != 1) std::abort();
    return static_cast<double>(bytes) / s;
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, peer_json, only;
  weft::llm::ModelOptions options;
  options.threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model_path = argv[++i];
    else if (a == "--peer-json" && i + 1 < argc) peer_json = argv[++i];
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--threads" && i + 1 < argc) options.threads = std::atoi(argv[++i]);
    else if (a == "--isa" && i + 1 < argc) {
      auto isa = weft::kernels::cpu::parse_isa(argv[++i]);
      if (!isa) {
        std::fprintf(stderr, "llm_bench: unknown --isa\n");
        return 2;
      }
      options.isa = *isa;
    } else {
      std::fprintf(stderr, "usage: llm_bench --model PATH [--threads N] [--peer-json FILE] [--isa NAME] [--only BENCH]\n");
      return 2;
    }
  }
  auto loaded = LlamaModel::load(model_path, options);
  must(loaded.status());
  const LlamaModel& m = **loaded;
  const auto peers = peer_json.empty() ? std::map<std::string, double>{} : weft::bench::read_peer_json(peer_json);

  const double bandwidth = memcpy_bandwidth();
  const double weight_bytes = static_cast<double>(m.matrix_bytes_per_step());
  const std::vector<std::pair<std::string, std::string>> common = {
      {"threads", std::to_string(options.threads)},
      {"isa", fmt::format("\"{}\"", weft::kernels::cpu::isa_name(options.isa))}};
  auto line = [&](const std::string& bench, double value, std::vector<std::pair<std::string, std::string>> extra) {
    extra.insert(extra.begin(), common.begin(), common.end());
    JsonLine{bench, "tokens/s", value, "llama.cpp", weft::bench::peer(peers, bench + "_tokens_per_s"), true, extra}.print();
  };
  auto want = [&](const char* bench) { return only.empty() || only == bench; };
  if (want("prefill_512")) line("prefill_512", prefill(m, 512), {});
  // The bound for a decode step of b tokens: the step reads every weight once.
  auto bound = [&](int b) { return JsonLine::num(b * bandwidth / weight_bytes); };
  const std::string bw = JsonLine::num(bandwidth / 1e9);
  if (want("decode_b1")) line("decode_b1", decode(m, 1, 32, 64), {{"bandwidth_bound_tokens_per_s", bound(1)}, {"memcpy_gb_per_s", bw}});
  if (want("decode_b8")) line("decode_b8", decode(m, 8, 32, 32), {{"bandwidth_bound_tokens_per_s", bound(8)}, {"memcpy_gb_per_s", bw}});
  return 0;
}
