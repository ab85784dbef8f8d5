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
// Which nodes are worth verifying is decided by what they cost on this machine. A verified node
// costs the engine's measured time per batch token (StepCost) and is worth its probability of
// being accepted; an iteration that computes tokens in C ns and produces T tokens on average runs
// at T/C, and a node of probability p raises that only when p > per_token x T / C. So nodes are
// taken across all decoding requests best first (each request's in its tree's order, so a tree
// stays a prefix of itself) while they pass that test: one request decoding alone gets long trees
// when its text repeats, a large batch — where the fixed cost is already shared and verification
// is compute-bound — only nodes that are nearly sure, and none once speculation cannot pay. The
// speculators' probabilities are calibrated online: the accepted tokens over the sum of the
// verified nodes' probabilities (exponentially weighted) scales every estimate. Proposing costs
// too (a draft model's forward passes): the speculator's measured time per proposed node is added
// to each node's cost, each request is asked for about as many nodes as recent iterations took
// (so a draft expands no deeper than pays), and when several iterations in a row have proposals
// but none pays, the speculator is asked only every `probe_every` iterations, to notice when
// speculation pays again.
// Until the engine has measured its step cost, only nodes at least `cold_min_prob` likely are
// taken. A request may ask for fewer nodes, or none (RequestSpec::speculate).
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "serving/engine.h"
#include "serving/speculator.h"

namespace weft::serving {

struct SpeculationOptions {
  int max_nodes = 16;          // per request and iteration
  float cold_min_prob = 0.5f;  // before the step cost is known
  bool by_cost = true;         // false: every node at least cold_min_prob likely, whatever it costs
  double calibration_weight = 0.05;
  int probe_every = 16;
};

class SpeculativeDecoding {
 public:
  SpeculativeDecoding(std::unique_ptr<Speculator> speculator, const SpeculationOptions& options);

  void prepare(const Engine& engine, StepInput& input);
  void observe(const StepOutput& output);

  // Accepted tokens per unit of predicted probability (1: the speculator's estimates are right).
  double calibration() const { return (accepted_ + 1.0) / (predicted_ + 1.0); }

 private:
  std::unique_ptr<Speculator> speculator_;
  SpeculationOptions options_;
  std::map<uint64_t, int> limits_;  // requests that asked for a smaller tree (RequestSpec::speculate)
  // Per request with a tree in flight: the speculator's expected accepted tokens for each prefix.
  std::map<uint64_t, std::vector<double>> predicted_prefix_;
  double predicted_ = 0, accepted_ = 0;  // exponentially weighted sums
  double taken_per_request_ = -1;        // nodes an iteration took per request asked (EMA; -1: none yet)
  double propose_ns_per_node_ = 0;       // the speculator's time per proposed node (EMA)
  int idle_ = 0;                         // iterations in a row that took no node
};

}  // namespace weft::serving
