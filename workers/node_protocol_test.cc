#include "workers/node_protocol.h"

#include <gtest/gtest.h>

namespace weft::workers::node {
namespace {

template <class M>
M round_trip(const M& m) {
  auto d = decode_node(encode(m));
  EXPECT_TRUE(d.ok()) << d.status();
  return std::get<M>(*d);
}

TEST(NodeProtocol, EveryMessageRoundTripsWithItsOwnFields) {
  const Attach a = round_trip(Attach{42, "ipc:///tmp/x", "/bin/prog", {"prog", "-v"}, {"A=1"}, "/home"});
  EXPECT_EQ(a.pid, 42);
  EXPECT_EQ(a.argv, (std::vector<std::string>{"prog", "-v"}));
  EXPECT_EQ(a.cwd, "/home");
  const Attached at = round_trip(Attached{true, "", "/tmp/n.store", 4, 99});
  EXPECT_EQ(at.store_socket, "/tmp/n.store");
  EXPECT_EQ(at.node_pid, 99);
  EXPECT_EQ(round_trip(Spawn{3}).index, 3u);
  EXPECT_EQ(round_trip(Spawned{3, 1234, ""}).pid, 1234);
  EXPECT_TRUE(round_trip(Spawned{3, 0, "", true}).parked);
  EXPECT_EQ(round_trip(Yield{2}).count, 2u);
  EXPECT_EQ(round_trip(Exited{1, 77, "killed by signal 9 (Killed)"}).how, "killed by signal 9 (Killed)");
  EXPECT_EQ(round_trip(Detach{500}).grace_ms, 500u);
  round_trip(Detached{});
  const Name n = round_trip(Name{5, 42, "counter", "Counter"});
  EXPECT_EQ(n.driver, 42);
  EXPECT_EQ(n.class_name, "Counter");
  EXPECT_EQ(round_trip(Named{5, false, "taken"}).message, "taken");
  EXPECT_EQ(round_trip(Find{6, "counter"}).name, "counter");
  const Found f = round_trip(Found{6, 42, "ipc:///tmp/d", "Counter"});
  EXPECT_EQ(f.endpoint, "ipc:///tmp/d");
  EXPECT_EQ(round_trip(Locate{7, 42}).driver, 42);
  EXPECT_EQ(round_trip(Located{7, "ipc:///tmp/d"}).seq, 7u);
}

TEST(NodeProtocol, MalformedMessagesAreNamedErrors) {
  for (const std::string bad :
       {std::string(""), std::string("\x93\x02\x01", 3), std::string("\x93\x01\x03\x91\xa1x", 6)}) {
    auto d = decode_node(bad);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.status().message().find("malformed node message"), std::string::npos) << d.status();
  }
}

}  // namespace
}  // namespace weft::workers::node
