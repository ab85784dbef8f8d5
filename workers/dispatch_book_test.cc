// The dispatcher's decisions, driven without processes or sockets.
#include "workers/dispatch_book.h"

#include <gtest/gtest.h>

namespace weft::workers {
namespace {

// Distinct non-null task pointers stand for tasks (the book never calls them).
detail::RemoteTask* fake_task(uintptr_t n) { return reinterpret_cast<detail::RemoteTask*>(n * 16); }

Item task(int slo, int64_t deadline, uintptr_t id) {
  return Item{.slo = slo, .deadline = deadline, .task = fake_task(id)};
}

DispatchBook ready_book(size_t workers, int depth) {
  DispatchBook book(workers, depth);
  for (uint32_t i = 0; i < workers; ++i) book.set_ready(i, true);
  return book;
}

TEST(DispatchBook, MostUrgentFirstThenEarliestDeadlineThenSubmissionOrder) {
  DispatchBook book = ready_book(1, 100);
  book.enqueue(task(2, 0, 1));   // batch
  book.enqueue(task(1, 50, 2));  // standard, later deadline
  book.enqueue(task(1, 10, 3));  // standard, earlier deadline
  book.enqueue(task(0, 99, 4));  // latency-critical
  book.enqueue(task(1, 10, 5));  // ties with 3: after it
  std::vector<detail::RemoteTask*> order;
  while (auto next = book.next()) order.push_back(next->second.task);
  EXPECT_EQ(order,
            (std::vector<detail::RemoteTask*>{fake_task(4), fake_task(3), fake_task(5), fake_task(2), fake_task(1)}));
}

TEST(DispatchBook, TheRoomiestLocalWorkerSkipsWorkersOnOtherNodes) {
  DispatchBook book = ready_book(3, 2);
  book.set_remote(0, true);
  EXPECT_TRUE(book.remote(0));
  EXPECT_FALSE(book.remote(1));
  book.sent(1, 1, task(1, 0, 1));
  EXPECT_EQ(book.roomiest_local(), std::optional<uint32_t>(2));
  book.sent(2, 2, task(1, 0, 2));
  book.sent(2, 3, task(1, 0, 3));
  EXPECT_EQ(book.roomiest_local(), std::optional<uint32_t>(1));
  book.sent(1, 4, task(1, 0, 4));  // both local workers full; the remote one is idle
  EXPECT_EQ(book.roomiest_local(), std::nullopt);
  book.set_ready(0, false);
  book.set_remote(0, false);  // restarted at home
  book.set_ready(0, true);
  EXPECT_EQ(book.roomiest_local(), std::optional<uint32_t>(0));
}

TEST(DispatchBook, AWorkerOnAnotherNodeStealsOnlyTasksThatCanTravel) {
  DispatchBook book = ready_book(2, 8);
  book.set_remote(1, true);
  Item pinned = task(1, 0, 1);
  pinned.carried.holds.push_back({});  // names an object of the driver's store
  Item pinned2 = task(1, 0, 2);
  pinned2.carried.holds.push_back({});
  book.sent(0, 1, std::move(pinned));
  book.sent(0, 2, std::move(pinned2));
  EXPECT_TRUE(book.steals().empty());  // both must stay here
  book.sent(0, 3, task(1, 0, 3));
  book.sent(0, 4, task(1, 0, 4));
  book.sent(0, 5, task(1, 0, 5));
  const auto s = book.steals();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0], std::make_pair(uint32_t{0}, uint32_t{1}));  // half of the three that can travel
}

TEST(DispatchBook, FillsTheLeastLoadedReadyWorkerUpToThePipelineDepth) {
  DispatchBook book(3, 2);
  book.set_ready(0, true);
  book.set_ready(2, true);  // worker 1 has not said hello
  for (uintptr_t i = 1; i <= 6; ++i) book.enqueue(task(1, 0, i));
  std::vector<uint32_t> to;
  uint64_t seq = 0;
  while (auto next = book.next()) {
    to.push_back(next->first);
    book.sent(next->first, ++seq, next->second);
  }
  EXPECT_EQ(to, (std::vector<uint32_t>{0, 2, 0, 2}));  // two each, then no room
  EXPECT_TRUE(book.has_queued());
  EXPECT_EQ(book.in_flight_total(), 4u);
  ASSERT_TRUE(book.finish(2, 2).has_value());
  EXPECT_FALSE(book.finish(2, 2).has_value());  // answered once; a second answer is unknown
  auto next = book.next();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->first, 2u);
}

TEST(DispatchBook, AnIdleWorkerStealsHalfOfTheBusiestOnesBacklog) {
  DispatchBook book(2, 8);
  book.set_ready(0, true);
  for (uintptr_t i = 1; i <= 6; ++i) book.enqueue(task(1, 0, i));
  for (uint64_t seq = 1; auto next = book.next(); ++seq) book.sent(next->first, seq, next->second);
  book.set_ready(1, true);  // a worker that has nothing
  auto steals = book.steals();
  ASSERT_EQ(steals.size(), 1u);
  EXPECT_EQ(steals[0], (std::pair<uint32_t, uint32_t>{0, 3}));
  EXPECT_TRUE(book.steals().empty());           // one request at a time per victim
  EXPECT_EQ(book.returned(0, {6, 5, 99}), 2u);  // 99 was never there
  EXPECT_EQ(book.in_flight(0), 4u);
  auto next = book.next();  // the returned tasks go to the idle worker, in their original order
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->first, 1u);
  EXPECT_EQ(next->second.task, fake_task(5));
  // Nothing to steal while tasks are queued, or from a worker with fewer than two.
  book.sent(1, 7, next->second);
  EXPECT_TRUE(book.steals().empty());
}

TEST(DispatchBook, AWorkersDeathReturnsItsWorkAndForgetsItsActors) {
  DispatchBook book = ready_book(2, 4);
  ASSERT_EQ(book.place_actor(10), std::optional<uint32_t>(0));
  ASSERT_EQ(book.place_actor(11), std::optional<uint32_t>(1));  // the fewest actors
  ASSERT_EQ(book.place_actor(12), std::optional<uint32_t>(0));
  book.sent(0, 1, task(1, 0, 1));
  book.sent(0, 2, Item{.call_name = "Counter.add", .actor = 10});
  std::vector<Item> lost = book.lost(0);
  EXPECT_EQ(lost.size(), 2u);
  EXPECT_FALSE(book.ready(0));
  EXPECT_EQ(book.home_of(10), std::nullopt);
  EXPECT_EQ(book.home_of(12), std::nullopt);
  EXPECT_EQ(book.home_of(11), std::optional<uint32_t>(1));
  EXPECT_EQ(book.place_actor(13), std::optional<uint32_t>(1));  // only ready workers host
  book.retry(lost[0].task != nullptr ? lost[0] : lost[1]);
  auto next = book.next();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->first, 1u);
  book.set_ready(0, true);  // restarted
  book.forget_actor(11);
  EXPECT_EQ(book.home_of(11), std::nullopt);
  DispatchBook none(1, 1);
  EXPECT_EQ(none.place_actor(1), std::nullopt);  // no worker ready yet
}

}  // namespace
}  // namespace weft::workers
