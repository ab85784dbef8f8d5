#include "cluster/node_agent.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "cluster/head.h"
#include "cluster/job_process.h"
#include "cluster/job_sandbox.h"
#include "cluster/package.h"
#include "cluster/protocol.h"
#include "cluster/secure_socket.h"
#include "core/logging.h"
#include "workers/node_daemon.h"

extern char** environ;

namespace weft::cluster {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kLogChunk = 256 << 10;
constexpr size_t kLogBytesPerReply = 4 << 20;
constexpr auto kRefetchAfter = std::chrono::seconds(2);

struct Job {
  JobStart spec;
  JobState state = JobState::kPending;
  int32_t exit_code = 0;
  std::string message;
  std::unique_ptr<JobProcess> process;
  bool stopping = false;
  Clock::time_point kill_at{};
  Clock::time_point fetch_sent{};
};

std::string describe_exit(const JobProcess& p) {
  if (p.term_signal() != 0) return std::string("killed by signal ") + strsignal(p.term_signal());
  return "exit code " + std::to_string(p.exit_code());
}

// Where `program` runs from: as given when it names a path (relative to the job's directory),
// else the first executable of that name on PATH; empty when there is none.
std::string find_program(const std::string& program, const std::string& path, const fs::path& cwd) {
  std::error_code ec;
  if (program.find('/') != std::string::npos) {
    const fs::path found = fs::weakly_canonical(program.front() == '/' ? fs::path(program) : cwd / program, ec);
    return ec ? "" : found.string();
  }
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find(':', start), path.size());
    const fs::path candidate = fs::path(path.substr(start, end - start)) / program;
    if (end > start && access(candidate.c_str(), X_OK) == 0) {
      const fs::path found = fs::weakly_canonical(candidate, ec);
      return ec ? "" : found.string();
    }
    start = end + 1;
  }
  return "";
}

// The address of this machine that the head at `head` ("HOST:PORT") is reached from: where other
// nodes reach this one too. Found by routing (a UDP socket connected there sends nothing).
Result<std::string> address_towards(const std::string& head) {
  const size_t colon = head.rfind(':');
  if (colon == std::string::npos)
    return Status::invalid_argument("the head's address is HOST:PORT, not '" + head + "'");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const std::string host = head.substr(0, colon);
  if (getaddrinfo(host.c_str(), head.substr(colon + 1).c_str(), &hints, &found) != 0 || found == nullptr) {
    return Status::unavailable("cannot resolve the head's host '" + host + "'");
  }
  const int fd = socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  const bool ok = fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0;
  freeaddrinfo(found);
  if (fd >= 0) close(fd);
  char text[INET6_ADDRSTRLEN] = {};
  if (!ok || getnameinfo(reinterpret_cast<sockaddr*>(&local), len, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0)
    return Status::unavailable("no route from this machine to the head at " + head);
  return std::string(text);
}

WorkerLease to_wire(const workers::LeaseRequest& r) {
  return WorkerLease{r.lease_id, r.owner, r.index,    r.driver_pid,    r.executable,    r.argv,
                     r.env,      r.cwd,   r.endpoint, r.server_public, r.worker_public, r.worker_secret};
}

workers::LeaseRequest from_wire(const WorkerLease& l) {
  return workers::LeaseRequest{l.lease_id, l.owner, l.index,    l.driver_pid,    l.executable,    l.argv,
                               l.env,      l.cwd,   l.endpoint, l.server_public, l.worker_public, l.worker_secret};
}

std::string hostname() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

struct NodeAgent::Server {
  NodeAgentOptions options;
  std::string node_id;
  std::unique_ptr<workers::NodeDaemon> daemon;
  zmq::context_t ctx{1};
  zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
  bool registered = false;
  Clock::time_point next_heartbeat{};
  std::map<std::string, Job> jobs;
  struct PendingAsk {
    WorkerLease lease;
    Clock::time_point sent;
  };
  std::map<std::string, PendingAsk> asks;  // lease asks the head has not answered
  uint64_t lease_version = 0;
  std::atomic<bool> stop{false};
  std::thread thread;

  fs::path job_dir(const std::string& id) const { return fs::path(options.work_dir) / "jobs" / id; }
  fs::path log_path(const std::string& id) const { return fs::path(options.work_dir) / "jobs" / (id + ".log"); }
  fs::path package_path(const std::string& hash) const { return fs::path(options.work_dir) / "packages" / hash; }

  template <class M>
  void send(const M& m) {
    const std::string bytes = encode(m);
    try {
      (void)dealer.send(zmq::buffer(bytes), zmq::send_flags::dontwait);  // dropped while the head is away
    } catch (const zmq::error_t&) {
    }
  }

  Status connect() {
    try {
      dealer.set(zmq::sockopt::linger, 0);
      dealer.set(zmq::sockopt::routing_id, node_id);
      dealer.set(zmq::sockopt::immediate, 1);
      dealer.set(zmq::sockopt::reconnect_ivl, 200);
      dealer.set(zmq::sockopt::reconnect_ivl_max, 2000);
      connect_securely(dealer, options.credential);
      dealer.connect("tcp://" + options.head_address);
    } catch (const zmq::error_t& e) {
      return Status::invalid_argument("cannot reach the head at " + options.head_address + ": " + e.what());
    }
    return Status::ok();
  }

  void run() {
    while (!stop.load()) {
      zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
      (void)zmq::poll(&item, 1, std::chrono::milliseconds(50));
      for (int i = 0; i < 64 && (item.revents & ZMQ_POLLIN); ++i) {
        zmq::message_t msg;
        if (!dealer.recv(msg, zmq::recv_flags::dontwait)) break;
        auto m = decode_to_node(msg.to_string());
        if (!m.ok()) {
          log()->warn("node {}: dropped a message from the head: {}", node_id, m.status().message());
          continue;
        }
        std::visit([&](auto& v) { on(v); }, *m);
      }
      reap();
      exchange_leases();
      if (Clock::now() >= next_heartbeat) {
        next_heartbeat = Clock::now() + options.heartbeat;
        registered ? send(heartbeat()) : send(registration());
      }
    }
  }

  Register registration() const {
    return Register{node_id,           hostname(),        static_cast<int64_t>(getpid()),
                    options.resources, daemon->address(), static_cast<uint32_t>(daemon->slots())};
  }

  Heartbeat heartbeat() const {
    const workers::NodeCounts counts = daemon->counts();
    const objectstore::StoreStats store = daemon->store_stats();
    Heartbeat hb{.node_id = node_id,
                 .workers = static_cast<uint32_t>(counts.workers),
                 .drivers = static_cast<uint32_t>(counts.drivers),
                 .objects = store.objects,
                 .object_bytes = store.used,
                 .store_bytes = store.capacity,
                 .slots = static_cast<uint32_t>(daemon->slots()),
                 .wanted = daemon->wanted_leases()};
    for (const workers::LeasedWorker& w : daemon->leased()) {
      hb.leases.push_back({w.lease_id, w.owner, w.pid, w.exited, w.how});
    }
    for (const auto& [id, j] : jobs) {
      std::error_code ec;
      const uint64_t size = fs::exists(log_path(id)) ? fs::file_size(log_path(id), ec) : 0;
      hb.jobs.push_back({id, static_cast<uint8_t>(j.state), j.exit_code, j.message, size});
    }
    return hb;
  }

  // --- from the head -------------------------------------------------------------------------

  void on(const HeartbeatReply& r) {
    if (!r.known) {
      if (registered) log()->info("node {}: the head does not know this node; registering again", node_id);
      registered = false;
      next_heartbeat = Clock::now();
      return;
    }
    if (!registered) log()->info("node {}: registered with the head at {}", node_id, options.head_address);
    registered = true;
    size_t budget = kLogBytesPerReply;
    for (const LogOffset& o : r.logs) {
      if (jobs.count(o.job_id)) send_log(o.job_id, o.offset, budget);
    }
    for (const std::string& id : r.done) forget(id);
    for (const std::string& id : r.lease_kill) daemon->kill_leased(id);
    for (const std::string& id : r.lease_done) daemon->forget_leased(id);
  }

  // --- leases (lease_book.h) -----------------------------------------------------------------

  // Asks for the workers the daemon has no slot for, again while unanswered; heartbeats at once
  // when a leased worker starts or ends.
  void exchange_leases() {
    for (workers::LeaseRequest& r : daemon->take_lease_asks()) {
      WorkerLease l = to_wire(r);
      asks[l.lease_id] = PendingAsk{l, Clock::now()};
      if (registered) send(LeaseAsk{std::move(l)});
    }
    if (!asks.empty()) {
      const std::vector<std::string> wanted = daemon->wanted_leases();
      std::erase_if(asks,
                    [&](const auto& kv) { return std::find(wanted.begin(), wanted.end(), kv.first) == wanted.end(); });
      for (auto& [id, a] : asks) {
        if (registered && Clock::now() - a.sent > kRefetchAfter) {
          a.sent = Clock::now();
          send(LeaseAsk{a.lease});
        }
      }
    }
    if (const uint64_t v = daemon->lease_version(); v != lease_version) {
      lease_version = v;
      next_heartbeat = Clock::now();
    }
  }

  void on(const LeaseAnswer& a) {
    asks.erase(a.lease_id);
    daemon->lease_answer(a.lease_id, a.node_id, a.pid, a.ended, a.how);
  }

  void on(const LeaseStart& s) {
    if (s.lease.owner == node_id) return;  // never its own
    daemon->start_leased(from_wire(s.lease));
  }

  void send_log(const std::string& id, uint64_t offset, size_t& budget) {
    std::ifstream in(log_path(id), std::ios::binary);
    if (!in) return;
    in.seekg(static_cast<std::streamoff>(offset));
    while (budget > 0 && in) {
      JobLog chunk{.job_id = id, .offset = offset};
      chunk.data.data.resize(std::min(kLogChunk, budget));
      in.read(chunk.data.data.data(), static_cast<std::streamsize>(chunk.data.data.size()));
      chunk.data.data.resize(static_cast<size_t>(in.gcount()));
      if (chunk.data.data.empty()) return;
      offset += chunk.data.data.size();
      budget -= chunk.data.data.size();
      send(chunk);
    }
  }

  void forget(const std::string& id) {
    auto j = jobs.find(id);
    if (j == jobs.end() || !is_final(j->second.state)) return;
    jobs.erase(j);
    std::error_code ec;
    fs::remove_all(job_dir(id), ec);
    fs::remove(log_path(id), ec);
  }

  void on(const JobStart& s) {
    if (jobs.count(s.job_id)) return;  // a resend: it is known
    Job& j = jobs[s.job_id];
    j.spec = s;
    log()->info("node {}: job {} arrived", node_id, s.job_id);
    if (s.package.empty() || fs::exists(package_path(s.package))) {
      launch(s.job_id, j);
    } else {
      j.fetch_sent = Clock::now();
      send(PackageFetch{s.package});
    }
  }

  void on(const PackageData& d) {
    if (d.ok && content_hash(d.data.data) == d.hash) {
      const fs::path tmp = package_path(d.hash).string() + ".part";
      std::ofstream(tmp, std::ios::binary).write(d.data.data.data(), static_cast<std::streamsize>(d.data.data.size()));
      std::error_code ec;
      fs::rename(tmp, package_path(d.hash), ec);
    }
    for (auto& [id, j] : jobs) {
      if (j.state != JobState::kPending || j.process != nullptr || j.spec.package != d.hash) continue;
      if (fs::exists(package_path(d.hash))) {
        launch(id, j);
      } else {
        end(id, j, JobState::kFailed, -1,
            "cannot fetch its working directory from the head: " + (d.ok ? "it does not match its hash" : d.error));
      }
    }
  }

  void on(const JobKill& k) {
    auto it = jobs.find(k.job_id);
    if (it == jobs.end() || is_final(it->second.state)) return;
    Job& j = it->second;
    if (j.process == nullptr) {
      end(k.job_id, j, JobState::kStopped, -1, "stopped before it started");
    } else if (!j.stopping) {
      j.stopping = true;
      j.kill_at = Clock::now() + options.kill_grace;
      j.process->signal_group(SIGTERM);
      log()->info("node {}: stopping job {}", node_id, k.job_id);
    }
  }

  void on(const PackageFetch&) {}

  // --- jobs ----------------------------------------------------------------------------------

  void launch(const std::string& id, Job& j) {
    std::error_code ec;
    fs::create_directories(job_dir(id), ec);
    if (!j.spec.package.empty()) {
      std::ifstream in(package_path(j.spec.package), std::ios::binary);
      std::ostringstream bytes;
      bytes << in.rdbuf();
      if (Status s = unpack_package(bytes.str(), job_dir(id).string()); !s.is_ok()) {
        end(id, j, JobState::kFailed, -1, "its working directory cannot be unpacked: " + s.message());
        return;
      }
    }
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const size_t eq = entry.find('=');
      if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    for (const auto& [k, v] : j.spec.env) env[k] = v;
    env["WEFT_ADDRESS"] = daemon->address();
    env["WEFT_HEAD_ADDRESS"] = options.head_address;
    env["WEFT_JOB_ID"] = id;
    // The program is found on the job's PATH here, and that file is what runs (exec by path).
    const std::string program = find_program(j.spec.argv[0], env["PATH"], job_dir(id));
    std::optional<SandboxPlan> sandbox;
    if (options.sandbox) {
      fs::create_directories(job_dir(id) / ".tmp", ec);
      env["TMPDIR"] = (job_dir(id) / ".tmp").string();
      std::vector<std::string> read = system_read_paths();
      read.insert(read.end(), options.job_paths.begin(), options.job_paths.end());
      if (!program.empty()) read.push_back(fs::path(program).parent_path().string());
      sandbox.emplace(std::move(read), std::vector<std::string>{job_dir(id).string()});
    }
    std::vector<std::string> entries;
    for (const auto& [k, v] : env) entries.push_back(k + "=" + v);
    auto p = JobProcess::spawn(j.spec.argv, entries, job_dir(id).string(), log_path(id).string(),
                               sandbox ? &*sandbox : nullptr, program);
    if (!p.ok()) {
      end(id, j, JobState::kFailed, -1, p.status().message());
      return;
    }
    j.process = std::move(*p);
    j.state = JobState::kRunning;
    log()->info("node {}: job {} running as pid {}", node_id, id, j.process->pid());
  }

  void end(const std::string& id, Job& j, JobState state, int32_t code, std::string message) {
    j.state = state;
    j.exit_code = code;
    j.message = std::move(message);
    log()->info("node {}: job {} {}{}", node_id, id, to_string(state), j.message.empty() ? "" : ": " + j.message);
    next_heartbeat = Clock::now();  // tell the head at once
  }

  void reap() {
    for (auto& [id, j] : jobs) {
      if (j.state == JobState::kPending && j.process == nullptr && !j.spec.package.empty() &&
          Clock::now() - j.fetch_sent > kRefetchAfter) {
        j.fetch_sent = Clock::now();
        send(PackageFetch{j.spec.package});
      }
      if (j.process == nullptr || is_final(j.state)) continue;
      if (j.process->reap()) {
        const JobState state = j.stopping                    ? JobState::kStopped
                               : j.process->exit_code() == 0 ? JobState::kSucceeded
                                                             : JobState::kFailed;
        end(id, j, state, j.process->exit_code(),
            j.stopping || state != JobState::kSucceeded ? describe_exit(*j.process) : "");
      } else if (j.stopping && Clock::now() >= j.kill_at) {
        j.process->signal_group(SIGKILL);
      }
    }
  }

  void stop_jobs() {
    const auto deadline = Clock::now() + options.kill_grace;
    for (auto& [id, j] : jobs) {
      if (j.process != nullptr && !is_final(j.state)) j.process->signal_group(SIGTERM);
    }
    for (auto& [id, j] : jobs) {
      while (j.process != nullptr && !j.process->reap() && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      j.process.reset();  // SIGKILL to what is left
    }
  }
};

Result<std::unique_ptr<NodeAgent>> NodeAgent::start(NodeAgentOptions options) {
  if (sodium_init() < 0) return Status::internal("libsodium cannot start");
  if (options.work_dir.empty()) return Status::invalid_argument("a node needs a work directory");
  if (options.resources.empty()) {
    options.resources["CPU"] = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
  }
  std::unique_ptr<NodeAgent> agent(new NodeAgent());
  agent->s_ = std::make_unique<Server>();
  Server& s = *agent->s_;
  s.options = std::move(options);
  s.node_id = random_id("node");
  std::error_code ec;
  for (const char* sub : {"jobs", "packages"}) {
    fs::create_directories(fs::path(s.options.work_dir) / sub, ec);
    if (ec) return Status::io_error("cannot create " + s.options.work_dir + "/" + sub + ": " + ec.message());
  }
  fs::permissions(s.options.work_dir, fs::perms::owner_all, ec);
  WEFT_ASSIGN_OR_RETURN(const std::string host, address_towards(s.options.head_address));
  WEFT_ASSIGN_OR_RETURN(s.daemon, workers::NodeDaemon::start({.address = "unix:" + s.options.work_dir + "/node.sock",
                                                              .slots = s.options.slots,
                                                              .store_bytes = s.options.store_bytes,
                                                              .node_id = s.node_id,
                                                              .cluster_host = host}));
  if (s.options.sandbox && landlock_abi() == 0) {
    log()->warn("node {}: this kernel has no Landlock: jobs run unconfined (they can read what this user can)",
                s.node_id);
    s.options.sandbox = false;
  }
  WEFT_RETURN_IF_ERROR(s.connect());
  log()->info("node {}: joining the head at {}", s.node_id, s.options.head_address);
  s.thread = std::thread([&s] { s.run(); });
  return agent;
}

NodeAgent::~NodeAgent() {
  if (s_ == nullptr) return;
  s_->stop.store(true);
  if (s_->thread.joinable()) s_->thread.join();
  s_->stop_jobs();
}

std::string NodeAgent::node_id() const { return s_->node_id; }
std::string NodeAgent::node_socket() const { return s_->daemon->address(); }

}  // namespace weft::cluster
