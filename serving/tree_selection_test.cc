// select_tree_nodes against made-up trees and targets: the SLO phase gives requests behind their
// target the nodes they need (most behind first, within the budget), the throughput phase takes only
// nodes that pay, and caps and budgets bound everything.
#include "serving/tree_selection.h"

#include <gtest/gtest.h>

#include "serving/proposal.h"

namespace weft::serving {
namespace {

constexpr double kMs = 1e6;

SloCandidate candidate(uint64_t id, std::vector<double> probs, double tpot_ms, int generated, double elapsed_ms,
                       int cap = 64) {
  return {id, std::move(probs), cap, tpot_ms * kMs, generated, elapsed_ms * kMs};
}

// Four decodes: a 40 ms step, 8 ms per extra node.
SelectionInput costs(int budget) { return {.budget = budget, .node_ns = 8 * kMs, .step_ns = 40 * kMs, .tokens = 4}; }

TEST(TreeSelection, ThroughputPhaseTakesOnlyNodesThatRaiseTokensPerSecond) {
  // A node pays when p x 40 ms > 8 ms x 4 tokens: p > 0.8 (the bar rises as nodes are taken).
  std::vector<SloCandidate> c = {candidate(1, {0.95, 0.9, 0.5}, 0, 10, 0), candidate(2, {0.6, 0.5}, 0, 10, 0)};
  SelectionInput in = costs(100);
  in.slo = false;
  const TreeSelection s = select_tree_nodes(c, in);
  EXPECT_EQ(s.taken, (std::vector<int>{2, 0}));
  EXPECT_EQ(s.required, (std::vector<int>{0, 0}));
  EXPECT_NEAR(s.expected[0], 1.85, 1e-9);
  EXPECT_NEAR(s.step_ns, 56 * kMs, 1);
}

TEST(TreeSelection, ARequestBehindItsTargetGetsTheNodesItNeedsEvenWhenThroughputWouldNot) {
  // Request 1: 20 ms target, 10 tokens in 250 ms: behind by 50 ms. Request 2: 1 s target, far ahead.
  std::vector<SloCandidate> c = {candidate(1, {0.7, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6}, 20, 10, 250),
                                 candidate(2, {0.7, 0.7, 0.6}, 1000, 10, 250)};
  const TreeSelection s = select_tree_nodes(c, costs(100));
  // Its need after a step of 40 + 8k ms is (250 + 40 + 8k) / 20 - 10 = 4.5 + 0.4k; each node brings
  // 0.6-0.7 and a node is worth 0.6 x 20 = 12 ms > 8 ms, so it catches up after k nodes with
  // sum(p) >= 4.5 + 0.4k: k = 8 needs 7.7, has 5.0 — every node it has is taken.
  EXPECT_EQ(s.taken[0], 8);
  EXPECT_EQ(s.required[0], 8);
  // Request 2 is on target: nothing for its SLO. For throughput, once the step is 104 ms long for
  // 9 expected tokens, a 0.7 node pays (0.7 x 104 > 8 x 9), twice; 0.6 then does not.
  EXPECT_EQ(s.required[1], 0);
  EXPECT_EQ(s.taken[1], 2);
}

TEST(TreeSelection, RequestsStopTakingOnceTheyAreBackOnTarget) {
  // 10 tokens in 230 ms on a 25 ms target: 20 ms ahead now; a 40 ms step makes it 20 ms behind:
  // need = (230 + 40 + 8k) / 25 - 10 = 0.8 + 0.32k. One node of 0.95: 0.95 < 1.12; two: 1.9 >= 1.44.
  std::vector<SloCandidate> c = {candidate(1, {0.95, 0.95, 0.95, 0.95}, 25, 10, 230)};
  SelectionInput in = costs(100);
  in.node_ns = 8 * kMs;
  const TreeSelection s = select_tree_nodes(c, in);
  EXPECT_EQ(s.required[0], 2);
  EXPECT_NEAR(s.need[0], (230 + 40 + 16) / 25.0 - 10, 1e-9);
}

TEST(TreeSelection, NodesNotWorthTheirCostToTheRequestAreNotTakenForIt) {
  // Behind, but p x 20 ms = 4 ms < 8 ms per node: verifying slows it more than it gains.
  std::vector<SloCandidate> c = {candidate(1, {0.2, 0.2, 0.2}, 20, 10, 300)};
  const TreeSelection s = select_tree_nodes(c, costs(100));
  EXPECT_EQ(s.taken[0], 0);
}

TEST(TreeSelection, TheMostBehindRequestIsServedFirstWithinTheBudget) {
  std::vector<SloCandidate> c = {candidate(1, std::vector<double>(8, 0.9), 20, 10, 220),   // 20 ms behind
                                 candidate(2, std::vector<double>(8, 0.9), 20, 10, 300)};  // 100 ms behind
  const TreeSelection s = select_tree_nodes(c, costs(3));
  EXPECT_EQ(s.taken[1], 2);  // half the budget, rounded up: nobody takes the whole step
  EXPECT_EQ(s.taken[0], 1);
  // Alone in need, a request may take the whole budget.
  const TreeSelection alone = select_tree_nodes(std::span<const SloCandidate>(c).subspan(1), costs(3));
  EXPECT_EQ(alone.taken[0], 3);
}

TEST(TreeSelection, CapsBoundEveryRequestAndEveryTakesAllWithinTheBudget) {
  std::vector<SloCandidate> c = {candidate(1, std::vector<double>(10, 0.9), 20, 10, 400, 2),
                                 candidate(2, {0.55, 0.55, 0.3}, 0, 10, 0, 64)};
  SelectionInput in = costs(100);
  in.slo = false;
  in.every = true;
  const TreeSelection s = select_tree_nodes(c, in);
  EXPECT_EQ(s.taken[0], 2);
  EXPECT_EQ(s.taken[1], 2);  // every: at least cold_min_prob (0.5) likely
}

TEST(TreeSelection, BeforeCostsAreKnownOnlyLikelyNodesAreTaken) {
  std::vector<SloCandidate> c = {candidate(1, {0.9, 0.6, 0.4}, 20, 10, 400)};
  SelectionInput in = costs(100);
  in.node_ns = 0;
  const TreeSelection s = select_tree_nodes(c, in);
  EXPECT_EQ(s.taken[0], 2);
}

TEST(TreeSelection, AZeroBudgetTakesNothing) {
  std::vector<SloCandidate> c = {candidate(1, std::vector<double>(4, 0.99), 20, 10, 400)};
  const TreeSelection s = select_tree_nodes(c, costs(0));
  EXPECT_EQ(s.taken[0], 0);
  EXPECT_EQ(s.required[0], 0);
}

TEST(ProposalOrder, BestFirstKeepsParentsBeforeChildrenAndSampledSiblingsInTheOrderDrawn) {
  // Level order as a draft expands it: 10 and 11 follow the last token, 12 follows 10; 13 and 14
  // follow 11, drawn from one distribution in that order (14 is likelier, but was drawn second).
  Proposal p;
  p.tokens = {10, 11, 12, 13, 14};
  p.parents = {-1, -1, 0, 1, 1};
  p.probs = {0.5f, 0.9f, 0.45f, 0.2f, 0.6f};
  p.drawn_from = {-1, -1, -1, 0, 0};
  p.dists = {DraftDist{{13, 14}, {0.3f, 0.7f}}};
  p.order_best_first();
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{11, 10, 12, 13, 14}));
  EXPECT_EQ(p.parents, (std::vector<int32_t>{-1, -1, 1, 0, 0}));
  EXPECT_EQ(p.probs, (std::vector<float>{0.9f, 0.5f, 0.45f, 0.2f, 0.6f}));
  EXPECT_EQ(p.drawn_from, (std::vector<int32_t>{-1, -1, -1, 0, 0}));
  ASSERT_EQ(p.dists.size(), 1u);
}

}  // namespace
}  // namespace weft::serving
