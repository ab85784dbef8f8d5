// Refs across processes without processes: two ObjectRefs tables stand for an owner and a
// borrower, and the test carries their records and requests between them.
#include "runtime/object_refs.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include <weft/weft.h>

namespace weft::runtime {
namespace {

using detail::CodecFor;
using detail::Object;
using detail::RefRecord;

template <class T>
ObjectRef<T> new_pending() {
  return ObjectRef<T>::adopt(new Object<T>(1));
}
template <class T>
ObjectRef<T> import_as(ObjectRefs& into, RefRecord r) {
  return ObjectRef<T>::adopt(static_cast<Object<T>*>(into.import_ref(std::move(r), CodecFor<T>::kCodec)));
}
template <class T>
RefRecord export_from(ObjectRefs& from, const ObjectRef<T>& ref) {
  return from.export_ref(ref.object(), CodecFor<T>::kCodec);
}

struct Pair : ::testing::Test {
  ObjectRefs owner{100};
  ObjectRefs borrower{200};
  std::vector<std::pair<ObjectId, uint64_t>> requests;
  void SetUp() override {
    borrower.set_requester([this](const ObjectId& id, uint64_t to) { requests.emplace_back(id, to); });
  }
};

TEST_F(Pair, ADoneValueTravelsInTheRecordAndNeedsNoEntry) {
  auto ref = new_pending<std::string>();
  ref.object()->set_value("hello");
  RefRecord r = export_from(owner, ref);
  EXPECT_EQ(r.state, RefRecord::kInline);
  EXPECT_EQ(r.owner, 100u);
  auto got = import_as<std::string>(borrower, r);
  ASSERT_TRUE(got.is_ready());
  EXPECT_EQ(weft::get(got), "hello");
  EXPECT_EQ(got.id(), ref.id()) << "the same object, by id, in every process";
  EXPECT_EQ(owner.owned_entries(), 0u);
  EXPECT_TRUE(requests.empty());
}

TEST_F(Pair, AFailureTravelsWithItsTypeAndKind) {
  auto ref = new_pending<int>();
  ref.object()->fail(std::make_shared<ErrorInfo>(ErrorInfo{"parse", "bad digit", "std::invalid_argument"}));
  auto got = import_as<int>(borrower, export_from(owner, ref));
  try {
    weft::get(got);
    FAIL() << "expected the owner's error";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.task_name(), "parse");
    EXPECT_EQ(e.exception_type(), "std::invalid_argument");
    EXPECT_EQ(e.message(), "bad digit");
  }
}

TEST_F(Pair, AnOwnersDeathReachesTheBorrowerAsOwnerDied) {
  auto ref = new_pending<int>();
  owner.begin_capture();
  RefRecord r = export_from(owner, ref);
  (void)owner.end_capture();
  auto got = import_as<int>(borrower, r);
  ASSERT_EQ(requests.size(), 1u);
  // The borrower's link to the owner saw it die: it answers with the owner's death.
  RefRecord died;
  died.set_id(ref.id());
  died.owner = 100;
  died.set_error(ErrorInfo{"object", "its owner died", "weft::OwnerDied", ErrorKind::kOwnerDied});
  borrower.resolve(died);
  EXPECT_THROW(weft::get(got), OwnerDied);
  EXPECT_THROW(weft::get(got), ObjectLost) << "an OwnerDied is an ObjectLost";
  EXPECT_EQ(borrower.pending_slots(), 0u);
}

TEST_F(Pair, APendingObjectIsKeptForTheMessageThenForEachBorrowerUntilItHasTheValue) {
  std::optional<ObjectRef<int>> ref = new_pending<int>();
  owner.begin_capture();
  RefRecord r = export_from(owner, *ref);
  const detail::Carried carried = owner.end_capture();
  ASSERT_EQ(carried.refs.size(), 1u);
  EXPECT_EQ(r.state, RefRecord::kPending);
  EXPECT_EQ(owner.owned_entries(), 1u);

  auto a = import_as<int>(borrower, r);
  auto b = import_as<int>(borrower, r);  // one slot per id
  EXPECT_EQ(a.object(), b.object());
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].second, 100u);
  EXPECT_FALSE(a.is_ready());

  std::vector<RefRecord> answers;
  owner.wait(requests[0].first, 200, [&](RefRecord rec) { answers.push_back(std::move(rec)); });
  owner.release(carried);  // the task's answer came back: the borrower's wait still keeps it
  EXPECT_EQ(owner.owned_entries(), 1u);
  auto* producer = ref->object();
  producer->add_ref();
  ref.reset();  // the owner's own handle goes too
  EXPECT_EQ(owner.owned_entries(), 1u);
  EXPECT_TRUE(answers.empty());

  static_cast<Object<int>*>(producer)->set_value(42);
  producer->release();
  ASSERT_EQ(answers.size(), 1u);
  borrower.resolve(answers[0]);
  ASSERT_TRUE(a.is_ready());
  EXPECT_EQ(weft::get(a), 42);
  EXPECT_EQ(borrower.pending_slots(), 0u);
  owner.borrow_done(200, a.id());
  EXPECT_EQ(owner.owned_entries(), 0u);
}

TEST_F(Pair, ADeadBorrowerIsLetGo) {
  auto ref = new_pending<int>();
  owner.begin_capture();
  RefRecord r = export_from(owner, ref);
  const auto carried = owner.end_capture();
  int answered = 0;
  owner.wait(ref.id(), 200, [&](RefRecord) { ++answered; });
  owner.release(carried);
  EXPECT_EQ(owner.owned_entries(), 1u);
  owner.drop_borrower(200);
  EXPECT_EQ(owner.owned_entries(), 0u);
  ref.object()->set_value(1);
  EXPECT_EQ(answered, 1) << "the answer still comes; the dispatcher drops it for a dead process";
}

TEST_F(Pair, APendingRefOutsideAnyMessageIsLostNotHung) {
  auto ref = new_pending<int>();
  RefRecord r = export_from(owner, ref);  // no capture: nothing keeps it for a reader
  auto got = import_as<int>(borrower, r);
  ASSERT_EQ(requests.size(), 1u);
  std::vector<RefRecord> answers;
  owner.wait(got.id(), 200, [&](RefRecord rec) { answers.push_back(std::move(rec)); });
  ASSERT_EQ(answers.size(), 1u);
  borrower.resolve(answers[0]);
  EXPECT_THROW(weft::get(got), ObjectLost);
}

TEST_F(Pair, ARefComingHomeIsTheOwnersObject) {
  auto ref = new_pending<int>();
  owner.begin_capture();
  RefRecord r = export_from(owner, ref);
  const auto carried = owner.end_capture();
  auto slot = import_as<int>(borrower, r);
  RefRecord back = export_from(borrower, slot);  // the borrower passes it on, still pending
  EXPECT_EQ(back.owner, 100u);
  auto home = import_as<int>(owner, back);
  EXPECT_EQ(home.object(), ref.object());
  owner.release(carried);
}

TEST_F(Pair, AWorkersOwnObjectsAreHandedOverWithTheirValue) {
  ObjectRefs worker{300, /*hand_over_to=*/100};
  auto ref = new_pending<std::vector<int>>();
  ref.object()->set_value(std::vector<int>{1, 2, 3});
  RefRecord r = export_from(worker, ref);
  EXPECT_EQ(r.owner, 100u);
  EXPECT_EQ(r.state, RefRecord::kInline);
  auto got = import_as<std::vector<int>>(owner, r);  // the owner adopts it from the record
  EXPECT_EQ(weft::get(got), (std::vector<int>{1, 2, 3}));
}

TEST_F(Pair, AValueOfTheWrongShapeFailsTheSlotNotTheProcess) {
  auto ref = new_pending<std::string>();
  ref.object()->set_value("not a number");
  auto got = import_as<int>(borrower, export_from(owner, ref));
  EXPECT_THROW(weft::get(got), RemoteError);
}

}  // namespace
}  // namespace weft::runtime
