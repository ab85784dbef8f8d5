#include "serving/iteration_scheduler.h"

#include <algorithm>
#include <limits>
#include <tuple>

namespace weft::serving {
namespace {

struct Entry {
  const SeqView* s;
  int rank;          // effective class: 0 most urgent
  bool prefill;      // needs more than one token
  int64_t deadline;  // when its next token is due
  bool planned = false;
  bool preempted = false;
};

int blocks_for(int tokens, int block_tokens) { return (tokens + block_tokens - 1) / block_tokens; }

}  // namespace

Plan plan_iteration(const std::vector<SeqView>& seqs, int free_blocks, int64_t now_ns, const SchedulerOptions& o,
                    const StepCost* cost) {
  std::vector<Entry> order;
  order.reserve(seqs.size());
  int running = 0;
  const bool by_class = o.policy != SchedulePolicy::kFcfs;
  const bool by_deadline = o.policy == SchedulePolicy::kSlo;
  for (const SeqView& s : seqs) {
    if (s.known <= s.computed) continue;  // nothing to compute (should not happen for live requests)
    const SloTargets t = o.targets(s.slo, s.ttft_ns, s.tpot_ns);
    int rank = by_class ? static_cast<int>(s.slo) : 0;
    const int64_t since = s.last_token_ns != 0 ? s.last_token_ns : s.arrival_ns;
    const bool aged = s.slo == Slo::kBatch && now_ns - since > o.batch_aging_ns;
    if (aged) rank = static_cast<int>(Slo::kStandard);
    int64_t deadline = s.last_token_ns == 0 ? s.arrival_ns + t.ttft_ns : s.last_token_ns + t.tpot_ns;
    if (aged) deadline = std::min(deadline, since + o.batch_aging_ns);  // overdue among standard work
    if (!by_deadline) deadline = 0;                                     // arrival order within a class
    order.push_back({&s, rank, s.known - s.computed > 1, deadline});
    running += s.running ? 1 : 0;
  }
  std::stable_sort(order.begin(), order.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.rank, a.prefill, a.deadline, a.s->arrival_ns) <
           std::tie(b.rank, b.prefill, b.deadline, b.s->arrival_ns);
  });

  Plan plan;
  int budget = o.max_num_batched_tokens;
  if (by_deadline && cost != nullptr && cost->known()) {
    // What the step may last: no decoding request is pushed behind its TPOT target by it — each
    // affords its target, or its slack when it is ahead. Prefill fills what that leaves, and gets at
    // least `min_prefill_tokens` only when a request still waiting for its first token would
    // otherwise miss its TTFT target (or was preempted and recomputes).
    int decodes = 0;  // decoding requests, and the tree nodes planned with them
    int64_t afford = std::numeric_limits<int64_t>::max();
    for (const Entry& e : order) {
      if (!e.s->running || e.prefill) continue;
      decodes += 1 + std::min(e.s->draft_required, e.s->draft);
      const int64_t target = o.targets(e.s->slo, e.s->ttft_ns, e.s->tpot_ns).tpot_ns;
      const int64_t slack = e.s->first_token_ns > 0 ? e.s->generated * target - (now_ns - e.s->first_token_ns) : target;
      afford = std::min(afford, std::max(target, slack));
    }
    if (decodes > 0) {
      const double chunk_ns = cost->fixed_ns() + cost->per_token_ns() * (decodes + o.min_prefill_tokens);
      bool urgent = false;
      for (const Entry& e : order) {
        if (!e.prefill) continue;
        if (e.s->generated > 0) {  // recomputing after preemption: it is stalled
          urgent = true;
          break;
        }
        const int64_t ttft = o.targets(e.s->slo, e.s->ttft_ns, e.s->tpot_ns).ttft_ns;
        const int chunks = (e.s->known - e.s->computed + o.min_prefill_tokens - 1) / o.min_prefill_tokens;
        if (static_cast<double>(e.s->arrival_ns + ttft - now_ns) < 2.0 * chunks * chunk_ns) {
          urgent = true;
          break;
        }
      }
      const int fit = cost->tokens_within(afford);
      if (fit >= 0) budget = std::min(budget, std::max(fit, decodes + (urgent ? o.min_prefill_tokens : 0)));
    }
  }
  // Preempts the least urgent running request after position `i` (of rank > `min_rank` when
  // given); false when there is none.
  auto preempt_after = [&](size_t i, int min_rank) {
    for (size_t j = order.size(); j-- > i + 1;) {
      Entry& v = order[j];
      if (!v.s->running || v.preempted || v.rank <= min_rank) continue;
      v.preempted = true;
      free_blocks += v.s->held_blocks;
      --running;
      plan.preempted.push_back(v.s->id);
      return true;
    }
    return false;
  };

  struct Speculating {
    size_t item;  // in plan.items
    const SeqView* s;
    int held_after;  // blocks it holds with its decode token and required nodes
  };
  std::vector<Speculating> speculating;
  for (size_t i = 0; i < order.size() && budget > 0; ++i) {
    Entry& e = order[i];
    if (e.preempted) continue;
    const SeqView& s = *e.s;
    if (!s.running && running >= o.max_num_seqs && !preempt_after(i, e.rank)) continue;
    int count = std::min(s.known - s.computed, budget);
    int held = s.running ? s.held_blocks : 0;
    auto need = [&] { return std::max(0, blocks_for(s.computed + count, o.block_tokens) - held); };
    // A running request may push out any later one; a waiting one only a less urgent class.
    while (need() > free_blocks && preempt_after(i, s.running ? -1 : e.rank)) {
    }
    if (need() > free_blocks) {
      count = std::min(count, (free_blocks + held) * o.block_tokens - s.computed);
      if (count <= 0) {
        if (s.running) {  // it cannot even decode: it makes room for the others
          e.preempted = true;
          free_blocks += s.held_blocks;
          --running;
          plan.preempted.push_back(s.id);
        }
        continue;
      }
    }
    free_blocks -= need();
    budget -= count;
    if (!s.running) ++running;
    e.planned = true;
    int required = 0;
    if (s.draft > 0 && s.running && s.known - s.computed == 1) {
      const int held_after = std::max(held, blocks_for(s.computed + count, o.block_tokens));
      const int end = s.computed + count;
      // The nodes that keep it on target go with its decode, ahead of prefill chunks.
      required =
          std::max(0, std::min({s.draft_required, s.draft, budget, (held_after + free_blocks) * o.block_tokens - end}));
      free_blocks -= std::max(0, blocks_for(end + required, o.block_tokens) - held_after);
      budget -= required;
      speculating.push_back({plan.items.size(), &s, std::max(held_after, blocks_for(end + required, o.block_tokens))});
    }
    plan.items.push_back({s.id, s.computed, count, required});
    plan.tokens += count + required;
    plan.slo = std::min(plan.slo, s.slo);
  }
  // Trees take what decodes and prefill chunks left of the budget and the free KV blocks, in the
  // same order: speculation never delays anyone's first token.
  for (const Speculating& t : speculating) {
    Plan::Item& item = plan.items[t.item];
    const int end = t.s->computed + item.count + item.draft;
    const int draft =
        std::max(0, std::min({t.s->draft - item.draft, budget, (t.held_after + free_blocks) * o.block_tokens - end}));
    if (draft == 0) continue;
    free_blocks -= std::max(0, blocks_for(end + draft, o.block_tokens) - t.held_after);
    budget -= draft;
    item.draft += draft;
    plan.tokens += draft;
  }
  return plan;
}

}  // namespace weft::serving
