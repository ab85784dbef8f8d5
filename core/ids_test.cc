#include "weft/ids.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

namespace weft {
namespace {

TEST(ObjectId, UniqueAcrossThreads) {
  std::mutex mu;
  std::unordered_set<ObjectId> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<ObjectId> local;
      for (int i = 0; i < 10000; ++i) local.push_back(ObjectId::next());
      std::lock_guard lock(mu);
      for (const auto& id : local) EXPECT_TRUE(seen.insert(id).second);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), 40000u);
}

TEST(ObjectId, HexIs32Digits) {
  ObjectId id{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  EXPECT_EQ(id.hex(), "0123456789abcdeffedcba9876543210");
  EXPECT_FALSE(ObjectId::next().is_nil());
  EXPECT_TRUE(ObjectId{}.is_nil());
}

}  // namespace
}  // namespace weft
