#include "objectstore/protocol.h"

#include <gtest/gtest.h>

namespace weft::objectstore {
namespace {

TEST(StoreProtocol, RequestsAndRepliesRoundTrip) {
  Request q{.type = MsgType::kGet, .request_id = 42, .object = {7, 9}, .size = 1 << 30, .primary = false,
            .transient = true, .task = 3, .timeout_ms = -1};
  auto d = decode_request(encode(q));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->type, MsgType::kGet);
  EXPECT_EQ(d->request_id, 42u);
  EXPECT_EQ(d->object, (ObjectId{7, 9}));
  EXPECT_EQ(d->size, uint64_t{1} << 30);
  EXPECT_FALSE(d->primary);
  EXPECT_TRUE(d->transient);
  EXPECT_EQ(d->timeout_ms, -1);
  Reply r{.request_id = 42, .code = StatusCode::kResourceExhausted, .message = "store full", .offset = 64, .size = 5};
  r.stats.spills = 11;
  auto e = decode_reply(encode(r));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->code, StatusCode::kResourceExhausted);
  EXPECT_EQ(e->message, "store full");
  EXPECT_EQ(e->stats.spills, 11u);
}

TEST(StoreProtocol, MalformedMessagesAreNamedErrors) {
  auto expect_bad = [](std::string_view bytes, std::string_view why) {
    auto d = decode_request(bytes);
    ASSERT_EQ(d.status().code(), StatusCode::kInvalidArgument) << why;
    EXPECT_NE(d.status().message().find(why), std::string::npos) << d.status();
  };
  expect_bad("", "not MessagePack");
  expect_bad("\x01", "not an array");
  expect_bad("\x92\x01\x01", "2 fields");
  std::string wrong_version = encode(Request{});
  wrong_version[1] = 5;
  expect_bad(wrong_version, "protocol version 5");
  std::string unknown = encode(Request{});
  unknown[2] = 0x50;
  expect_bad(unknown, "unknown request type");
  expect_bad(encode(Request{}) + "x", "trailing bytes");
  expect_bad(std::string(kMaxMessageBytes + 1, '\x90'), "more than");
  // A 6-byte header claiming an array of 2^32 - 1 elements (found by the fuzzer): an error,
  // not a 64 GiB allocation.
  expect_bad(std::string("\xdd\xff\xff\xff\xff\x94", 6), "not MessagePack");
  // A reply is not a request, and a request is not a reply.
  EXPECT_FALSE(decode_request(encode(Reply{})).ok());
  EXPECT_FALSE(decode_reply(encode(Request{})).ok());
}

}  // namespace
}  // namespace weft::objectstore
