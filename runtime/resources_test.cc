// Tasks that declare resources: admission, concurrency limits, infeasible requests.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "runtime/test_util.h"

namespace {
std::atomic<int> g_in_use{0};
std::atomic<int> g_peak{0};
int rs_use_device(int i) {
  int now = g_in_use.fetch_add(1) + 1;
  int peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  g_in_use.fetch_sub(1);
  return i;
}
}  // namespace
WEFT_REMOTE(rs_use_device);

namespace weft {
namespace {

class ResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(init({.num_workers = 4, .resources = {{"accelerator", 2}}}).is_ok()); }
  void TearDown() override { EXPECT_TRUE(shutdown().is_ok()); }
};

TEST_F(ResourcesTest, ConcurrencyIsBoundedByDeclaredResources) {
  g_peak = 0;
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 40; ++i) refs.push_back(task(rs_use_device).resources({{"accelerator", 1}}).remote(i));
  auto got = get(refs);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(got[i], i);
  EXPECT_LE(g_peak.load(), 2);
  EXPECT_GE(g_peak.load(), 1);
}

TEST_F(ResourcesTest, InfeasibleRequestFailsWithWhatTheNodeHas) {
  try {
    get(task(rs_use_device).resources({{"GPU", 1}}).remote(1));
    FAIL();
  } catch (const TaskError& e) {
    EXPECT_NE(e.message().find("infeasible"), std::string::npos);
    EXPECT_NE(e.message().find("GPU: 1"), std::string::npos);
    EXPECT_NE(e.message().find("accelerator: 2"), std::string::npos);
  }
  EXPECT_EQ(get(task(rs_use_device).resources({{"CPU", 4}}).remote(3)), 3);
}

}  // namespace
}  // namespace weft
