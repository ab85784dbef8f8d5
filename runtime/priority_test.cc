// SLO classes and deadlines, end to end through the task API.
#include <atomic>
#include <chrono>
#include <latch>
#include <mutex>
#include <vector>

#include "runtime/test_util.h"

namespace {
std::latch* g_release = nullptr;
std::latch* g_blocked = nullptr;
std::atomic<int> g_batch_started{0};
std::atomic<int> g_batch_before_lc{-1};
std::mutex g_mu;
std::vector<int> g_order;

int pr_block() {
  g_blocked->count_down();
  g_release->wait();
  return 0;
}
int pr_batch(int i) {
  g_batch_started.fetch_add(1);
  return i;
}
int pr_urgent(int i) {
  g_batch_before_lc.store(g_batch_started.load());
  return i;
}
int pr_record(int i) {
  std::lock_guard lock(g_mu);
  g_order.push_back(i);
  return i;
}
}  // namespace
WEFT_REMOTE(pr_block, pr_batch, pr_urgent, pr_record);

namespace weft {
namespace {

// The only worker is held by a blocker while work queues up behind it.
class PriorityTest : public testing::RuntimeTest<1> {
 protected:
  void hold_worker() {
    release_ = std::make_unique<std::latch>(1);
    blocked_ = std::make_unique<std::latch>(1);
    g_release = release_.get();
    g_blocked = blocked_.get();
    blocker_ = task(pr_block).remote();
    blocked_->wait();
  }
  void release_worker() { release_->count_down(); }
  std::unique_ptr<std::latch> release_, blocked_;
  ObjectRef<int> blocker_;
};

TEST_F(PriorityTest, LatencyCriticalOvertakesTenThousandBatchTasks) {
  hold_worker();
  g_batch_started = 0;
  g_batch_before_lc = -1;
  std::vector<ObjectRef<int>> batch;
  for (int i = 0; i < 10000; ++i) batch.push_back(task(pr_batch).priority(Slo::kBatch).remote(i));
  auto lc = task(pr_urgent).priority(Slo::kLatencyCritical).remote(1);
  release_worker();
  EXPECT_EQ(get(lc), 1);
  EXPECT_EQ(g_batch_before_lc.load(), 0);
  get(batch);
  EXPECT_EQ(g_batch_started.load(), 10000);
}

TEST_F(PriorityTest, EarliestDeadlineFirstWithinAClass) {
  hold_worker();
  g_order.clear();
  auto now = std::chrono::steady_clock::now();
  std::vector<ObjectRef<int>> refs;
  for (int i : {5, 1, 4, 2, 3}) refs.push_back(task(pr_record).deadline(now + std::chrono::seconds(i)).remote(i));
  refs.push_back(task(pr_record).remote(6));  // no deadline: after all deadline tasks
  refs.push_back(task(pr_record).priority(Slo::kLatencyCritical).deadline(now + std::chrono::hours(1)).remote(0));
  release_worker();
  // Wait without helping, so the one worker alone decides the order.
  while (!refs.back().is_ready() || !refs[5].is_ready()) std::this_thread::yield();
  for (auto& r : refs) get(r);
  EXPECT_EQ(g_order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
}

TEST_F(PriorityTest, ClassesOrderWorkQueuedBehindABusyWorker) {
  hold_worker();
  g_order.clear();
  std::vector<ObjectRef<int>> refs;
  refs.push_back(task(pr_record).priority(Slo::kBatch).remote(3));
  refs.push_back(task(pr_record).priority(Slo::kStandard).remote(2));
  refs.push_back(task(pr_record).priority(Slo::kLatencyCritical).remote(1));
  release_worker();
  while (!refs[0].is_ready()) std::this_thread::yield();
  EXPECT_EQ(g_order, (std::vector<int>{1, 2, 3}));
}

}  // namespace
}  // namespace weft
