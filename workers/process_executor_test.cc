// The dispatcher (ProcessExecutor) over in-memory fakes: the test plays the workers, so retries,
// restarts, stealing, actors rebuilt elsewhere, waits for objects and strangers' garbage are
// checked with no processes or sockets.
#include "workers/process_executor.h"

#include <gtest/gtest.h>

#include <deque>

#include <future>
#include <set>
#include <string>

#include "weft/detail/remote_task.h"
#include "weft/registry.h"
#include "workers/fake_workers_for_test.h"

namespace weft::workers {
namespace {

using namespace std::chrono_literals;
using testing::FakeWorkers;

// A task of a registered function, as the dispatcher sees one: what happened to it is recorded.
class TestTask final : public detail::Runnable, public detail::RemoteTask {
 public:
  explicit TestTask(std::string args, int retries = 0) : args_(std::move(args)), retries_(retries) {}
  detail::RemoteTask* remote() override { return this; }
  void run() override { done_.set_value("ran locally"); }
  void cancel() override { done_.set_value("cancelled"); }
  const RemoteEntry* remote_entry() override { return &entry_; }
  Result<std::string> pack_arguments() override { return args_; }
  void finish_remote(std::string_view result) override { done_.set_value("ok " + std::string(result)); }
  void fail_remote(detail::ErrorPtr e) override {
    done_.set_value("failed kind " + std::to_string(static_cast<int>(e->kind)) + ": " + e->message);
  }
  bool retry_after_worker_death() override { return retries_-- > 0; }
  const std::string& task_name() const override { return entry_.name; }
  std::string outcome() {
    auto f = done_.get_future();
    return f.wait_for(5s) == std::future_status::ready ? f.get() : "no outcome";
  }

 private:
  RemoteEntry entry_{"f", RemoteKind::kFunction, "", nullptr, "", nullptr, nullptr};
  std::string args_;
  int retries_;
  std::promise<std::string> done_;
};

// What a RefService was asked; answers a wait at once with a value record. Each message packed
// carries one hold, numbered from 1 in packing order.
class RecordingRefs final : public sched::RefService {
 public:
  void begin_capture() override {}
  detail::Carried end_capture() override {
    std::lock_guard<std::mutex> lock(mu_);
    return detail::Carried{{}, {detail::StoreHold{ObjectId{0, 1}, ++captures_}}};
  }
  void release(const detail::Carried& carried) override {
    for (const auto& h : carried.holds) log("release " + std::to_string(h.token));
  }
  void wait(const ObjectId& id, uint64_t borrower, std::function<void(detail::RefRecord)> ready) override {
    log("wait " + std::to_string(borrower));
    detail::RefRecord r;
    r.set_id(id);
    r.state = detail::RefRecord::kInline;
    r.bytes = "v";
    ready(r);
  }
  void borrow_done(uint64_t borrower, const ObjectId&) override { log("done " + std::to_string(borrower)); }
  void drop_borrower(uint64_t borrower) override { log("drop " + std::to_string(borrower)); }
  void set_requester(std::function<void(const ObjectId&, uint64_t)>) override {}
  void resolve(detail::RefRecord) override {}
  std::vector<std::string> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  void log(std::string s) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(s));
  }
  std::mutex mu_;
  std::vector<std::string> calls_;
  uint64_t captures_ = 0;
};

template <class M>
M expect(std::optional<ControlMessage> m) {
  EXPECT_TRUE(m.has_value()) << "no message";
  if (!m) return M{};
  EXPECT_TRUE(std::holds_alternative<M>(*m)) << "got a " << name_of(*m) << " message";
  return std::holds_alternative<M>(*m) ? std::get<M>(*m) : M{};
}

TaskResult ok(uint64_t seq, std::string payload) { return TaskResult{seq, true, {std::move(payload)}, {}}; }

class Dispatcher : public ::testing::Test {
 protected:
  void start(int processes, int depth) {
    auto ex = ProcessExecutor::start_with({.processes = processes, .pipeline_depth = depth, .refs = &refs_},
                                          workers_.transport(), workers_.host());
    ASSERT_TRUE(ex.ok()) << ex.status();
    ex_ = std::move(*ex);
  }
  void TearDown() override {
    if (ex_) ex_->shutdown();
  }
  FakeWorkers workers_;
  RecordingRefs refs_;
  std::unique_ptr<ProcessExecutor> ex_;
};

TEST_F(Dispatcher, ATaskGoesToAWorkerAndItsResultFinishesIt) {
  start(1, 1);
  TestTask t("args");
  ex_->submit(&t);
  const Task sent = expect<Task>(workers_.next_to(0));
  EXPECT_EQ(sent.function, "f");
  EXPECT_EQ(sent.payload.data, "args");
  workers_.reply(0, ok(sent.seq, "42"));
  EXPECT_EQ(t.outcome(), "ok 42");
}

TEST_F(Dispatcher, ALargeResultIsPulledInPiecesAFewAtATimeAndRetriedWholeWhenItsWorkerDies) {
  start(1, 1);
  TestTask t("a", /*retries=*/1);
  ex_->submit(&t);
  Task sent = expect<Task>(workers_.next_to(0));
  std::string big(10 * kPiece + 12345, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 4096);
  TaskResult head = ok(sent.seq, "");
  head.streamed = big.size();
  workers_.reply(0, head);
  // A window's worth of pieces is asked for; no more until one arrives.
  std::deque<PayloadPull> asked;
  for (size_t k = 0; k < kPieceWindow; ++k) asked.push_back(expect<PayloadPull>(workers_.next_to(0)));
  EXPECT_FALSE(workers_.next_to(0, 100ms).has_value());
  EXPECT_EQ(asked[1].offset, kPiece);
  // The worker dies with half of it sent: the task runs again, and its result is pulled anew.
  for (int k = 0; k < 3; ++k) {
    const PayloadPull p = asked.front();
    asked.pop_front();
    workers_.reply(0, PayloadPiece{p.seq, p.offset, {big.substr(p.offset, p.length)}});
    asked.push_back(expect<PayloadPull>(workers_.next_to(0)));
  }
  workers_.kill(0);
  for (int i = 0; i < 500 && workers_.starts(0) < 2; ++i) std::this_thread::sleep_for(10ms);
  sent = expect<Task>(workers_.next_to(0));
  head.seq = sent.seq;
  workers_.reply(0, head);
  asked.clear();
  for (size_t k = 0; k < kPieceWindow; ++k) asked.push_back(expect<PayloadPull>(workers_.next_to(0)));
  // A piece of a result that is not streaming is refused and counted.
  workers_.reply(0, PayloadPiece{sent.seq + 100, 0, {"x"}});
  uint64_t requested = 0;
  for (const PayloadPull& p : asked) requested += p.length;
  while (!asked.empty()) {
    const PayloadPull p = asked.front();
    asked.pop_front();
    EXPECT_LE(p.length, kPiece);
    workers_.reply(0, PayloadPiece{p.seq, p.offset, {big.substr(p.offset, p.length)}});
    if (requested < big.size()) {
      asked.push_back(expect<PayloadPull>(workers_.next_to(0)));
      requested += asked.back().length;
    }
  }
  EXPECT_EQ(requested, big.size());
  EXPECT_EQ(t.outcome(), "ok " + big);
  EXPECT_EQ(ex_->stats().rejected_messages, 1u);

  // A worker that sends a piece out of turn fails its task, and is told to let the result go.
  TestTask broken("b");
  ex_->submit(&broken);
  sent = expect<Task>(workers_.next_to(0));
  head.seq = sent.seq;
  workers_.reply(0, head);
  for (size_t k = 0; k < kPieceWindow; ++k) (void)expect<PayloadPull>(workers_.next_to(0));
  workers_.reply(0, PayloadPiece{sent.seq, kPiece, {"x"}});
  const std::string why = broken.outcome();
  EXPECT_NE(why.find("where bytes from 0 were due"), std::string::npos) << why;
  const PayloadPull drop = expect<PayloadPull>(workers_.next_to(0));
  EXPECT_EQ(drop.seq, sent.seq);
  EXPECT_EQ(drop.length, 0u);
}

TEST_F(Dispatcher, LargeArgumentsArePulledByTheirWorkerInPieces) {
  start(1, 1);
  std::string big(3 * kPiece + 777, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 13 + i / 1000);
  TestTask t(big);
  ex_->submit(&t);
  const Task sent = expect<Task>(workers_.next_to(0));
  EXPECT_TRUE(sent.payload.data.empty());
  EXPECT_EQ(sent.streamed, big.size());
  // Out of range, or too long: refused and counted.
  workers_.reply(0, PayloadPull{sent.seq, big.size(), 1});
  workers_.reply(0, PayloadPull{sent.seq, 0, kPiece + 1});
  workers_.reply(0, PayloadPull{sent.seq + 5, 0, 10});
  std::string got;
  while (got.size() < big.size()) {
    const uint64_t length = std::min<uint64_t>(kPiece, big.size() - got.size());
    workers_.reply(0, PayloadPull{sent.seq, got.size(), length});
    const PayloadPiece piece = expect<PayloadPiece>(workers_.next_to(0));
    ASSERT_EQ(piece.offset, got.size());
    got += piece.data.data;
  }
  EXPECT_EQ(got, big);
  // The last piece sent, the driver let them go: asking again is refused.
  workers_.reply(0, PayloadPull{sent.seq, 0, 10});
  workers_.reply(0, ok(sent.seq, "done"));
  EXPECT_EQ(t.outcome(), "ok done");
  EXPECT_EQ(ex_->stats().rejected_messages, 4u);
}

TEST_F(Dispatcher, AWorkersDeathRetriesItsTaskElsewhereThenFailsItAndTheWorkerIsRestarted) {
  start(2, 1);
  TestTask retried("a", /*retries=*/1), lost("b", /*retries=*/0);
  ex_->submit(&retried);
  auto first = workers_.next_to_any();
  ASSERT_TRUE(first);
  const uint32_t home = first->first;
  workers_.kill(home);
  // Retried: sent again (to the other worker, or to this one restarted).
  auto again = workers_.next_to_any();
  ASSERT_TRUE(again);
  const Task t = expect<Task>(again->second);
  workers_.reply(again->first, ok(t.seq, "done"));
  EXPECT_EQ(retried.outcome(), "ok done");
  for (int i = 0; i < 500 && workers_.starts(home) < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(workers_.starts(home), 2) << "the dead worker is started again";

  ex_->submit(&lost);
  auto sent = workers_.next_to_any();
  ASSERT_TRUE(sent);
  workers_.kill(sent->first, "killed by signal 11 (Segmentation fault)");
  const std::string why = lost.outcome();
  EXPECT_NE(why.find("failed kind 2"), std::string::npos) << why;  // WorkerDied
  EXPECT_NE(why.find("Segmentation fault"), std::string::npos) << why;
  EXPECT_EQ(ex_->stats().retried, 1u);
  EXPECT_EQ(ex_->stats().worker_deaths, 2u);
}

TEST_F(Dispatcher, WhatAMessageLostWithItsWorkerCarriedIsLetGo) {
  start(1, 1);
  TestTask t("a", /*retries=*/1);
  ex_->submit(&t);
  (void)expect<Task>(workers_.next_to(0));  // carries hold 1
  const std::string first = "drop " + std::to_string(workers_.pid_of(0));
  workers_.kill(0);  // before reading it: packed again (hold 2), 1 let go
  for (int i = 0; i < 500 && workers_.starts(0) < 2; ++i) std::this_thread::sleep_for(10ms);
  (void)expect<Task>(workers_.next_to(0));
  EXPECT_EQ(refs_.calls(), (std::vector<std::string>{first, "release 1"}));
  const std::string second = "drop " + std::to_string(workers_.pid_of(0));
  workers_.kill(0);  // no retries left: the task fails and its second message's hold is let go
  EXPECT_NE(t.outcome().find("failed kind 2"), std::string::npos);
  for (int i = 0; i < 500 && refs_.calls().size() < 4; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(refs_.calls(), (std::vector<std::string>{first, "release 1", second, "release 2"}));
}

TEST_F(Dispatcher, AWorkerYieldedToAnotherDriverStopsWhenIdleAndWaitsParkedForASlot) {
  start(2, 1);
  TestTask busy("busy");
  ex_->submit(&busy);
  auto sent = workers_.next_to_any();
  ASSERT_TRUE(sent);
  const uint32_t working = sent->first, idle = 1 - working;
  const uint64_t busy_seq = expect<Task>(sent->second).seq;
  workers_.ask_yield(1);  // the idle one goes: nothing of it is lost
  (void)expect<Shutdown>(workers_.next_to(idle));
  workers_.park_starts(true);
  workers_.kill(idle, "exited with status 0");
  for (int i = 0; i < 500 && ex_->stats().retired == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(ex_->stats().retired, 1u);
  EXPECT_EQ(ex_->stats().worker_deaths, 0u) << "a retirement is not a death";
  EXPECT_EQ(ex_->worker_pids()[idle], -1) << "asked for again, and parked";
  // Meanwhile everything goes to the worker left.
  TestTask next("next");
  ex_->submit(&next);
  workers_.reply(working, ok(busy_seq, "1"));
  EXPECT_EQ(busy.outcome(), "ok 1");
  workers_.reply(working, ok(expect<Task>(workers_.next_to(working)).seq, "2"));
  EXPECT_EQ(next.outcome(), "ok 2");
  // A slot frees up: it starts, says hello and gets work again.
  workers_.grant(idle);
  for (int i = 0; i < 500 && ex_->worker_pids()[idle] <= 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GT(ex_->worker_pids()[idle], 0);
  TestTask a("a"), b("b");
  ex_->submit(&a);
  ex_->submit(&b);
  std::set<uint32_t> used;
  for (int i = 0; i < 2; ++i) {
    auto m = workers_.next_to_any();
    ASSERT_TRUE(m);
    used.insert(m->first);
    workers_.reply(m->first, ok(expect<Task>(m->second).seq, "x"));
  }
  EXPECT_EQ(used, (std::set<uint32_t>{0, 1}));
  EXPECT_EQ(a.outcome(), "ok x");
  EXPECT_EQ(b.outcome(), "ok x");
}

TEST_F(Dispatcher, AnIdleWorkerGetsBackTasksABusyOneHasNotStarted) {
  start(2, 4);
  std::vector<std::unique_ptr<TestTask>> tasks;
  for (int i = 0; i < 4; ++i) {
    tasks.push_back(std::make_unique<TestTask>(std::to_string(i)));
    ex_->submit(tasks.back().get());
  }
  // Both workers get some; worker 1 finishes its own at once, worker 0 sits on its own.
  std::map<uint32_t, std::vector<uint64_t>> got;
  std::map<uint64_t, std::string> args;
  for (int i = 0; i < 4; ++i) {
    auto m = workers_.next_to_any();
    ASSERT_TRUE(m);
    const Task t = expect<Task>(m->second);
    got[m->first].push_back(t.seq);
    args[t.seq] = t.payload.data;
  }
  ASSERT_EQ(got[0].size(), 2u);
  for (uint64_t seq : got[1]) workers_.reply(1, ok(seq, "w1"));
  // The dispatcher asks worker 0 for what it has not started and hands it to worker 1.
  const Steal steal = expect<Steal>(workers_.next_to(0));
  EXPECT_GE(steal.count, 1u);
  workers_.reply(0, Returned{{got[0].back()}});
  const Task moved = expect<Task>(workers_.next_to(1));
  EXPECT_EQ(moved.payload.data, args[got[0].back()]) << "the task worker 0 gave back";
  workers_.reply(1, ok(moved.seq, "w1"));
  workers_.reply(0, ok(got[0].front(), "w0"));
  std::multiset<std::string> outcomes;
  for (auto& t : tasks) outcomes.insert(t->outcome());
  EXPECT_EQ(outcomes, (std::multiset<std::string>{"ok w0", "ok w1", "ok w1", "ok w1"}));
  EXPECT_EQ(ex_->stats().stolen, 1u);
}

TEST_F(Dispatcher, AnActorWithRestartsIsRebuiltAndLaterCallsReachTheNewInstance) {
  start(2, 2);
  auto created = std::async(std::launch::async, [&] { return ex_->create_actor("make", "fargs", "make", 1); });
  auto create = workers_.next_to_any();
  ASSERT_TRUE(create);
  const ActorCreate c = expect<ActorCreate>(create->second);
  EXPECT_EQ(c.factory, "make");
  workers_.reply(create->first, ok(c.seq, ""));
  const detail::RemoteOutcome made = created.get();
  ASSERT_TRUE(made.ok);

  workers_.kill(create->first);
  auto rebuild = workers_.next_to_any();
  ASSERT_TRUE(rebuild);
  const ActorCreate again = expect<ActorCreate>(rebuild->second);
  EXPECT_EQ(again.actor, made.actor);
  EXPECT_EQ(again.payload.data, "fargs") << "rebuilt from the same arguments";
  workers_.reply(rebuild->first, ok(again.seq, ""));

  auto called = std::async(std::launch::async, [&] { return ex_->call_actor(made.actor, "m", "margs", "m"); });
  const ActorCall call = expect<ActorCall>(workers_.next_to(rebuild->first));
  workers_.reply(rebuild->first, ok(call.seq, "7"));
  const detail::RemoteOutcome out = called.get();
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.payload, "7");
  EXPECT_EQ(ex_->stats().actor_restarts, 1u);
  ex_->drop_actor(made.actor);
  (void)expect<ActorDrop>(workers_.next_to(rebuild->first));
}

TEST_F(Dispatcher, AWorkerWaitingForAnObjectIsAnsweredAndLetGoWhenItDies) {
  start(1, 1);
  const pid_t pid = workers_.pid_of(0);
  workers_.reply(0, ObjectWait{ObjectId{1, 2}});
  const ObjectReady ready = expect<ObjectReady>(workers_.next_to(0));
  EXPECT_EQ(ready.record.id(), (ObjectId{1, 2}));
  EXPECT_EQ(ready.record.bytes, "v");
  workers_.reply(0, BorrowDone{ObjectId{1, 2}});
  workers_.kill(0);
  for (int i = 0; i < 500 && refs_.calls().size() < 3; ++i) std::this_thread::sleep_for(10ms);
  const std::string p = std::to_string(pid);
  EXPECT_EQ(refs_.calls(), (std::vector<std::string>{"wait " + p, "done " + p, "drop " + p}));
}

TEST_F(Dispatcher, MessagesFromStrangersAndGarbageAreRejected) {
  start(1, 1);
  workers_.deliver("stranger", encode(TaskResult{1, true, {"x"}, {}}));
  workers_.deliver("w0.1", "\xff\xfe garbage");
  workers_.reply(0, TaskResult{999, true, {"x"}, {}});  // a result for no task
  for (int i = 0; i < 500 && ex_->stats().rejected_messages < 3; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(ex_->stats().rejected_messages, 3u);
  TestTask t("still served");
  ex_->submit(&t);
  const Task sent = expect<Task>(workers_.next_to(0));
  workers_.reply(0, ok(sent.seq, "yes"));
  EXPECT_EQ(t.outcome(), "ok yes");
}

}  // namespace
}  // namespace weft::workers
