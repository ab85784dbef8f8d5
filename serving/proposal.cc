#include "serving/proposal.h"

#include <queue>

namespace weft::serving {

void Proposal::order_best_first() {
  const size_t n = tokens.size();
  // A node waits for its parent and, when sampled, for the sibling drawn before it from the same
  // distribution; `blockers` counts what it still waits for, `unblocks` what each node releases.
  std::vector<int> blockers(n, 0);
  std::vector<std::vector<int32_t>> unblocks(n);
  for (size_t j = 0; j < n; ++j) {
    if (parents[j] >= 0) {
      ++blockers[j];
      unblocks[static_cast<size_t>(parents[j])].push_back(static_cast<int32_t>(j));
    }
    if (!drawn_from.empty() && drawn_from[j] >= 0) {
      for (size_t k = j; k-- > 0;) {
        if (parents[k] == parents[j] && drawn_from[k] == drawn_from[j]) {
          ++blockers[j];
          unblocks[k].push_back(static_cast<int32_t>(j));
          break;
        }
      }
    }
  }
  auto later = [&](int32_t a, int32_t b) {
    return probs[static_cast<size_t>(a)] < probs[static_cast<size_t>(b)] ||
           (probs[static_cast<size_t>(a)] == probs[static_cast<size_t>(b)] && a > b);
  };
  std::priority_queue<int32_t, std::vector<int32_t>, decltype(later)> ready(later);
  for (size_t j = 0; j < n; ++j) {
    if (blockers[j] == 0) ready.push(static_cast<int32_t>(j));
  }
  std::vector<int32_t> order, position(n, -1);
  order.reserve(n);
  while (!ready.empty()) {
    const int32_t j = ready.top();
    ready.pop();
    position[static_cast<size_t>(j)] = static_cast<int32_t>(order.size());
    order.push_back(j);
    for (int32_t k : unblocks[static_cast<size_t>(j)]) {
      if (--blockers[static_cast<size_t>(k)] == 0) ready.push(k);
    }
  }
  Proposal out;
  out.score = score;
  out.match_length = match_length;
  out.dists = std::move(dists);
  for (int32_t j : order) {
    const size_t u = static_cast<size_t>(j);
    out.tokens.push_back(tokens[u]);
    out.parents.push_back(parents[u] < 0 ? -1 : position[static_cast<size_t>(parents[u])]);
    out.probs.push_back(probs[u]);
    if (!drawn_from.empty()) out.drawn_from.push_back(drawn_from[u]);
  }
  *this = std::move(out);
}

}  // namespace weft::serving
