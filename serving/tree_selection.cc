#include "serving/tree_selection.h"

#include <algorithm>
#include <numeric>
#include <queue>

namespace weft::serving {

TreeSelection select_tree_nodes(std::span<const SloCandidate> c, const SelectionInput& in) {
  const size_t n = c.size();
  TreeSelection s;
  s.taken.assign(n, 0);
  s.required.assign(n, 0);
  s.expected.assign(n, 0.0);
  s.need.assign(n, 0.0);
  int budget = in.budget;
  const bool cold = in.node_ns <= 0;
  double step = in.step_ns, tokens = in.tokens;
  auto room = [&](size_t i) {
    const int limit = std::min(c[i].cap, static_cast<int>(c[i].probs.size()));
    return s.taken[i] < limit;
  };
  auto take = [&](size_t i) {
    const double p = c[i].probs[static_cast<size_t>(s.taken[i])];
    ++s.taken[i];
    s.expected[i] += p;
    tokens += p;
    step += cold ? 0 : in.node_ns;
    --budget;
  };

  if (in.slo) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c[a].slack_ns() < c[b].slack_ns(); });
    // When several requests need nodes, none takes more than half the budget for its target.
    int needy = 0;
    for (const SloCandidate& x : c) needy += x.tpot_ns > 0 && x.need(step) > 0 && !x.probs.empty() ? 1 : 0;
    const int share = needy > 1 ? std::max(1, (in.budget + 1) / 2) : in.budget;
    for (size_t i : order) {
      if (c[i].tpot_ns <= 0) continue;
      while (budget > 0 && room(i) && s.taken[i] < share && s.expected[i] < c[i].need(step)) {
        const double p = c[i].probs[static_cast<size_t>(s.taken[i])];
        const bool worth = cold ? p >= in.cold_min_prob : p * c[i].tpot_ns > in.node_ns;
        if (!worth) break;  // nodes come best first: no later one is worth more
        take(i);
      }
      s.required[i] = s.taken[i];
    }
    for (size_t i = 0; i < n; ++i) s.need[i] = std::max(0.0, c[i].need(step));
  }

  // Phase 2: the most probable next node across requests while it pays.
  auto worse = [&](size_t a, size_t b) {
    return c[a].probs[static_cast<size_t>(s.taken[a])] < c[b].probs[static_cast<size_t>(s.taken[b])];
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(worse)> next(worse);
  for (size_t i = 0; i < n; ++i) {
    if (room(i)) next.push(i);
  }
  while (budget > 0 && !next.empty()) {
    const size_t i = next.top();
    next.pop();
    const double p = c[i].probs[static_cast<size_t>(s.taken[i])];
    const bool pays = in.every || cold ? p >= in.cold_min_prob : p * step > in.node_ns * tokens;
    if (!pays) continue;  // this request's tree stops here; others may still pay
    take(i);
    if (room(i)) next.push(i);
  }
  s.step_ns = step;
  return s;
}

}  // namespace weft::serving
