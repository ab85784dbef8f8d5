// Refs across processes (weft/detail/ref_wire.h): passed to tasks and actors in worker processes,
// returned from them (alone and inside values), waited for while still pending, read in place
// when they hold arrays, and let go everywhere afterwards. This binary is started again as the
// worker processes; main serves as a worker first.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <weft/weft.h>

#include "objectstore/store_client.h"
#include "runtime/actor_exports.h"
#include "runtime/object_refs.h"
#include "runtime/runtime.h"
#include "workers/process_executor.h"

namespace {

using weft::Array;
using weft::ObjectRef;

int square(int x) { return x * x; }
// Returns `x` after `ms` milliseconds.
int slow(int x, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return x;
}
int fails(int x) { throw std::invalid_argument("no good: " + std::to_string(x)); }

// Reads a ref inside the worker; says where it ran.
std::pair<long, int64_t> sum_at(ObjectRef<std::vector<int>> r) {
  const std::vector<int>& v = weft::get(r);
  return {std::accumulate(v.begin(), v.end(), 0L), getpid()};
}
int plus_one(ObjectRef<int> r) { return weft::get(r) + 1; }
double sum_big(ObjectRef<std::vector<double>> r) {
  const auto& v = weft::get(r);
  return std::accumulate(v.begin(), v.end(), 0.0);
}
// Refs to objects the worker makes: puts and nested tasks.
std::vector<ObjectRef<int>> make_refs(int n) {
  std::vector<ObjectRef<int>> out;
  for (int i = 0; i < n; ++i) out.push_back(i % 2 == 0 ? weft::put(i * i) : weft::task(square).remote(i));
  return out;
}
// Values holding refs that may still be pending when the worker reads them.
int sum_nested(ObjectRef<std::vector<ObjectRef<int>>> outer) {
  int t = 0;
  for (const auto& r : weft::get(outer)) t += weft::get(r);
  return t;
}
std::string first_error(ObjectRef<std::vector<ObjectRef<int>>> outer) {
  try {
    for (const auto& r : weft::get(outer)) weft::get(r);
    return "no error";
  } catch (const weft::TaskError& e) {
    return e.exception_type() + ": " + e.message();
  }
}
// Reads a ref to a pending object, then its process is killed.
int wait_then_die(ObjectRef<std::vector<ObjectRef<int>>> outer) {
  (void)weft::get(outer);  // the inner refs are read: the driver now waits on our behalf
  raise(SIGKILL);
  return 0;
}
// The same, for a large value that goes through the store; the worker dies once it has asked.
std::vector<double> slow_big(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return std::vector<double>(20000, 0.5);  // 180 KB packed: beyond what travels inline
}
int ask_then_die(ObjectRef<std::vector<ObjectRef<std::vector<double>>>> outer) {
  (void)weft::get(outer);  // the inner ref is imported: this worker asks the driver for it
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  raise(SIGKILL);
  return 0;
}
// Sleeps, then its process is killed: the tasks queued behind it are never read.
int die_after(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  raise(SIGKILL);
  return 0;
}
double sum_array(Array<float> a) { return std::accumulate(a.begin(), a.end(), 0.0); }
// Arrays by ref through several processes.
ObjectRef<Array<float>> make_array_ref(int n) {
  auto a = Array<float>::make(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) a.mutable_data()[i] = 1.0f;
  return weft::put(a);
}
std::pair<ObjectRef<Array<float>>, int64_t> pass_on(ObjectRef<Array<float>> r) { return {r, getpid()}; }
std::tuple<bool, double, int64_t> read_array(ObjectRef<Array<float>> r) {
  const Array<float>& a = weft::get(r);
  return {a.in_shared_memory(), std::accumulate(a.begin(), a.end(), 0.0), getpid()};
}
struct Tally {
  long n = 0;
  long add_ref(ObjectRef<long> k) { return n += weft::get(k); }
  long add_all(std::vector<ObjectRef<long>> ks) {
    for (auto& k : ks) n += weft::get(k);
    return n;
  }
  long add(long k) { return n += k; }
  int64_t where() { return getpid(); }
};
Tally make_tally() { return {}; }
// A factory whose argument may not leave the driver: the actor lives there.
struct DriverOnly {
  long n = 0;
  MSGPACK_DEFINE(n)
};
}  // namespace
template <>
struct weft::detail::stays_in_process<DriverOnly> : std::true_type {};
namespace {
Tally make_local_tally(DriverOnly seed) { return Tally{seed.n}; }

// Actor handles passed to tasks.
std::pair<long, int64_t> add_via(weft::ActorHandle<Tally> t, long k) {
  return {weft::get(t.task(&Tally::add).remote(k)), getpid()};
}
std::vector<int64_t> where_all(std::vector<weft::ActorHandle<Tally>> ts) {
  std::vector<int64_t> out;
  for (auto& t : ts) out.push_back(weft::get(t.task(&Tally::where).remote()));
  out.push_back(getpid());
  return out;
}
weft::ActorHandle<Tally> echo_actor(weft::ActorHandle<Tally> t) { return t; }
weft::ActorHandle<Tally> slow_echo_actor(weft::ActorHandle<Tally> t, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return t;
}
// Reads a handle that is still being made when the task starts (its answer lends the actor).
long add_via_pending(ObjectRef<std::vector<ObjectRef<weft::ActorHandle<Tally>>>> outer, long k) {
  weft::ActorHandle<Tally> t = weft::get(weft::get(outer).at(0));
  return weft::get(t.task(&Tally::add).remote(k));
}
int hold_actor_then_die(weft::ActorHandle<Tally> t) {
  (void)weft::get(t.task(&Tally::add).remote(1));
  raise(SIGKILL);
  return 0;
}

WEFT_REMOTE(square, slow, fails, sum_at, plus_one, sum_big, make_refs, sum_nested, first_error, wait_then_die,
            make_array_ref, pass_on, read_array, make_tally, &Tally::add_ref, &Tally::add_all);
WEFT_REMOTE(slow_big, ask_then_die, die_after, sum_array);
WEFT_REMOTE(&Tally::add, &Tally::where, make_local_tally, add_via, where_all, echo_actor, hold_actor_then_die,
            slow_echo_actor, add_via_pending);

size_t exported_actors() { return weft::runtime::ActorExportTable::process().exported(); }

weft::workers::ProcessExecutor& executor() {
  return dynamic_cast<weft::workers::ProcessExecutor&>(weft::runtime::live()->executor());
}

// Polls `done` for up to five seconds.
template <class F>
bool eventually(F done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

class Refs : public ::testing::Test {
 protected:
  void SetUp() override {
    weft::Status s = weft::init({.num_workers = 2, .processes = 3, .pipeline_depth = 2});
    ASSERT_TRUE(s.is_ok()) << s;
    auto c = weft::objectstore::StoreClient::connect(executor().store_socket());
    ASSERT_TRUE(c.ok()) << c.status();
    store_ = std::move(*c);
  }
  void TearDown() override {
    // Nothing is kept for anyone once every ref is gone.
    EXPECT_TRUE(eventually([] { return weft::runtime::ObjectRefs::process().owned_entries() == 0; }))
        << weft::runtime::ObjectRefs::process().owned_entries() << " objects still kept for other processes";
    store_.reset();
    ASSERT_TRUE(weft::shutdown().is_ok());
  }
  uint64_t store_objects() {
    auto st = store_->stats();
    return st.ok() ? st->objects : ~uint64_t{0};
  }
  std::unique_ptr<weft::objectstore::StoreClient> store_;
};

TEST_F(Refs, ARefArgumentIsReadInsideAWorker) {
  auto data = weft::put(std::vector<int>{1, 2, 3, 4});
  auto [sum, pid] = weft::get(weft::task(sum_at).remote(data));
  EXPECT_EQ(sum, 10);
  EXPECT_NE(pid, getpid()) << "a task taking a ref runs in a worker process now";
}

TEST_F(Refs, ALargeValueGoesThroughTheStoreAndIsLetGo) {
  {
    auto big = weft::put(std::vector<double>(1 << 20, 0.5));  // 8 MiB packed
    std::vector<ObjectRef<double>> sums;
    for (int i = 0; i < 4; ++i) sums.push_back(weft::task(sum_big).remote(big));
    for (auto& s : sums) EXPECT_EQ(weft::get(s), 0.5 * (1 << 20));
  }
  EXPECT_TRUE(eventually([&] { return store_objects() == 0; })) << store_objects() << " objects left in the store";
}

TEST_F(Refs, RefsMadeInAWorkerComeBackInsideAValue) {
  auto refs = weft::get(weft::task(make_refs).remote(6));
  ASSERT_EQ(refs.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(weft::get(refs[i]), i * i);
  // And go on to another worker.
  EXPECT_EQ(weft::get(weft::task(plus_one).remote(refs[5])), 26);
}

TEST_F(Refs, APendingRefInsideAValueIsWaitedForInTheWorker) {
  auto late = weft::task(slow).remote(40, 300);
  auto outer = weft::put(std::vector<ObjectRef<int>>{late, weft::put(2)});
  auto total = weft::task(sum_nested).remote(outer);
  EXPECT_EQ(weft::get(total), 42);
  EXPECT_GE(executor().stats().object_waits, 1u) << "the worker asked the driver for the pending value";
}

TEST_F(Refs, AFailureReachesTheBorrowerWithItsType) {
  auto bad = weft::task(fails).remote(7);
  auto outer = weft::put(std::vector<ObjectRef<int>>{weft::task(slow).remote(1, 100), bad});
  EXPECT_EQ(weft::get(weft::task(first_error).remote(outer)), "std::invalid_argument: no good: 7");
}

TEST_F(Refs, AnArrayPassedByRefThroughThreeProcessesIsReadInPlace) {
  const int n = 1 << 20;
  ObjectRef<Array<float>> r1 = weft::get(weft::task(make_array_ref).remote(n));
  EXPECT_TRUE(weft::get(r1).in_shared_memory());
  auto [r2, through] = weft::get(weft::task(pass_on).remote(r1));
  EXPECT_NE(through, getpid());
  EXPECT_EQ(r2.id(), r1.id());
  auto [shared, sum, reader] = weft::get(weft::task(read_array).remote(r2));
  EXPECT_TRUE(shared) << "the reader maps the same store object";
  EXPECT_EQ(sum, static_cast<double>(n));
  EXPECT_NE(reader, getpid());
}

TEST_F(Refs, ActorMethodsTakeRefs) {
  auto t = weft::actor<Tally>(make_tally).remote();
  EXPECT_EQ(weft::get(t.task(&Tally::add_ref).remote(weft::put(5L))), 5);
  std::vector<ObjectRef<long>> ks = {weft::put(1L), weft::put(2L)};
  EXPECT_EQ(weft::get(t.task(&Tally::add_all).remote(ks)), 8);
}

TEST_F(Refs, ABorrowerThatDiesIsLetGo) {
  auto late = weft::task(slow).remote(1, 500);
  auto outer = weft::put(std::vector<ObjectRef<int>>{late});
  auto died = weft::task(wait_then_die).remote(outer);
  EXPECT_THROW(weft::get(died), weft::WorkerDied);
  EXPECT_EQ(weft::get(late), 1);
  // TearDown checks that the driver keeps nothing for the dead worker.
}

TEST_F(Refs, TheValueADeadBorrowerAskedForIsLetGoFromTheStore) {
  const uint64_t before = store_objects();
  {
    auto late = weft::task(slow_big).remote(600);
    auto outer = weft::put(std::vector<ObjectRef<std::vector<double>>>{late});
    auto died = weft::task(ask_then_die).remote(outer);
    EXPECT_THROW(weft::get(died), weft::WorkerDied);
    EXPECT_EQ(weft::get(late).size(), 20000u);  // the answer to the dead worker went through the store
    EXPECT_GE(executor().stats().object_waits, 1u) << "the worker asked for the value before it died";
  }
  EXPECT_TRUE(eventually([&] { return store_objects() == before; }))
      << store_objects() - before << " objects left in the store for a reader that died";
}

TEST_F(Refs, AnArgumentHeldForAWorkerThatDiesBeforeReadingItIsLetGo) {
  const uint64_t before = store_objects();
  {
    auto a = Array<float>::make(1 << 16);  // 256 KiB: held in the store for each task's reader
    std::fill(a.mutable_data(), a.mutable_data() + a.size(), 1.0f);
    // Each worker runs a task that kills it, with a task taking the array queued behind it
    // (pipeline depth 2): those messages are never read.
    std::vector<ObjectRef<int>> dying;
    std::vector<ObjectRef<double>> unread;
    for (int i = 0; i < 3; ++i) dying.push_back(weft::task(die_after).max_retries(0).remote(300));
    for (int i = 0; i < 3; ++i) unread.push_back(weft::task(sum_array).max_retries(0).remote(a));
    for (auto& d : dying) EXPECT_THROW(weft::get(d), weft::WorkerDied);
    for (auto& u : unread) {
      try {
        EXPECT_EQ(weft::get(u), 65536.0);  // if it reached a live worker after all
      } catch (const weft::WorkerDied&) {
      }
    }
    EXPECT_GT(store_objects(), before);
  }
  EXPECT_TRUE(eventually([&] { return store_objects() == before; }))
      << store_objects() - before << " objects left in the store, held for readers that died";
}

TEST_F(Refs, AnActorHandlePassedToTasksIsCalledFromWorkers) {
  {
    auto t = weft::actor<Tally>(make_tally).remote();
    std::vector<ObjectRef<std::pair<long, int64_t>>> calls;
    for (int i = 1; i <= 20; ++i) calls.push_back(weft::task(add_via).remote(t, static_cast<long>(i)));
    for (auto& c : calls) EXPECT_NE(weft::get(c).second, getpid()) << "the task ran in a worker process";
    EXPECT_EQ(weft::get(t.task(&Tally::add).remote(0L)), 210) << "every worker's call reached the one actor";
    // Handed back to the driver, it is the same actor.
    weft::ActorHandle<Tally> back = weft::get(weft::task(echo_actor).remote(t));
    EXPECT_EQ(weft::get(back.task(&Tally::add).remote(1L)), 211);
  }
  EXPECT_TRUE(eventually([] { return exported_actors() == 0; })) << exported_actors() << " actors still lent";
}

TEST_F(Refs, AHandleStillBeingMadeIsReadInAWorkerOnceItIsDone) {
  {
    auto t = weft::actor<Tally>(make_tally).remote();
    auto later = weft::task(slow_echo_actor).remote(t, 300);
    auto outer = weft::put(std::vector<ObjectRef<weft::ActorHandle<Tally>>>{later});
    EXPECT_EQ(weft::get(weft::task(add_via_pending).remote(outer, 7L)), 7);
    EXPECT_EQ(weft::get(t.task(&Tally::add).remote(0L)), 7);
  }
  EXPECT_TRUE(eventually([] { return exported_actors() == 0; })) << exported_actors() << " actors still lent";
}

TEST_F(Refs, HandlesToAnActorLivingInTheDriverReachItFromWorkers) {
  auto local = weft::actor<Tally>(make_local_tally).remote(DriverOnly{5});
  auto hosted = weft::actor<Tally>(make_tally).remote();
  // Alone, a handle to the driver's own actor keeps the task in the driver, as before.
  EXPECT_EQ(weft::get(weft::task(add_via).remote(local, 1L)), std::make_pair(6L, static_cast<int64_t>(getpid())));
  // Inside a value, it travels: the worker's calls run in the driver, on the one instance.
  const std::vector<int64_t> at = weft::get(weft::task(where_all).remote(std::vector{local, hosted}));
  ASSERT_EQ(at.size(), 3u);
  EXPECT_EQ(at[0], getpid()) << "the driver's actor ran in the driver";
  EXPECT_NE(at[1], getpid()) << "the hosted actor ran in its worker";
  EXPECT_NE(at[2], getpid()) << "the task ran in a worker";
}

TEST_F(Refs, AnActorLentToAWorkerThatDiesIsLetGo) {
  {
    auto t = weft::actor<Tally>(make_tally).remote();
    EXPECT_THROW(weft::get(weft::task(hold_actor_then_die).remote(t)), weft::WorkerDied);
    EXPECT_EQ(weft::get(t.task(&Tally::add).remote(0L)), 1) << "the call it made before dying counted";
  }
  EXPECT_TRUE(eventually([] { return exported_actors() == 0; })) << exported_actors() << " actors still lent";
}

TEST_F(Refs, ManyRefsRoundTripWithoutLeaks) {
  std::vector<ObjectRef<int>> out;
  for (int i = 0; i < 200; ++i) out.push_back(weft::task(plus_one).remote(weft::put(i)));
  for (int i = 0; i < 200; ++i) EXPECT_EQ(weft::get(out[i]), i + 1);
}

}  // namespace
