// What each serving iteration computes: continuous batching under a token budget, ordered by
// urgency, with admission by free KV blocks and preemption by recompute.
//
//   SchedulerOptions o{.max_num_seqs = 64, .max_num_batched_tokens = 512};
//   Plan p = plan_iteration(seqs, kv.free_blocks(), now_ns(), o);
//   // p.preempted: free their KV, they start again from token 0; p.items: compute these tokens
//
// Order: by SLO class (batch work that waited longer than `batch_aging_ns` counts as standard, so
// it is never starved), then decodes before prefills, then earliest deadline — the request's TTFT
// target from its arrival while its first token is pending, its TPOT target from its last token
// after that. Going down that order, each request gets the tokens it still needs (a decode: one; a
// prefill: a chunk, as much as the budget has left) while the iteration's budget and the KV blocks
// last. When blocks run out, the least urgent running request is preempted (its KV freed; it waits
// and later recomputes everything it knew). A waiting request of a more urgent class than some
// running one may preempt it for a sequence slot too. A decoding request that offers a speculation
// tree (SeqView::draft) gets its tree's first nodes verified beside its decode with what the budget
// and free blocks have left once every planned decode and prefill chunk has its share (in the same
// order): speculation never preempts anyone. Only the nodes a request needs to stay on its TPOT
// target (SeqView::draft_required) are planned with its decode, ahead of prefill chunks. The budget is
// `max_num_batched_tokens`, and, while requests decode and the step cost is known, no more than an iteration can take
// without pushing any of them behind its TPOT target: each affords its target, or its slack when it is ahead of it (its
// tokens so far x target - time since its first token). Prefill gets what that leaves, and at least
// `min_prefill_tokens` when a waiting request's TTFT target is near (less than twice the time its prompt needs in such
// chunks) or a preempted one recomputes: on a machine where every batch token costs nearly what a decode does, a
// tight request's tokens are not held up by prompts that can wait. Pure function: no clocks, no cache; tests drive it
// with made-up states.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "serving/step_cost.h"
#include "weft/options.h"

namespace weft::serving {

struct SloTargets {
  int64_t ttft_ns = 0;
  int64_t tpot_ns = 0;
};

// How an iteration orders requests: kSlo as described above; kPriority by class, then decodes
// before prefills, then arrival, with no latency-sized budget; kFcfs by arrival alone (decodes
// before prefills), vLLM's default.
enum class SchedulePolicy : uint8_t { kSlo = 0, kPriority = 1, kFcfs = 2 };

struct SchedulerOptions {
  SchedulePolicy policy = SchedulePolicy::kSlo;
  int max_num_seqs = 64;             // requests holding KV at once
  int max_num_batched_tokens = 512;  // tokens computed per iteration
  int block_tokens = 16;             // KV block size, as in the cache
  int64_t batch_aging_ns = 5'000'000'000;
  // With requests decoding and the step cost known, an iteration takes no more tokens than keep each
  // of them on its TPOT target, but room for this many prefill tokens when a first token is due.
  int min_prefill_tokens = 32;
  // Targets of requests that name none, per class (latency-critical, standard, batch).
  std::array<SloTargets, kNumSloClasses> default_targets = {{
      {250'000'000, 50'000'000},
      {2'000'000'000, 200'000'000},
      {30'000'000'000, 1'000'000'000},
  }};

  // A request's targets: its own where it named them (> 0), else its class's defaults.
  SloTargets targets(Slo slo, int64_t ttft_ns, int64_t tpot_ns) const {
    const SloTargets& d = default_targets[static_cast<size_t>(slo)];
    return {ttft_ns > 0 ? ttft_ns : d.ttft_ns, tpot_ns > 0 ? tpot_ns : d.tpot_ns};
  }
};

// The scheduler's view of one live request.
struct SeqView {
  uint64_t id = 0;
  Slo slo = Slo::kStandard;
  int64_t arrival_ns = 0;
  int64_t ttft_ns = 0;        // 0: the class default
  int64_t tpot_ns = 0;        // 0: the class default
  int64_t last_token_ns = 0;  // when its last token was produced; 0: none yet
  int64_t first_token_ns = 0;  // when its first token was produced; 0: none yet
  int generated = 0;           // tokens produced so far
  int known = 0;              // tokens known: prompt and generated
  int computed = 0;           // tokens whose KV is committed
  int held_blocks = 0;        // KV blocks it holds
  bool running = false;       // holds a KV sequence
  int draft = 0;              // speculated tokens offered for verification with its next decode
  int draft_required = 0;     // of which the first ones are planned with the decode (DraftTree::required)
};

struct Plan {
  struct Item {
    uint64_t id = 0;
    int begin = 0;  // compute known tokens [begin, begin + count)
    int count = 0;
    int draft = 0;  // then verify the first `draft` tokens of its speculation tree
  };
  std::vector<Item> items;          // in urgency order
  std::vector<uint64_t> preempted;  // lose their KV first; they recompute later
  Slo slo = Slo::kBatch;            // the most urgent class among the items
  int tokens = 0;
};

// `cost`: what iterations cost on this machine (null: unknown, the budget alone limits them).
Plan plan_iteration(const std::vector<SeqView>& seqs, int free_blocks, int64_t now_ns, const SchedulerOptions& o,
                    const StepCost* cost = nullptr);

}  // namespace weft::serving
