#include "cluster/protocol.h"

#include <gtest/gtest.h>

namespace weft::cluster {
namespace {

TEST(ClusterProtocol, MessagesRoundTrip) {
  Heartbeat hb{.node_id = "node-1",
               .workers = 3,
               .drivers = 1,
               .jobs = {{"job-1", static_cast<uint8_t>(JobState::kRunning), 0, "", 42}}};
  auto m = decode_to_head(encode(hb));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const auto& back = std::get<Heartbeat>(*m);
  EXPECT_EQ(back.node_id, "node-1");
  ASSERT_EQ(back.jobs.size(), 1u);
  EXPECT_EQ(back.jobs[0].log_size, 42u);

  auto r = decode_to_client(encode(Reply::of(Status::not_found("no job x"))));
  ASSERT_TRUE(r.ok());
  const Status s = std::get<Reply>(*r).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "no job x");
}

TEST(ClusterProtocol, MalformedMessagesAreErrorsNamingWhatIsWrong) {
  // Garbage, another version, a type the receiver does not take, a field of the wrong type.
  EXPECT_FALSE(decode_to_head("garbage").ok());
  EXPECT_FALSE(decode_to_head(wire::encode(wire::Protocol{"cluster", 99}, StatusRequest{})).ok());
  auto wrong_side = decode_to_head(encode(HeartbeatReply{}));
  ASSERT_FALSE(wrong_side.ok());
  EXPECT_NE(wrong_side.status().message().find("unknown type"), std::string::npos);
  auto bad_state = decode_to_head(encode(Heartbeat{.node_id = "n", .jobs = {{"j", 77, 0, "", 0}}}));
  ASSERT_FALSE(bad_state.ok());
  EXPECT_NE(bad_state.status().message().find("state 77"), std::string::npos);
  EXPECT_EQ(decode_to_node(encode(JobKill{"j"})).ok(), true);
  EXPECT_FALSE(decode_to_node(encode(JobSubmit{})).ok());
}

TEST(ClusterProtocol, ReplyCodesFromTheWireAreChecked) {
  Reply r{.ok = false, .code = 250, .message = "odd"};
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Reply{.ok = true}.status().is_ok());
}

}  // namespace
}  // namespace weft::cluster
