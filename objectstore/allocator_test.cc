#include "objectstore/allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace weft::objectstore {
namespace {

TEST(BestFitAllocator, AlignsSplitsAndCoalesces) {
  BestFitAllocator a(1024);
  auto x = a.allocate(1), y = a.allocate(100), z = a.allocate(64);
  ASSERT_TRUE(x && y && z);
  EXPECT_EQ(*x, 0u);
  EXPECT_EQ(*y, 64u);
  EXPECT_EQ(*z, 192u);
  EXPECT_EQ(a.free_bytes(), 1024u - 256u);
  a.free(*y);
  a.free(*x);  // coalesces with y's range
  EXPECT_EQ(a.largest_free(), 1024u - 256u);
  a.free(*z);  // everything merges back into one range
  EXPECT_EQ(a.largest_free(), 1024u);
  EXPECT_EQ(a.free_bytes(), 1024u);
  EXPECT_FALSE(a.allocate(0).has_value());
  EXPECT_FALSE(a.allocate(1025).has_value());
}

TEST(BestFitAllocator, PicksTheSmallestRangeThatFits) {
  BestFitAllocator a(64 * 10);
  std::vector<size_t> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(*a.allocate(64));
  a.free(blocks[1]);                      // hole of 64
  a.free(blocks[4]), a.free(blocks[5]);   // hole of 128
  auto small = a.allocate(60);
  ASSERT_TRUE(small);
  EXPECT_EQ(*small, blocks[1]);  // the 64-byte hole, not the 128-byte one
}

// Mixed sizes, random frees, then fill to 80%: what is the largest allocation still possible?
TEST(BestFitAllocator, FragmentationUnderARandomWorkload) {
  const size_t capacity = size_t{1} << 30;
  BestFitAllocator a(capacity);
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> log_size(10, 24);  // 1 KiB .. 16 MiB
  std::vector<size_t> live;
  size_t used = 0;
  for (int step = 0; step < 200000; ++step) {
    const bool grow = used < capacity * 8 / 10;
    if (grow || live.empty()) {
      const size_t size = (size_t{1} << log_size(rng)) + rng() % 4096;
      if (auto off = a.allocate(size)) {
        live.push_back(*off);
        used += a.allocated_size(*off);
      }
    }
    if (!grow || step % 3 == 0) {
      if (live.empty()) continue;
      const size_t k = rng() % live.size();
      used -= a.allocated_size(live[k]);
      a.free(live[k]);
      live[k] = live.back();
      live.pop_back();
    }
  }
  while (used < capacity * 8 / 10) {  // top up to 80%
    auto off = a.allocate(size_t{1} << 16);
    ASSERT_TRUE(off);
    live.push_back(*off);
    used += a.allocated_size(*off);
  }
  const double free_share = static_cast<double>(a.free_bytes()) / static_cast<double>(capacity);
  const double largest_share = static_cast<double>(a.largest_free()) / static_cast<double>(a.free_bytes());
  RecordProperty("largest_free_bytes_at_80_percent", std::to_string(a.largest_free()));
  RecordProperty("largest_free_share_of_free", std::to_string(largest_share));
  std::printf("at %.0f%% fill: largest allocation still possible %zu MiB = %.0f%% of the free space\n",
              100.0 * (1.0 - free_share), a.largest_free() >> 20, 100.0 * largest_share);
  EXPECT_LE(free_share, 0.21);
  // Best fit with coalescing keeps a contiguous range free that still takes the workload's
  // largest objects (16 MiB + 4 KiB) twice over.
  EXPECT_GT(a.largest_free(), 2 * ((size_t{1} << 24) + 4096));
  for (size_t off : live) a.free(off);
  EXPECT_EQ(a.largest_free(), capacity);  // everything coalesces back
}

}  // namespace
}  // namespace weft::objectstore
