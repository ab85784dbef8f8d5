#include "serving/draft_model_speculator.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace weft::serving {

DraftModelSpeculator::DraftModelSpeculator(std::shared_ptr<const llm::LlamaModel> draft,
                                           const DraftModelOptions& options)
    : model_(std::move(draft)), options_(options), kv_(model_->make_cache(options.kv_cache_tokens)) {}

void DraftModelSpeculator::start(uint64_t id, std::span<const int32_t> prompt, const llm::SamplingParams& sampling) {
  finish(id);
  Request r{llm::Sampler(sampling), std::mt19937_64(sampling.seed ^ 0x9e3779b97f4a7c15ULL), {}, -1, 0, {}, {}, {}};
  r.tokens.assign(prompt.begin(), prompt.end());
  requests_.emplace(id, std::move(r));
}

void DraftModelSpeculator::extend(uint64_t id, std::span<const int32_t> tokens) {
  auto it = requests_.find(id);
  if (it != requests_.end()) it->second.tokens.insert(it->second.tokens.end(), tokens.begin(), tokens.end());
}

void DraftModelSpeculator::finish(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  forget_cache(it->second);
  requests_.erase(it);
}

void DraftModelSpeculator::forget_cache(Request& r) {
  if (r.seq >= 0) kv_.remove_sequence(r.seq);
  r.seq = -1;
  r.computed = 0;
  r.tree_tokens.clear();
  r.tree_parents.clear();
  r.tree_slots.clear();
}

void DraftModelSpeculator::keep_accepted(Request& r) {
  std::vector<int> branch;
  int node = -1;
  // The last known token is always computed again: its logits grow the next tree.
  for (size_t k = static_cast<size_t>(r.computed); k + 1 < r.tokens.size(); ++k) {
    int child = -1;
    for (size_t j = 0; j < r.tree_tokens.size() && child < 0; ++j) {
      if (r.tree_parents[j] == node && r.tree_tokens[j] == r.tokens[k] && r.tree_slots[j] >= 0) {
        child = static_cast<int>(j);
      }
    }
    if (child < 0) break;
    branch.push_back(r.tree_slots[static_cast<size_t>(child)]);
    node = child;
  }
  if (kv_.pending(r.seq) > 0 && kv_.keep_branch(r.seq, branch).is_ok()) {
    r.computed += static_cast<int>(branch.size());
  } else {
    kv_.drop_pending(r.seq);
  }
  r.tree_tokens.clear();
  r.tree_parents.clear();
  r.tree_slots.clear();
}

void DraftModelSpeculator::expand(Request& r, Proposal& p, int node, float node_prob, std::span<const float> logits,
                                  int width, int room) {
  const int n = std::min(width, room);
  if (n <= 0) return;
  const llm::SamplingParams& sp = r.sampler.params();
  if (sp.temperature == 0.0f) {
    // The draft's top tokens, each with its probability at temperature 1.
    std::vector<int32_t>& ids = ids_;
    ids.resize(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
             (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
    });
    const float max = logits[static_cast<size_t>(ids[0])];
    double total = 0;
    for (float l : logits) total += std::exp(static_cast<double>(l - max));
    for (int k = 0; k < n; ++k) {
      const float prob = node_prob * static_cast<float>(std::exp(static_cast<double>(logits[ids[k]] - max)) / total);
      if (prob < options_.min_prob) break;
      p.tokens.push_back(ids[static_cast<size_t>(k)]);
      p.parents.push_back(node);
      p.probs.push_back(prob);
      p.drawn_from.push_back(-1);
    }
    return;
  }
  // Sampling: the request's own distribution over the draft's logits (the history along the path
  // for its repetition penalty), cut to the likeliest tokens, and children drawn from it.
  history_.assign(r.tokens.begin(), r.tokens.end());
  std::vector<int32_t> path;
  for (int a = node; a >= 0; a = p.parents[static_cast<size_t>(a)]) path.push_back(p.tokens[static_cast<size_t>(a)]);
  history_.insert(history_.end(), path.rbegin(), path.rend());
  r.sampler.distribution(logits, history_, dist_);
  DraftDist q;
  double kept = 0;
  for (size_t i = 0; i < dist_.ids.size() && i < static_cast<size_t>(options_.max_dist_tokens); ++i) {
    q.ids.push_back(dist_.ids[i]);
    kept += dist_.probs[i];
  }
  for (size_t i = 0; i < q.ids.size(); ++i) q.probs.push_back(static_cast<float>(dist_.probs[i] / kept));
  std::vector<float> left = q.probs;
  double mass = 1.0;
  const int32_t index = static_cast<int32_t>(p.dists.size());
  bool used = false;
  for (int k = 0; k < n && mass > 1e-9; ++k) {
    double u = std::uniform_real_distribution<double>(0.0, mass)(r.rng);
    size_t pick = 0;
    while (pick + 1 < left.size() && (left[pick] == 0 || u >= left[pick])) {
      u -= left[pick];
      ++pick;
    }
    if (left[pick] == 0) break;
    const float prob = node_prob * q.probs[pick];
    mass -= left[pick];
    left[pick] = 0;
    if (prob < options_.min_prob) break;  // later draws would exclude a token the tree does not show
    p.tokens.push_back(q.ids[pick]);
    p.parents.push_back(node);
    p.probs.push_back(prob);
    p.drawn_from.push_back(index);
    used = true;
  }
  if (used) p.dists.push_back(std::move(q));
}

Proposal DraftModelSpeculator::propose(uint64_t id, int max_nodes) {
  const Ask ask{id, max_nodes};
  return std::move(propose_all(std::span<const Ask>(&ask, 1)).front());
}

std::vector<Proposal> DraftModelSpeculator::propose_all(std::span<const Ask> asks) {
  std::vector<Proposal> out(asks.size());
  const size_t vocab = static_cast<size_t>(model_->config().vocab);
  const int context = model_->config().context_length;
  const int depth = static_cast<int>(options_.expansion.size());
  std::vector<Request*> reqs(asks.size(), nullptr);
  struct Node {
    size_t ask;
    int node;  // in the ask's proposal; -1: the root (the last known token)
    float prob;
  };
  // Pass 0: every request's tokens the draft has not computed, the last known one's logits.
  llm::Batch batch;
  std::vector<Node> frontier;
  for (size_t a = 0; a < asks.size(); ++a) {
    auto it = requests_.find(asks[a].id);
    if (it == requests_.end() || asks[a].max_nodes <= 0 || depth == 0) continue;
    Request& r = it->second;
    if (r.tokens.empty() || (context > 0 && static_cast<int>(r.tokens.size()) + depth >= context)) continue;
    if (r.seq < 0) r.seq = kv_.add_sequence();
    keep_accepted(r);
    if (r.computed >= static_cast<int>(r.tokens.size())) {  // nothing new: the last token again, for its logits
      r.computed = static_cast<int>(r.tokens.size()) - 1;
      kv_.truncate(r.seq, r.computed);
    }
    batch.add_chain(r.seq, r.computed, std::vector<int32_t>(r.tokens.begin() + r.computed, r.tokens.end()));
    reqs[a] = &r;
    frontier.push_back({a, -1, 1.0f});
  }
  if (batch.tokens.empty()) return out;
  Result<std::vector<float>> logits = model_->forward(batch, kv_);
  tokens_computed_ += static_cast<int64_t>(batch.tokens.size());
  if (!logits.ok()) {  // the draft's cache is full: these requests start over later
    for (Request* r : reqs) {
      if (r != nullptr) forget_cache(*r);
    }
    return out;
  }
  for (Request* r : reqs) {
    if (r == nullptr) continue;
    kv_.commit(r->seq, static_cast<int>(r->tokens.size()) - r->computed);
    r->computed = static_cast<int>(r->tokens.size());
  }

  // Then one pass per level: the nodes just added, computed for their children.
  for (int d = 0; d < depth && !frontier.empty(); ++d) {
    llm::Batch next;
    std::vector<Node> next_frontier;
    std::map<int, int> added;  // sequence -> nodes of this pass so far
    for (size_t f = 0; f < frontier.size(); ++f) {
      const Node& at = frontier[f];
      Proposal& p = out[at.ask];
      Request& r = *reqs[at.ask];
      const size_t first = p.tokens.size();
      const int room = asks[at.ask].max_nodes - static_cast<int>(first);
      expand(r, p, at.node, at.prob, std::span<const float>(logits->data() + f * vocab, vocab),
             options_.expansion[static_cast<size_t>(d)], room);
      r.tree_slots.resize(p.tokens.size(), -1);
      if (d + 1 == depth) continue;
      for (size_t j = first; j < p.tokens.size(); ++j) {
        const int32_t parent_slot = at.node < 0 ? -1 : r.tree_slots[static_cast<size_t>(at.node)];
        if (at.node >= 0 && parent_slot < 0) continue;
        r.tree_slots[j] = kv_.pending(r.seq) + added[r.seq]++;
        next.tokens.push_back({p.tokens[j], r.seq, static_cast<int32_t>(r.tokens.size()) + d, -1, true,
                               llm::SumLayout::kAuto, parent_slot});
        next_frontier.push_back({at.ask, static_cast<int>(j), p.probs[j]});
      }
    }
    if (next.tokens.empty()) break;
    logits = model_->forward(next, kv_);
    tokens_computed_ += static_cast<int64_t>(next.tokens.size());
    if (!logits.ok()) {  // the trees so far stand; their last level was not computed
      for (const Node& n : next_frontier) reqs[n.ask]->tree_slots[static_cast<size_t>(n.node)] = -1;
      break;
    }
    frontier = std::move(next_frontier);
  }
  for (size_t a = 0; a < asks.size(); ++a) {
    if (reqs[a] == nullptr) continue;
    Proposal& p = out[a];
    reqs[a]->tree_tokens = p.tokens;
    reqs[a]->tree_parents = p.parents;
    reqs[a]->tree_slots.resize(p.tokens.size(), -1);
    p.score = std::accumulate(p.probs.begin(), p.probs.end(), 0.0f);
  }
  return out;
}

}  // namespace weft::serving
