// A speculator's token tree for one request, before it becomes a DraftTree for the engine.
#pragma once

#include <cstdint>
#include <vector>

#include "serving/engine_types.h"

namespace weft::serving {

// Node i follows parents[i] (< i), or the request's last token when -1; parents always come before
// children, and a prefix of the nodes is a tree (a short budget keeps a prefix).
struct Proposal {
  std::vector<int32_t> tokens;
  std::vector<int32_t> parents;
  std::vector<float> probs;  // path probability of each node: an estimate that the target accepts it
  float score = 0;           // sum of probs: expected accepted tokens
  int match_length = 0;      // context tokens matched (suffix speculation)
  // How nodes were drawn (DraftTree::drawn_from, DraftTree::dists); empty: all deterministic.
  std::vector<int32_t> drawn_from;
  std::vector<DraftDist> dists;

  // Reorders the nodes best first: by path probability, every node after its parent, and siblings
  // drawn from one distribution in the order they were drawn — so a prefix is the most probable
  // subtree of its size (up to those constraints).
  void order_best_first();

  // The first `n` nodes (n <= size).
  void truncate(size_t n) {
    tokens.resize(n);
    parents.resize(n);
    probs.resize(n);
    if (!drawn_from.empty()) drawn_from.resize(n);
  }
};

}  // namespace weft::serving
