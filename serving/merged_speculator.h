// One tree per request from two speculators — SuffixDecoding's suffix trees and a draft model —
// united: a node either proposes is one node, ranked by the higher of their estimates that the
// target accepts it, and the tree keeps the likeliest nodes best first. Repetitive contexts get
// the suffix trees' long paths, open-ended ones the draft model's branches, and a step pays for
// whichever nodes are likeliest, not for two trees.
//
// A node the draft model sampled keeps its distribution (for min(1, p/q) acceptance) while the
// siblings drawn before it stay before it; otherwise it counts as deterministic, which verification
// handles exactly too (it only accepts less often).
//
// Not thread-safe.
#pragma once

#include <memory>

#include "serving/speculator.h"

namespace weft::serving {

class MergedSpeculator final : public Speculator {
 public:
  MergedSpeculator(std::unique_ptr<Speculator> first, std::unique_ptr<Speculator> second);

  void start(uint64_t id, std::span<const int32_t> prompt, const llm::SamplingParams& sampling) override;
  void extend(uint64_t id, std::span<const int32_t> tokens) override;
  void finish(uint64_t id) override;
  Proposal propose(uint64_t id, int max_nodes) override;
  std::vector<Proposal> propose_all(std::span<const Ask> asks) override;

  // The union of two trees, at most `max_nodes` nodes, best first.
  static Proposal merge(const Proposal& a, const Proposal& b, int max_nodes);

 private:
  std::unique_ptr<Speculator> first_, second_;
};

}  // namespace weft::serving
