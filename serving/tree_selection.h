// Which speculated nodes each decoding request gets verified in one step: AdaServe's selection
// (Li et al., "AdaServe: SLO-customized LLM serving with fine-grained speculative decoding"), as a
// pure function of the candidate trees, the requests' latency targets and what a node costs.
//
//   SelectionInput in{.budget = 24, .node_ns = 6e6, .step_ns = 30e6, .tokens = 4};
//   TreeSelection s = select_tree_nodes(candidates, in);
//   // s.taken[i]: the first taken[i] nodes of candidate i's tree; s.required[i] of them keep it on target
//
// Every candidate's nodes come best first (each node's calibrated path probability — the chance the
// target accepts it — no higher than its parent's, parents before children), so any prefix of a
// tree is a tree and taking nodes by probability keeps trees connected. Two phases share the
// step's node budget:
//   1. SLO: requests furthest behind their TPOT target first (least slack), each takes its next
//      nodes while the tokens it expects from this step (one, plus the sum of its taken nodes'
//      probabilities) fall short of what keeps its mean time per output token on target once the
//      step ends — a need that grows as taken nodes lengthen the step — and while a node is worth
//      more of the request's time than it costs everyone (p x tpot > node_ns). When several requests
//      need nodes, none takes more than half the budget here.
//   2. Throughput: what is left goes to the most probable next nodes across all requests while each
//      raises the step's expected tokens per unit of time (p x step time > node_ns x tokens), or,
//      with `every`, to every node within the budget.
// Per request, at most `cap` nodes. Until node costs are known (`node_ns` <= 0), a node is taken
// only when at least `cold_min_prob` likely.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace weft::serving {

struct SloCandidate {
  uint64_t id = 0;
  std::vector<double> probs;  // calibrated path probabilities, best first
  int cap = 0;                // nodes at most
  double tpot_ns = 0;         // its target mean time per output token; 0: no target (throughput only)
  int generated = 0;          // tokens it produced so far (at least one while decoding)
  double elapsed_ns = 0;      // since its first token

  // Time it is ahead of its target if the step ended now with one more token (negative: behind).
  double slack_ns() const { return tpot_ns > 0 ? generated * tpot_ns - elapsed_ns : 1e300; }
  // Expected accepted tree tokens it needs from a step lasting `step_ns` to end on target.
  double need(double step_ns) const { return tpot_ns > 0 ? (elapsed_ns + step_ns) / tpot_ns - generated : 0; }
};

struct SelectionInput {
  int budget = 0;              // tree nodes the step may verify, all requests together
  double node_ns = 0;          // what one more node costs the step (verifying and proposing it); <= 0 unknown
  double step_ns = 0;          // the step's expected time without trees
  double tokens = 0;           // the step's expected tokens without trees (one per decoding request)
  bool slo = true;             // phase 1 (SLO); false: throughput only
  bool every = false;          // phase 2 takes every node within the budget
  double cold_min_prob = 0.5;  // while node costs are unknown
};

struct TreeSelection {
  std::vector<int> taken;        // per candidate: the first taken[i] nodes
  std::vector<int> required;     // of which the first required[i] were taken for its SLO
  std::vector<double> expected;  // expected accepted tree tokens of the taken nodes
  std::vector<double> need;      // its need when phase 1 ended (0 without a target)
  double step_ns = 0;            // expected step time with the taken nodes
};

TreeSelection select_tree_nodes(std::span<const SloCandidate> candidates, const SelectionInput& in);

}  // namespace weft::serving
