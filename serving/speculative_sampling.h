// Verification of a draft tree against the target model, one token at a time: given the target's
// logits after a tree node, the request's next token and so whether the walk goes on down a child.
//
//   SpeculativeSampler verify;
//   int node = -1;                                    // the root: the request's last known token
//   for (;;) {
//     int32_t next = verify.next(sampler, logits_after(node), history, tree, nodes, node);
//     history.push_back(next);
//     node = the first child of `node` holding `next`, or stop;
//   }
//
// The tokens are distributed exactly as the target's sampler would draw them without the tree:
// - children all chosen deterministically (or a greedy request): the sampler draws its token as it
//   would without speculation — with the same random numbers, so a seeded request gives the same
//   text with and without a tree — and the walk follows a child holding it;
// - children sampled from a draft distribution q: multi-step speculative sampling (SpecInfer,
//   Miao et al., ASPLOS'24): the children are tried in order, child x accepted with probability
//   min(1, p(x) / q(x)); a rejection leaves the residual p <- norm(max(0, p - q)) for the next
//   child; after the last rejection the token is drawn from the residual. A child the draft drew
//   without replacement after earlier siblings is tried against q with those siblings removed. A
//   deterministic child among sampled ones counts as q = its token alone.
//
// Not thread-safe: one per engine.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "llm/sampler.h"
#include "serving/engine_types.h"

namespace weft::serving {

class SpeculativeSampler {
 public:
  // The request's next token after node `node` (-1: the root) of the first `nodes` nodes of
  // `tree`, from the target's `logits` there; `history` is the request's tokens up to that point.
  int32_t next(llm::Sampler& sampler, std::span<const float> logits, std::span<const int32_t> history,
               const DraftTree& tree, int nodes, int node);

 private:
  llm::TokenDistribution p_;
  std::vector<double> mass_;  // the residual, unnormalised, by token id (zero off p_'s support)
  std::vector<int> children_;
};

}  // namespace weft::serving
