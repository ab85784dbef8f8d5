#include "cluster/lease_book.h"

#include <gtest/gtest.h>

namespace weft::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = LeaseBook::Clock;

WorkerLease lease(const std::string& id, const std::string& owner) {
  return WorkerLease{.lease_id = id, .owner = owner, .index = 3, .executable = "/bin/true", .argv = {"true"}};
}

const auto all_alive = [](const std::string&) { return true; };

TEST(LeaseBook, PlacesOnTheNodeWithMostFreeSlotsButNeverTheOwner) {
  LeaseBook book(2s, 5s);
  LeaseOut out;
  const auto t = Clock::now();
  book.ask(lease("a:1", "a"), {{"a", true, 8, 0}, {"b", true, 2, 1}, {"c", true, 4, 1}, {"d", false, 9, 0}}, t, out);
  ASSERT_EQ(out.starts.size(), 1u);
  EXPECT_EQ(out.starts[0].first, "c");
  EXPECT_EQ(out.starts[0].second.lease.index, 3u);
  // c has 3 free slots, less the one just placed there and not yet reported: 2, as b had 1.
  book.ask(lease("a:2", "a"), {{"b", true, 2, 1}, {"c", true, 4, 1}}, t, out);
  book.ask(lease("a:3", "a"), {{"b", true, 2, 1}, {"c", true, 4, 1}}, t, out);
  book.ask(lease("a:4", "a"), {{"b", true, 2, 1}, {"c", true, 4, 1}}, t, out);
  ASSERT_EQ(out.starts.size(), 4u);
  EXPECT_EQ(out.starts[1].first, "c");
  EXPECT_EQ(out.starts[2].first, "b");  // a tie: the first listed
  EXPECT_EQ(out.starts[3].first, "c");
  EXPECT_TRUE(out.answers.empty());
  // Every slot is taken now: refused, and not kept.
  book.ask(lease("a:5", "a"), {{"b", true, 2, 1}, {"c", true, 4, 1}}, t, out);
  ASSERT_EQ(out.answers.size(), 1u);
  EXPECT_TRUE(out.answers[0].second.ended);
  EXPECT_EQ(out.answers[0].second.node_id, "");
  EXPECT_EQ(book.size(), 4u);
}

TEST(LeaseBook, FollowsALeaseFromStartToEndAndForgetsIt) {
  LeaseBook book(2s, 5s);
  LeaseOut out;
  const auto t = Clock::now();
  book.ask(lease("a:1", "a"), {{"b", true, 2, 0}}, t, out);
  HeartbeatReply reply;
  book.heartbeat("a", {"a:1"}, {}, all_alive, t, reply, out);
  book.heartbeat("b", {}, {{"a:1", "a", 4242, false, ""}}, all_alive, t, reply, out);
  ASSERT_EQ(out.answers.size(), 1u);
  EXPECT_EQ(out.answers[0].first, "a");
  EXPECT_EQ(out.answers[0].second.node_id, "b");
  EXPECT_EQ(out.answers[0].second.pid, 4242);
  EXPECT_FALSE(out.answers[0].second.ended);
  // Reported again, unchanged: nothing new to say.
  book.heartbeat("b", {}, {{"a:1", "a", 4242, false, ""}}, all_alive, t, reply, out);
  EXPECT_EQ(out.answers.size(), 1u);
  // It exits: the owner hears, and hears again while it still lists the lease.
  book.heartbeat("b", {}, {{"a:1", "a", 4242, true, "killed by signal 9"}}, all_alive, t, reply, out);
  ASSERT_EQ(out.answers.size(), 2u);
  EXPECT_TRUE(out.answers[1].second.ended);
  EXPECT_EQ(out.answers[1].second.how, "killed by signal 9");
  book.heartbeat("a", {"a:1"}, {}, all_alive, t, reply, out);
  EXPECT_EQ(out.answers.size(), 3u);
  EXPECT_TRUE(reply.lease_done.empty());
  // The owner let go: the running node forgets it.
  book.heartbeat("a", {}, {}, all_alive, t + 3s, reply, out);
  book.heartbeat("b", {}, {{"a:1", "a", 4242, true, "killed by signal 9"}}, all_alive, t + 3s, reply, out);
  EXPECT_EQ(reply.lease_done, std::vector<std::string>{"a:1"});
  EXPECT_EQ(book.size(), 0u);
}

TEST(LeaseBook, KillsWhatNobodyWants) {
  LeaseBook book(2s, 5s);
  LeaseOut out;
  const auto t = Clock::now();
  book.ask(lease("a:1", "a"), {{"b", true, 2, 0}}, t, out);
  HeartbeatReply reply;
  // Just placed: not yet in its owner's list, and not killed for it.
  book.heartbeat("a", {}, {}, all_alive, t, reply, out);
  book.heartbeat("b", {}, {{"a:1", "a", 7, false, ""}}, all_alive, t, reply, out);
  EXPECT_TRUE(reply.lease_kill.empty());
  // Later, still unwanted: killed.
  book.heartbeat("b", {}, {{"a:1", "a", 7, false, ""}}, all_alive, t + 3s, reply, out);
  EXPECT_EQ(reply.lease_kill, std::vector<std::string>{"a:1"});
  // An owner declared dead: its leases are killed where they run.
  HeartbeatReply second;
  book.ask(lease("c:1", "c"), {{"b", true, 4, 1}}, t, out);
  book.heartbeat("c", {"c:1"}, {}, all_alive, t, second, out);
  book.node_died("c", "no heartbeat", out);
  book.heartbeat(
      "b", {}, {{"c:1", "c", 8, false, ""}}, [](const std::string& n) { return n != "c"; }, t, second, out);
  EXPECT_EQ(second.lease_kill, std::vector<std::string>{"c:1"});
}

TEST(LeaseBook, ANodeThatDiesEndsItsLeasesForTheirOwners) {
  LeaseBook book(2s, 5s);
  LeaseOut out;
  const auto t = Clock::now();
  book.ask(lease("a:1", "a"), {{"b", true, 2, 0}}, t, out);
  HeartbeatReply reply;
  book.heartbeat("b", {}, {{"a:1", "a", 7, false, ""}}, all_alive, t, reply, out);
  out.answers.clear();
  book.node_died("b", "its node b died", out);
  ASSERT_EQ(out.answers.size(), 1u);
  EXPECT_EQ(out.answers[0].first, "a");
  EXPECT_TRUE(out.answers[0].second.ended);
  EXPECT_EQ(out.answers[0].second.how, "its node b died");
}

TEST(LeaseBook, ForgetsWhatNoNodeWillReportAgainAndNeverRestartsWhatNobodyWants) {
  LeaseBook book(2s, 5s);
  LeaseOut out;
  const auto t = Clock::now();
  HeartbeatReply reply;
  // A lease on a node that dies: its owner hears, lets go, and the book forgets it.
  book.ask(lease("a:1", "a"), {{"b", true, 2, 0}}, t, out);
  book.heartbeat("b", {}, {{"a:1", "a", 7, false, ""}}, all_alive, t, reply, out);
  book.node_died("b", "the node died", out);
  book.heartbeat("a", {"a:1"}, {}, all_alive, t, reply, out);
  EXPECT_EQ(book.size(), 1u);
  book.heartbeat("a", {}, {}, all_alive, t, reply, out);
  EXPECT_EQ(book.size(), 0u);
  // A start never reported whose owner let go is not sent again, and is forgotten.
  out.starts.clear();
  book.ask(lease("a:2", "a"), {{"c", true, 2, 0}}, t, out);
  ASSERT_EQ(out.starts.size(), 1u);
  book.heartbeat("a", {}, {}, all_alive, t + 3s, reply, out);
  book.heartbeat("c", {}, {}, all_alive, t + 3s, reply, out);
  EXPECT_EQ(out.starts.size(), 1u);
  EXPECT_EQ(book.size(), 0u);
  // An exited worker reported by a node the lease is not placed on is forgotten there.
  book.ask(lease("a:3", "a"), {{"c", true, 2, 0}}, t, out);
  HeartbeatReply elsewhere;
  book.heartbeat("d", {}, {{"a:3", "a", 9, true, "exited with status 0"}}, all_alive, t, elsewhere, out);
  EXPECT_EQ(elsewhere.lease_done, std::vector<std::string>{"a:3"});
  EXPECT_TRUE(elsewhere.lease_kill.empty());
}

TEST(LeaseBook, ResendsALostStartAndRebuildsAfterARestart) {
  LeaseBook book(2s, 5s);
  LeaseOut out;
  const auto t = Clock::now();
  book.ask(lease("a:1", "a"), {{"b", true, 2, 0}}, t, out);
  HeartbeatReply reply;
  book.heartbeat("b", {}, {}, all_alive, t + 1s, reply, out);
  EXPECT_EQ(out.starts.size(), 1u);
  book.heartbeat("b", {}, {}, all_alive, t + 3s, reply, out);
  ASSERT_EQ(out.starts.size(), 2u);  // never reported: sent again
  EXPECT_EQ(out.starts[1].first, "b");

  // A head restarted with an empty book: the running node's report brings the lease back, and
  // the owner's list keeps it; a wanted lease nobody runs is declared lost in time.
  LeaseBook fresh(2s, 5s);
  LeaseOut out2;
  fresh.heartbeat("a", {"a:1", "a:2"}, {}, all_alive, t, reply, out2);
  fresh.heartbeat("b", {}, {{"a:1", "a", 9, false, ""}}, all_alive, t, reply, out2);
  EXPECT_EQ(fresh.node_of("a:1"), "b");
  EXPECT_TRUE(reply.lease_kill.empty());
  fresh.heartbeat("a", {"a:1", "a:2"}, {}, all_alive, t + 6s, reply, out2);
  bool lost = false;
  for (const auto& [to, a] : out2.answers) lost = lost || (a.lease_id == "a:2" && a.ended);
  EXPECT_TRUE(lost);
}

}  // namespace
}  // namespace weft::cluster
