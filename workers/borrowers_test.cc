// What other processes borrow from a driver (workers/borrowers.h), against fakes: no processes.
#include "workers/borrowers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace weft::workers {
namespace {

// Records what it was asked; waits are answered by the test.
class FakeRefs final : public sched::RefService {
 public:
  void begin_capture() override {}
  detail::Carried end_capture() override { return {}; }
  void release(const detail::Carried&) override {}
  void wait(const ObjectId&, uint64_t borrower, std::function<void(detail::RefRecord)> ready) override {
    log.push_back("wait " + std::to_string(borrower));
    waiting.push_back(std::move(ready));
  }
  void borrow_done(uint64_t borrower, const ObjectId&) override { log.push_back("done " + std::to_string(borrower)); }
  void drop_borrower(uint64_t borrower) override { log.push_back("drop " + std::to_string(borrower)); }
  void set_requester(std::function<void(const ObjectId&, uint64_t)>) override {}
  void resolve(detail::RefRecord) override {}
  std::vector<std::string> log;
  std::vector<std::function<void(detail::RefRecord)>> waiting;
};

class FakeActors final : public sched::ActorExports {
 public:
  Result<uint64_t> lookup(const std::string& name, const std::string&, uint64_t borrower) override {
    log.push_back("lookup " + name + " by " + std::to_string(borrower));
    if (name != "counter") return Status::not_found("no actor is named '" + name + "'");
    return uint64_t{7};
  }
  void forward(uint64_t id, const std::string& method, std::string,
               std::function<void(detail::RemoteOutcome)> done) override {
    log.push_back("forward " + std::to_string(id) + " " + method);
    done(detail::RemoteOutcome{.ok = true, .payload = "r"});
  }
  void borrow(uint64_t id, uint64_t b) override {
    log.push_back("borrow " + std::to_string(id) + " by " + std::to_string(b));
  }
  void release(uint64_t id, uint64_t b) override {
    log.push_back("release " + std::to_string(id) + " by " + std::to_string(b));
  }
  void drop_borrower(uint64_t b) override { log.push_back("drop " + std::to_string(b)); }
  std::vector<std::string> log;
};

class FakeRelay final : public ObjectRelay {
 public:
  void relay(const ObjectId&, uint64_t owner, std::function<void(detail::RefRecord)> answer) override {
    log.push_back("relay to " + std::to_string(owner));
    answers.push_back(std::move(answer));
  }
  void borrow_done(const ObjectId&, uint64_t owner) override { log.push_back("done to " + std::to_string(owner)); }
  std::vector<std::string> log;
  std::vector<std::function<void(detail::RefRecord)>> answers;
};

struct BorrowersTest : ::testing::Test {
  FakeRefs refs;
  FakeActors actors;
  FakeRelay relay;
  std::vector<std::pair<pid_t, ControlMessage>> sent;
  Borrowers b{&refs, &actors, &relay, [this](pid_t p, ControlMessage m) { sent.emplace_back(p, std::move(m)); }};
  const ObjectId id{1, 2};
};

TEST_F(BorrowersTest, AWaitForAnObjectOfThisDriverIsAnsweredWhenItIsDone) {
  ControlMessage m = ObjectWait{id, 0};
  ASSERT_TRUE(b.handle(11, m));
  ASSERT_EQ(refs.waiting.size(), 1u);
  EXPECT_TRUE(sent.empty());
  detail::RefRecord r;
  r.set_id(id);
  refs.waiting[0](r);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, 11);
  EXPECT_TRUE(std::holds_alternative<ObjectReady>(sent[0].second));
  ControlMessage done = BorrowDone{id};
  ASSERT_TRUE(b.handle(11, done));
  EXPECT_EQ(refs.log, (std::vector<std::string>{"wait 11", "done 11"}));
  EXPECT_EQ(b.object_waits(), 1u);
}

TEST_F(BorrowersTest, AWaitForAnotherDriversObjectIsRelayedAndAcknowledgedThere) {
  ControlMessage m = ObjectWait{id, 500};
  ASSERT_TRUE(b.handle(11, m));
  ASSERT_EQ(relay.answers.size(), 1u);
  detail::RefRecord r;
  r.set_id(id);
  relay.answers[0](r);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, 11);
  ControlMessage done = BorrowDone{id};
  ASSERT_TRUE(b.handle(11, done));
  // A second wait, whose worker dies before reading the answer: acknowledged for it.
  ControlMessage again = ObjectWait{id, 500};
  ASSERT_TRUE(b.handle(12, again));
  b.gone(12);
  EXPECT_EQ(relay.log, (std::vector<std::string>{"relay to 500", "done to 500", "relay to 500", "done to 500"}));
  EXPECT_TRUE(refs.waiting.empty()) << "never asked of this driver's own objects";
}

TEST_F(BorrowersTest, WithoutPeersAnotherDriversObjectIsLost) {
  Borrowers alone{&refs, &actors, nullptr, [this](pid_t p, ControlMessage m) { sent.emplace_back(p, std::move(m)); }};
  ControlMessage m = ObjectWait{id, 500};
  ASSERT_TRUE(alone.handle(11, m));
  ASSERT_EQ(sent.size(), 1u);
  const auto& ready = std::get<ObjectReady>(sent[0].second);
  EXPECT_EQ(ready.record.state, detail::RefRecord::kFailed);
  EXPECT_EQ(ready.record.error()->kind, ErrorKind::kObjectLost);
}

TEST_F(BorrowersTest, ActorsAreLookedUpCalledBorrowedAndLetGoByTheirBorrower) {
  ControlMessage lookup = ActorLookup{1, "counter", "Counter"};
  ASSERT_TRUE(b.handle(11, lookup));
  ControlMessage missing = ActorLookup{2, "nobody", "Counter"};
  ASSERT_TRUE(b.handle(11, missing));
  ControlMessage call = ActorForward{3, 7, "add", {"args"}};
  ASSERT_TRUE(b.handle(11, call));
  ControlMessage borrow = ActorBorrow{7};
  ControlMessage release = ActorRelease{7};
  ASSERT_TRUE(b.handle(11, borrow));
  ASSERT_TRUE(b.handle(11, release));
  b.gone(11);
  EXPECT_EQ(actors.log, (std::vector<std::string>{"lookup counter by 11", "lookup nobody by 11", "forward 7 add",
                                                  "borrow 7 by 11", "release 7 by 11", "drop 11"}));
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(std::get<ActorFound>(sent[0].second).actor, 7u);
  EXPECT_EQ(std::get<ActorFound>(sent[1].second).actor, 0u);
  EXPECT_EQ(std::get<ActorReply>(sent[2].second).result.payload.data, "r");
  ControlMessage other = Steal{1};
  EXPECT_FALSE(b.handle(11, other)) << "not a borrower's message";
}

}  // namespace
}  // namespace weft::workers
