#include "kernels/cpu/thread_team.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace weft::kernels::cpu {
namespace {

TEST(ThreadTeam, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 5}) {
    ThreadTeam team(threads);
    EXPECT_EQ(team.size(), threads);
    for (int64_t n : {0, 1, 7, 64, 1000}) {
      for (int64_t grain : {1, 3, 16, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        team.parallel_for(n, grain, [&](int64_t b, int64_t e, int t) {
          ASSERT_GE(t, 0);
          ASSERT_LT(t, threads);
          ASSERT_LE(e - b, grain);
          for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " grain " << grain << " i " << i;
      }
    }
  }
}

TEST(ThreadTeam, ManyShortLoopsAndLoopsAfterSleeping) {
  ThreadTeam team(3);
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 20000; ++round) {
    team.parallel_for(8, 1, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
  }
  EXPECT_EQ(total.load(), 8 * 20000);
  for (int round = 0; round < 3; ++round) {  // helpers fall asleep between these
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    team.parallel_for(100, 1, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
  }
  EXPECT_EQ(total.load(), 8 * 20000 + 300);
}

TEST(ThreadTeam, ConcurrentCallersAreSerialised) {
  // Each caller's loop must run its own body over its own range: a loop whose state another
  // caller overwrote would credit the wrong counter or the wrong number of iterations.
  ThreadTeam team(2);
  std::atomic<int64_t> totals[2] = {0, 0};
  auto caller = [&](int id) {
    for (int round = 0; round < 500; ++round) {
      team.parallel_for(16 + id, 1, [&](int64_t b, int64_t e, int) { totals[id].fetch_add(e - b); });
    }
  };
  std::thread a(caller, 0), b(caller, 1);
  a.join();
  b.join();
  EXPECT_EQ(totals[0].load(), 500 * 16);
  EXPECT_EQ(totals[1].load(), 500 * 17);
}

}  // namespace
}  // namespace weft::kernels::cpu
