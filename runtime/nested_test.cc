// Tasks that submit tasks and wait for them, on a single worker.
#include <vector>

#include "runtime/test_util.h"

namespace {
long fib(int n);
long fan(int width, int depth);
WEFT_REMOTE(fib, fan);

long fib(int n) {
  if (n < 2) return n;
  auto a = weft::task(fib).remote(n - 1);
  auto b = weft::task(fib).remote(n - 2);
  return weft::get(a) + weft::get(b);
}
long fan(int width, int depth) {
  if (depth == 0) return 1;
  std::vector<weft::ObjectRef<long>> kids;
  for (int i = 0; i < width; ++i) kids.push_back(weft::task(fan).remote(width, depth - 1));
  long total = 0;
  for (long v : weft::get(kids)) total += v;
  // wait inside a task, too
  auto w = weft::wait(kids, kids.size());
  return total + static_cast<long>(w.not_ready.size());
}
}  // namespace

namespace weft {
namespace {

using NestedOneWorker = testing::RuntimeTest<1>;
using NestedTwoWorkers = testing::RuntimeTest<2>;

TEST_F(NestedOneWorker, RecursiveGetDoesNotDeadlock) { EXPECT_EQ(get(task(fib).remote(18)), 2584); }

TEST_F(NestedOneWorker, WideNestedWaits) { EXPECT_EQ(get(task(fan).remote(6, 4)), 6 * 6 * 6 * 6); }

TEST_F(NestedTwoWorkers, RecursiveGet) { EXPECT_EQ(get(task(fib).remote(20)), 6765); }

}  // namespace
}  // namespace weft
