// The object store across real processes: this binary re-executes itself as the child
// processes (`store_process_test --child MODE ...`), which talk to the store over its socket.
// Zero-copy reads, pins dropped when a reader is killed, unsealed objects discarded when a
// writer is killed, spilling and restoring with every byte checked, a full store, gets that
// wait for a later seal, and garbage on the socket.
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "objectstore/protocol.h"
#include "objectstore/store_client.h"
#include "objectstore/store_server.h"

extern char** environ;

namespace weft::objectstore {
namespace {

uint8_t pattern(uint64_t seed, uint64_t i) { return static_cast<uint8_t>((i * 2654435761u + seed * 97) >> 7); }

ObjectId id_of(uint64_t n) { return ObjectId{0x5700e, n}; }

// ---- child processes ----------------------------------------------------------------------

int child_main(int argc, char** argv) {
  const std::string mode = argv[2];
  auto client = StoreClient::connect(argv[3]);
  if (!client.ok()) {
    std::fprintf(stderr, "child: %s\n", client.status().to_string().c_str());
    return 10;
  }
  auto arg = [&](int i) { return std::stoull(argv[i]); };
  if (mode == "write" || mode == "write-and-hang") {  // write FIRST COUNT SIZE [DELAY_MS]
    if (argc > 7) std::this_thread::sleep_for(std::chrono::milliseconds(arg(7)));
    for (uint64_t n = arg(4); n < arg(4) + arg(5); ++n) {
      auto buf = (*client)->create(id_of(n), arg(6));
      if (!buf.ok()) return 11;
      for (uint64_t i = 0; i < arg(6); ++i) (*buf)[i] = pattern(n, i);
      if (!(*client)->seal(id_of(n)).is_ok()) return 12;
    }
    if (mode == "write-and-hang") {  // its objects live as long as it does
      std::printf("written\n");
      std::fflush(stdout);
      pause();
    }
    return 0;
  }
  if (mode == "read") {  // read FIRST COUNT SIZE: every byte checked
    for (uint64_t n = arg(4); n < arg(4) + arg(5); ++n) {
      auto view = (*client)->get(id_of(n), 10000);
      if (!view.ok() || view->size() != arg(6)) return 13;
      for (uint64_t i = 0; i < view->size(); ++i) {
        if ((*view)[i] != pattern(n, i)) return 14;
      }
      if (!(*client)->release(id_of(n)).is_ok()) return 15;
    }
    return 0;
  }
  if (mode == "pin-and-hang") {  // pin-and-hang N
    if (!(*client)->get(id_of(arg(4)), 10000).ok()) return 16;
    pause();
  }
  if (mode == "create-and-hang") {  // create-and-hang N SIZE
    if (!(*client)->create(id_of(arg(4)), arg(5)).ok()) return 17;
    pause();
  }
  return 2;
}

// Spawns this binary as a child; returns its pid.
pid_t spawn(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"/proc/self/exe", "--child"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ), 0);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// ---- the tests ----------------------------------------------------------------------------

class StoreProcesses : public ::testing::Test {
 protected:
  void start(size_t capacity) {
    socket_ = ::testing::TempDir() + "/store-" + std::to_string(getpid()) + ".sock";
    auto store = Store::create({.capacity = capacity, .spill_dir = ::testing::TempDir()});
    ASSERT_TRUE(store.ok()) << store.status();
    auto server = StoreServer::start(socket_, std::move(*store));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto client = StoreClient::connect(socket_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  void SetUp() override { start(256 << 20); }
  // Waits (up to 10 s) until the store's stats satisfy `pred`.
  template <class Pred>
  bool eventually(Pred pred) {
    for (int i = 0; i < 1000; ++i) {
      if (pred(server_->stats())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::string socket_;
  std::unique_ptr<StoreServer> server_;
  std::unique_ptr<StoreClient> client_;
};

TEST_F(StoreProcesses, AnotherProcessReadsTheSameMemoryInPlace) {
  const uint64_t size = 64 << 20;
  const pid_t writer = spawn({"write-and-hang", socket_, "1", "1", std::to_string(size)});
  auto view = client_->get(id_of(1), 10000);
  ASSERT_TRUE(view.ok()) << view.status();
  // The bytes another process wrote, seen through this process's own mapping of the arena.
  const uint8_t* base = client_->arena().base();
  EXPECT_GE(view->data(), base);
  EXPECT_LE(view->data() + view->size(), base + client_->arena().size());
  for (uint64_t i = 0; i < size; i += 4099) ASSERT_EQ((*view)[i], pattern(1, i));
  EXPECT_EQ(wait_exit(spawn({"read", socket_, "1", "1", std::to_string(size)})), 0);
  // The writer goes: its object stays while this process still maps it, then goes too.
  kill(writer, SIGKILL);
  wait_exit(writer);
  EXPECT_EQ((*view)[4099], pattern(1, 4099));
  ASSERT_TRUE(client_->release(id_of(1)).is_ok());
  EXPECT_TRUE(eventually([](const StoreStats& s) { return s.objects == 0 && s.used == 0; }));
}

TEST_F(StoreProcesses, AWriterThatExitsLeavesNothingBehind) {
  ASSERT_EQ(wait_exit(spawn({"write", socket_, "5", "3", "4096"})), 0);
  EXPECT_TRUE(eventually([](const StoreStats& s) { return s.objects == 0 && s.used == 0; }));
}

TEST_F(StoreProcesses, AKilledReaderReleasesItsPins) {
  ASSERT_TRUE(client_->put(id_of(2), "abc", 3).is_ok());
  const pid_t reader = spawn({"pin-and-hang", socket_, "2"});
  ASSERT_TRUE(eventually([](const StoreStats& s) { return s.pins == 1; }));
  kill(reader, SIGKILL);
  EXPECT_EQ(wait_exit(reader), 128 + SIGKILL);
  EXPECT_TRUE(eventually([](const StoreStats& s) { return s.pins == 0; }));
  ASSERT_TRUE(client_->remove(id_of(2)).is_ok());
  EXPECT_EQ(server_->stats().objects, 0u);  // unpinned: freed at once
}

TEST_F(StoreProcesses, AKilledWriterLeavesNothingBehind) {
  const pid_t writer = spawn({"create-and-hang", socket_, "3", "1000000"});
  ASSERT_TRUE(eventually([](const StoreStats& s) { return s.objects == 1; }));
  kill(writer, SIGKILL);
  wait_exit(writer);
  EXPECT_TRUE(eventually([](const StoreStats& s) { return s.objects == 0 && s.used == 0; }));
  EXPECT_TRUE(client_->put(id_of(3), "x", 1).is_ok());  // the id is free again
}

TEST_F(StoreProcesses, GetWaitsForALaterSealAndTimesOut) {
  const pid_t writer = spawn({"write", socket_, "4", "1", "4096", "200"});  // seals after 200 ms
  auto view = client_->get(id_of(4), 10000);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ((*view)[100], pattern(4, 100));
  EXPECT_EQ(wait_exit(writer), 0);
  EXPECT_EQ(client_->get(id_of(999), 100).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->get(id_of(999), 0).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreProcesses, SpillsAndRestoresAWorkingSetLargerThanTheStore) {
  server_.reset();
  client_.reset();
  start(32 << 20);
  const std::string size = std::to_string(4 << 20);
  const pid_t writer = spawn({"write-and-hang", socket_, "100", "16", size});  // 64 MiB through 32 MiB
  ASSERT_TRUE(eventually([](const StoreStats& s) { return s.sealed + s.spilled == 16; }));
  EXPECT_GT(server_->stats().spills, 0u);
  ASSERT_EQ(wait_exit(spawn({"read", socket_, "100", "16", size})), 0);  // every byte checked
  EXPECT_GT(server_->stats().restores, 0u);
  kill(writer, SIGKILL);
  wait_exit(writer);
}

TEST_F(StoreProcesses, AFullStoreSaysSoInsteadOfFailingLater) {
  server_.reset();
  client_.reset();
  start(8 << 20);
  ASSERT_TRUE(client_->put(id_of(5), std::string(6 << 20, 'a').data(), 6 << 20).is_ok());
  ASSERT_TRUE(client_->get(id_of(5)).ok());  // pinned: cannot be spilled
  auto r = client_->create(id_of(6), 4 << 20);
  ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("store full"), std::string::npos) << r.status();
}

// Raw bytes on the store's socket: each bad message is answered with an error (or dropped),
// and the store goes on serving everyone.
TEST_F(StoreProcesses, GarbageOnTheSocketIsRejectedAndServingGoesOn) {
  const int sock = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.c_str(), socket_.size());
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval timeout{2, 0};  // a message that happens to decode as a seal or release gets no reply
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::mt19937 rng(3);
  std::vector<std::string> garbage = {std::string("\xff\xff\xff\xff", 4), std::string(1, '\x92'), "hello",
                                      std::string(10000, 'x')};
  std::string v = encode(Request{Stats{}});
  v[1] = 9;  // version field
  garbage.push_back(v);
  std::string bad_type = encode(Request{Stats{}});
  bad_type[2] = 77;
  garbage.push_back(bad_type);
  for (int i = 0; i < 50; ++i) {
    std::string g(rng() % 64 + 1, '\0');
    for (char& c : g) c = static_cast<char>(rng());
    garbage.push_back(g);
  }
  for (const std::string& g : garbage) {
    ASSERT_GE(send(sock, g.data(), g.size(), MSG_NOSIGNAL), 0);
    char buf[8192];
    const ssize_t n = recv(sock, buf, sizeof buf, 0);
    if (n > 0) {
      auto reply = decode_reply(std::string_view(buf, static_cast<size_t>(n)));
      ASSERT_TRUE(reply.ok());
      EXPECT_FALSE(reply->status().is_ok());
    }
  }
  close(sock);
  EXPECT_GE(server_->rejected(), garbage.size() - 2);  // nearly every message is malformed
  ASSERT_TRUE(client_->put(id_of(7), "still here", 10).is_ok());
  auto view = client_->get(id_of(7), 0);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(view->data()), view->size()), "still here");
}

TEST(StoreClientErrors, NoStoreAtThePath) {
  auto c = StoreClient::connect(::testing::TempDir() + "/nobody-here.sock");
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace weft::objectstore

int main(int argc, char** argv) {
  if (argc > 3 && std::string(argv[1]) == "--child") return weft::objectstore::child_main(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
