#include "llm/kv_cache.h"

#include <gtest/gtest.h>

#include <vector>

namespace weft::llm {
namespace {

KvCache small() { return KvCache({/*n_layers=*/2, /*kv_dim=*/3, /*block_tokens=*/4, /*max_blocks=*/5}); }

void fill(KvCache& kv, int seq, int slot, float v) {
  for (int l = 0; l < 2; ++l) {
    for (int d = 0; d < 3; ++d) {
      kv.key(l, seq, slot)[d] = v + l;
      kv.value(l, seq, slot)[d] = -v - l;
    }
  }
}

TEST(KvCache, AllocatesBlocksOnDemandAndFreesThem) {
  KvCache kv = small();
  int a = kv.add_sequence();
  EXPECT_EQ(kv.capacity(a), 0);
  ASSERT_TRUE(kv.reserve(a, 5).is_ok());
  EXPECT_EQ(kv.capacity(a), 8);
  EXPECT_EQ(kv.free_blocks(), 3);
  kv.commit(a, 5);
  int b = kv.add_sequence();
  ASSERT_TRUE(kv.reserve(b, 12).is_ok());
  EXPECT_EQ(kv.free_blocks(), 0);
  Status full = kv.reserve(a, 4);  // would need a third block
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(kv.capacity(a), 8);  // nothing allocated on failure
  kv.remove_sequence(b);
  EXPECT_EQ(kv.free_blocks(), 3);
  kv.truncate(a, 2);
  EXPECT_EQ(kv.committed(a), 2);
  EXPECT_EQ(kv.free_blocks(), 4);
}

TEST(KvCache, KeepBranchMovesTheChosenSlotsInOrder) {
  KvCache kv = small();
  int s = kv.add_sequence();
  ASSERT_TRUE(kv.reserve(s, 2).is_ok());
  fill(kv, s, 0, 10);
  fill(kv, s, 1, 11);
  kv.commit(s, 2);
  ASSERT_TRUE(kv.reserve(s, 6).is_ok());
  // The tree 0 -> {1 -> {2, 4 -> 5}, 3}.
  for (int32_t parent : {-1, 0, 1, 0, 1, 4}) kv.add_pending(s, parent);
  for (int k = 0; k < 6; ++k) fill(kv, s, 2 + k, 100.0f + k);
  EXPECT_EQ(kv.keep_branch(s, std::vector<int>{0, 3, 5}).code(), StatusCode::kInvalidArgument);  // not a path
  EXPECT_EQ(kv.keep_branch(s, std::vector<int>{1, 4, 5}).code(), StatusCode::kInvalidArgument);  // not from the root
  ASSERT_TRUE(kv.keep_branch(s, std::vector<int>{0, 1, 4, 5}).is_ok());
  EXPECT_EQ(kv.committed(s), 6);
  EXPECT_EQ(kv.pending(s), 0);
  EXPECT_EQ(kv.key(0, s, 1)[0], 11);
  EXPECT_EQ(kv.key(0, s, 2)[0], 100);
  EXPECT_EQ(kv.key(0, s, 3)[0], 101);
  EXPECT_EQ(kv.key(1, s, 4)[2], 105);
  EXPECT_EQ(kv.value(1, s, 5)[1], -106);
  EXPECT_EQ(kv.capacity(s), 8);  // 6 tokens keep two blocks

  ASSERT_TRUE(kv.reserve(s, 2).is_ok());
  kv.add_pending(s, -1);
  kv.add_pending(s, 0);
  EXPECT_EQ(kv.keep_branch(s, std::vector<int>{1, 0}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.keep_branch(s, std::vector<int>{2}).code(), StatusCode::kInvalidArgument);
}

TEST(KvCache, PendingTreesGrowOverSeveralPassesAndCommitInChains) {
  KvCache kv = small();
  int s = kv.add_sequence();
  ASSERT_TRUE(kv.reserve(s, 3).is_ok());
  for (int32_t parent : {-1, 0, 1}) kv.add_pending(s, parent);  // a chain
  ASSERT_TRUE(kv.reserve(s, 2).is_ok());
  kv.add_pending(s, 2);  // a later pass grows the tree below slot 2 ...
  kv.add_pending(s, 2);
  EXPECT_EQ(kv.capacity(s), 8);  // room for 5 slots
  kv.commit(s, 3);               // ... the chain is committed, its children now follow it
  EXPECT_EQ(kv.committed(s), 3);
  ASSERT_EQ(kv.pending(s), 2);
  EXPECT_EQ(kv.pending_parent(s, 0), -1);
  EXPECT_EQ(kv.pending_parent(s, 1), -1);
  kv.drop_pending(s, 1);
  EXPECT_EQ(kv.pending(s), 1);
  kv.truncate(s, 3);
  EXPECT_EQ(kv.pending(s), 0);
}

TEST(KvCache, SequenceIdsAreReused) {
  KvCache kv = small();
  int a = kv.add_sequence();
  kv.remove_sequence(a);
  EXPECT_EQ(kv.add_sequence(), a);
  EXPECT_EQ(kv.committed(a), 0);
}

}  // namespace
}  // namespace weft::llm
