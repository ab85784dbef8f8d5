#include "serving/speculative_decoding.h"

#include <algorithm>

namespace weft::serving {

SpeculativeDecoding::SpeculativeDecoding(std::unique_ptr<Speculator> speculator, const SpeculationOptions& options)
    : speculator_(std::move(speculator)), options_(options) {}

void SpeculativeDecoding::prepare(const Engine& engine, StepInput& input) {
  for (const RequestSpec& r : input.arrivals) speculator_->start(r.id, r.prompt);
  for (uint64_t id : input.finish) speculator_->finish(id);
  const std::vector<uint64_t> decoding = engine.decoding();
  const int n = static_cast<int>(decoding.size());
  if (n == 0) return;
  const bool busy = n > options_.full_batch;
  const int nodes = busy ? options_.max_nodes * options_.full_batch / n : options_.max_nodes;
  if (nodes <= 0) return;
  for (uint64_t id : decoding) {
    Proposal p = speculator_->propose(id, nodes);
    if (busy) {  // keep the likely prefix (nodes come best first, parents before children)
      size_t keep = 0;
      while (keep < p.probs.size() && p.probs[keep] >= options_.busy_min_prob) ++keep;
      p.tokens.resize(keep);
      p.parents.resize(keep);
    }
    if (!p.tokens.empty()) input.drafts.push_back({id, std::move(p.tokens), std::move(p.parents)});
  }
}

void SpeculativeDecoding::observe(const StepInput& input, const StepOutput& output) {
  (void)input;
  for (const TokenEvent& e : output.events) {
    if (!e.tokens.empty()) speculator_->extend(e.id, e.tokens);
    if (e.finish != 0) speculator_->finish(e.id);
  }
}

}  // namespace weft::serving
