#include "serving/speculative_decoding.h"

#include <algorithm>

namespace weft::serving {

SpeculativeDecoding::SpeculativeDecoding(std::unique_ptr<Speculator> speculator, const SpeculationOptions& options)
    : speculator_(std::move(speculator)), options_(options) {}

void SpeculativeDecoding::prepare(const Engine& engine, StepInput& input) {
  for (const RequestSpec& r : input.arrivals) {
    speculator_->start(r.id, r.prompt, sampling_params(r));
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
  std::vector<Speculator::Ask> asks;
  for (uint64_t id : decoding) {
    auto limit = limits_.find(id);
    const int budget = limit == limits_.end() ? nodes : std::min(nodes, limit->second);
    if (budget > 0) asks.push_back({id, budget});
  }
  std::vector<Proposal> proposals = speculator_->propose_all(asks);
  for (size_t i = 0; i < proposals.size() && i < asks.size(); ++i) {
    Proposal& p = proposals[i];
    if (p.tokens.size() > static_cast<size_t>(asks[i].max_nodes)) p.truncate(static_cast<size_t>(asks[i].max_nodes));
    if (busy) {  // keep the likely prefix (parents come before children)
      size_t keep = 0;
      while (keep < p.probs.size() && p.probs[keep] >= options_.busy_min_prob) ++keep;
      p.truncate(keep);
    }
    if (!p.tokens.empty()) {
      input.drafts.push_back(
          {asks[i].id, std::move(p.tokens), std::move(p.parents), std::move(p.drawn_from), std::move(p.dists)});
    }
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
