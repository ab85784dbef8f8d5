// ParallelTeam: loops on the runtime's workers, every index once, slots unique, from tasks too.
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "runtime/test_util.h"

namespace {
// Sums 0..n-1 with a team created inside the task: a loop run by a worker thread.
long parallel_sum_in_task(long n) {
  weft::ParallelTeam team;
  std::atomic<long> total{0};
  team.parallel_for(n, 7, [&](int64_t b, int64_t e, int) {
    long s = 0;
    for (int64_t i = b; i < e; ++i) s += i;
    total.fetch_add(s);
  });
  return total.load();
}
}  // namespace
WEFT_REMOTE(parallel_sum_in_task);

namespace weft {
namespace {

using ParallelTeamTest = testing::RuntimeTest<3>;

TEST_F(ParallelTeamTest, EveryIndexOnceWithUniqueSlots) {
  ParallelTeam team;
  EXPECT_EQ(team.size(), 4);  // three workers and the caller
  for (int64_t n : {1, 5, 64, 1000, 100003}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::atomic<int> in_slot[64] = {};
    std::atomic<bool> clash{false};
    team.parallel_for(n, 3, [&](int64_t b, int64_t e, int slot) {
      ASSERT_GE(slot, 0);
      ASSERT_LT(slot, team.size());
      if (in_slot[slot].fetch_add(1) != 0) clash = true;
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      in_slot[slot].fetch_sub(1);
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    EXPECT_FALSE(clash.load());
  }
}

TEST_F(ParallelTeamTest, WorkersJoinTheLoop) {
  ParallelTeam team;
  std::mutex mu;
  std::set<std::thread::id> threads;
  // Loops long enough that helpers start before the caller finishes alone.
  for (int round = 0; round < 50 && threads.size() < 2; ++round) {
    team.parallel_for(64, 1, [&](int64_t, int64_t, int) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::lock_guard<std::mutex> lock(mu);
      threads.insert(std::this_thread::get_id());
    });
  }
  EXPECT_GE(threads.size(), 2u);
}

TEST_F(ParallelTeamTest, ManyShortLoopsFromATaskAndFromThreads) {
  EXPECT_EQ(get(task(parallel_sum_in_task).remote(100000L)), 100000L * 99999L / 2);
  ParallelTeam team(2, Slo::kLatencyCritical);
  EXPECT_EQ(team.size(), 2);
  std::vector<std::thread> callers;
  std::atomic<long> total{0};
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) team.parallel_for(8, 1, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 3L * 2000 * 8);
}

TEST(ParallelTeamNoRuntime, RequiresTheRuntime) { EXPECT_THROW(ParallelTeam team, Error); }

}  // namespace
}  // namespace weft
