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
  nodes_[static_cast<size_t>(c)] = Node{.token = token, .count = 0, .parent = node};
  insert_before(c, -1);  // count 0: last is its place
  it->second = c;
  return c;
}

void SuffixTree::unlink(int32_t c) {
  Node& n = nodes_[static_cast<size_t>(c)];
  Node& p = nodes_[static_cast<size_t>(n.parent)];
  (n.prev >= 0 ? nodes_[static_cast<size_t>(n.prev)].next : p.first_child) = n.next;
  (n.next >= 0 ? nodes_[static_cast<size_t>(n.next)].prev : p.last_child) = n.prev;
  n.prev = n.next = -1;
}

void SuffixTree::insert_before(int32_t c, int32_t before) {
  Node& n = nodes_[static_cast<size_t>(c)];
  Node& p = nodes_[static_cast<size_t>(n.parent)];
  n.next = before;
  n.prev = before >= 0 ? nodes_[static_cast<size_t>(before)].prev : p.last_child;
  (n.prev >= 0 ? nodes_[static_cast<size_t>(n.prev)].next : p.first_child) = c;
  (before >= 0 ? nodes_[static_cast<size_t>(before)].prev : p.last_child) = c;
}

void SuffixTree::increment(int32_t c) {
  const int32_t count = ++nodes_[static_cast<size_t>(c)].count;
  int32_t before = nodes_[static_cast<size_t>(c)].prev;
  if (before < 0 || nodes_[static_cast<size_t>(before)].count >= count) return;
  while (nodes_[static_cast<size_t>(before)].prev >= 0 &&
         nodes_[static_cast<size_t>(nodes_[static_cast<size_t>(before)].prev)].count < count) {
    before = nodes_[static_cast<size_t>(before)].prev;
  }
  unlink(c);
  insert_before(c, before);
}

void SuffixTree::decrement(int32_t c) {
  const int32_t count = --nodes_[static_cast<size_t>(c)].count;
  if (count == 0) {  // childless now: its children counted no more than it
    unlink(c);
    Node& n = nodes_[static_cast<size_t>(c)];
    edges_.erase(key(n.parent, n.token));
    n = Node{};
    free_.push_back(c);
    return;
  }
  int32_t after = nodes_[static_cast<size_t>(c)].next;
  if (after < 0 || nodes_[static_cast<size_t>(after)].count <= count) return;
  while (nodes_[static_cast<size_t>(after)].next >= 0 &&
         nodes_[static_cast<size_t>(nodes_[static_cast<size_t>(after)].next)].count > count) {
    after = nodes_[static_cast<size_t>(after)].next;
  }
  unlink(c);
  insert_before(c, nodes_[static_cast<size_t>(after)].next);
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
    return node >= 0 && nodes_[static_cast<size_t>(node)].first_child >= 0 ? node : -1;
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
  if (max_nodes <= 0 || root.first_child < 0 || root.count == 0) return p;
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
  const int32_t first = root.first_child;
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
    if (n.next >= 0) {
      const int32_t next = n.next;
      queue.push({prob_of(next, c.parent_prob), next, c.out_parent, c.parent_prob});
    }
    if (n.first_child >= 0) queue.push({prob_of(n.first_child, c.prob), n.first_child, index, c.prob});
  }
  return p;
}

}  // namespace weft::serving
