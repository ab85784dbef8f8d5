// Dependencies between tasks: chains, diamonds, vectors of refs, refs passed through.
#include <atomic>
#include <numeric>
#include <thread>
#include <vector>

#include "runtime/test_util.h"

namespace {
std::atomic<int> g_started{0};
int df_inc(int x) { return x + 1; }
int df_add(int a, int b) { return a + b; }
long df_sum(const std::vector<int>& xs) { return std::accumulate(xs.begin(), xs.end(), 0L); }
int df_first_of(std::vector<weft::ObjectRef<int>> refs) {
  // Refs passed as refs arrive ready.
  return refs.empty() ? -1 : weft::get(refs.front());
}
int df_gate(int x) {
  g_started.fetch_add(1);
  return x;
}
int df_slow(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return x;
}
}  // namespace
WEFT_REMOTE(df_inc, df_add, df_sum, df_first_of, df_gate, df_slow);

namespace weft {
namespace {

using DataflowTest = testing::RuntimeTest<2>;

TEST_F(DataflowTest, ChainRunsInOrder) {
  ObjectRef<int> r = put(0);
  for (int i = 0; i < 10000; ++i) r = task(df_inc).remote(r);
  EXPECT_EQ(get(r), 10000);
}

TEST_F(DataflowTest, Diamond) {
  auto a = task(df_inc).remote(1);
  auto b = task(df_inc).remote(a);
  auto c = task(df_add).remote(a, 100);
  auto d = task(df_add).remote(b, c);
  EXPECT_EQ(get(d), 3 + 102);
}

TEST_F(DataflowTest, VectorOfRefsIsResolvedOrPassedThrough) {
  std::vector<ObjectRef<int>> parts;
  for (int i = 0; i < 1000; ++i) parts.push_back(task(df_inc).remote(i));
  EXPECT_EQ(get(task(df_sum).remote(parts)), 500500);
  EXPECT_EQ(get(task(df_first_of).remote(parts)), 1);
}

TEST_F(DataflowTest, TaskWaitsForItsDependencies) {
  g_started = 0;
  auto slow = task(df_slow).remote(7);
  auto dependent = task(df_gate).remote(slow);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(g_started.load(), 0);  // still waiting for `slow`
  EXPECT_EQ(get(dependent), 7);
  EXPECT_EQ(g_started.load(), 1);
}

TEST_F(DataflowTest, ManyThreadsSubmitAndGet) {
  std::vector<std::thread> threads;
  std::atomic<long> total{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ObjectRef<int> r = put(t);
      for (int i = 0; i < 2000; ++i) r = task(df_inc).remote(r);
      total += get(r);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(total.load(), 0 + 1 + 2 + 3 + 4 * 2000);
}

TEST_F(DataflowTest, ObjectsLiveWhileReferenced) {
  ObjectRef<int> r;
  {
    auto tmp = task(df_inc).remote(41);
    r = tmp;
  }
  EXPECT_EQ(get(r), 42);
  auto copy = r;
  EXPECT_EQ(copy, r);
  EXPECT_EQ(copy.id(), r.id());
}

}  // namespace
}  // namespace weft
