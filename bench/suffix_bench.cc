// What SuffixDecoding costs on the CPU: requests whose text repeats phrases (as agentic and
// editing workloads do) run token by token through a SuffixSpeculator with a global tree over
// earlier responses: a proposal before every token, then the token. Prints the time per proposal
// and per speculated token (ArcticInference reports about 9 us per speculated token for its
// implementation; there is no peer to run here, so no ratio).
//
//   suffix_bench [--requests 200] [--tokens 400]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench/json_line.h"
#include "serving/suffix_speculator.h"

int main(int argc, char** argv) {
  int requests = 200, tokens = 400;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--requests")
      requests = std::atoi(argv[i + 1]);
    else if (k == "--tokens")
      tokens = std::atoi(argv[i + 1]);
  }
  std::mt19937 rng(1);
  // 300 phrases of 8..24 tokens from a 32k vocabulary; each request strings 60% known phrases
  // and 40% fresh tokens together.
  std::vector<std::vector<int32_t>> phrases(300);
  for (auto& p : phrases) {
    p.resize(8 + rng() % 17);
    for (int32_t& t : p) t = static_cast<int32_t>(rng() % 32000);
  }
  auto text = [&](int n) {
    std::vector<int32_t> out;
    while (static_cast<int>(out.size()) < n) {
      if (rng() % 10 < 6) {
        const auto& p = phrases[rng() % phrases.size()];
        out.insert(out.end(), p.begin(), p.end());
      } else {
        for (int k = 0; k < 8; ++k) out.push_back(static_cast<int32_t>(rng() % 32000));
      }
    }
    out.resize(static_cast<size_t>(n));
    return out;
  };
  weft::serving::SuffixSpeculator spec;
  int64_t proposals = 0, nodes = 0;
  double seconds = 0;
  for (int r = 0; r < requests; ++r) {
    const std::vector<int32_t> prompt = text(200), output = text(tokens);
    const auto t0 = std::chrono::steady_clock::now();
    spec.start(static_cast<uint64_t>(r), prompt, {});
    for (int32_t t : output) {
      nodes += static_cast<int64_t>(spec.propose(static_cast<uint64_t>(r), 16).tokens.size());
      ++proposals;
      spec.extend(static_cast<uint64_t>(r), std::span<const int32_t>(&t, 1));
    }
    spec.finish(static_cast<uint64_t>(r));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  weft::bench::JsonLine step{.bench = "suffix_propose_and_extend",
                             .unit = "us/step",
                             .weft = seconds * 1e6 / proposals,
                             .baseline = "none",
                             .higher_is_better = false};
  step.extras = {{"proposals", std::to_string(proposals)},
                 {"mean_nodes", weft::bench::JsonLine::num(static_cast<double>(nodes) / proposals)}};
  step.print();
  weft::bench::JsonLine per_token{.bench = "suffix_per_speculated_token",
                                  .unit = "us/token",
                                  .weft = nodes > 0 ? seconds * 1e6 / static_cast<double>(nodes) : 0,
                                  .baseline = "none",
                                  .higher_is_better = false};
  per_token.print();
  return 0;
}
