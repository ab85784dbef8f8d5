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
// Trees shrink as the batch grows: verification on a CPU is compute-bound once several requests
// decode together, so a speculated token must then be likely to pay for itself. With at most
// `full_batch` requests decoding, each gets `max_nodes`; beyond, `max_nodes * full_batch / n`
// nodes and only those at least `busy_min_prob` likely. A request may ask for fewer nodes, or none
// (RequestSpec::speculate).
#pragma once

#include <map>
#include <memory>

#include "serving/engine.h"
#include "serving/speculator.h"

namespace weft::serving {

struct SpeculationOptions {
  int max_nodes = 16;
  int full_batch = 4;
  float busy_min_prob = 0.5f;
};

class SpeculativeDecoding {
 public:
  SpeculativeDecoding(std::unique_ptr<Speculator> speculator, const SpeculationOptions& options);

  void prepare(const Engine& engine, StepInput& input);
  void observe(const StepOutput& output);

 private:
  std::unique_ptr<Speculator> speculator_;
  SpeculationOptions options_;
  std::map<uint64_t, int> limits_;  // requests that asked for a smaller tree (RequestSpec::speculate)
};

}  // namespace weft::serving
