#include "serving/metrics.h"

#include <algorithm>

#include <fmt/format.h>

namespace weft::serving {
namespace {
constexpr const char* kSloNames[] = {"latency_critical", "standard", "batch"};
constexpr const char* kFinishNames[] = {"stop", "length", "abort", "error"};
}  // namespace

Metrics::Histogram Metrics::make(std::vector<double> bounds) {
  Histogram h;
  h.bounds = std::move(bounds);
  for (auto& b : h.buckets) b.assign(h.bounds.size(), 0);
  return h;
}

Metrics::Metrics()
    : ttft_(make({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      tpot_(make({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1})),
      e2e_(make({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})) {}

void Metrics::observe(Histogram& h, Slo slo, double v) {
  const auto c = static_cast<size_t>(slo);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < h.bounds.size(); ++i) h.buckets[c][i] += v <= h.bounds[i] ? 1 : 0;
  h.sum[c] += v;
  h.count[c] += 1;
}

void Metrics::count_request(Slo slo, std::string_view finish_reason) {
  size_t f = 3;
  for (size_t i = 0; i < 4; ++i) f = finish_reason == kFinishNames[i] ? i : f;
  std::lock_guard<std::mutex> lock(mu_);
  finished_[static_cast<size_t>(slo)][f] += 1;
}

void Metrics::count_slo(Slo slo, bool attained, int64_t tokens) {
  const auto c = static_cast<size_t>(slo);
  std::lock_guard<std::mutex> lock(mu_);
  slo_judged_[c] += 1;
  slo_attained_[c] += attained ? 1 : 0;
  slo_goodput_tokens_[c] += attained ? static_cast<uint64_t>(std::max<int64_t>(0, tokens)) : 0;
}

void Metrics::add_tokens(int64_t prompt, int64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  generation_tokens_ += generation;
}

void Metrics::set_engine(const EngineStats& s) {
  std::lock_guard<std::mutex> lock(mu_);
  engine_ = s;
}

void Metrics::set_waiting_front(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  waiting_front_ = n;
}

std::string Metrics::render(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string o;
  auto gauge = [&](const char* name, const char* help, double v) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0}{{model_name=\"{2}\"}} {3}\n", name, help, model, v);
  };
  auto counter = [&](const char* name, const char* help, double v) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0}{{model_name=\"{2}\"}} {3}\n", name, help, model, v);
  };
  gauge("weft_num_requests_running", "Requests holding KV cache in the engine.", engine_.running);
  gauge("weft_num_requests_waiting", "Requests accepted and waiting for the engine.", engine_.waiting + waiting_front_);
  gauge("weft_kv_cache_usage_perc", "Fraction of KV cache blocks in use (0..1).",
        engine_.kv_blocks_total > 0 ? static_cast<double>(engine_.kv_blocks_used) / engine_.kv_blocks_total : 0.0);
  gauge("weft_kv_cache_blocks_used", "KV cache blocks in use.", engine_.kv_blocks_used);
  gauge("weft_kv_cache_blocks_total", "KV cache blocks in all.", engine_.kv_blocks_total);
  counter("weft_num_preemptions_total", "Requests preempted (KV freed, recomputed later).",
          static_cast<double>(engine_.preemptions));
  counter("weft_spec_draft_tokens_total", "Speculated tokens verified.", static_cast<double>(engine_.draft_tokens));
  counter("weft_spec_verify_steps_total",
          "Decodes that verified a speculated tree (mean accepted length = accepted tokens / these).",
          static_cast<double>(engine_.draft_steps));
  counter("weft_spec_accepted_tokens_total", "Speculated tokens accepted.",
          static_cast<double>(engine_.accepted_tokens));
  counter("weft_spec_seconds_total", "Time spent proposing speculated trees (draft models' passes included).",
          static_cast<double>(engine_.speculate_ns) * 1e-9);
  gauge("weft_spec_acceptance_rate", "Speculated tokens accepted over those verified, since start (0..1).",
        engine_.draft_tokens > 0 ? static_cast<double>(engine_.accepted_tokens) / engine_.draft_tokens : 0.0);
  gauge("weft_spec_mean_accepted_length",
        "Tokens a decode with a speculated tree produced on average, since start (1 + accepted / verify steps).",
        engine_.draft_steps > 0 ? 1.0 + static_cast<double>(engine_.accepted_tokens) / engine_.draft_steps : 0.0);
  counter("weft_finetune_tokens_total", "Training tokens through co-served finetuning's forward pass.",
          static_cast<double>(engine_.finetune_tokens));
  counter("weft_finetune_steps_total", "Optimizer steps of co-served finetuning.",
          static_cast<double>(engine_.finetune_steps));
  counter("weft_finetune_seconds_total", "Time co-served finetuning took inside iterations.",
          static_cast<double>(engine_.finetune_ns) * 1e-9);
  gauge("weft_finetune_jobs", "Finetuning jobs queued or running.", engine_.finetune_jobs);
  counter("weft_prompt_tokens_total", "Prompt tokens of finished requests.", static_cast<double>(prompt_tokens_));
  counter("weft_generation_tokens_total", "Generated tokens.", static_cast<double>(generation_tokens_));
  o += "# HELP weft_request_success_total Finished requests by SLO class and finish reason.\n";
  o += "# TYPE weft_request_success_total counter\n";
  for (size_t c = 0; c < kNumSloClasses; ++c) {
    for (size_t f = 0; f < 4; ++f) {
      o += fmt::format("weft_request_success_total{{model_name=\"{}\",slo=\"{}\",finished_reason=\"{}\"}} {}\n", model,
                       kSloNames[c], kFinishNames[f], finished_[c][f]);
    }
  }
  auto per_class = [&](const char* name, const char* type, const char* help, auto value) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n", name, help, type);
    for (size_t c = 0; c < kNumSloClasses; ++c) {
      o += fmt::format("{}{{model_name=\"{}\",slo=\"{}\"}} {}\n", name, model, kSloNames[c], value(c));
    }
  };
  per_class("weft_slo_requests_total", "counter",
            "Requests finished (stop or length) and judged against their TTFT and TPOT targets, by SLO class.",
            [&](size_t c) { return slo_judged_[c]; });
  per_class("weft_slo_attained_total", "counter",
            "Of those, requests whose first token came within the TTFT target and whose mean time per output "
            "token stayed within the TPOT target.",
            [&](size_t c) { return slo_attained_[c]; });
  per_class("weft_slo_goodput_tokens_total", "counter", "Generated tokens of requests that attained their targets.",
            [&](size_t c) { return slo_goodput_tokens_[c]; });
  per_class("weft_slo_attainment", "gauge",
            "Attained over judged requests since start, by SLO class (0..1; 1 when none).", [&](size_t c) {
              return slo_judged_[c] > 0 ? static_cast<double>(slo_attained_[c]) / static_cast<double>(slo_judged_[c])
                                        : 1.0;
            });
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    o += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
    for (size_t c = 0; c < kNumSloClasses; ++c) {
      const std::string labels = fmt::format("model_name=\"{}\",slo=\"{}\"", model, kSloNames[c]);
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        o += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, h.bounds[i], h.buckets[c][i]);
      }
      o += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, h.count[c]);
      o += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, h.sum[c], name, labels, h.count[c]);
    }
  };
  histogram("weft_time_to_first_token_seconds", "Time from arrival to the first token.", ttft_);
  histogram("weft_time_per_output_token_seconds", "Time between output tokens after the first.", tpot_);
  histogram("weft_e2e_request_latency_seconds", "Time from arrival to the last token.", e2e_);
  return o;
}

}  // namespace weft::serving
