#include "chase_lev_deque.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace weft::sched {
namespace {

TEST(ChaseLevDeque, OwnerIsLifoThievesAreFifo) {
  ChaseLevDeque<int*> d(2);
  int v[5];
  for (int& x : v) d.push(&x);  // grows past the initial capacity
  EXPECT_EQ(d.size(), 5);
  EXPECT_EQ(d.steal(), &v[0]);
  EXPECT_EQ(d.pop(), &v[4]);
  EXPECT_EQ(d.pop(), &v[3]);
  EXPECT_EQ(d.steal(), &v[1]);
  EXPECT_EQ(d.pop(), &v[2]);
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  EXPECT_TRUE(d.empty());
}

// Owner pushes and pops while thieves steal: every item is taken exactly once.
TEST(ChaseLevDeque, ConcurrentStressTakesEachItemOnce) {
  constexpr int kItems = 400000;
  constexpr int kThieves = 3;
  std::vector<int> items(kItems);
  std::vector<std::atomic<int>> taken(kItems);
  ChaseLevDeque<int*> d(4);
  std::atomic<bool> done{false};
  auto record = [&](int* p) { taken[p - items.data()].fetch_add(1, std::memory_order_relaxed); };

  std::vector<std::thread> thieves;
  for (int t = 0; t < kThieves; ++t) {
    thieves.emplace_back([&] {
      while (!done.load(std::memory_order_acquire) || !d.empty()) {
        if (int* p = d.steal()) record(p);
      }
    });
  }
  for (int i = 0; i < kItems; ++i) {
    d.push(&items[i]);
    if (i % 3 == 0) {
      if (int* p = d.pop()) record(p);
    }
  }
  while (int* p = d.pop()) record(p);
  done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();
  for (int i = 0; i < kItems; ++i) ASSERT_EQ(taken[i].load(), 1) << "item " << i;
}

}  // namespace
}  // namespace weft::sched
