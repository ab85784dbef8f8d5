#include "serving/speculative_decoding.h"

#include <algorithm>
#include <queue>

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
    predicted_prefix_.erase(id);
  }
  const std::vector<uint64_t> decoding = engine.decoding();
  if (decoding.empty()) return;
  std::vector<Speculator::Ask> asks;
  for (uint64_t id : decoding) {
    auto limit = limits_.find(id);
    const int budget = limit == limits_.end() ? options_.max_nodes : std::min(options_.max_nodes, limit->second);
    if (budget > 0) asks.push_back({id, budget});
  }
  if (asks.empty()) return;
  std::vector<Proposal> proposals = speculator_->propose_all(asks);
  proposals.resize(asks.size());

  // Nodes across requests, best first, while each raises the expected tokens per unit of time.
  const StepCost& cost = engine.step_cost();
  const double per_token = options_.by_cost && cost.known() ? cost.per_token_ns() : -1;
  const bool cold = per_token <= 0;
  double tokens = static_cast<double>(decoding.size());  // T: expected tokens of the iteration
  double time = cold ? 0 : cost.fixed_ns() + per_token * tokens;
  const double scale = std::min(2.0, calibration());
  std::vector<size_t> taken(asks.size(), 0);
  auto prob = [&](size_t r, size_t j) { return std::min(1.0, scale * proposals[r].probs[j]); };
  auto worse = [&](size_t a, size_t b) { return prob(a, taken[a]) < prob(b, taken[b]); };
  std::priority_queue<size_t, std::vector<size_t>, decltype(worse)> next(worse);
  for (size_t r = 0; r < asks.size(); ++r) {
    Proposal& p = proposals[r];
    if (p.tokens.size() > static_cast<size_t>(asks[r].max_nodes)) p.truncate(static_cast<size_t>(asks[r].max_nodes));
    if (!p.tokens.empty()) next.push(r);
  }
  while (!next.empty()) {
    const size_t r = next.top();
    next.pop();
    const double p = prob(r, taken[r]);
    const bool pays = cold ? p >= options_.cold_min_prob : p * time > per_token * tokens;
    if (!pays) continue;  // this request's tree stops here; others may still pay
    tokens += p;
    time += per_token;
    if (++taken[r] < proposals[r].tokens.size()) next.push(r);
  }
  for (size_t r = 0; r < asks.size(); ++r) {
    Proposal& p = proposals[r];
    p.truncate(taken[r]);
    if (p.tokens.empty()) continue;
    std::vector<double>& prefix = predicted_prefix_[asks[r].id];
    prefix.assign(1, 0.0);
    for (size_t j = 0; j < p.tokens.size(); ++j) prefix.push_back(prefix.back() + std::min(1.0f, p.probs[j]));
    input.drafts.push_back(
        {asks[r].id, std::move(p.tokens), std::move(p.parents), std::move(p.drawn_from), std::move(p.dists)});
  }
}

void SpeculativeDecoding::observe(const StepOutput& output) {
  for (const TokenEvent& e : output.events) {
    if (e.drafted > 0) {
      auto it = predicted_prefix_.find(e.id);
      if (it != predicted_prefix_.end()) {
        // The speculator's own estimate for the verified prefix against what was accepted.
        const double predicted = it->second[std::min(it->second.size() - 1, static_cast<size_t>(e.drafted))];
        const double w = options_.calibration_weight;
        predicted_ = (1 - w) * predicted_ + w * predicted;
        accepted_ = (1 - w) * accepted_ + w * e.accepted;
      }
    }
    predicted_prefix_.erase(e.id);
    if (!e.tokens.empty()) speculator_->extend(e.id, e.tokens);
    if (e.finish != 0) {
      speculator_->finish(e.id);
      limits_.erase(e.id);
    }
  }
}

}  // namespace weft::serving
