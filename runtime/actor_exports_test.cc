// The driver's table of actors that workers reach (runtime/actor_exports.h): an actor stays
// alive while a message lends it or a worker holds a handle to it, and not a moment longer.
// No processes: the ids of borrowers stand for worker pids.
#include "runtime/actor_exports.h"

#include <gtest/gtest.h>

#include <vector>

#include "weft/weft.h"

namespace weft::runtime {
namespace {

int g_alive = 0;
struct Probe {
  Probe() { ++g_alive; }
  ~Probe() { --g_alive; }
};

// A new actor with an instance; the table's references are all that keep it once `release`d.
detail::ActorState<Probe>* new_actor() {
  auto* a = new detail::ActorState<Probe>();
  a->set_instance(std::make_unique<Probe>());
  return a;
}

// A message lending `actor` is packed; the caller's own handle then goes. Returns what the
// message carries.
std::vector<uint64_t> lend_once(ActorExportTable& table, detail::ActorCore* actor) {
  std::vector<uint64_t> carried;
  ActorExportTable::capture_lent(&carried);
  (void)table.lend(actor);
  ActorExportTable::capture_lent(nullptr);
  actor->release();
  return carried;
}

TEST(ActorExportTable, ALentActorLivesForItsMessageThenForEachBorrower) {
  ActorExportTable table;
  auto* actor = new_actor();
  std::vector<uint64_t> carried;
  ActorExportTable::capture_lent(&carried);
  const uint64_t id = table.lend(actor);
  EXPECT_EQ(table.lend(actor), id) << "one id per actor";
  ActorExportTable::capture_lent(nullptr);
  EXPECT_EQ(carried, (std::vector<uint64_t>{id, id}));
  actor->release();  // the caller's handle goes
  EXPECT_EQ(g_alive, 1);

  table.borrow(id, 100);  // the reader says it holds a handle, before its message is answered
  table.return_lent(carried);
  EXPECT_EQ(table.exported(), 1u);
  detail::ActorCore* found = table.find(id);
  ASSERT_EQ(found, actor);
  found->release();
  EXPECT_EQ(table.find(id + 1), nullptr);

  table.release(id, 100);
  EXPECT_EQ(table.exported(), 0u);
  EXPECT_EQ(g_alive, 0) << "the last reference anywhere is gone";
}

TEST(ActorExportTable, ADeadBorrowerLetsGoOfEverythingItHeld) {
  ActorExportTable table;
  const std::vector<uint64_t> carried = lend_once(table, new_actor());
  const uint64_t id = carried.at(0);
  table.borrow(id, 1);
  table.borrow(id, 1);  // two handles in one worker
  table.borrow(id, 2);
  table.return_lent(carried);
  table.drop_borrower(1);
  EXPECT_EQ(table.exported(), 1u);
  table.release(id, 2);
  EXPECT_EQ(table.exported(), 0u);
  EXPECT_EQ(g_alive, 0);
  table.release(id, 2);  // a late or repeated release of a gone actor is ignored
  table.borrow(id, 3);
  EXPECT_EQ(table.exported(), 0u);
}

TEST(ActorExportTable, AMessageLostBeforeItsReaderBorrowedFreesTheActor) {
  ActorExportTable table;
  table.return_lent(lend_once(table, new_actor()));  // its worker died before reading it
  EXPECT_EQ(table.exported(), 0u);
  EXPECT_EQ(g_alive, 0);
}

}  // namespace
}  // namespace weft::runtime
