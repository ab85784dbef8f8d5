// plan_iteration on made-up request states: budgets, order, admission, preemption, aging.
#include "serving/iteration_scheduler.h"

#include <gtest/gtest.h>

namespace weft::serving {
namespace {

constexpr int64_t kMs = 1'000'000;

SeqView decoding(uint64_t id, Slo slo, int known, int64_t last_ns = 100 * kMs) {
  return {.id = id,
          .slo = slo,
          .arrival_ns = 0,
          .last_token_ns = last_ns,
          .known = known,
          .computed = known - 1,
          .held_blocks = (known + 15) / 16,
          .running = true};
}
SeqView waiting(uint64_t id, Slo slo, int prompt, int64_t arrival_ns = 200 * kMs) {
  return {.id = id, .slo = slo, .arrival_ns = arrival_ns, .known = prompt};
}

TEST(IterationScheduler, DecodesFirstThenChunkedPrefillUnderTheBudget) {
  SchedulerOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 64};
  std::vector<SeqView> s = {waiting(1, Slo::kStandard, 100), decoding(2, Slo::kStandard, 20),
                            decoding(3, Slo::kStandard, 40)};
  Plan p = plan_iteration(s, 100, 300 * kMs, o);
  ASSERT_EQ(p.items.size(), 3u);
  EXPECT_EQ(p.items[0].count + p.items[1].count,
            2);  // both decodes, one token each
  EXPECT_EQ(p.items[2].id, 1u);
  EXPECT_EQ(p.items[2].begin, 0);
  EXPECT_EQ(p.items[2].count,
            62);  // the rest of the budget: a chunk of the prompt
  EXPECT_EQ(p.tokens, 64);
  EXPECT_TRUE(p.preempted.empty());
}

TEST(IterationScheduler, LatencyCriticalArrivalPreemptsBatchWorkForASlot) {
  SchedulerOptions o{.max_num_seqs = 32, .max_num_batched_tokens = 512};
  std::vector<SeqView> s;
  for (uint64_t i = 1; i <= 32; ++i) s.push_back(decoding(i, Slo::kBatch, 50, 290 * kMs));
  s.push_back(waiting(99, Slo::kLatencyCritical, 30, 295 * kMs));
  Plan p = plan_iteration(s, 1000, 300 * kMs, o);
  ASSERT_FALSE(p.items.empty());
  EXPECT_EQ(p.items[0].id,
            99u);  // most urgent first, whole prompt this iteration
  EXPECT_EQ(p.items[0].count, 30);
  EXPECT_EQ(p.preempted.size(), 1u);  // one batch request gave up its slot
  EXPECT_EQ(p.slo, Slo::kLatencyCritical);
  EXPECT_EQ(static_cast<int>(p.items.size()), 32);
}

TEST(IterationScheduler, KvExhaustionPreemptsTheLeastUrgent) {
  SchedulerOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 64};
  // Each decode at a block boundary needs a new block; only one is free.
  std::vector<SeqView> s = {decoding(1, Slo::kStandard, 33, 10 * kMs), decoding(2, Slo::kBatch, 33, 20 * kMs),
                            decoding(3, Slo::kStandard, 33, 30 * kMs)};
  for (auto& v : s) v.held_blocks = 2;  // 32 tokens committed: token 33 needs a third block
  Plan p = plan_iteration(s, 1, 50 * kMs, o);
  ASSERT_EQ(p.preempted.size(), 1u);
  EXPECT_EQ(p.preempted[0], 2u);  // the batch request
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[0].id, 1u);
  EXPECT_EQ(p.items[1].id, 3u);
}

TEST(IterationScheduler, WaitingRequestsAreAdmittedByFreeBlocks) {
  SchedulerOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 512};
  std::vector<SeqView> s = {waiting(1, Slo::kStandard, 40, 1), waiting(2, Slo::kStandard, 40, 2)};
  Plan p = plan_iteration(s, 4, 10,
                          o);  // 4 blocks: one prompt of 40 tokens fits, the other only in part
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[0].count, 40);
  EXPECT_EQ(p.items[1].count,
            16);                     // a chunk that fits the one block left after the first
  EXPECT_TRUE(p.preempted.empty());  // an equal class never pushes out a running request
}

TEST(IterationScheduler, BatchWorkAgesIntoStandard) {
  SchedulerOptions o{.max_num_seqs = 1, .max_num_batched_tokens = 512, .batch_aging_ns = 1000 * kMs};
  std::vector<SeqView> s = {waiting(1, Slo::kBatch, 10, 0), waiting(2, Slo::kStandard, 10, 1500 * kMs)};
  Plan p = plan_iteration(s, 100, 2000 * kMs,
                          o);  // the batch request waited 2 s > 1 s
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].id, 1u);
  Plan fresh = plan_iteration(s, 100, 500 * kMs, o);
  ASSERT_EQ(fresh.items.size(), 1u);
  EXPECT_EQ(fresh.items[0].id, 2u);
}

TEST(IterationScheduler, DraftTreesUseWhatPrefillLeavesAndNeverPreempt) {
  SchedulerOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 12};
  std::vector<SeqView> s = {decoding(1, Slo::kStandard, 20, 10 * kMs), decoding(2, Slo::kStandard, 20, 20 * kMs),
                            waiting(3, Slo::kBatch, 40)};
  s[0].draft = 6;
  s[1].draft = 6;
  // A waiting prompt comes first: its chunk takes what the decodes leave, the trees nothing.
  Plan p = plan_iteration(s, 100, 50 * kMs, o);
  ASSERT_EQ(p.items.size(), 3u);
  EXPECT_EQ(p.items[0].draft, 0);
  EXPECT_EQ(p.items[1].draft, 0);
  EXPECT_EQ(p.items[2].count, 10);
  // With nothing to prefill, the trees take the rest, in order.
  const std::vector<SeqView> decodes(s.begin(), s.begin() + 2);
  Plan q = plan_iteration(decodes, 100, 50 * kMs, o);
  ASSERT_EQ(q.items.size(), 2u);
  EXPECT_EQ(q.items[0].draft, 6);
  EXPECT_EQ(q.items[1].draft, 4);  // cut to the budget left: 12 - 1 - 1 - 6
  EXPECT_EQ(q.tokens, 12);
  // Blocks: none is free, so each tree is cut to the slots its request already holds (2 and 3
  // blocks), and nobody is preempted for a tree.
  s[0].draft = 20;
  s[1].draft = 20;
  s[1].known = 33;
  s[1].computed = 32;
  s[1].held_blocks = 3;
  o.max_num_batched_tokens = 64;
  Plan tight = plan_iteration(s, 0, 50 * kMs, o);
  EXPECT_TRUE(tight.preempted.empty());
  ASSERT_GE(tight.items.size(), 2u);
  EXPECT_EQ(tight.items[0].draft,
            32 - 20);  // slots 20..31 after the decode token at 19
  EXPECT_EQ(tight.items[1].draft, 48 - 33);
  // A prefilling request offers no verifiable tree.
  s[2].draft = 5;
  Plan prefill = plan_iteration(s, 100, 50 * kMs, o);
  for (const Plan::Item& item : prefill.items) {
    if (item.id == 3u) EXPECT_EQ(item.draft, 0);
  }
}

TEST(IterationScheduler, NodesARequestNeedsForItsTargetArePlannedAheadOfPrefill) {
  SchedulerOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 12};
  std::vector<SeqView> s = {decoding(1, Slo::kStandard, 20, 10 * kMs), decoding(2, Slo::kStandard, 20, 20 * kMs),
                            waiting(3, Slo::kStandard, 40)};
  s[0].draft = 6;
  s[0].draft_required = 4;
  s[1].draft = 6;
  Plan p = plan_iteration(s, 100, 50 * kMs, o);
  ASSERT_EQ(p.items.size(), 3u);
  EXPECT_EQ(p.items[0].draft, 4);  // its required nodes, before the prompt's chunk
  EXPECT_EQ(p.items[1].draft, 0);
  EXPECT_EQ(p.items[2].count, 12 - 2 - 4);
  EXPECT_EQ(p.tokens, 12);
  // With nothing to prefill, the rest of its tree joins them.
  const std::vector<SeqView> decodes(s.begin(), s.begin() + 2);
  Plan q = plan_iteration(decodes, 100, 50 * kMs, o);
  EXPECT_EQ(q.items[0].draft, 6);
  EXPECT_EQ(q.items[1].draft, 4);
  // Required nodes count like decodes against the TPOT-sized budget: 2 decodes and 4 nodes even
  // though a step of 1 ms fits none, and 32 prefill tokens once the prompt's first token is due.
  StepCost cost;
  for (int i = 0; i < 16; ++i) cost.observe(i % 2 == 0 ? 4 : 12, (5 + 5 * (i % 2 == 0 ? 4 : 12)) * kMs);
  s[0].tpot_ns = 1 * kMs;
  o.max_num_batched_tokens = 512;
  Plan r = plan_iteration(s, 100, 50 * kMs, o, &cost);
  EXPECT_EQ(r.items[0].draft, 4);
  EXPECT_EQ(r.tokens, 2 + 4);
  s[2].ttft_ns = 500 * kMs;
  r = plan_iteration(s, 100, 50 * kMs, o, &cost);
  EXPECT_EQ(r.items[0].draft, 4);
  EXPECT_EQ(r.tokens, 2 + 4 + o.min_prefill_tokens);
}

TEST(StepCost, FitsFixedAndPerTokenCosts) {
  StepCost c;
  EXPECT_EQ(c.tokens_within(1'000'000'000), -1);  // unknown at first
  for (int i = 0; i < 200; ++i) {
    const int tokens = 1 + (i * 37) % 512;
    c.observe(tokens, 10'000'000 + 2'000'000LL * tokens);  // 10 ms + 2 ms a token
  }
  EXPECT_NEAR(c.per_token_ns(), 2e6, 1e3);
  EXPECT_NEAR(c.fixed_ns(), 1e7, 1e5);
  EXPECT_EQ(c.tokens_within(200 * kMs), 95);
  EXPECT_EQ(c.tokens_within(5 * kMs), 0);
}

TEST(IterationScheduler, WhileRequestsDecodeAnIterationFitsTheTightestTpotTarget) {
  StepCost cost;
  for (int i = 0; i < 50; ++i) cost.observe(1 + i * 10, 10'000'000 + 2'000'000LL * (1 + i * 10));
  SchedulerOptions o{.max_num_seqs = 64, .max_num_batched_tokens = 512};
  std::vector<SeqView> s;
  for (uint64_t i = 1; i <= 16; ++i) s.push_back(decoding(i, Slo::kStandard, 40, 290 * kMs));
  s.push_back(waiting(99, Slo::kStandard, 400));
  Plan p = plan_iteration(s, 1000, 300 * kMs, o, &cost);
  EXPECT_EQ(p.tokens, 95);                   // (200 ms standard TPOT - 10 ms) / 2 ms
  EXPECT_EQ(p.items.back().count, 95 - 16);  // the prompt's chunk
  // A latency-critical decode (50 ms) leaves only the guaranteed prefill room.
  s[0].slo = Slo::kLatencyCritical;
  p = plan_iteration(s, 1000, 300 * kMs, o, &cost);
  EXPECT_EQ(p.tokens, 16 + o.min_prefill_tokens);
  // No decodes: the whole budget goes to prefill; unknown cost: the budget alone.
  EXPECT_EQ(plan_iteration({waiting(99, Slo::kStandard, 600)}, 1000, 0, o, &cost).tokens, 512);
  EXPECT_EQ(plan_iteration(s, 1000, 300 * kMs, o).tokens, 16 + 400);
}

TEST(IterationScheduler, PrefillWaitsForTightDecodesUntilItsFirstTokenIsDue) {
  StepCost cost;
  for (int i = 0; i < 50; ++i) cost.observe(1 + i * 10, 10'000'000 + 2'000'000LL * (1 + i * 10));
  SchedulerOptions o{.max_num_seqs = 64, .max_num_batched_tokens = 512};
  std::vector<SeqView> s;
  for (uint64_t i = 1; i <= 16; ++i) s.push_back(decoding(i, Slo::kStandard, 40, 290 * kMs));
  s[0].slo = Slo::kLatencyCritical;  // 50 ms: (50 - 10) / 2 = 20 tokens
  // A batch prompt (30 s to its first token) is far from due: it takes only what the 50 ms leave.
  s.push_back(waiting(99, Slo::kBatch, 400));
  Plan p = plan_iteration(s, 1000, 300 * kMs, o, &cost);
  EXPECT_EQ(p.tokens, 20);
  // Near its TTFT target (13 chunks of 32 at 106 ms each, twice, is more than what is left), it gets
  // the guaranteed chunk.
  p = plan_iteration(s, 1000, 28 * 1000 * kMs, o, &cost);
  EXPECT_EQ(p.tokens, 16 + o.min_prefill_tokens);
  // A tight request well ahead of its target affords a longer step: 100 tokens since 100 ms at 50 ms
  // each leave it 4.8 s of slack, so the standard requests' 200 ms bound the step.
  s[0].first_token_ns = 100 * kMs;
  s[0].generated = 100;
  p = plan_iteration(s, 1000, 300 * kMs, o, &cost);
  EXPECT_EQ(p.tokens, 95);
}

TEST(IterationScheduler, PriorityAndFcfsPoliciesOrderByClassOrArrivalAlone) {
  SchedulerOptions o{.max_num_seqs = 8, .max_num_batched_tokens = 64};
  // Arrivals: a batch prompt first, then a latency-critical one; the latency-critical one's deadline
  // is earlier.
  std::vector<SeqView> s = {waiting(1, Slo::kBatch, 50, 100 * kMs), waiting(2, Slo::kLatencyCritical, 50, 200 * kMs)};
  o.policy = SchedulePolicy::kPriority;
  Plan p = plan_iteration(s, 100, 300 * kMs, o);
  EXPECT_EQ(p.items[0].id, 2u);
  o.policy = SchedulePolicy::kFcfs;
  p = plan_iteration(s, 100, 300 * kMs, o);
  EXPECT_EQ(p.items[0].id, 1u);
  EXPECT_EQ(p.items[0].count, 50);
  // Neither sizes steps by latency targets.
  StepCost cost;
  for (int i = 0; i < 50; ++i) cost.observe(1 + i * 10, 10'000'000 + 2'000'000LL * (1 + i * 10));
  std::vector<SeqView> d = {decoding(3, Slo::kLatencyCritical, 40, 290 * kMs), waiting(4, Slo::kStandard, 400)};
  o.max_num_batched_tokens = 512;
  EXPECT_EQ(plan_iteration(d, 1000, 300 * kMs, o, &cost).tokens, 401);
  o.policy = SchedulePolicy::kPriority;
  EXPECT_EQ(plan_iteration(d, 1000, 300 * kMs, o, &cost).tokens, 401);
  o.policy = SchedulePolicy::kSlo;
  EXPECT_LT(plan_iteration(d, 1000, 300 * kMs, o, &cost).tokens, 401);
}

}  // namespace
}  // namespace weft::serving
