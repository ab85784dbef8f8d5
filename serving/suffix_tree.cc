#include "serving/suffix_tree.h"

#include <algorithm>
#include <queue>
#include <utility>

namespace weft::serving {

SuffixTree::SuffixTree(int max_depth) : max_depth_(std::max(1, max_depth)) { nodes_.emplace_back(); }

int SuffixTree::add_sequence() {
  int id;
  if (!free_seqs_.empty()) {
    id = free_seqs_.back();
    free_seqs_.pop_back();
  } else {
    id = static_cast<int>(seqs_.size());
    seqs_.emplace_back();
  }
  seqs_[static_cast<size_t>(id)] = Sequence{.live = true};
  return id;
}

int32_t SuffixTree::child(int32_t node, int32_t token) const {
  auto it = edges_.find(key(node, token));
  return it == edges_.end() ? -1 : it->second;
}

int32_t SuffixTree::child_or_add(int32_t node, int32_t token) {
  auto [it, added] = edges_.try_emplace(key(node, token), 0);
  if (!added) return it->second;
  int32_t c;
  if (!free_.empty()) {
    c = free_.back();
    free_.pop_back();
  } else {
    c = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& n = nodes_[static_cast<size_t>(c)];
  std::vector<int32_t>& siblings = nodes_[static_cast<size_t>(node)].children;
  n.token = token;
  n.count = 0;
  n.parent = node;
  n.rank = static_cast<int32_t>(siblings.size());
  n.children.clear();
  siblings.push_back(c);  // count 0: last is its place
  it->second = c;
  return c;
}

void SuffixTree::increment(int32_t c) {
  Node& n = nodes_[static_cast<size_t>(c)];
  ++n.count;
  std::vector<int32_t>& siblings = nodes_[static_cast<size_t>(n.parent)].children;
  while (n.rank > 0) {
    Node& before = nodes_[static_cast<size_t>(siblings[static_cast<size_t>(n.rank - 1)])];
    if (before.count >= n.count) break;
    std::swap(siblings[static_cast<size_t>(n.rank - 1)], siblings[static_cast<size_t>(n.rank)]);
    ++before.rank;
    --n.rank;
  }
}

void SuffixTree::decrement(int32_t c) {
  Node& n = nodes_[static_cast<size_t>(c)];
  --n.count;
  std::vector<int32_t>& siblings = nodes_[static_cast<size_t>(n.parent)].children;
  while (static_cast<size_t>(n.rank) + 1 < siblings.size()) {
    Node& after = nodes_[static_cast<size_t>(siblings[static_cast<size_t>(n.rank + 1)])];
    if (after.count <= n.count) break;
    std::swap(siblings[static_cast<size_t>(n.rank + 1)], siblings[static_cast<size_t>(n.rank)]);
    --after.rank;
    ++n.rank;
  }
  if (n.count == 0) {  // last among its siblings now, and childless: its children counted no more than it
    siblings.pop_back();
    edges_.erase(key(n.parent, n.token));
    n.parent = -1;
    n.children.clear();
    free_.push_back(c);
  }
}

void SuffixTree::append(int seq, std::span<const int32_t> tokens) {
  Sequence& s = seqs_[static_cast<size_t>(seq)];
  std::vector<int32_t> next;
  for (int32_t t : tokens) {
    s.tokens.push_back(t);
    // active[i] is the suffix of i + 1 tokens; each grows by t, the longest beyond max_depth drops.
    next.clear();
    const int32_t one = child_or_add(0, t);
    increment(one);
    next.push_back(one);
    for (size_t i = 0; i < s.active.size() && static_cast<int>(i) + 2 <= max_depth_; ++i) {
      const int32_t c = child_or_add(s.active[i], t);
      increment(c);
      next.push_back(c);
    }
    s.active.swap(next);
  }
}

void SuffixTree::remove_sequence(int seq) {
  Sequence& s = seqs_[static_cast<size_t>(seq)];
  if (!s.live) return;
  std::vector<int32_t> path;
  const size_t n = s.tokens.size();
  for (size_t i = 0; i < n; ++i) {
    // The substrings starting at i were counted once each; uncount them deepest first, so a node
    // reaching zero has no children left.
    path.clear();
    int32_t node = 0;
    for (size_t k = i; k < n && k - i < static_cast<size_t>(max_depth_); ++k) {
      node = child(node, s.tokens[k]);
      path.push_back(node);
    }
    for (auto it = path.rbegin(); it != path.rend(); ++it) decrement(*it);
  }
  s = Sequence{};
  free_seqs_.push_back(seq);
}

SuffixTree::Match SuffixTree::match(std::span<const int32_t> context, int seq) const {
  const std::vector<int32_t>* known = seq >= 0 ? &seqs_[static_cast<size_t>(seq)].active : nullptr;
  // Suffixes that occur with a continuation are closed under shortening (a suffix of such a
  // suffix occurs at the same place, followed by the same token), so the longest one is found by
  // bisection on its length.
  auto walk = [&](int len) -> int32_t {
    int32_t node = 0;
    if (known != nullptr && static_cast<size_t>(len) <= known->size()) {
      node = (*known)[static_cast<size_t>(len - 1)];
    } else {
      for (size_t k = context.size() - static_cast<size_t>(len); k < context.size() && node >= 0; ++k) {
        node = child(node, context[k]);
      }
    }
    return node >= 0 && !nodes_[static_cast<size_t>(node)].children.empty() ? node : -1;
  };
  int lo = 0, hi = std::min<int>(static_cast<int>(context.size()), max_depth_ - 1);
  Match best;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    const int32_t node = walk(mid);
    if (node >= 0) {
      lo = mid;
      best = {node, mid};
    } else {
      hi = mid - 1;
    }
  }
  return best;  // the root and 0 when nothing matched
}

Proposal SuffixTree::propose(const Match& m, int max_nodes, float min_prob) const {
  Proposal p;
  p.match_length = m.length;
  const Node& root = nodes_[static_cast<size_t>(m.node)];
  if (max_nodes <= 0 || root.children.empty() || root.count == 0) return p;
  // Candidates: a node, its path probability, its parent in the output and the parent's path
  // probability. A popped node brings in its best child and its next sibling, so every candidate
  // is in the queue before anything less likely than it is taken.
  struct Candidate {
    float prob;
    int32_t node;
    int32_t out_parent;
    float parent_prob;
    bool operator<(const Candidate& o) const { return prob < o.prob; }
  };
  auto prob_of = [&](int32_t node, float parent_prob) {
    const Node& n = nodes_[static_cast<size_t>(node)];
    return parent_prob * static_cast<float>(n.count) / static_cast<float>(nodes_[static_cast<size_t>(n.parent)].count);
  };
  std::priority_queue<Candidate> queue;
  const int32_t first = root.children.front();
  queue.push({prob_of(first, 1.0f), first, -1, 1.0f});
  while (!queue.empty() && static_cast<int>(p.tokens.size()) < max_nodes) {
    const Candidate c = queue.top();
    queue.pop();
    if (c.prob < min_prob) break;
    const Node& n = nodes_[static_cast<size_t>(c.node)];
    const int32_t index = static_cast<int32_t>(p.tokens.size());
    p.tokens.push_back(n.token);
    p.parents.push_back(c.out_parent);
    p.probs.push_back(c.prob);
    p.score += c.prob;
    const std::vector<int32_t>& siblings = nodes_[static_cast<size_t>(n.parent)].children;
    if (static_cast<size_t>(n.rank) + 1 < siblings.size()) {
      const int32_t next = siblings[static_cast<size_t>(n.rank + 1)];
      queue.push({prob_of(next, c.parent_prob), next, c.out_parent, c.parent_prob});
    }
    if (!n.children.empty()) queue.push({prob_of(n.children.front(), c.prob), n.children.front(), index, c.prob});
  }
  return p;
}

}  // namespace weft::serving
