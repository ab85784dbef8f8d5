#include "event_count.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace weft::sched {
namespace {

// Ping-pong through an EventCount many times: a lost wake-up would hang (and time out the test).
TEST(EventCount, NoLostWakeupsInPingPong) {
  EventCount ec;
  std::atomic<int> turn{0};
  constexpr int kRounds = 20000;
  auto player = [&](int me) {
    for (int i = 0; i < kRounds; ++i) {
      while (turn.load(std::memory_order_seq_cst) % 2 != me) {
        uint32_t key = ec.prepare_wait();
        if (turn.load(std::memory_order_seq_cst) % 2 == me) {
          ec.cancel_wait();
          break;
        }
        ec.commit_wait(key);
      }
      turn.fetch_add(1, std::memory_order_seq_cst);
      ec.notify_all();
    }
  };
  std::thread a(player, 0), b(player, 1);
  a.join();
  b.join();
  EXPECT_EQ(turn.load(), 2 * kRounds);
  EXPECT_EQ(ec.waiters(), 0);
}

TEST(EventCount, WaitWithDeadlineReturns) {
  EventCount ec;
  uint32_t key = ec.prepare_wait();
  int64_t start = detail::now_ns();
  ec.commit_wait(key, start + 20'000'000);
  EXPECT_GE(detail::now_ns() - start, 15'000'000);
  EXPECT_EQ(ec.waiters(), 0);
}

}  // namespace
}  // namespace weft::sched
