// The machine's compute bound for the quantized kernels: multiply-adds per second of the kernel
// table's integer-dot primitive (FastKernels::int8_dot_probe), run on `threads` threads at once,
// best of three 0.2-second runs per thread, summed over the threads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "kernels/cpu/fast_kernels.h"

namespace weft::bench {

inline double int8_peak(const kernels::cpu::FastKernels& k, int threads) {
  std::vector<double> rates(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      int32_t sink = 0;
      for (int rep = 0; rep < 3; ++rep) {
        const auto t = Clock::now();
        int64_t macs = 0;
        double s = 0;
        do {
          macs += k.int8_dot_probe(1 << 16, &sink);
          s = seconds_since(t);
        } while (s < 0.2);
        rates[i] = std::max(rates[i], static_cast<double>(macs) / s);
      }
      if (sink == 12345) std::puts("");  // keeps the probe's result alive
    });
  }
  for (auto& t : pool) t.join();
  double total = 0;
  for (double r : rates) total += r;
  return total;
}

}  // namespace weft::bench
