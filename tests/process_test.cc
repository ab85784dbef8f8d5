// Multi-process mode: tasks of registered functions run in worker processes (this binary,
// started again; main serves as a worker first). Dataflow, errors with their types, SLO order,
// stealing, a worker killed mid-task (retried, or failing with the cause), restarts, and
// garbage on the driver's control socket.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>

#include <zmq.hpp>

#include <weft/weft.h>

#include "objectstore/store_client.h"
#include "runtime/runtime.h"
#include "workers/process_executor.h"

namespace {

int64_t pid_of_worker(int /*unused*/) { return getpid(); }
int square(int x) { return x * x; }
long sum(const std::vector<int>& xs) {
  long s = 0;
  for (int x : xs) s += x;
  return s;
}
int fails(int x) {
  if (x > 0) throw std::invalid_argument("x must be <= 0, got " + std::to_string(x));
  return x;
}
struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};
int over_quota(int n) { throw QuotaExceeded("quota of " + std::to_string(n) + " exceeded"); }
int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}
// Busy for `us` microseconds, then says when it finished (a clock shared by all processes).
int64_t spin_then_time(int us) {
  const int64_t end = monotonic_ns() + int64_t{us} * 1000;
  while (monotonic_ns() < end) {
  }
  return monotonic_ns();
}
// Kills its own worker process the first time it runs for `marker` (a file it creates).
int64_t die_once(std::string marker) {
  if (!std::filesystem::exists(marker)) {
    std::ofstream(marker) << "died";
    raise(SIGKILL);
  }
  return getpid();
}
int64_t always_die(int) {
  raise(SIGKILL);
  return 0;
}
int nested_sum(int n) {  // a task that submits tasks, inside a worker
  std::vector<weft::ObjectRef<int>> parts;
  for (int i = 1; i <= n; ++i) parts.push_back(weft::task(square).remote(i));
  int total = 0;
  for (auto& p : parts) total += weft::get(p);
  return total;
}
double total(const weft::Array<float>& xs) {
  double t = 0;
  for (float x : xs) t += x;
  return t;
}
bool in_store(const weft::Array<float>& xs) { return xs.in_shared_memory(); }
weft::Array<float> ramp(int n) {  // made in the worker, returned to the driver
  auto a = weft::Array<float>::make(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) a.mutable_data()[i] = static_cast<float>(i);
  return a;
}
struct Counter {
  long n = 0;
  long add(long k) { return n += k; }
  long add_ref(weft::ObjectRef<long> k) { return n += weft::get(k); }
  int64_t where() { return getpid(); }
  // Kills its process the first time (the marker file does not exist yet), then counts.
  long die_first_time(std::string marker) {
    if (!std::filesystem::exists(marker)) {
      std::ofstream(marker) << "died";
      raise(SIGKILL);
    }
    return n += 1;
  }
  long fail_if_negative(long k) {
    if (k < 0) throw std::out_of_range("negative: " + std::to_string(k));
    return n += k;
  }
};
Counter make_counter() { return {}; }
// A task in a worker calling the driver's actor named `name`.
long add_to_named(std::string name, long k) {
  auto c = weft::get_actor<Counter>(name);
  return weft::get(c.task(&Counter::add).remote(k));
}
// Builds once: a second build (a restart) finds the marker and fails.
Counter make_counter_once(std::string marker) {
  if (std::filesystem::exists(marker)) throw std::runtime_error("built before");
  std::ofstream(marker) << "x";
  return {};
}
std::unique_ptr<Counter> make_counter_from(long start) {
  if (start < 0) throw std::domain_error("a counter cannot start below zero");
  auto c = std::make_unique<Counter>();
  c->n = start;
  return c;
}

WEFT_REMOTE(pid_of_worker, square, sum, fails, spin_then_time, die_once, always_die, nested_sum, total, in_store, ramp,
            make_counter, make_counter_from, &Counter::add, &Counter::where, &Counter::fail_if_negative);
WEFT_REMOTE(&Counter::add_ref, &Counter::die_first_time, make_counter_once, over_quota, add_to_named);
WEFT_EXCEPTION(QuotaExceeded);

weft::workers::ProcessExecutor& executor() {
  return dynamic_cast<weft::workers::ProcessExecutor&>(weft::runtime::live()->executor());
}

class Processes : public ::testing::Test {
 protected:
  void SetUp() override {
    weft::Status s = weft::init({.num_workers = 2, .processes = 2, .pipeline_depth = 4});
    ASSERT_TRUE(s.is_ok()) << s;
  }
  void TearDown() override { ASSERT_TRUE(weft::shutdown().is_ok()); }
};

TEST_F(Processes, TasksRunInWorkerProcessesWithDataflow) {
  std::vector<weft::ObjectRef<int>> parts;
  for (int i = 0; i < 200; ++i) parts.push_back(weft::task(square).remote(i));
  auto total = weft::task(sum).remote(parts);  // a vector of refs: runs in the driver
  EXPECT_EQ(weft::get(total), 2646700);
  std::set<int64_t> pids;
  std::vector<weft::ObjectRef<int64_t>> who;
  for (int i = 0; i < 100; ++i) who.push_back(weft::task(pid_of_worker).remote(i));
  for (auto& w : who) pids.insert(weft::get(w));
  EXPECT_EQ(pids.count(getpid()), 0u) << "tasks must not run in the driver";
  const auto workers = executor().worker_pids();
  for (int64_t p : pids) EXPECT_NE(std::find(workers.begin(), workers.end(), p), workers.end());
  // A chain through object refs: each square's result is the next one's argument.
  auto r = weft::task(square).remote(2);
  for (int i = 0; i < 3; ++i) r = weft::task(square).remote(r);
  EXPECT_EQ(weft::get(r), 65536);
}

TEST_F(Processes, ExceptionsKeepTheirTypeAndMessage) {
  auto r = weft::task(fails).remote(3);
  try {
    weft::get(r);
    FAIL() << "expected a TaskError";
  } catch (const weft::WorkerDied&) {
    FAIL() << "a task's own exception is not the worker's death";
  } catch (const weft::TaskError& e) {
    EXPECT_EQ(e.kind(), weft::ErrorKind::kRaised);
    EXPECT_EQ(e.exception_type(), "std::invalid_argument");
    EXPECT_NE(std::string(e.what()).find("x must be <= 0, got 3"), std::string::npos) << e.what();
    EXPECT_EQ(e.task_name(), "fails");
  }
  EXPECT_EQ(weft::get(weft::task(fails).remote(-1)), -1);
}

TEST_F(Processes, ARegisteredExceptionTypeCrossesProcessesAsItself) {
  try {
    weft::get(weft::task(over_quota).remote(3));
    FAIL() << "expected QuotaExceeded";
  } catch (const QuotaExceeded& e) {
    EXPECT_STREQ(e.what(), "quota of 3 exceeded");
  }
}

TEST_F(Processes, LatencyCriticalWorkOvertakesQueuedBatchWork) {
  std::vector<weft::ObjectRef<int64_t>> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(weft::task(spin_then_time).priority(weft::Slo::kBatch).remote(5000));
  auto urgent = weft::task(spin_then_time).priority(weft::Slo::kLatencyCritical).remote(0);
  const int64_t urgent_done = weft::get(urgent);
  int later = 0;
  for (auto& b : batch) later += weft::get(b) > urgent_done;
  // At most the 8 tasks already in the workers' pipelines (2 x depth 4), and the ones that
  // finished while the urgent task was being dispatched, can come before it.
  EXPECT_GE(later, 20);
}

TEST_F(Processes, AWorkerKilledMidTaskIsRetriedAndNothingGotIsLost) {
  auto before = weft::task(square).remote(12);
  EXPECT_EQ(weft::get(before), 144);
  const std::string marker = ::testing::TempDir() + "/die-once-" + std::to_string(getpid());
  std::filesystem::remove(marker);
  auto r = weft::task(die_once).max_retries(1).remote(marker);
  const int64_t ran_in = weft::get(r);
  EXPECT_TRUE(std::filesystem::exists(marker));  // the first attempt ran, and died
  EXPECT_GE(executor().stats().worker_deaths, 1u);
  EXPECT_GE(executor().stats().retried, 1u);
  EXPECT_NE(ran_in, getpid());
  EXPECT_EQ(weft::get(before), 144);  // what the driver already got stays
  std::filesystem::remove(marker);
}

TEST_F(Processes, WithoutRetriesTheWorkersDeathIsTheError) {
  const auto pids_before = executor().worker_pids();
  auto r = weft::task(always_die).remote(0);
  try {
    weft::get(r);
    FAIL() << "expected weft::WorkerDied";
  } catch (const weft::WorkerDied& e) {  // caught by type: the kind travelled with the error
    EXPECT_EQ(e.kind(), weft::ErrorKind::kWorkerDied);
    EXPECT_NE(std::string(e.what()).find("killed by signal 9"), std::string::npos) << e.what();
  }
  // The dead worker was replaced, and work goes on.
  std::vector<weft::ObjectRef<int>> after;
  for (int i = 0; i < 20; ++i) after.push_back(weft::task(square).remote(i));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(weft::get(after[i]), i * i);
  EXPECT_NE(executor().worker_pids(), pids_before);
}

TEST_F(Processes, TasksInsideAWorkerCanSubmitTasks) { EXPECT_EQ(weft::get(weft::task(nested_sum).remote(10)), 385); }

TEST_F(Processes, ActorsKeepTheirOrder) {
  auto c = weft::actor<Counter>(make_counter).remote();
  weft::ObjectRef<long> last;
  for (int i = 1; i <= 10; ++i) last = c.task(&Counter::add).remote(static_cast<long>(i));
  EXPECT_EQ(weft::get(last), 55);
}

TEST_F(Processes, ActorsLiveInWorkerProcessesAndKeepTheirState) {
  auto c = weft::actor<Counter>(make_counter_from).remote(100L);
  const int64_t home = weft::get(c.task(&Counter::where).remote());
  EXPECT_NE(home, getpid());
  const auto workers = executor().worker_pids();
  EXPECT_NE(std::find(workers.begin(), workers.end(), home), workers.end());
  weft::ObjectRef<long> last;
  for (long i = 1; i <= 100; ++i) last = c.task(&Counter::add).remote(i);
  EXPECT_EQ(weft::get(last), 100 + 5050);
  // A method that raises fails only its call; the actor goes on.
  auto bad = c.task(&Counter::fail_if_negative).remote(-5L);
  try {
    weft::get(bad);
    FAIL() << "expected a TaskError";
  } catch (const weft::TaskError& e) {
    EXPECT_EQ(e.exception_type(), "std::out_of_range");
  }
  EXPECT_EQ(weft::get(c.task(&Counter::fail_if_negative).remote(1L)), 5151);
  EXPECT_EQ(weft::get(c.task(&Counter::where).remote()), home);  // still the same instance
}

// Waits until the driver has noticed `n` worker deaths in all.
void wait_for_deaths(uint64_t n) {
  for (int i = 0; i < 500 && executor().stats().worker_deaths < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(executor().stats().worker_deaths, n);
}

TEST_F(Processes, AnActorWithRestartsIsRebuiltWhenItsWorkerDies) {
  auto c = weft::actor<Counter>(make_counter_from).max_restarts(1).remote(100L);
  EXPECT_EQ(weft::get(c.task(&Counter::add).remote(5L)), 105);
  const int64_t home = weft::get(c.task(&Counter::where).remote());
  const uint64_t deaths = executor().stats().worker_deaths;
  ASSERT_EQ(kill(static_cast<pid_t>(home), SIGKILL), 0);
  wait_for_deaths(deaths + 1);
  // Rebuilt by its factory on the same arguments, in a live process: its state starts over.
  EXPECT_EQ(weft::get(c.task(&Counter::add).remote(1L)), 101);
  const int64_t second_home = weft::get(c.task(&Counter::where).remote());
  EXPECT_NE(second_home, home);
  EXPECT_EQ(executor().stats().actor_restarts, 1u);
  // No restarts left: the next death is final.
  ASSERT_EQ(kill(static_cast<pid_t>(second_home), SIGKILL), 0);
  wait_for_deaths(deaths + 2);
  EXPECT_THROW(weft::get(c.task(&Counter::add).remote(1L)), weft::WorkerDied);
  EXPECT_EQ(executor().stats().actor_restarts, 1u);
}

TEST_F(Processes, ACallInFlightWhenItsActorsWorkerDiesRunsAgainOnTheRebuiltInstance) {
  const std::string marker = ::testing::TempDir() + "/died-once-" + std::to_string(getpid());
  std::filesystem::remove(marker);
  auto c = weft::actor<Counter>(make_counter_from).max_restarts(1).max_task_retries(1).remote(100L);
  auto first = c.task(&Counter::die_first_time).remote(marker);
  auto second = c.task(&Counter::add).remote(5L);
  EXPECT_EQ(weft::get(first), 101) << "ran again on the rebuilt instance (its state started over)";
  EXPECT_EQ(weft::get(second), 106) << "and the calls after it kept their order";
  EXPECT_EQ(executor().stats().actor_restarts, 1u);
  // Without task retries, the call in flight fails with the death.
  std::filesystem::remove(marker);
  auto d = weft::actor<Counter>(make_counter_from).max_restarts(1).remote(0L);
  EXPECT_THROW(weft::get(d.task(&Counter::die_first_time).remote(marker)), weft::WorkerDied);
  EXPECT_EQ(weft::get(d.task(&Counter::add).remote(1L)), 1) << "rebuilt all the same";
  std::filesystem::remove(marker);
}

TEST_F(Processes, AnActorWhoseRestartFailsFailsItsLaterCallsWithTheCause) {
  const std::string marker = ::testing::TempDir() + "/built-once-" + std::to_string(getpid());
  std::filesystem::remove(marker);
  auto c = weft::actor<Counter>(make_counter_once).max_restarts(3).remote(marker);
  const int64_t home = weft::get(c.task(&Counter::where).remote());
  const uint64_t deaths = executor().stats().worker_deaths;
  ASSERT_EQ(kill(static_cast<pid_t>(home), SIGKILL), 0);
  wait_for_deaths(deaths + 1);
  try {
    weft::get(c.task(&Counter::add).remote(1L));
    FAIL() << "expected weft::WorkerDied";
  } catch (const weft::WorkerDied& e) {
    EXPECT_NE(std::string(e.what()).find("rebuilding it failed: built before"), std::string::npos) << e.what();
  }
  std::filesystem::remove(marker);
}

TEST_F(Processes, TasksInWorkersFindTheDriversNamedActorsAndCallThemInOrder) {
  weft::actor<Counter>(make_counter_from).name("shared-tally").remote(100L);
  std::vector<weft::ObjectRef<long>> adds;
  for (long k = 1; k <= 10; ++k) adds.push_back(weft::task(add_to_named).remote(std::string("shared-tally"), k));
  std::set<long> seen;
  for (auto& a : adds) seen.insert(weft::get(a));
  EXPECT_EQ(seen.size(), 10u) << "each call saw its own state: one instance, one call at a time";
  EXPECT_EQ(*seen.rbegin(), 155);
  auto c = weft::get_actor<Counter>("shared-tally");
  EXPECT_EQ(weft::get(c.task(&Counter::add).remote(0L)), 155);
  // A name the driver does not have is an error in the worker's task.
  try {
    weft::get(weft::task(add_to_named).remote(std::string("nobody"), 1L));
    FAIL() << "expected an error";
  } catch (const weft::TaskError& e) {
    EXPECT_NE(e.message().find("no actor is named 'nobody'"), std::string::npos) << e.what();
  }
}

TEST_F(Processes, NamedActorsLiveInWorkersAndAreFoundByName) {
  weft::actor<Counter>(make_counter_from).name("tally").remote(7L);  // no handle kept
  auto c = weft::get_actor<Counter>("tally");
  EXPECT_EQ(weft::get(c.task(&Counter::add).remote(3L)), 10);
  EXPECT_NE(weft::get(c.task(&Counter::where).remote()), getpid());
  EXPECT_EQ(weft::get(weft::get_actor<Counter>("tally").task(&Counter::add).remote(1L)), 11);
}

TEST_F(Processes, AMethodTakingARefRunsInTheActorsWorker) {
  auto c = weft::actor<Counter>(make_counter).remote();
  EXPECT_EQ(weft::get(c.task(&Counter::add_ref).remote(weft::put(5L))), 5);
  EXPECT_EQ(weft::get(c.task(&Counter::add).remote(2L)), 7);
}

TEST_F(Processes, AFailedFactoryFailsEveryCall) {
  auto c = weft::actor<Counter>(make_counter_from).remote(-1L);
  try {
    weft::get(c.task(&Counter::add).remote(1L));
    FAIL() << "expected a TaskError";
  } catch (const weft::TaskError& e) {
    EXPECT_EQ(e.exception_type(), "std::domain_error");
    EXPECT_EQ(e.task_name(), "make_counter_from");
  }
}

TEST_F(Processes, AnActorWhoseWorkerDiesFailsWithTheCause) {
  auto c = weft::actor<Counter>(make_counter).remote();
  const int64_t home = weft::get(c.task(&Counter::where).remote());
  ASSERT_EQ(kill(static_cast<pid_t>(home), SIGKILL), 0);
  for (int i = 0; i < 200 && executor().stats().worker_deaths == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  try {
    weft::get(c.task(&Counter::add).remote(1L));
    FAIL() << "expected weft::WorkerDied";
  } catch (const weft::WorkerDied& e) {
    EXPECT_EQ(e.exception_type(), "weft::WorkerDied");
  }
  // New actors and tasks still work.
  auto d = weft::actor<Counter>(make_counter).remote();
  EXPECT_EQ(weft::get(d.task(&Counter::add).remote(7L)), 7);
  EXPECT_EQ(weft::get(weft::task(square).remote(9)), 81);
}

// A large array is written into the node's store once and read in place by every worker.
TEST_F(Processes, ArraysAreWrittenOnceAndReadInPlaceByWorkers) {
  const size_t n = size_t{64} << 20;  // 256 MiB of floats
  auto xs = weft::Array<float>::make(n);
  ASSERT_TRUE(xs.in_shared_memory());
  std::fill_n(xs.mutable_data(), n, 0.5f);
  auto ref = weft::put(xs);  // no copy: the values are in the store already
  EXPECT_EQ(xs.mutable_data(), nullptr) << "shared values are immutable";
  std::vector<weft::ObjectRef<bool>> seen;
  std::vector<weft::ObjectRef<double>> sums;
  for (int i = 0; i < 4; ++i) {
    seen.push_back(weft::task(in_store).remote(ref));
    sums.push_back(weft::task(total).remote(ref));
  }
  for (auto& s : seen) EXPECT_TRUE(weft::get(s));
  for (auto& s : sums) EXPECT_EQ(weft::get(s), 0.5 * static_cast<double>(n));
  // A private array put once moves into the store once.
  auto private_values = weft::Array<float>(std::vector<float>(1 << 20, 2.0f));
  EXPECT_FALSE(private_values.in_shared_memory());
  auto pref = weft::put(private_values);
  EXPECT_TRUE(weft::get(pref).in_shared_memory());
  EXPECT_EQ(weft::get(weft::task(total).remote(pref)), 2.0 * (1 << 20));
}

TEST_F(Processes, ArraysComeBackFromWorkersInSharedMemory) {
  auto store = weft::objectstore::StoreClient::connect(executor().store_socket());
  ASSERT_TRUE(store.ok()) << store.status();
  {
  auto r = weft::task(ramp).remote(1 << 20);
  const weft::Array<float>& a = weft::get(r);
  ASSERT_EQ(a.size(), size_t{1} << 20);
  EXPECT_TRUE(a.in_shared_memory());
  for (size_t i = 0; i < a.size(); i += 4099) ASSERT_EQ(a[i], static_cast<float>(i));
  // Passed on to another task: by reference again.
  EXPECT_TRUE(weft::get(weft::task(in_store).remote(r)));
  // Small arrays travel inside messages.
  EXPECT_FALSE(weft::get(weft::task(in_store).remote(weft::Array<float>{1, 2, 3})));
  EXPECT_EQ(weft::get(weft::task(total).remote(weft::Array<float>{1, 2, 3})), 6.0);
  // A private array passed by value goes through a transient object for its one reader.
  EXPECT_TRUE(weft::get(weft::task(in_store).remote(weft::Array<float>(std::vector<float>(1 << 16, 1.0f)))));
  }
  // Every handle is gone: so is every object, in every process.
  bool empty = false;
  for (int i = 0; i < 200 && !empty; ++i) {
    auto st = (*store)->stats();
    ASSERT_TRUE(st.ok());
    empty = st->objects == 0;
    if (!empty) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(empty) << "objects left in the store";
}

// Frames from a stranger on the driver's control socket are rejected one by one, and the driver
// goes on serving its workers.
TEST_F(Processes, GarbageOnTheControlSocketIsRejected) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(executor().endpoint());
  const std::vector<std::string> garbage = {"", "\xff\xfe", std::string(5000, 'x'), "\x9b\x01\x02",
                                            std::string("\xdd\xff\xff\xff\xff", 5)};
  for (const auto& g : garbage) s.send(zmq::buffer(g), zmq::send_flags::none);
  std::vector<weft::ObjectRef<int>> after;
  for (int i = 0; i < 50; ++i) after.push_back(weft::task(square).remote(i));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(weft::get(after[i]), i * i);
  for (int i = 0; i < 100 && executor().stats().rejected_messages < garbage.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(executor().stats().rejected_messages, garbage.size());
}

// One worker busy with a long task while its pipeline holds short ones: the idle worker takes
// them back, and they finish long before the long task does.
TEST(ProcessStealing, AnIdleWorkerTakesTasksAWorkerHasNotStarted) {
  ASSERT_TRUE(weft::init({.num_workers = 1, .processes = 2, .pipeline_depth = 8}).is_ok());
  auto long_task = weft::task(spin_then_time).remote(400000);
  std::vector<weft::ObjectRef<int64_t>> short_tasks;
  for (int i = 0; i < 12; ++i) short_tasks.push_back(weft::task(spin_then_time).remote(2000));
  int64_t last_short = 0;
  for (auto& t : short_tasks) last_short = std::max(last_short, weft::get(t));
  EXPECT_LT(last_short, weft::get(long_task));
  EXPECT_GE(executor().stats().stolen, 1u);
  ASSERT_TRUE(weft::shutdown().is_ok());
}

TEST(EmbeddedArrays, ArraysWorkWithoutAStore) {
  ASSERT_TRUE(weft::init({.num_workers = 2}).is_ok());
  auto a = weft::Array<float>::make(1 << 20);
  EXPECT_FALSE(a.in_shared_memory());
  std::fill_n(a.mutable_data(), a.size(), 1.0f);
  EXPECT_EQ(weft::get(weft::task(total).remote(weft::put(a))), static_cast<double>(1 << 20));
  ASSERT_TRUE(weft::shutdown().is_ok());
}

TEST(ProcessOptions, BadOptionsAreRefused) {
  EXPECT_EQ(weft::init({.processes = -1}).code(), weft::StatusCode::kInvalidArgument);
  EXPECT_EQ(weft::init({.processes = 1, .pipeline_depth = 0}).code(), weft::StatusCode::kInvalidArgument);
}

}  // namespace

int main(int argc, char** argv) {
  weft::serve_if_worker();  // a worker process never gets past this line
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
