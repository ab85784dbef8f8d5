#include "serving/speculative_sampling.h"

#include <algorithm>

namespace weft::serving {

int32_t SpeculativeSampler::next(llm::Sampler& sampler, std::span<const float> logits, std::span<const int32_t> history,
                                 const DraftTree& tree, int nodes, int node) {
  children_.clear();
  bool sampled = false;
  for (int j = node + 1; j < nodes; ++j) {
    if (tree.parents[static_cast<size_t>(j)] != node) continue;
    children_.push_back(j);
    sampled = sampled || (!tree.drawn_from.empty() && tree.drawn_from[static_cast<size_t>(j)] >= 0);
  }
  if (!sampled || sampler.params().temperature == 0.0f) return sampler.sample(logits, history);

  sampler.distribution(logits, history, p_);
  mass_.resize(logits.size());
  for (size_t i = 0; i < p_.ids.size(); ++i) mass_[static_cast<size_t>(p_.ids[i])] = p_.probs[i];
  double total = 1.0;
  int32_t chosen = -1;
  for (size_t c = 0; c < children_.size() && chosen < 0; ++c) {
    const int j = children_[c];
    const int32_t x = tree.tokens[static_cast<size_t>(j)];
    const int k = tree.drawn_from[static_cast<size_t>(j)];
    // q as the child was drawn: its token alone, or dists[k] without the earlier siblings drawn
    // from it (they were drawn without replacement).
    auto excluded = [&](int32_t token) {
      for (size_t e = 0; e < c; ++e) {
        const int s = children_[e];
        if (tree.drawn_from[static_cast<size_t>(s)] == k && tree.tokens[static_cast<size_t>(s)] == token) return true;
      }
      return false;
    };
    double qx = 1.0, q_total = 1.0;
    const DraftDist* q = k >= 0 ? &tree.dists[static_cast<size_t>(k)] : nullptr;
    if (q != nullptr) {
      qx = 0;
      q_total = 0;
      for (size_t i = 0; i < q->ids.size(); ++i) {
        if (excluded(q->ids[i])) continue;
        q_total += q->probs[i];
        if (q->ids[i] == x) qx += q->probs[i];
      }
      if (qx <= 0 || q_total <= 0) continue;  // not a draw from q: as if never proposed
      qx /= q_total;
    }
    const double px = mass_[static_cast<size_t>(x)] / total;
    if (px >= qx || (px > 0 && sampler.uniform() * qx < px)) {
      chosen = x;
      break;
    }
    // Rejected: p <- max(0, p - q), kept unnormalised (total is its sum).
    auto subtract = [&](int32_t token, double q_prob) {
      double& m = mass_[static_cast<size_t>(token)];
      const double removed = std::min(m, q_prob * total);
      m -= removed;
      return removed;
    };
    double removed = 0;
    if (q == nullptr) {
      removed = subtract(x, 1.0);
    } else {
      for (size_t i = 0; i < q->ids.size(); ++i) {
        if (!excluded(q->ids[i])) removed += subtract(q->ids[i], q->probs[i] / q_total);
      }
    }
    total -= removed;
    if (total <= 1e-12) chosen = x;  // only rounding leaves nothing: p was q
  }
  if (chosen < 0) {
    double r = sampler.uniform() * total;
    for (int32_t id : p_.ids) {
      const double m = mass_[static_cast<size_t>(id)];
      if (m <= 0) continue;
      chosen = id;
      if (r < m) break;
      r -= m;
    }
  }
  for (int32_t id : p_.ids) mass_[static_cast<size_t>(id)] = 0;
  return chosen >= 0 ? chosen : p_.ids.front();
}

}  // namespace weft::serving
