#include "serving/speculative_decoding.h"

#include <algorithm>
#include <queue>

#include "weft/detail/runnable.h"

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
  if (idle_ >= 4 && idle_ % options_.probe_every != 0) {  // speculation has not paid lately
    ++idle_;
    return;
  }
  // About as many nodes as recent iterations took per request, and a few more to grow into.
  const int usual = taken_per_request_ < 0 ? options_.max_nodes : static_cast<int>(1.5 * taken_per_request_) + 2;
  std::vector<Speculator::Ask> asks;
  for (uint64_t id : decoding) {
    auto limit = limits_.find(id);
    const int cap = limit == limits_.end() ? options_.max_nodes : std::min(options_.max_nodes, limit->second);
    const int budget = std::min(cap, usual);
    if (budget > 0) asks.push_back({id, budget});
  }
  if (asks.empty()) return;
  const int64_t start = detail::now_ns();
  std::vector<Proposal> proposals = speculator_->propose_all(asks);
  proposals.resize(asks.size());
  size_t proposed = 0;
  for (const Proposal& p : proposals) proposed += p.tokens.size();
  if (proposed > 0) {
    const double w = 0.2;
    const double per_node = static_cast<double>(detail::now_ns() - start) / static_cast<double>(proposed);
    propose_ns_per_node_ = propose_ns_per_node_ == 0 ? per_node : (1 - w) * propose_ns_per_node_ + w * per_node;
  }

  // Nodes across requests, best first, while each raises the expected tokens per unit of time.
  const StepCost& cost = engine.step_cost();
  const double verify_per_token = options_.by_cost && cost.known() ? cost.per_token_ns() : -1;
  const bool cold = verify_per_token <= 0;
  const double per_token = verify_per_token + propose_ns_per_node_;  // a node's cost: verifying and proposing it
  double tokens = static_cast<double>(decoding.size());              // T: expected tokens of the iteration
  double time = cold ? 0 : cost.fixed_ns() + verify_per_token * tokens;
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
  size_t total = 0;
  for (size_t t : taken) total += t;
  const double per_request = static_cast<double>(total) / static_cast<double>(asks.size());
  taken_per_request_ = taken_per_request_ < 0 ? per_request : 0.8 * taken_per_request_ + 0.2 * per_request;
  if (proposed > 0) idle_ = total == 0 ? idle_ + 1 : 0;  // proposals, and none paid
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
