#include "workers/control.h"

#include <gtest/gtest.h>

namespace weft::workers {
namespace {

template <class M>
M round_trip(const M& m) {
  auto d = decode_control(encode(m));
  EXPECT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(std::holds_alternative<M>(*d)) << name_of(*d);
  return std::get<M>(*d);
}

TEST(Control, EveryMessageRoundTripsWithItsOwnFields) {
  EXPECT_EQ(round_trip(Hello{3, 1234}).pid, 1234);
  const Task t = round_trip(Task{77, "square", {std::string("\x00\x01\xff", 3)}});
  EXPECT_EQ(t.seq, 77u);
  EXPECT_EQ(t.function, "square");
  EXPECT_EQ(t.payload.data, std::string("\x00\x01\xff", 3));
  const TaskResult r = round_trip(TaskResult{9, false, {}, Failure{2, "weft::WorkerDied", "gone"}});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failure.type, "weft::WorkerDied");
  EXPECT_EQ(r.failure.message, "gone");
  EXPECT_EQ(round_trip(Steal{5}).count, 5u);
  EXPECT_EQ(round_trip(Returned{{1, 2, 3}}).seqs, (std::vector<uint64_t>{1, 2, 3}));
  round_trip(Shutdown{});
  const ActorCreate c = round_trip(ActorCreate{1, 42, "make_counter", {"args"}});
  EXPECT_EQ(c.actor, 42u);
  EXPECT_EQ(c.factory, "make_counter");
  const ActorCall call = round_trip(ActorCall{2, 42, "Counter::add", {"x"}});
  EXPECT_EQ(call.method, "Counter::add");
  EXPECT_EQ(round_trip(ActorDrop{42}).actor, 42u);
  EXPECT_EQ(round_trip(ObjectWait{ObjectId{1, 2}}).object, (ObjectId{1, 2}));
  EXPECT_EQ(round_trip(BorrowDone{ObjectId{3, 4}}).object, (ObjectId{3, 4}));
  detail::RefRecord rec;
  rec.set_id(ObjectId{5, 6});
  rec.owner = 77;
  rec.set_error(ErrorInfo{"t", "gone", "weft::ObjectLost", ErrorKind::kObjectLost});
  const ObjectReady ready = round_trip(ObjectReady{rec});
  EXPECT_EQ(ready.record.id(), (ObjectId{5, 6}));
  EXPECT_EQ(ready.record.owner, 77u);
  EXPECT_EQ(ready.record.state, detail::RefRecord::kFailed);
  EXPECT_EQ(ready.record.error()->kind, ErrorKind::kObjectLost);
  EXPECT_EQ(ready.record.error()->message, "gone");
  const ActorLookup lookup = round_trip(ActorLookup{3, "counter", "Counter"});
  EXPECT_EQ(lookup.class_name, "Counter");
  EXPECT_EQ(round_trip(ActorFound{3, 0, 5, "no actor"}).message, "no actor");
  const ActorForward fwd = round_trip(ActorForward{4, 9, "Counter::add", {"p"}});
  EXPECT_EQ(fwd.method, "Counter::add");
  EXPECT_EQ(fwd.payload.data, "p");
  EXPECT_EQ(round_trip(ActorReply{TaskResult{4, true, {"r"}, {}}}).result.payload.data, "r");
  EXPECT_EQ(round_trip(ActorRelease{9}).actor, 9u);
  EXPECT_EQ(round_trip(ActorBorrow{10}).actor, 10u);
  EXPECT_EQ(round_trip(PeerHello{11}).pid, 11);
  EXPECT_EQ(round_trip(ObjectWait{ObjectId{1, 2}, 12}).owner, 12);
}

TEST(Control, FailuresKeepTheirKind) {
  for (ErrorKind kind : {ErrorKind::kRaised, ErrorKind::kCancelled, ErrorKind::kWorkerDied, ErrorKind::kRemote,
                         ErrorKind::kObjectLost}) {
    const ErrorInfo in{"t", "why", "std::runtime_error", kind};
    const ErrorInfo out = from_failure("t", round_trip(TaskResult{1, false, {}, to_failure(in)}).failure);
    EXPECT_EQ(out.kind, kind);
    EXPECT_EQ(out.exception_type, in.exception_type);
    EXPECT_EQ(out.message, in.message);
  }
  EXPECT_EQ(from_failure("t", Failure{200, "x", "y"}).kind, ErrorKind::kRemote);  // from a newer build
}

void expect_malformed(std::string_view bytes, std::string_view says) {
  auto d = decode_control(bytes);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("malformed control message"), std::string::npos) << d.status();
  EXPECT_NE(d.status().message().find(says), std::string::npos) << d.status();
}

std::string packed(const auto& value) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, value);
  return std::string(buf.data(), buf.size());
}

TEST(Control, MalformedMessagesAreNamedErrors) {
  expect_malformed("", "not MessagePack");
  expect_malformed("zz", "");
  expect_malformed(std::string_view("\xdd\xff\xff\xff\xff", 5), "not MessagePack");
  expect_malformed(packed(std::make_tuple(kControl.version, Steal::kType)), "not an array [version, type, body]");
  // Another version is refused by name, not misread.
  expect_malformed(packed(std::make_tuple(kControl.version + 1, Steal::kType, std::make_tuple(1))),
                   "version " + std::to_string(kControl.version + 1) + ", this build speaks version " +
                       std::to_string(kControl.version));
  expect_malformed(packed(std::make_tuple(kControl.version, 42, std::make_tuple(1))), "unknown type 42");
  // Each body is checked against its own schema: field count, then field types.
  expect_malformed(packed(std::make_tuple(kControl.version, Steal::kType, std::make_tuple(1, 2))),
                   "steal has 2 fields, expected 1");
  expect_malformed(packed(std::make_tuple(kControl.version, Task::kType, std::make_tuple("seq", "f", "p", 0))),
                   "task has a field of the wrong type");
  expect_malformed(packed(std::make_tuple(kControl.version, Task::kType, std::make_tuple(1, "f", "not bin", 0))),
                   "task has a field of the wrong type");
  expect_malformed(packed(std::make_tuple(kControl.version, Hello::kType, std::make_tuple(-1, 5))),
                   "hello has a field of the wrong type");
}

}  // namespace
}  // namespace weft::workers
