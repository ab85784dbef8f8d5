#include "workers/control.h"

#include <gtest/gtest.h>

namespace weft::workers {
namespace {

TEST(Control, MessagesRoundTrip) {
  ControlMessage m;
  m.type = ControlType::kResult;
  m.seq = 77;
  m.function = "square";
  m.payload = std::string("\x00\x01\xff", 3);
  m.ok = false;
  m.error_type = "std::runtime_error";
  m.error_message = "boom";
  m.count = 3;
  m.pid = 1234;
  m.seqs = {1, 2, 3};
  auto d = decode_control(encode(m));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->type, ControlType::kResult);
  EXPECT_EQ(d->seq, 77u);
  EXPECT_EQ(d->payload, m.payload);
  EXPECT_FALSE(d->ok);
  EXPECT_EQ(d->error_type, "std::runtime_error");
  EXPECT_EQ(d->seqs, m.seqs);
  EXPECT_EQ(d->pid, 1234);
}

TEST(Control, MalformedMessagesAreNamedErrors) {
  for (std::string_view bad : {std::string_view(""), std::string_view("\x93\x01\x02\x03"), std::string_view("zz"),
                               std::string_view("\xdd\xff\xff\xff\xff", 5)}) {
    auto d = decode_control(bad);
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("malformed control message"), std::string::npos);
  }
  std::string wrong = encode(ControlMessage{});
  wrong[1] = 2;  // version 2
  EXPECT_NE(decode_control(wrong).status().message().find("version 2"), std::string::npos);
  std::string type = encode(ControlMessage{});
  type[2] = 42;
  EXPECT_NE(decode_control(type).status().message().find("unknown type"), std::string::npos);
}

}  // namespace
}  // namespace weft::workers
