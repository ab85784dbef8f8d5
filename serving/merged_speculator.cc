#include "serving/merged_speculator.h"

#include <algorithm>
#include <map>
#include <queue>

namespace weft::serving {

MergedSpeculator::MergedSpeculator(std::unique_ptr<Speculator> first, std::unique_ptr<Speculator> second)
    : first_(std::move(first)), second_(std::move(second)) {}

void MergedSpeculator::start(uint64_t id, std::span<const int32_t> prompt, const llm::SamplingParams& sampling) {
  first_->start(id, prompt, sampling);
  second_->start(id, prompt, sampling);
}

void MergedSpeculator::extend(uint64_t id, std::span<const int32_t> tokens) {
  first_->extend(id, tokens);
  second_->extend(id, tokens);
}

void MergedSpeculator::finish(uint64_t id) {
  first_->finish(id);
  second_->finish(id);
}

Proposal MergedSpeculator::propose(uint64_t id, int max_nodes) {
  return merge(first_->propose(id, max_nodes), second_->propose(id, max_nodes), max_nodes);
}

std::vector<Proposal> MergedSpeculator::propose_all(std::span<const Ask> asks) {
  std::vector<Proposal> a = first_->propose_all(asks);
  std::vector<Proposal> b = second_->propose_all(asks);
  std::vector<Proposal> out;
  out.reserve(asks.size());
  for (size_t i = 0; i < asks.size(); ++i) out.push_back(merge(a[i], b[i], asks[i].max_nodes));
  return out;
}

Proposal MergedSpeculator::merge(const Proposal& a, const Proposal& b, int max_nodes) {
  // The union as a trie: node -> children by token; each node remembers where it came from.
  struct Node {
    int32_t token = 0;
    int32_t parent = -1;  // trie node; -1: the root
    float prob = 0;
    int from_a = -1, from_b = -1;  // node index in a / b
    std::map<int32_t, int> children;
  };
  std::vector<Node> trie;
  std::map<int32_t, int> roots;
  auto add = [&](const Proposal& p, std::vector<int>& where, bool is_a) {
    where.assign(p.tokens.size(), -1);
    for (size_t j = 0; j < p.tokens.size(); ++j) {
      const int32_t parent = p.parents[j] < 0 ? -1 : where[static_cast<size_t>(p.parents[j])];
      if (p.parents[j] >= 0 && parent < 0) continue;
      std::map<int32_t, int>& siblings = parent < 0 ? roots : trie[static_cast<size_t>(parent)].children;
      auto [it, fresh] = siblings.emplace(p.tokens[j], static_cast<int>(trie.size()));
      if (fresh) trie.push_back({p.tokens[j], parent, 0, -1, -1, {}});
      Node& n = trie[static_cast<size_t>(it->second)];
      n.prob = std::max(n.prob, p.probs[j]);
      (is_a ? n.from_a : n.from_b) = static_cast<int>(j);
      where[j] = it->second;
    }
  };
  std::vector<int> in_a, in_b;
  add(a, in_a, true);
  add(b, in_b, false);

  // Best first from the root: a node's probability never exceeds its parent's, so the tree stays
  // connected.
  Proposal out;
  std::vector<int> index(trie.size(), -1);  // trie node -> output node
  auto worse = [&](int x, int y) {
    return trie[static_cast<size_t>(x)].prob < trie[static_cast<size_t>(y)].prob ||
           (trie[static_cast<size_t>(x)].prob == trie[static_cast<size_t>(y)].prob && x > y);
  };
  std::priority_queue<int, std::vector<int>, decltype(worse)> ready(worse);
  for (const auto& [token, n] : roots) ready.push(n);
  while (!ready.empty() && static_cast<int>(out.tokens.size()) < max_nodes) {
    const int n = ready.top();
    ready.pop();
    const Node& node = trie[static_cast<size_t>(n)];
    index[static_cast<size_t>(n)] = static_cast<int>(out.tokens.size());
    out.tokens.push_back(node.token);
    out.parents.push_back(node.parent < 0 ? -1 : index[static_cast<size_t>(node.parent)]);
    out.probs.push_back(node.prob);
    out.score += node.prob;
    for (const auto& [token, c] : node.children) ready.push(c);
  }
  out.match_length = a.match_length;

  // Sampled draft nodes keep their distribution while their earlier-drawn siblings precede them.
  if (b.drawn_from.empty()) return out;
  out.drawn_from.assign(out.tokens.size(), -1);
  out.dists = b.dists;
  for (size_t t = 0; t < trie.size(); ++t) {
    const Node& node = trie[t];
    if (index[t] < 0 || node.from_b < 0 || node.from_a >= 0) continue;
    const int32_t k = b.drawn_from[static_cast<size_t>(node.from_b)];
    if (k < 0) continue;
    bool in_order = true;
    for (int j = 0; j < node.from_b && in_order; ++j) {
      if (b.drawn_from[static_cast<size_t>(j)] != k || b.parents[static_cast<size_t>(j)] != b.parents[node.from_b])
        continue;
      const int at = in_b[static_cast<size_t>(j)] < 0 ? -1 : index[static_cast<size_t>(in_b[static_cast<size_t>(j)])];
      in_order = at >= 0 && at < index[t] && trie[static_cast<size_t>(in_b[static_cast<size_t>(j)])].from_a < 0;
    }
    if (in_order) out.drawn_from[static_cast<size_t>(index[t])] = k;
  }
  return out;
}

}  // namespace weft::serving
