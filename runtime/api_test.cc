// The public API's contracts, including every documented misuse.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "runtime/test_util.h"

namespace {
int api_add(int a, int b) { return a + b; }
int api_sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
void api_nothing() {}
int api_unregistered(int x) { return x; }
std::string api_concat(const std::string& a, std::string b) { return a + b; }
}  // namespace
WEFT_REMOTE(api_add, api_sleepy, api_nothing, api_concat);

namespace weft {
namespace {

using ApiTest = testing::RuntimeTest<2>;

TEST_F(ApiTest, PutGetWithoutCopy) {
  auto r = put(std::vector<int>{1, 2, 3});
  const std::vector<int>& a = get(r);
  const std::vector<int>& b = get(r);
  EXPECT_EQ(&a, &b);  // the same stored object, not a copy
  EXPECT_EQ(a, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(r.is_ready());
  EXPECT_FALSE(r.id().is_nil());
}

TEST_F(ApiTest, TaskResultAndConversions) {
  EXPECT_EQ(get(task(api_add).remote(2, 3)), 5);
  EXPECT_EQ(get(task(api_concat).remote("ab", std::string("cd"))), "abcd");
  get(task(api_nothing).remote());
}

TEST_F(ApiTest, GetTemporaryMovesValueOut) {
  std::vector<int> v = get(put(std::vector<int>(1000, 7)));
  EXPECT_EQ(v.size(), 1000u);
}

TEST_F(ApiTest, GetManyAndWait) {
  std::vector<ObjectRef<int>> refs;
  for (int ms : {200, 1, 1, 200}) refs.push_back(task(api_sleepy).remote(ms));
  WaitResult<int> w = wait(refs, 2);
  ASSERT_EQ(w.ready.size(), 2u);
  EXPECT_EQ(get(w.ready[0]), 1);
  EXPECT_EQ(get(w.ready[1]), 1);
  EXPECT_EQ(w.not_ready.size(), 2u);
  EXPECT_EQ(get(refs), (std::vector<int>{200, 1, 1, 200}));
  WaitResult<int> all = wait(refs, 4);
  EXPECT_EQ(all.ready.size(), 4u);
  EXPECT_TRUE(all.not_ready.empty());
}

TEST_F(ApiTest, WaitTimeoutReturnsWhatIsReady) {
  std::vector<ObjectRef<int>> refs{put(1), task(api_sleepy).remote(2000)};
  auto start = std::chrono::steady_clock::now();
  WaitResult<int> w = wait(refs, 2, std::chrono::milliseconds(50));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_EQ(w.ready.size(), 1u);
  EXPECT_EQ(w.not_ready.size(), 1u);
}

TEST_F(ApiTest, GetTimeoutRaises) {
  auto slow = task(api_sleepy).remote(2000);
  EXPECT_THROW(get(slow, std::chrono::milliseconds(30)), TimeoutError);
  EXPECT_EQ(get(task(api_add).remote(1, 1), std::chrono::seconds(30)), 2);
}

TEST_F(ApiTest, MisuseIsAClearError) {
  ObjectRef<int> empty;
  EXPECT_THROW(get(empty), Error);
  ObjectRef<int> moved = put(1);
  ObjectRef<int> taker = std::move(moved);
  EXPECT_THROW(get(moved), Error);  // NOLINT: use after move is the point
  EXPECT_THROW(task(api_add).remote(empty, 1), Error);

  std::vector<ObjectRef<int>> two{put(1), put(2)};
  EXPECT_THROW(wait(two, 3), Error);

  try {
    task(api_unregistered);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not registered"), std::string::npos);
  }

  Status again = init();
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(init({.address = "127.0.0.1:6379"}).code(), StatusCode::kFailedPrecondition);
}

TEST(ApiLifecycle, CallsOutsideInitAndShutdownAreErrors) {
  ASSERT_FALSE(is_initialized());
  EXPECT_THROW(task(api_add).remote(1, 2), Error);
  EXPECT_THROW(put(1), Error);
  EXPECT_EQ(shutdown().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(init({.num_workers = -1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(init({.address = "head:6379"}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(init({.log_level = "loud"}).code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(init({.num_workers = 1}).is_ok());
  EXPECT_EQ(num_workers(), 1);
  auto r = task(api_add).remote(20, 22);
  EXPECT_EQ(get(r), 42);
  ASSERT_TRUE(shutdown().is_ok());
  EXPECT_EQ(get(r), 42);  // what was produced stays readable
  try {
    task(api_add).remote(1, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shut down"), std::string::npos);
  }
  ASSERT_TRUE(init({.num_workers = 2}).is_ok());  // a fresh runtime after shutdown
  EXPECT_EQ(get(task(api_add).remote(1, 2)), 3);
  ASSERT_TRUE(shutdown().is_ok());
}

TEST(ApiLifecycle, ShutdownCancelsWorkThatHasNotStarted) {
  ASSERT_TRUE(init({.num_workers = 1}).is_ok());
  auto blocker = task(api_sleepy).remote(100);
  std::vector<ObjectRef<int>> queued;
  for (int i = 0; i < 50; ++i) queued.push_back(task(api_add).remote(blocker, i));
  ASSERT_TRUE(shutdown().is_ok());
  int cancelled = 0;
  for (auto& r : queued) {
    ASSERT_TRUE(r.is_ready());
    try {
      get(r);
    } catch (const TaskCancelled& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kCancelled);
      EXPECT_EQ(e.exception_type(), "cancelled");
      ++cancelled;
    }
  }
  EXPECT_GT(cancelled, 0);
}

}  // namespace
}  // namespace weft
