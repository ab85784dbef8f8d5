// The server's figures in Prometheus' text exposition format (version 0.0.4): counters, gauges
// and histograms per SLO class. Thread-safe: one mutex guards every figure (updates are a few
// additions, a scrape formats a few kilobytes).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "serving/engine_types.h"
#include "weft/options.h"

namespace weft::serving {

class Metrics {
 public:
  Metrics();
  void observe_ttft(Slo slo, double seconds) { observe(ttft_, slo, seconds); }
  void observe_tpot(Slo slo, double seconds) { observe(tpot_, slo, seconds); }
  void observe_e2e(Slo slo, double seconds) { observe(e2e_, slo, seconds); }
  void count_request(Slo slo, std::string_view finish_reason);
  // A finished request against its latency targets; its tokens count as goodput when attained.
  void count_slo(Slo slo, bool attained, int64_t tokens);
  void add_tokens(int64_t prompt, int64_t generation);
  void set_engine(const EngineStats& s);
  void set_waiting_front(int n);  // requests accepted but not yet in the engine
  std::string render(const std::string& model_name) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::array<std::vector<uint64_t>, kNumSloClasses> buckets;  // cumulative counts by bound
    std::array<double, kNumSloClasses> sum{};
    std::array<uint64_t, kNumSloClasses> count{};
  };
  void observe(Histogram& h, Slo slo, double v);
  static Histogram make(std::vector<double> bounds);

  mutable std::mutex mu_;  // guards everything below
  Histogram ttft_, tpot_, e2e_;
  std::array<std::array<uint64_t, 4>, kNumSloClasses> finished_{};  // by class: stop, length, abort, error
  std::array<uint64_t, kNumSloClasses> slo_judged_{}, slo_attained_{}, slo_goodput_tokens_{};
  int64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  EngineStats engine_;
  int waiting_front_ = 0;
};

}  // namespace weft::serving
