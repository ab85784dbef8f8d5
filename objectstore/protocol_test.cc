#include "objectstore/protocol.h"

#include <gtest/gtest.h>

namespace weft::objectstore {
namespace {

template <class M>
M round_trip(const M& m) {
  auto d = decode_request(encode(Request{m}));
  EXPECT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(std::holds_alternative<M>(*d)) << wire::name_of(*d);
  return std::get<M>(*d);
}

TEST(StoreProtocol, EveryRequestRoundTripsWithItsOwnFields) {
  const Create c = round_trip(Create{
      .request_id = 42, .object = {7, 9}, .size = uint64_t{1} << 30, .primary = false, .transient = true, .task = 3});
  EXPECT_EQ(c.request_id, 42u);
  EXPECT_EQ(c.object, (ObjectId{7, 9}));
  EXPECT_EQ(c.size, uint64_t{1} << 30);
  EXPECT_FALSE(c.primary);
  EXPECT_TRUE(c.transient);
  EXPECT_EQ(c.task, 3u);
  const Get g = round_trip(Get{.request_id = 5, .object = {1, 2}, .hold = 11, .timeout_ms = -1});
  EXPECT_EQ(g.hold, 11u);
  EXPECT_EQ(g.timeout_ms, -1);
  EXPECT_EQ(round_trip(Seal{{3, 4}}).object, (ObjectId{3, 4}));
  EXPECT_EQ(round_trip(Release{{5, 6}}).object, (ObjectId{5, 6}));
  EXPECT_EQ(round_trip(Hold{.request_id = 8, .object = {1, 1}}).request_id, 8u);
  EXPECT_EQ(round_trip(Unhold{{2, 2}, 12}).hold, 12u);
  round_trip(Connect{});
  round_trip(Abort{});
  round_trip(Delete{});
  round_trip(Stats{});
  Request q = Seal{};
  set_request_id(q, 9);  // requests without a reply have no id
  EXPECT_EQ(request_id(q), 0u);
  q = Stats{};
  set_request_id(q, 9);
  EXPECT_EQ(request_id(q), 9u);

  Reply r{.request_id = 42, .message = "store full", .offset = 64, .size = 5};
  r.set_status(Status::resource_exhausted("store full"));
  r.stats.spills = 11;
  auto e = decode_reply(encode(r));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(e->message, "store full");
  EXPECT_EQ(e->stats.spills, 11u);
}

TEST(StoreProtocol, MalformedMessagesAreNamedErrors) {
  auto expect_bad = [](std::string_view bytes, std::string_view why) {
    auto d = decode_request(bytes);
    ASSERT_EQ(d.status().code(), StatusCode::kInvalidArgument) << why;
    EXPECT_NE(d.status().message().find("malformed store message"), std::string::npos) << d.status();
    EXPECT_NE(d.status().message().find(why), std::string::npos) << d.status();
  };
  expect_bad("", "not MessagePack");
  expect_bad("\x01", "not an array");
  expect_bad("\x92\x01\x01", "not an array [version, type, body]");
  std::string wrong_version = encode(Request{Stats{}});
  wrong_version[1] = 5;
  expect_bad(wrong_version, "version 5, this build speaks version 3");
  std::string unknown = encode(Request{Stats{}});
  unknown[2] = 0x50;
  expect_bad(unknown, "unknown type 80");
  expect_bad(encode(Request{Stats{}}) + "x", "trailing bytes");
  expect_bad(std::string(kMaxMessageBytes + 1, '\x90'), "more than");
  // A 6-byte header claiming an array of 2^32 - 1 elements (found by the fuzzer): an error,
  // not a 64 GiB allocation.
  expect_bad(std::string("\xdd\xff\xff\xff\xff\x94", 6), "not MessagePack");
  // A body is checked against its type's schema.
  std::string get = encode(Request{Get{}});
  get[get.size() - 1] = '\xa1';  // timeout_ms: an integer turned into a string header
  expect_bad(get + "x", "get has a field of the wrong type");
  // A reply is not a request, and a request is not a reply.
  expect_bad(encode(Reply{}), "a reply is not a request");
  EXPECT_FALSE(decode_reply(encode(Request{Stats{}})).ok());
  Reply unknown_code;
  unknown_code.code = 200;
  EXPECT_NE(decode_reply(encode(unknown_code)).status().message().find("unknown status code"), std::string::npos);
}

}  // namespace
}  // namespace weft::objectstore
