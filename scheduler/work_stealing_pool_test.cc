#include "work_stealing_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace weft::sched {
namespace {

// A runnable that calls a function and frees itself.
class Fn final : public detail::Runnable {
 public:
  Fn(std::function<void()> f, Slo slo = Slo::kStandard, int64_t deadline = detail::kNoDeadline,
     std::atomic<int>* cancelled = nullptr)
      : f_(std::move(f)), cancelled_(cancelled) {
    set_priority(slo, deadline);
  }
  void run() override {
    f_();
    delete this;
  }
  void cancel() override {
    if (cancelled_) cancelled_->fetch_add(1);
    delete this;
  }

 private:
  std::function<void()> f_;
  std::atomic<int>* cancelled_;
};

// Occupies the pool's only worker until release() is called.
class BlockedWorker {
 public:
  explicit BlockedWorker(WorkStealingPool& pool) {
    pool.submit(new Fn([this] {
      started_.count_down();
      release_.wait();
    }));
    started_.wait();
  }
  void release() { release_.count_down(); }

 private:
  std::latch started_{1}, release_{1};
};

bool wait_for(WorkStealingPool&, std::atomic<int>& counter, int target) {
  for (int i = 0; i < 30000 && counter.load() < target; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return counter.load() >= target;
}

TEST(WorkStealingPool, RunsEverythingSubmittedFromManyThreads) {
  WorkStealingPool pool({.num_workers = 2});
  std::atomic<int> ran{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) pool.submit(new Fn([&] { ran.fetch_add(1); }));
    });
  }
  for (auto& t : submitters) t.join();
  EXPECT_TRUE(wait_for(pool, ran, 80000));
  EXPECT_EQ(ran.load(), 80000);
}

TEST(WorkStealingPool, TasksSubmittedByTasksRun) {
  WorkStealingPool pool({.num_workers = 2});
  std::atomic<int> ran{0};
  std::function<void(int)> spawn = [&](int depth) {
    ran.fetch_add(1);
    if (depth < 12) {
      pool.submit(new Fn([&, depth] { spawn(depth + 1); }));
      pool.submit(new Fn([&, depth] { spawn(depth + 1); }));
    }
  };
  pool.submit(new Fn([&] { spawn(0); }));
  EXPECT_TRUE(wait_for(pool, ran, (1 << 13) - 1));
}

// Work queued by a thread that never helps (it blocks on a latch) is stolen by workers.
TEST(WorkStealingPool, WorkersStealFromAnIdleSubmitter) {
  WorkStealingPool pool({.num_workers = 2});
  std::latch all(1000);
  for (int i = 0; i < 1000; ++i) pool.submit(new Fn([&] { all.count_down(); }));
  all.wait();
}

// With the only worker blocked, queued work is ordered by class, then deadline, then FIFO.
TEST(WorkStealingPool, OrdersByClassThenDeadline) {
  WorkStealingPool pool({.num_workers = 1});
  BlockedWorker blocked(pool);
  std::mutex mu;
  std::vector<std::string> order;
  auto rec = [&](std::string s) {
    return [&, s] {
      std::lock_guard l(mu);
      order.push_back(s);
    };
  };
  int64_t now = detail::now_ns();
  pool.submit(new Fn(rec("batch"), Slo::kBatch));
  pool.submit(new Fn(rec("std-late"), Slo::kStandard, now + 3000));
  pool.submit(new Fn(rec("std-none"), Slo::kStandard));
  pool.submit(new Fn(rec("std-early"), Slo::kStandard, now + 1000));
  pool.submit(new Fn(rec("lc"), Slo::kLatencyCritical));
  std::latch finished(1);
  pool.submit(new Fn([&] { finished.count_down(); }, Slo::kBatch));
  blocked.release();
  finished.wait();
  EXPECT_EQ(order, (std::vector<std::string>{"lc", "std-early", "std-late", "std-none", "batch"}));
}

TEST(WorkStealingPool, ShutdownCancelsQueuedWork) {
  std::atomic<int> cancelled{0}, ran{0};
  {
    WorkStealingPool pool({.num_workers = 1});
    BlockedWorker blocked(pool);
    for (int i = 0; i < 100; ++i) pool.submit(new Fn([&] { ran.fetch_add(1); }, Slo::kStandard, detail::kNoDeadline, &cancelled));
    std::thread releaser([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      blocked.release();
    });
    pool.shutdown();
    releaser.join();
  }
  EXPECT_EQ(ran.load() + cancelled.load(), 100);
  EXPECT_GT(cancelled.load(), 0);
}

TEST(WorkStealingPool, HelpUntilTimesOut) {
  WorkStealingPool pool({.num_workers = 1});
  int64_t start = detail::now_ns();
  bool ok = pool.help_until([] { return false; }, [] { return true; }, start + 30'000'000);
  EXPECT_FALSE(ok);
  EXPECT_GE(detail::now_ns() - start, 25'000'000);
}

}  // namespace
}  // namespace weft::sched
