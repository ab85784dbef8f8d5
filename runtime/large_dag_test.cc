// A 1,000,000-task DAG: 1000 layers of 1000 tasks, each task depending on two of the previous
// layer. The result is checked against the same recurrence computed directly.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "runtime/test_util.h"

namespace {
uint64_t dag_mix(uint64_t a, uint64_t b) { return (a * 31 + b) % 1000003; }
WEFT_REMOTE(dag_mix);
}  // namespace

namespace weft {
namespace {

using LargeDag = testing::RuntimeTest<2>;

TEST_F(LargeDag, MillionTasks) {
  // Sanitizer builds run a smaller graph (set by the test script) to stay within CI time.
  const char* env = std::getenv("WEFT_DAG_WIDTH");
  const int width = env ? std::atoi(env) : 1000;
  const int layers = width;
  std::vector<uint64_t> expect(width);
  std::vector<ObjectRef<uint64_t>> prev;
  for (int i = 0; i < width; ++i) {
    expect[i] = static_cast<uint64_t>(i);
    prev.push_back(put(static_cast<uint64_t>(i)));
  }
  for (int l = 1; l < layers; ++l) {
    std::vector<ObjectRef<uint64_t>> next;
    std::vector<uint64_t> e(width);
    next.reserve(width);
    for (int i = 0; i < width; ++i) {
      int j = (i + 1) % width;
      next.push_back(task(dag_mix).remote(prev[i], prev[j]));
      e[i] = dag_mix(expect[i], expect[j]);
    }
    prev = std::move(next);
    expect = std::move(e);
  }
  EXPECT_EQ(get(prev), expect);
}

}  // namespace
}  // namespace weft
