// A suffix tree of token sequences with occurrence counts, for SuffixDecoding (Oliaro et al.,
// arXiv 2411.04975): every substring of up to `max_depth` tokens of the indexed sequences is a path
// from the root, and each node counts the occurrences of its path. Speculation finds the longest
// suffix of a request's context that occurs here and proposes the likeliest continuations.
//
//   SuffixTree t(64);
//   int s = t.add_sequence();
//   t.append(s, tokens);                          // extends every suffix ending at the end: O(depth)
//   SuffixTree::Match m = t.match(context);       // the longest suffix of `context` found
//   Proposal p = t.propose(m, 16, 0.1f);          // best-first tree by path probability
//   t.remove_sequence(s);                         // its counts go, and nodes left at zero
//
// A child's probability is its count over its parent's; a proposal grows best-first by path
// probability (the product along the path, an estimate that the target accepts the node), stops
// at `max_nodes` or below `min_prob`, and scores itself by the sum of its nodes' probabilities (the
// expected number of accepted tokens). Children stay ordered by count, so the best child of a node
// is its first and the best-first growth needs no sorting.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "serving/proposal.h"

namespace weft::serving {

class SuffixTree {
 public:
  explicit SuffixTree(int max_depth = 64);

  // A new, empty sequence; its id stays valid until remove_sequence.
  int add_sequence();
  // Appends tokens to sequence `seq`, counting every new substring of up to max_depth tokens.
  void append(int seq, std::span<const int32_t> tokens);
  // Uncounts everything sequence `seq` added and forgets it.
  void remove_sequence(int seq);

  struct Match {
    int32_t node = 0;  // the root when nothing matched
    int length = 0;
  };
  // The longest suffix of `context` (at most max_depth - 1 tokens) that is a path of the tree with
  // a continuation. `seq`, when given, is a sequence of this tree whose tokens end as `context`
  // does: its suffixes' nodes are known, so those lengths need no walk from the root.
  Match match(std::span<const int32_t> context, int seq = -1) const;
  // The likeliest continuation tree below `m`, best first.
  Proposal propose(const Match& m, int max_nodes, float min_prob) const;

  int max_depth() const { return max_depth_; }
  size_t nodes() const { return nodes_.size() - free_.size(); }
  int32_t count(int32_t node) const { return nodes_[static_cast<size_t>(node)].count; }

 private:
  struct Node {
    int32_t token = -1;
    int32_t count = 0;
    int32_t parent = -1;
    // Children form a list by count, highest first: no allocation per node, and a count change
    // moves a child past its neighbours in O(1) each.
    int32_t first_child = -1;
    int32_t last_child = -1;
    int32_t prev = -1;  // siblings
    int32_t next = -1;
  };
  struct Sequence {
    bool live = false;
    std::vector<int32_t> tokens;
    std::vector<int32_t> active;  // nodes of the suffixes ending at the end, shortest first
  };
  int32_t child(int32_t node, int32_t token) const;
  int32_t child_or_add(int32_t node, int32_t token);
  void increment(int32_t node);
  void decrement(int32_t node);  // removes the node when it reaches zero (it has no children then)
  void unlink(int32_t node);
  void insert_before(int32_t node, int32_t before);  // before == -1: at the end
  static uint64_t key(int32_t node, int32_t token) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(node)) << 32) | static_cast<uint32_t>(token);
  }

  int max_depth_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
  std::vector<int32_t> free_;
  absl::flat_hash_map<uint64_t, int32_t> edges_;  // (node, token) -> child
  std::vector<Sequence> seqs_;
  std::vector<int> free_seqs_;
};

}  // namespace weft::serving
