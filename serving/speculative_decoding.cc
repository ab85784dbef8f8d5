#include "serving/speculative_decoding.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "core/logging.h"
#include "serving/tree_selection.h"
#include "weft/detail/runnable.h"

namespace weft::serving {

SpeculativeDecoding::SpeculativeDecoding(std::unique_ptr<Speculator> speculator, const SpeculationOptions& options)
    : speculator_(std::move(speculator)), options_(options) {}

double SpeculativeDecoding::calibration(uint64_t id) const {
  constexpr double kPrior = 2.0;  // the speculator's figure counts as this many predicted tokens
  auto it = requests_.find(id);
  const double own_predicted = it == requests_.end() ? 0 : it->second.predicted;
  const double own_accepted = it == requests_.end() ? 0 : it->second.accepted;
  return (own_accepted + kPrior * calibration()) / (own_predicted + kPrior);
}

void SpeculativeDecoding::prepare(const Engine& engine, StepInput& input) {
  prepare(engine.decoding(), engine.step_cost(), detail::now_ns(), input);
}

void SpeculativeDecoding::prepare(std::span<const Engine::Decoding> decoding, const StepCost& cost, int64_t now,
                                  StepInput& input) {
  for (const RequestSpec& r : input.arrivals) {
    speculator_->start(r.id, r.prompt, sampling_params(r));
    requests_[r.id].limit = r.speculate;
  }
  for (uint64_t id : input.finish) {
    speculator_->finish(id);
    requests_.erase(id);
  }
  if (decoding.empty()) return;
  if (idle_ >= 4 && idle_ % options_.probe_every != 0) {  // speculation has not paid lately
    ++idle_;
    return;
  }
  const bool slo = options_.policy == SelectionPolicy::kSlo;
  // Candidates: about as many nodes as recent iterations took per request and a few more to grow
  // into; as many as allowed for a request about to fall behind its target.
  const int usual = taken_per_request_ < 0 ? options_.max_nodes : static_cast<int>(1.5 * taken_per_request_) + 2;
  std::vector<Speculator::Ask> asks;
  std::vector<SloCandidate> candidates;
  for (const Engine::Decoding& d : decoding) {
    auto t = requests_.find(d.id);
    const int limit = t == requests_.end() ? -1 : t->second.limit;
    const int cap = limit < 0 ? options_.max_nodes : std::min(options_.max_nodes, limit);
    SloCandidate c{d.id,        {},
                   cap,         slo ? static_cast<double>(d.tpot_ns) : 0.0,
                   d.generated, static_cast<double>(now - d.first_token_ns)};
    const bool tight = slo && c.slack_ns() < c.tpot_ns;
    const int ask = tight ? cap : std::min(cap, usual);
    if (ask <= 0) continue;
    asks.push_back({d.id, ask});
    candidates.push_back(std::move(c));
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
  for (size_t r = 0; r < asks.size(); ++r) {
    Proposal& p = proposals[r];
    if (p.tokens.size() > static_cast<size_t>(asks[r].max_nodes)) p.truncate(static_cast<size_t>(asks[r].max_nodes));
    p.order_best_first();
    const double scale = std::min(2.0, calibration(asks[r].id));
    for (float q : p.probs) candidates[r].probs.push_back(std::min(1.0, scale * q));
  }

  // The step's node budget and costs.
  const bool known = cost.known() && options_.policy != SelectionPolicy::kEvery;
  const double decodes = static_cast<double>(decoding.size());
  SelectionInput in;
  in.slo = slo;
  in.every = options_.policy == SelectionPolicy::kEvery;
  in.cold_min_prob = options_.cold_min_prob;
  in.tokens = decodes;
  in.node_ns = known ? cost.per_token_ns() + propose_ns_per_node_ : 0;
  in.step_ns = known ? cost.fixed_ns() + cost.per_token_ns() * decodes : 0;
  in.budget = std::numeric_limits<int>::max() / 4;  // the planner's token budget cuts what is left
  double afford_ns = 0;
  if (slo && known) {
    // What the tightest request affords: its target for each token the step brings it, at least
    // one plus what its whole tree is expected to bring, or its slack plus the tree's share. A
    // request that cannot be kept on target even by a step without trees does not bound the others
    // (it still gets the nodes it needs first).
    afford_ns = std::numeric_limits<double>::max();
    for (const SloCandidate& c : candidates) {
      double tree = 0;
      for (size_t j = 0; j < c.probs.size() && j < static_cast<size_t>(c.cap); ++j) tree += c.probs[j];
      const double afford = std::max((1 + tree) * c.tpot_ns, c.slack_ns() + tree * c.tpot_ns);
      if (afford >= in.step_ns) afford_ns = std::min(afford_ns, afford);
    }
    if (afford_ns < std::numeric_limits<double>::max()) {
      const int fit = cost.tokens_within(static_cast<int64_t>(std::min(afford_ns, 1e15)));
      if (fit >= 0) in.budget = std::max(0, fit - static_cast<int>(decoding.size()));
    }
  }
  const TreeSelection sel = select_tree_nodes(candidates, in);

  size_t total = 0;
  for (int t : sel.taken) total += static_cast<size_t>(t);
  const double per_request = static_cast<double>(total) / static_cast<double>(asks.size());
  taken_per_request_ = taken_per_request_ < 0 ? per_request : 0.8 * taken_per_request_ + 0.2 * per_request;
  if (proposed > 0) idle_ = total == 0 ? idle_ + 1 : 0;  // proposals, and none paid

  const bool explain = log()->should_log(spdlog::level::debug);
  std::string line;
  if (explain) {
    line = fmt::format(
        "speculation step: {} decoding, budget {} nodes (affords {:.1f} ms), node {:.2f} ms, "
        "step {:.1f} ms ->",
        decoding.size(), in.budget >= std::numeric_limits<int>::max() / 4 ? -1 : in.budget, afford_ns / 1e6,
        in.node_ns / 1e6, sel.step_ns / 1e6);
  }
  for (size_t r = 0; r < asks.size(); ++r) {
    Proposal& p = proposals[r];
    const int taken = std::min(sel.taken[r], static_cast<int>(p.tokens.size()));
    if (explain) {
      const SloCandidate& c = candidates[r];
      line += fmt::format(
          " [{}: tpot {:.0f} ms, slack {:.0f} ms, need {:.2f}, {} of {} nodes ({} for its target), "
          "expects {:.2f}]",
          c.id, c.tpot_ns / 1e6, c.tpot_ns > 0 ? c.slack_ns() / 1e6 : 0.0, sel.need[r], taken, p.tokens.size(),
          sel.required[r], sel.expected[r]);
    }
    p.truncate(static_cast<size_t>(taken));
    if (p.tokens.empty()) continue;
    Tracked& t = requests_[asks[r].id];
    t.predicted_prefix.assign(1, 0.0);
    for (float q : p.probs) t.predicted_prefix.push_back(t.predicted_prefix.back() + std::min(1.0f, q));
    input.drafts.push_back({asks[r].id, std::move(p.tokens), std::move(p.parents), std::move(p.drawn_from),
                            std::move(p.dists), std::min(taken, sel.required[r])});
  }
  if (explain) log()->debug("{}", line);
}

void SpeculativeDecoding::observe(const StepOutput& output) {
  for (const TokenEvent& e : output.events) {
    auto it = requests_.find(e.id);
    if (e.drafted > 0 && it != requests_.end() && !it->second.predicted_prefix.empty()) {
      // The speculator's own estimate for the verified prefix against what was accepted.
      const std::vector<double>& prefix = it->second.predicted_prefix;
      const double predicted = prefix[std::min(prefix.size() - 1, static_cast<size_t>(e.drafted))];
      const double w = options_.calibration_weight;
      predicted_ = (1 - w) * predicted_ + w * predicted;
      accepted_ = (1 - w) * accepted_ + w * e.accepted;
      const double own = 0.2;
      it->second.predicted = (1 - own) * it->second.predicted + predicted;
      it->second.accepted = (1 - own) * it->second.accepted + e.accepted;
    }
    if (it != requests_.end()) it->second.predicted_prefix.clear();
    if (!e.tokens.empty()) speculator_->extend(e.id, e.tokens);
    if (e.finish != 0) {
      speculator_->finish(e.id);
      requests_.erase(e.id);
    }
  }
}

}  // namespace weft::serving
