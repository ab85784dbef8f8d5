// The runtime reaches actors that live outside the process only through sched::RemoteActorHost:
// here a fake host stands in for the worker processes (no processes, no sockets).
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "runtime/runtime.h"
#include "scheduler/work_stealing_pool.h"
#include "weft/weft.h"

namespace weft {
namespace {

struct Tally {
  long total = 0;
  long add(long k) { return total += k; }
};
Tally make_tally(long start) { return Tally{start}; }
WEFT_REMOTE(make_tally, &Tally::add);

class FakeHost final : public sched::RemoteActorHost {
 public:
  detail::RemoteOutcome create_actor(const std::string& factory, std::string args, const std::string&, int) override {
    std::lock_guard lock(mu);
    log.push_back("create " + factory);
    created_args = std::move(args);
    return {.ok = true, .payload = pack(msgpack::type::nil_t()), .actor = 7};
  }
  detail::RemoteOutcome call_actor(uint64_t actor, const std::string& method, std::string args,
                                   const std::string& call_name) override {
    std::lock_guard lock(mu);
    log.push_back("call " + std::to_string(actor) + " " + method);
    if (fail_calls) {
      return {.error = std::make_shared<ErrorInfo>(
                  ErrorInfo{call_name, "gone", "weft::WorkerDied", ErrorKind::kWorkerDied})};
    }
    const long k = std::get<0>(unpack<std::tuple<long>>(args).value());
    return {.ok = true, .payload = pack(100L + k)};
  }
  void drop_actor(uint64_t actor) override {
    std::lock_guard lock(mu);
    log.push_back("drop " + std::to_string(actor));
  }

  std::mutex mu;
  std::vector<std::string> log;
  std::string created_args;
  bool fail_calls = false;
};

class RemoteActorHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(runtime::start(std::make_unique<sched::WorkStealingPool>(sched::PoolOptions{1, "test-worker"}),
                               {{"CPU", 1}}, &host_)
                    .is_ok());
  }
  void TearDown() override { EXPECT_TRUE(weft::shutdown().is_ok()); }
  FakeHost host_;
};

TEST_F(RemoteActorHostTest, ActorsGoToTheHostAndBack) {
  {
    auto t = weft::actor<Tally>(make_tally).remote(5L);
    EXPECT_EQ(weft::get(t.task(&Tally::add).remote(3L)), 103);  // the host's answer, not a local Tally's
  }
  // The handle is gone: the host is told to free the instance, after the calls.
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(host_.mu);
      if (host_.log.size() == 3) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::lock_guard lock(host_.mu);
  EXPECT_EQ(host_.log, (std::vector<std::string>{"create make_tally", "call 7 Tally::add", "drop 7"}));
  EXPECT_EQ(unpack<std::tuple<long>>(host_.created_args).value(), std::make_tuple(5L));
}

TEST_F(RemoteActorHostTest, AHostsFailureIsRaisedByItsType) {
  host_.fail_calls = true;
  auto t = weft::actor<Tally>(make_tally).remote(0L);
  EXPECT_THROW(weft::get(t.task(&Tally::add).remote(1L)), weft::WorkerDied);
}

}  // namespace
}  // namespace weft
