// Speculative decoding around an Engine: before each iteration, a speculator's tree for every
// decoding request (StepInput::drafts); after it, the tokens each request produced go back to the
// speculator. The engine verifies the trees in the same forward pass as the decodes, so the output
// is exactly that of decoding without speculation.
//
//   SpeculativeDecoding spec(std::make_unique<SuffixSpeculator>(), {.max_nodes = 16});
//   spec.prepare(engine, input);              // registers arrivals, adds trees
//   StepOutput out = engine.step(input);
//   spec.observe(out);                        // accepted tokens and finishes
//
// Which nodes are verified is AdaServe's speculate-select-verify (policy kSlo, the default):
//   - speculate: each decoding request is asked for a tree wider than usual when it is behind its
//     TPOT target, and its nodes are ordered best first by calibrated path probability;
//   - budget: the step may take as many tree nodes as keep its time (the engine's measured
//     StepCost, profiled at start and refitted every iteration) within what the tightest request
//     affords: (1 + the tokens its tree can bring) x its TPOT target, or its slack plus that
//     (requests that no step could keep on target do not count);
//   - select (tree_selection.h): first, requests behind their target (least slack first) get the
//     nodes they need to end the step on target; then the rest of the budget goes to the nodes that
//     raise the step's expected tokens per unit of time, best first across requests — the
//     throughput rule alone is policy kCost: a node of probability p pays when
//     p > its cost x expected tokens / expected step time, its cost being the engine's time per
//     batch token plus the speculator's measured time per proposed node. So a lone repetitive
//     stream gets long trees, a large batch only nearly sure nodes, and a tight request the nodes
//     that keep it on target even when throughput alone would not take them;
//   - adapt: the speculator's probabilities are calibrated online, per speculator and per request
//     (accepted tokens over the verified nodes' predicted sum, exponentially weighted; a request's
//     own figure blends in as it verifies trees), and when several iterations in a row have
//     proposals but take no node, the speculator is asked only every `probe_every` iterations —
//     plain continuous batching until speculation pays again.
// kEvery verifies every proposed node at least `cold_min_prob` likely (where verification is
// cheap). Until the engine has measured its step cost, only nodes at least `cold_min_prob` likely
// are taken. A request may ask for fewer nodes, or none (RequestSpec::speculate).
// With `explain`, each step logs (debug level) every request's target, slack, need, selected nodes
// and expected acceptance.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <vector>

#include "serving/engine.h"
#include "serving/speculator.h"

namespace weft::serving {

enum class SelectionPolicy : uint8_t { kSlo = 0, kCost = 1, kEvery = 2 };

struct SpeculationOptions {
  int max_nodes = 16;          // per request and iteration
  float cold_min_prob = 0.5f;  // before the step cost is known (and kEvery's bar)
  SelectionPolicy policy = SelectionPolicy::kSlo;
  double calibration_weight = 0.05;
  int probe_every = 16;
};

class SpeculativeDecoding {
 public:
  SpeculativeDecoding(std::unique_ptr<Speculator> speculator, const SpeculationOptions& options);

  void prepare(const Engine& engine, StepInput& input);
  // The same from explicit state: the decoding requests, what steps cost and the time now.
  void prepare(std::span<const Engine::Decoding> decoding, const StepCost& cost, int64_t now_ns, StepInput& input);
  void observe(const StepOutput& output);

  // Accepted tokens per unit of predicted probability (1: the speculator's estimates are right).
  double calibration() const { return (accepted_ + 1.0) / (predicted_ + 1.0); }
  // The same for one request: its own record blended with the speculator's.
  double calibration(uint64_t id) const;

 private:
  struct Tracked {
    int limit = -1;                        // RequestSpec::speculate
    std::vector<double> predicted_prefix;  // for the tree in flight: expected accepted tokens per prefix
    double predicted = 0, accepted = 0;    // exponentially weighted, this request's trees
  };
  std::unique_ptr<Speculator> speculator_;
  SpeculationOptions options_;
  std::map<uint64_t, Tracked> requests_;
  double predicted_ = 0, accepted_ = 0;  // exponentially weighted sums, all requests
  double taken_per_request_ = -1;        // nodes an iteration took per request asked (EMA; -1: none yet)
  double propose_ns_per_node_ = 0;       // the speculator's time per proposed node (EMA)
  int idle_ = 0;                         // iterations in a row that took no node
};

}  // namespace weft::serving
