// The LLM engine's forward pass against llama.cpp on the same GGUF file and thread count
// (numbers measured by bench/peers/llamacpp_llm.py just before, passed in with --peer-json).
//
//   llm_bench --model PATH [--threads N] [--peer-json FILE] [--isa portable|avx2|avx512] [--only NAME]
//   llm_bench --list          the workload names, one per line
//
// Workloads (the same token ids and shapes as the peer script; best of three each):
//   prefill_{128,512,2048}  one prompt as one batch, logits for the last token
//   decode_b1               a 32-token prompt, then 64 single-token steps with logits
//   decode_b{4,8,16}        N sequences with 32-token prompts, then 32 steps of N tokens
//   decode_b1_ctx1024       a 1024-token prompt, then 32 single-token steps (attention-heavy)
//   verify_tree32           one sequence with a 256-token context, then steps verifying a 32-token
//                           tree (4 branches of 8, logits for every node; no peer equivalent)
// Each line carries the machine's bound next to the figure: prefill and tree lines the compute
// bound (the integer-dot peak of all threads, kernel_bench's probe, over the multiply-adds a
// token costs), decode lines the memory bound (weight bytes read per step over the measured
// memcpy bandwidth).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench/bench_util.h"
#include "bench/int8_peak.h"
#include "bench/json_line.h"
#include "bench/peer_json.h"
#include "llm/llama_model.h"

namespace {

using weft::bench::Clock;
using weft::bench::JsonLine;
using weft::bench::seconds_since;
using weft::llm::Batch;
using weft::llm::KvCache;
using weft::llm::LlamaModel;

int32_t token(int64_t i, int vocab) { return static_cast<int32_t>(100 + (i * 7919) % (vocab - 200)); }

void must(const weft::Status& s) { weft::bench::must(s, "llm_bench"); }

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

// Tokens per second of steps that each verify one 32-token tree (4 branches of 8 from the last
// committed token) after a 256-token context; the tree's KV slots are dropped after each step.
double verify_tree(const LlamaModel& m, int context = 256, int steps = 16) {
  const int vocab = m.config().vocab;
  return best(3, [&] {
    KvCache kv = m.make_cache(context + 64);
    const int seq = kv.add_sequence();
    std::vector<int32_t> p(static_cast<size_t>(context));
    for (int i = 0; i < context; ++i) p[i] = token(i, vocab);
    Batch prompt;
    prompt.add_chain(seq, 0, p);
    run(m, prompt, kv);
    kv.commit(seq, context);
    Batch tree;
    for (int branch = 0; branch < 4; ++branch) {
      for (int depth = 0; depth < 8; ++depth) {
        const int32_t parent = depth == 0 ? -1 : static_cast<int32_t>(tree.tokens.size()) - 1;
        tree.tokens.push_back({token(context + branch * 8 + depth, vocab), seq, context + depth, parent, true});
      }
    }
    const auto t = Clock::now();
    for (int step = 0; step < steps; ++step) {
      run(m, tree, kv);
      kv.drop_pending(seq, static_cast<int>(tree.tokens.size()));
    }
    return static_cast<double>(tree.tokens.size()) * steps / seconds_since(t);
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

const std::vector<std::string> kWorkloads = {"prefill_128", "prefill_512",       "prefill_2048",
                                             "decode_b1",   "decode_b4",         "decode_b8",
                                             "decode_b16",  "decode_b1_ctx1024", "verify_tree32"};

int main(int argc, char** argv) {
  std::string model_path, peer_json, only;
  weft::llm::ModelOptions options;
  options.threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list") {
      for (const std::string& w : kWorkloads) std::printf("%s\n", w.c_str());
      return 0;
    }
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
      std::fprintf(stderr,
                   "usage: llm_bench --model PATH [--threads N] [--peer-json FILE] [--isa NAME] [--only BENCH]\n"
                   "       llm_bench --list\n");
      return 2;
    }
  }
  if (!only.empty() && std::find(kWorkloads.begin(), kWorkloads.end(), only) == kWorkloads.end()) {
    std::fprintf(stderr, "llm_bench: no workload %s (--list names them)\n", only.c_str());
    return 2;
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
  auto want = [&](const std::string& bench) { return only.empty() || only == bench; };
  // Compute bound: the integer-dot peak over the multiply-adds of one token (every layer matrix;
  // the output matrix only for tokens that ask for logits).
  const double peak = weft::bench::int8_peak(weft::kernels::cpu::fast_kernels(options.isa), options.threads);
  const double layer_macs = static_cast<double>(m.matrix_macs_per_token() - m.output_macs_per_token());
  const double output_macs = static_cast<double>(m.output_macs_per_token());
  auto compute_bound = [&](double tokens, double with_logits) {
    return JsonLine::num(peak * tokens / (layer_macs * tokens + output_macs * with_logits));
  };
  const std::string peak_json = JsonLine::num(peak / 1e9);
  for (int n : {128, 512, 2048}) {
    const std::string name = "prefill_" + std::to_string(n);
    if (want(name)) {
      line(name, prefill(m, n),
           {{"compute_bound_tokens_per_s", compute_bound(n, 1)}, {"int8_peak_gmac_per_s", peak_json}});
    }
  }
  // The bound for a decode step of b tokens: the step reads every weight once.
  auto bound = [&](int b) { return JsonLine::num(b * bandwidth / weight_bytes); };
  const std::string bw = JsonLine::num(bandwidth / 1e9);
  for (int b : {1, 4, 8, 16}) {
    const std::string name = "decode_b" + std::to_string(b);
    if (want(name)) {
      line(name, decode(m, b, 32, b == 1 ? 64 : 32),
           {{"bandwidth_bound_tokens_per_s", bound(b)},
            {"memcpy_gb_per_s", bw},
            {"compute_bound_tokens_per_s", compute_bound(b, b)}});
    }
  }
  if (want("decode_b1_ctx1024")) {
    line("decode_b1_ctx1024", decode(m, 1, 1024, 32),
         {{"bandwidth_bound_tokens_per_s", bound(1)},
          {"memcpy_gb_per_s", bw},
          {"compute_bound_tokens_per_s", compute_bound(1, 1)}});
  }
  if (want("verify_tree32")) {
    line("verify_tree32", verify_tree(m),
         {{"compute_bound_tokens_per_s", compute_bound(32, 32)}, {"int8_peak_gmac_per_s", peak_json}});
  }
  return 0;
}
