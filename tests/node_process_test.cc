// `weft node` with real processes: the daemon (the weft command), drivers attached to it (this
// binary started again with WEFT_NODE_TEST_ROLE set), and their workers (this binary again, started
// by the node). Two drivers share one node and its store; a driver that dies takes its workers and
// its objects with it while the other goes on; garbage and bad requests get clear refusals.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include <weft/weft.h>

#include "objectstore/store_client.h"
#include "runtime/runtime.h"
#include "workers/node_protocol.h"
#include "workers/process_executor.h"

extern char** environ;

namespace {

int square(int x) { return x * x; }
std::pair<int64_t, int64_t> whoami(int) { return {getpid(), getppid()}; }
double total(const weft::Array<float>& xs) {
  double t = 0;
  for (float x : xs) t += x;
  return t;
}
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
// An actor one driver names and another calls; its method reads a ref the caller owns.
struct Sink {
  long total = 0;
  std::string last_error;
  long add(long k) { return total += k; }
  // Reads the ref inside (a ref passed alone would be waited for before the call is made).
  int take(weft::ObjectRef<std::vector<weft::ObjectRef<int>>> outer) {
    try {
      return weft::get(weft::get(outer).at(0));
    } catch (const weft::OwnerDied& e) {
      last_error = "OwnerDied: " + e.message();
    } catch (const weft::TaskError& e) {
      last_error = e.exception_type() + ": " + e.message();
    }
    return -1;
  }
  std::string error() { return last_error; }
};
Sink make_sink() { return {}; }
WEFT_REMOTE(square, whoami, total, sleep_ms, make_sink, &Sink::add, &Sink::take, &Sink::error);

weft::workers::ProcessExecutor& executor() {
  return dynamic_cast<weft::workers::ProcessExecutor&>(weft::runtime::live()->executor());
}

// ---- drivers (this binary with WEFT_NODE_TEST_ROLE) ----------------------------------------

int driver_main(const std::string& role) {
  weft::Status s = weft::init({.address = std::getenv("WEFT_NODE_TEST_ADDRESS"), .processes = 2});
  if (!s.is_ok()) {
    std::printf("init failed: %s\n", s.to_string().c_str());
    return 3;
  }
  std::printf("store %s\n", executor().store_socket().c_str());
  auto xs = weft::Array<float>::make(1 << 18);  // 1 MiB, in the node's store
  std::fill_n(xs.mutable_data(), xs.size(), 1.0f);
  auto array = weft::put(xs);
  if (role == "work") {
    std::vector<weft::ObjectRef<int>> parts;
    for (int i = 0; i < 100; ++i) parts.push_back(weft::task(square).remote(i));
    long sum = 0;
    for (auto& p : parts) sum += weft::get(p);
    std::printf("sum %ld\n", sum);
    auto [pid, parent] = weft::get(weft::task(whoami).remote(0));
    std::printf("worker %lld parent %lld\n", static_cast<long long>(pid), static_cast<long long>(parent));
    std::printf("array %.0f\n", weft::get(weft::task(total).remote(array)));
    std::fflush(stdout);
    return weft::shutdown().is_ok() ? 0 : 4;
  }
  if (role == "hog") {  // keeps its workers busy; reports how many it kept while another driver ran
    std::printf("ready\n");
    std::fflush(stdout);
    size_t live = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      std::vector<weft::ObjectRef<int>> batch;
      for (int i = 0; i < 4; ++i) batch.push_back(weft::task(sleep_ms).remote(20));
      for (auto& b : batch) weft::get(b);
      const auto pids = executor().worker_pids();
      live = static_cast<size_t>(std::count_if(pids.begin(), pids.end(), [](pid_t p) { return p > 0; }));
      if (executor().stats().retired > 0 && live == 2) break;  // gave one up, and got it back
    }
    std::printf("retired %llu\nback %zu\n", static_cast<unsigned long long>(executor().stats().retired), live);
    std::fflush(stdout);
    return weft::shutdown().is_ok() ? 0 : 4;
  }
  if (role == "sink") {  // names an actor, then reports what reached it
    auto sink = weft::actor<Sink>(make_sink).name("sink").remote();
    std::printf("ready\n");
    std::fflush(stdout);
    std::string error;
    for (int i = 0; i < 300 && error.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      error = weft::get(sink.task(&Sink::error).remote());  // after the calls before it
    }
    std::printf("total %ld\nerror %s\n", weft::get(sink.task(&Sink::add).remote(0L)), error.c_str());
    std::fflush(stdout);
    return weft::shutdown().is_ok() ? 0 : 4;
  }
  if (role == "lend") {  // calls the other driver's actor with refs it owns, then dies
    auto sink = weft::get_actor<Sink>("sink");
    std::printf("added %ld\n", weft::get(sink.task(&Sink::add).remote(5L)));
    auto quick = weft::task(sleep_ms).remote(300);
    std::printf("took %d\n", weft::get(sink.task(&Sink::take).remote(weft::put(std::vector{quick}))));
    try {
      (void)weft::actor<Sink>(make_sink).name("sink").remote();
      std::printf("name taken twice\n");
    } catch (const weft::Error& e) {
      std::printf("name refused: %s\n", e.what());
    }
    auto slow = weft::task(sleep_ms).remote(60000);
    auto never = sink.task(&Sink::take).remote(weft::put(std::vector{slow}));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the sink waits on `slow` now
    std::printf("lent\n");
    std::fflush(stdout);
    raise(SIGKILL);
  }
  if (role == "die") {  // busy workers, an object in the store, then killed
    auto busy = weft::task(sleep_ms).remote(60000);
    std::printf("workers");
    for (pid_t p : executor().worker_pids()) std::printf(" %d", static_cast<int>(p));
    std::printf("\n");
    std::fflush(stdout);
    raise(SIGKILL);
  }
  return 2;
}

// ---- the test's side ---------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  int out = -1;  // its stdout
};

Child start(const std::vector<std::string>& args, const std::vector<std::string>& extra_env) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> argv, envp;
  std::vector<std::string> a = args;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  Child c;
  EXPECT_EQ(posix_spawn(&c.pid, a[0].c_str(), &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  c.out = fds[0];
  return c;
}

// Reads the child's stdout until it closes.
std::string read_all(Child& c) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(c.out, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(c.out);
  c.out = -1;
  return out;
}

// Reads one line of the child's stdout.
std::string read_line(Child& c) {
  std::string line;
  char ch;
  while (read(c.out, &ch, 1) == 1 && ch != '\n') line += ch;
  return line;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool alive(pid_t pid) { return kill(pid, 0) == 0; }

template <class F>
bool eventually(F done, int ms = 10000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

std::string value_after(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

class Node : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(WEFT_CLI_PATH)) GTEST_SKIP() << "the weft command is not built";
    path_ = ::testing::TempDir() + "/node-" + std::to_string(getpid()) + ".sock";
    address_ = "unix:" + path_;
    node_ = start(
        {WEFT_CLI_PATH, "node", "--address", address_, "--workers", "2", "--store-bytes", std::to_string(256 << 20)},
        {});
    const std::string banner = read_line(node_);
    ASSERT_NE(banner.find("listening at " + address_), std::string::npos) << banner;
  }
  void TearDown() override {
    if (node_.pid <= 0) return;
    kill(node_.pid, SIGTERM);
    EXPECT_EQ(wait_exit(node_.pid), 0) << "the node stops cleanly on SIGTERM";
    EXPECT_FALSE(std::filesystem::exists(path_)) << "and removes its socket";
  }
  Child driver(const std::string& role) {
    return start({"/proc/self/exe"}, {"WEFT_NODE_TEST_ROLE=" + role, "WEFT_NODE_TEST_ADDRESS=" + address_});
  }
  uint64_t store_objects() {
    auto c = weft::objectstore::StoreClient::connect(path_ + ".store");
    if (!c.ok()) return ~uint64_t{0};
    auto st = (*c)->stats();
    return st.ok() ? st->objects : ~uint64_t{0};
  }
  std::string path_, address_;
  Child node_;
};

TEST_F(Node, TwoDriversShareOneNodeAndItsStore) {
  Child a = driver("work"), b = driver("work");
  const std::string out_a = read_all(a), out_b = read_all(b);
  EXPECT_EQ(wait_exit(a.pid), 0) << out_a;
  EXPECT_EQ(wait_exit(b.pid), 0) << out_b;
  for (const std::string& out : {out_a, out_b}) {
    EXPECT_EQ(value_after(out, "sum"), "328350") << out;
    EXPECT_EQ(value_after(out, "array"), "262144") << out;
    EXPECT_EQ(value_after(out, "store"), path_ + ".store") << out;
    const std::string w = value_after(out, "worker");
    EXPECT_NE(w.find("parent " + std::to_string(node_.pid)), std::string::npos)
        << "workers are the node's children: " << w;
  }
  EXPECT_TRUE(eventually([&] { return store_objects() == 0; })) << "the drivers' objects went with them";
}

TEST_F(Node, ADriverThatDiesTakesItsWorkersAndObjectsWithIt) {
  Child d = driver("die");
  const std::string store = read_line(d);
  const std::string line = read_line(d);
  ASSERT_EQ(line.rfind("workers ", 0), 0u) << store << "\n" << line;
  std::vector<pid_t> workers;
  std::istringstream in(line.substr(8));
  for (pid_t p; in >> p;) workers.push_back(p);
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(wait_exit(d.pid), 128 + SIGKILL);
  read_all(d);
  EXPECT_TRUE(eventually([&] { return !alive(workers[0]) && !alive(workers[1]); })) << "its workers are stopped";
  EXPECT_TRUE(eventually([&] { return store_objects() == 0; })) << "its objects are freed";
  // The node goes on serving.
  Child next = driver("work");
  const std::string out = read_all(next);
  EXPECT_EQ(wait_exit(next.pid), 0) << out;
  EXPECT_EQ(value_after(out, "sum"), "328350") << out;
}

TEST_F(Node, ADriverCallsAnotherDriversNamedActorWithRefsItOwnsAndItsDeathIsOwnerDied) {
  Child sink = driver("sink");
  ASSERT_EQ(read_line(sink), "store " + path_ + ".store");
  ASSERT_EQ(read_line(sink), "ready");
  Child lender = driver("lend");
  const std::string out = read_all(lender);
  EXPECT_EQ(wait_exit(lender.pid), 128 + SIGKILL) << out;
  EXPECT_EQ(value_after(out, "added"), "5") << out;
  EXPECT_EQ(value_after(out, "took"), "300") << "the sink's worker read the lender's object: " << out;
  EXPECT_NE(value_after(out, "name").find("taken by an actor of driver"), std::string::npos) << out;
  EXPECT_NE(out.find("\nlent\n"), std::string::npos) << out;
  const std::string report = read_all(sink);
  EXPECT_EQ(wait_exit(sink.pid), 0) << report;
  EXPECT_EQ(value_after(report, "total"), "5") << report;
  EXPECT_EQ(value_after(report, "error").rfind("OwnerDied: ", 0), 0u)
      << "the object's owner died while the sink waited for it: " << report;
}

TEST_F(Node, DriversShareTheNodesSlotsFairly) {
  // Two slots, and two drivers that want two workers each: the busy one gives one up while the
  // other runs, and gets it back when it leaves.
  kill(node_.pid, SIGTERM);
  EXPECT_EQ(wait_exit(node_.pid), 0);
  node_ = start({WEFT_CLI_PATH, "node", "--address", address_, "--workers", "2", "--slots", "2"}, {});
  ASSERT_NE(read_line(node_).find("listening at " + address_), std::string::npos);
  Child hog = driver("hog");
  ASSERT_EQ(read_line(hog), "store " + path_ + ".store");
  ASSERT_EQ(read_line(hog), "ready");
  Child work = driver("work");
  const std::string out = read_all(work);
  EXPECT_EQ(wait_exit(work.pid), 0) << out;
  EXPECT_EQ(value_after(out, "sum"), "328350") << out;
  EXPECT_EQ(value_after(out, "array"), "262144") << out;
  const std::string report = read_all(hog);
  EXPECT_EQ(wait_exit(hog.pid), 0) << report;
  EXPECT_EQ(value_after(report, "retired"), "1") << "it yielded a slot to the other driver: " << report;
  EXPECT_EQ(value_after(report, "back"), "2") << "and got it back: " << report;
}

TEST_F(Node, GarbageAndBadRequestsAreRefusedClearly) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvtimeo, 5000);
  s.connect("ipc://" + path_);
  for (const std::string g : {std::string(""), std::string("\xff\xfe"), std::string(3000, 'x')}) {
    s.send(zmq::buffer(g), zmq::send_flags::none);
  }
  using namespace weft::workers::node;
  s.send(zmq::buffer(encode(Spawn{0})), zmq::send_flags::none);  // never attached: no answer
  s.send(zmq::buffer(encode(Attach{getpid(), "ipc:///nowhere", "/no/such/program", {"x"}, {}, "/"})),
         zmq::send_flags::none);
  zmq::message_t m;
  ASSERT_TRUE(s.recv(m));
  auto reply = decode_node(std::string_view(static_cast<const char*>(m.data()), m.size()));
  ASSERT_TRUE(reply.ok()) << reply.status();
  const auto* attached = std::get_if<Attached>(&*reply);
  ASSERT_NE(attached, nullptr);
  EXPECT_FALSE(attached->ok);
  EXPECT_NE(attached->message.find("cannot run the driver's executable '/no/such/program'"), std::string::npos)
      << attached->message;
  // A real driver is served as before.
  Child d = driver("work");
  const std::string out = read_all(d);
  EXPECT_EQ(wait_exit(d.pid), 0) << out;
  EXPECT_EQ(value_after(out, "sum"), "328350") << out;
}

TEST(NodeAddress, NoNodeThereIsAClearError) {
  weft::Status s = weft::init({.address = "unix:/nonexistent/weft-node.sock"});
  EXPECT_EQ(s.code(), weft::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("no node listens at unix:/nonexistent/weft-node.sock"), std::string::npos) << s;
  EXPECT_EQ(weft::init({.address = "tcp://10.0.0.1:1"}).code(), weft::StatusCode::kUnavailable);
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* role = std::getenv("WEFT_NODE_TEST_ROLE")) return driver_main(role);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
