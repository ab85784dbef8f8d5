#include "serving/speculative_decoding.h"

#include <algorithm>

namespace weft::serving {

SpeculativeDecoding::SpeculativeDecoding(std::unique_ptr<Speculator> speculator, const SpeculationOptions& options)
    : speculator_(std::move(speculator)), options_(options) {}

void SpeculativeDecoding::prepare(const Engine& engine, StepInput& input) {
  for (const RequestSpec& r : input.arrivals) {
    speculator_->start(r.id, r.prompt);
    if (r.speculate >= 0) limits_[r.id] = r.speculate;
  }
  for (uint64_t id : input.finish) {
    speculator_->finish(id);
    limits_.erase(id);
  }
  const std::vector<uint64_t> decoding = engine.decoding();
  const int n = static_cast<int>(decoding.size());
  if (n == 0) return;
  const bool busy = n > options_.full_batch;
  const int nodes = busy ? options_.max_nodes * options_.full_batch / n : options_.max_nodes;
  if (nodes <= 0) return;
  for (uint64_t id : decoding) {
    auto limit = limits_.find(id);
    const int budget = limit == limits_.end() ? nodes : std::min(nodes, limit->second);
    if (budget <= 0) continue;
    Proposal p = speculator_->propose(id, budget);
    if (busy) {  // keep the likely prefix (nodes come best first, parents before children)
      size_t keep = 0;
      while (keep < p.probs.size() && p.probs[keep] >= options_.busy_min_prob) ++keep;
      p.tokens.resize(keep);
      p.parents.resize(keep);
    }
    if (!p.tokens.empty()) input.drafts.push_back({id, std::move(p.tokens), std::move(p.parents)});
  }
}

void SpeculativeDecoding::observe(const StepOutput& output) {
  for (const TokenEvent& e : output.events) {
    if (!e.tokens.empty()) speculator_->extend(e.id, e.tokens);
    if (e.finish != 0) {
      speculator_->finish(e.id);
      limits_.erase(e.id);
    }
  }
}

}  // namespace weft::serving
