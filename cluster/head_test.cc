// The head, a node and clients over real loopback sockets with CURVE, in one process.
#include "cluster/head.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "cluster/head_client.h"
#include "cluster/node_agent.h"

namespace weft::cluster {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class HeadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "weft-cluster-XXXXXX").string();
    dir_ = mkdtemp(t.data());
    credential_ = *Credential::generate();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Head> start_head(int port = 0, std::chrono::milliseconds timeout = 5s) {
    auto h =
        Head::start({.port = port, .state_dir = dir_ + "/head", .credential = credential_, .node_timeout = timeout});
    EXPECT_TRUE(h.ok()) << h.status().to_string();
    return h.ok() ? std::move(*h) : nullptr;
  }
  std::unique_ptr<NodeAgent> start_node(const std::string& address, const std::string& name = "node") {
    auto n = NodeAgent::start({.head_address = address,
                               .credential = credential_,
                               .work_dir = dir_ + "/" + name,
                               .slots = 1,
                               .store_bytes = 16 << 20,
                               .heartbeat = 100ms,
                               .kill_grace = 2s});
    EXPECT_TRUE(n.ok()) << n.status().to_string();
    return n.ok() ? std::move(*n) : nullptr;
  }
  HeadClient client(const std::string& address) { return HeadClient(address, credential_, 5s); }

  // Polls until `pred(status)` holds (or 20 s pass).
  template <class Pred>
  StatusReply wait_for(const std::string& address, Pred pred) {
    StatusReply last;
    for (int i = 0; i < 200; ++i) {
      auto s = client(address).call<StatusReply>(StatusRequest{});
      if (s.ok()) {
        last = *s;
        if (pred(last)) return last;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "timed out waiting for the cluster";
    return last;
  }
  JobInfo wait_job_end(const std::string& address, const std::string& job) {
    JobInfo info;
    wait_for(address, [&](const StatusReply& s) {
      for (const auto& j : s.jobs) {
        if (j.job_id == job) info = j;
      }
      return is_final(static_cast<JobState>(info.state));
    });
    return info;
  }
  std::string logs(const std::string& address, const std::string& job) {
    std::string out;
    for (int i = 0; i < 100; ++i) {
      auto r = client(address).call<LogsReply>(LogsRequest{job, out.size()});
      if (!r.ok()) return out + "<" + r.status().to_string() + ">";
      out += r->data.data;
      if (r->finished) return out;
      std::this_thread::sleep_for(100ms);
    }
    return out + "<not finished>";
  }
  std::string submit(const std::string& address, std::vector<std::string> argv, std::string package = "") {
    auto s = client(address).call<JobSubmitted>(JobSubmit{.argv = std::move(argv), .package = std::move(package)});
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? s->job_id : "";
  }

  std::string dir_;
  Credential credential_;
};

TEST_F(HeadTest, ANodeJoinsAndRunsAJobInItsWorkingDirectory) {
  auto head = start_head();
  auto node = start_node(head->address());
  const auto s =
      wait_for(head->address(), [](const StatusReply& r) { return r.nodes.size() == 1 && r.nodes[0].alive; });
  ASSERT_EQ(s.nodes.size(), 1u);
  EXPECT_EQ(s.nodes[0].node_id, node->node_id());
  EXPECT_GE(s.nodes[0].resources.at("CPU"), 1.0);

  // The working directory goes up once, by hash.
  fs::create_directories(dir_ + "/wd");
  std::ofstream(dir_ + "/wd/data.txt") << "payload 42\n";
  auto pkg = pack_directory(dir_ + "/wd", kMaxPackageBytes);
  ASSERT_TRUE(pkg.ok());
  EXPECT_EQ(client(head->address()).call<Reply>(PackageHave{pkg->hash}).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(client(head->address()).call<Reply>(PackageUpload{pkg->hash, {pkg->bytes}}).ok());
  EXPECT_TRUE(client(head->address()).call<Reply>(PackageHave{pkg->hash}).ok());
  // A package that does not match its hash is refused.
  auto forged = client(head->address()).call<Reply>(PackageUpload{pkg->hash, {"other bytes"}});
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(forged.status().code(), StatusCode::kCorruption);

  const std::string job =
      submit(head->address(), {"/bin/sh", "-c", "echo job $WEFT_JOB_ID on $WEFT_ADDRESS; cat data.txt"}, pkg->hash);
  const JobInfo info = wait_job_end(head->address(), job);
  EXPECT_EQ(static_cast<JobState>(info.state), JobState::kSucceeded) << info.message;
  EXPECT_EQ(info.node_id, node->node_id());
  const std::string out = logs(head->address(), job);
  EXPECT_NE(out.find("job " + job + " on " + node->node_socket()), std::string::npos) << out;
  EXPECT_NE(out.find("payload 42"), std::string::npos) << out;
}

TEST_F(HeadTest, FailingStoppedAndUnrunnableJobsEndWithWhy) {
  auto head = start_head();
  auto node = start_node(head->address());
  const std::string failing = submit(head->address(), {"/bin/sh", "-c", "echo oops >&2; exit 3"});
  const std::string sleeper = submit(head->address(), {"sleep", "60"});
  const std::string missing = submit(head->address(), {"/no/such/program"});
  JobInfo f = wait_job_end(head->address(), failing);
  EXPECT_EQ(static_cast<JobState>(f.state), JobState::kFailed);
  EXPECT_EQ(f.exit_code, 3);
  EXPECT_NE(logs(head->address(), failing).find("oops"), std::string::npos);
  JobInfo m = wait_job_end(head->address(), missing);
  EXPECT_EQ(static_cast<JobState>(m.state), JobState::kFailed);
  EXPECT_NE(logs(head->address(), missing).find("cannot run the job's command"), std::string::npos);

  wait_for(head->address(), [&](const StatusReply& r) {
    for (const auto& j : r.jobs) {
      if (j.job_id == sleeper) return static_cast<JobState>(j.state) == JobState::kRunning;
    }
    return false;
  });
  ASSERT_TRUE(client(head->address()).call<Reply>(JobStop{sleeper}).ok());
  JobInfo st = wait_job_end(head->address(), sleeper);
  EXPECT_EQ(static_cast<JobState>(st.state), JobState::kStopped);
  EXPECT_NE(st.message.find("Terminated"), std::string::npos) << st.message;

  auto unknown = client(head->address()).call<JobInfoReply>(JobQuery{"job-nope"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  auto empty = client(head->address()).call<JobSubmitted>(JobSubmit{});
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

// Whether `pred` holds within `timeout` (the head counts what it refuses on its own thread).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

TEST_F(HeadTest, PeersWithoutTheCredentialAreRefusedAndGarbageIsAnswered) {
  auto head = start_head();
  HeadClient stranger(head->address(), *Credential::generate(), 5s);
  auto refused = stranger.call<StatusReply>(StatusRequest{});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated) << refused.status().to_string();
  EXPECT_TRUE(eventually([&] { return head->refused_connections() >= 1; }));
  // A stranger's node cannot join either.
  Credential other = *Credential::generate();
  other.server_public = credential_.server_public;  // knows the head's public key, not the member pair
  auto intruder = NodeAgent::start({.head_address = head->address(),
                                    .credential = other,
                                    .work_dir = dir_ + "/intruder",
                                    .slots = 1,
                                    .store_bytes = 16 << 20,
                                    .heartbeat = 100ms});
  ASSERT_TRUE(intruder.ok());
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(client(head->address()).call<StatusReply>(StatusRequest{})->nodes.empty());
  EXPECT_TRUE(eventually([&] { return head->refused_connections() >= 2; }));

  auto garbage = client(head->address()).exchange("\xc1garbage");
  ASSERT_TRUE(garbage.ok());
  EXPECT_FALSE(std::get<Reply>(*garbage).ok);
  EXPECT_NE(std::get<Reply>(*garbage).message.find("malformed cluster message"), std::string::npos);
  EXPECT_GE(head->rejected_messages(), 1u);
  EXPECT_TRUE(client(head->address()).call<StatusReply>(StatusRequest{}).ok());
}

TEST_F(HeadTest, OddButAuthenticatedRequestsCostOnlyThemselves) {
  auto head = start_head();
  const std::string address = head->address();
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  // Arguments need not be UTF-8; resources must be finite numbers >= 0.
  const std::string odd = submit(address, {"/bin/echo", "caf\xe9 \xff"});
  EXPECT_FALSE(odd.empty());
  auto inf = client(address).call<JobSubmitted>(
      JobSubmit{.argv = {"true"}, .resources = {{"GPU", std::numeric_limits<double>::infinity()}}});
  EXPECT_EQ(inf.status().code(), StatusCode::kInvalidArgument);
  auto nan = client(address).call<JobSubmitted>(
      JobSubmit{.argv = {"true"}, .resources = {{"GPU", std::numeric_limits<double>::quiet_NaN()}}});
  EXPECT_EQ(nan.status().code(), StatusCode::kInvalidArgument);
  // What it stored reads back after a restart.
  head.reset();
  head = start_head(port);
  ASSERT_NE(head, nullptr);
  auto q = client(address).call<JobInfoReply>(JobQuery{odd});
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->job.argv.size(), 2u);
}

TEST_F(HeadTest, ARestartedHeadKeepsItsJobsAndTheNodeReportsBack) {
  auto head = start_head();
  const std::string address = head->address();
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  auto node = start_node(address);
  const std::string job = submit(address, {"/bin/sh", "-c", "echo before; sleep 2; echo after"});
  wait_for(address, [&](const StatusReply& r) { return !r.jobs.empty() && r.jobs[0].state == 1; });
  head.reset();  // the head goes away while the job runs
  std::this_thread::sleep_for(3s);
  head = start_head(port);
  ASSERT_NE(head, nullptr);
  const JobInfo info = wait_job_end(address, job);
  EXPECT_EQ(static_cast<JobState>(info.state), JobState::kSucceeded) << info.message;
  EXPECT_EQ(logs(address, job), "before\nafter\n");
  const auto s = wait_for(address, [](const StatusReply& r) { return r.nodes.size() == 1 && r.nodes[0].alive; });
  EXPECT_EQ(s.nodes[0].node_id, node->node_id());
}

TEST_F(HeadTest, ANodeThatGoesSilentIsDeclaredDeadAndItsJobsFail) {
  auto head = start_head(0, 600ms);
  auto node = start_node(head->address());
  const std::string job = submit(head->address(), {"sleep", "30"});
  wait_for(head->address(), [&](const StatusReply& r) { return !r.jobs.empty() && r.jobs[0].state == 1; });
  const auto t0 = std::chrono::steady_clock::now();
  node.reset();
  const JobInfo info = wait_job_end(head->address(), job);
  EXPECT_EQ(static_cast<JobState>(info.state), JobState::kFailed);
  EXPECT_NE(info.message.find("died"), std::string::npos) << info.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  const auto s = client(head->address()).call<StatusReply>(StatusRequest{});
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->nodes[0].alive);
  // Jobs submitted with no live node wait for one.
  const std::string later = submit(head->address(), {"true"});
  std::this_thread::sleep_for(300ms);
  auto q = client(head->address()).call<JobInfoReply>(JobQuery{later});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(static_cast<JobState>(q->job.state), JobState::kPending);
  auto second = start_node(head->address(), "node2");
  EXPECT_EQ(static_cast<JobState>(wait_job_end(head->address(), later).state), JobState::kSucceeded);
}

}  // namespace
}  // namespace weft::cluster
