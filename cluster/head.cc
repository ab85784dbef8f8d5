#include "cluster/head.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include <fmt/format.h>

#include "cluster/head_store.h"
#include "cluster/lease_book.h"
#include "cluster/protocol.h"
#include "cluster/secure_socket.h"
#include "core/logging.h"

namespace weft::cluster {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxLogChunk = 1 << 20;                    // per JobLog and LogsReply
constexpr auto kRestartJobAfter = std::chrono::seconds(2);  // an assigned job the node has not reported

struct NodeState {
  NodeInfo info;
  Clock::time_point last_seen;
  uint32_t slots = 0;  // worker processes it runs at once (its heartbeats say)
};

struct JobState_ {
  JobRecord record;
  uint64_t log_size = 0;  // bytes of output the head holds
  Clock::time_point start_sent{};
};

JobState state_of(const JobRecord& j) { return static_cast<JobState>(j.info.state); }

}  // namespace

std::string random_id(const std::string& prefix) {
  unsigned char bytes[6];
  randombytes_buf(bytes, sizeof bytes);
  char hex[2 * sizeof bytes + 1];
  return prefix + "-" + sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Head::Server {
  HeadOptions options;
  zmq::context_t ctx{1};
  std::unique_ptr<Authenticator> auth;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  zmq::socket_t monitor{ctx, zmq::socket_type::pair};  // the router's failed handshakes
  std::unique_ptr<HeadStore> store;
  std::string address;
  std::map<std::string, NodeState> nodes;
  std::map<std::string, JobState_> jobs;
  std::unique_ptr<LeaseBook> leases;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rejected{0}, refused{0};
  std::thread thread;

  fs::path package_path(const std::string& hash) const { return fs::path(options.state_dir) / "packages" / hash; }
  fs::path log_path(const std::string& job) const { return fs::path(options.state_dir) / "logs" / (job + ".log"); }

  // --- sending -------------------------------------------------------------------------------

  template <class M>
  void send(const std::string& peer, const M& m) {
    const std::string bytes = encode(m);
    try {
      router.send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      router.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The peer is not connected now (a node reconnecting, a client gone): it asks again.
    }
  }

  void persist(const JobState_& j) {
    if (Status s = store->put_job(j.record); !s.is_ok()) log()->error("head: {}", s.to_string());
  }
  void persist(const NodeState& n) {
    if (Status s = store->put_node(n.info); !s.is_ok()) log()->error("head: {}", s.to_string());
  }

  // --- start ---------------------------------------------------------------------------------

  Status load() {
    std::error_code ec;
    for (const char* sub : {"packages", "logs"}) {
      fs::create_directories(fs::path(options.state_dir) / sub, ec);
      if (ec) return Status::io_error("cannot create " + options.state_dir + "/" + sub + ": " + ec.message());
    }
    fs::permissions(options.state_dir, fs::perms::owner_all, ec);
    WEFT_ASSIGN_OR_RETURN(store, HeadStore::open((fs::path(options.state_dir) / "head.db").string()));
    leases = std::make_unique<LeaseBook>(std::chrono::seconds(2), options.node_timeout);
    WEFT_ASSIGN_OR_RETURN(auto known_nodes, store->nodes());
    // Nodes alive when the head stopped get a fresh timeout to report back in.
    for (auto& n : known_nodes) {
      const std::string id = n.node_id;
      nodes[id] = NodeState{std::move(n), Clock::now()};
    }
    WEFT_ASSIGN_OR_RETURN(auto known_jobs, store->jobs());
    for (auto& j : known_jobs) {
      JobState_ js{std::move(j)};
      const std::string id = js.record.info.job_id;
      js.log_size = fs::exists(log_path(id)) ? fs::file_size(log_path(id), ec) : 0;
      jobs[id] = std::move(js);
    }
    if (!nodes.empty() || !jobs.empty()) {
      log()->info("head: restored {} nodes and {} jobs from {}", nodes.size(), jobs.size(), options.state_dir);
    }
    return Status::ok();
  }

  Status bind() {
    WEFT_ASSIGN_OR_RETURN(auth, Authenticator::start(ctx, options.credential, "head"));
    const std::string endpoint =
        "tcp://" + options.bind + ":" + (options.port == 0 ? std::string("*") : std::to_string(options.port));
    try {
      router.set(zmq::sockopt::linger, 0);
      router.set(zmq::sockopt::router_mandatory, 1);
      router.set(zmq::sockopt::router_handover, 1);
      router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_package_bytes + (1 << 20)));
      serve_securely(router, options.credential);
      if (zmq_socket_monitor(router.handle(), "inproc://head-handshakes",
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
        return Status::internal("cannot monitor the head's socket");
      }
      monitor.set(zmq::sockopt::linger, 0);
      monitor.connect("inproc://head-handshakes");
      router.bind(endpoint);
      const std::string last = router.get(zmq::sockopt::last_endpoint);  // tcp://HOST:PORT
      address = last.substr(last.find("//") + 2);
    } catch (const zmq::error_t& e) {
      return Status::unavailable("the head cannot listen at " + endpoint + ": " + e.what());
    }
    return Status::ok();
  }

  // --- the loop ------------------------------------------------------------------------------

  void run() {
    while (!stop.load()) {
      zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}, {monitor.handle(), 0, ZMQ_POLLIN, 0}};
      (void)zmq::poll(items, 2, std::chrono::milliseconds(100));
      if (items[1].revents & ZMQ_POLLIN) on_handshake_failure();
      for (int i = 0; i < 64 && (items[0].revents & ZMQ_POLLIN); ++i) {
        zmq::message_t peer, body;
        if (!router.recv(peer, zmq::recv_flags::dontwait)) break;
        bool well_formed = peer.more() && router.recv(body, zmq::recv_flags::none) && !body.more();
        while (body.more()) (void)router.recv(body, zmq::recv_flags::none);
        handle(peer.to_string(), well_formed ? body.to_string() : std::string());
      }
      check_nodes();
      place_jobs();
    }
  }

  // A peer failed the CURVE handshake: the wrong head key (it cannot even say hello), a member
  // key the authenticator refused (logged there with its address), or garbage.
  void on_handshake_failure() {
    zmq::message_t event, endpoint;
    if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
    if (event.more()) (void)monitor.recv(endpoint, zmq::recv_flags::none);
    uint16_t kind = 0;
    if (event.size() >= sizeof kind) std::memcpy(&kind, event.data(), sizeof kind);
    refused.fetch_add(1);
    if (kind != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      log()->warn("head: refused a connection: its CURVE handshake failed ({})",
                  kind == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                      ? "not this cluster's keys, or a replayed or corrupt handshake"
                      : "garbage");
    }
  }

  void handle(const std::string& peer, const std::string& bytes) {
    auto m = decode_to_head(bytes);
    if (!m.ok()) {
      rejected.fetch_add(1);
      log()->warn("head: rejected a message: {}", m.status().message());
      send(peer, Reply::of(m.status()));
      return;
    }
    try {
      std::visit([&](auto& msg) { on(peer, msg); }, *m);
    } catch (const std::exception& e) {  // a message the head cannot handle costs that message only
      rejected.fetch_add(1);
      log()->error("head: a {} failed: {}", wire::name_of(*m), e.what());
      send(peer, Reply::of(Status::internal(std::string("the head could not handle this request: ") + e.what())));
    }
  }

  // --- nodes ---------------------------------------------------------------------------------

  void on(const std::string& peer, const Register& r) {
    const bool resources_ok = std::all_of(r.resources.begin(), r.resources.end(), [](const auto& kv) {
      return !kv.first.empty() && std::isfinite(kv.second) && kv.second >= 0;
    });
    if (r.node_id.empty() || r.node_id != peer || !resources_ok) {
      rejected.fetch_add(1);
      log()->warn(
          "head: rejected the registration of node '{}': its id is not its connection's, or a resource is "
          "not a finite number >= 0",
          r.node_id);
      return;
    }
    auto [it, fresh] = nodes.try_emplace(r.node_id);
    NodeState& n = it->second;
    const bool was_alive = n.info.alive;
    n.info.node_id = r.node_id;
    n.info.hostname = r.hostname;
    n.info.pid = r.pid;
    n.info.resources = r.resources;
    n.info.node_socket = r.node_socket;
    n.slots = r.slots;
    n.info.alive = true;
    n.info.last_seen_ms = now_ms();
    n.last_seen = Clock::now();
    persist(n);
    if (fresh || !was_alive) {
      log()->info("head: node {} {} ({}, pid {})", r.node_id, fresh ? "joined" : "is back", r.hostname, r.pid);
    }
    send(peer, HeartbeatReply{.known = true});
  }

  void on(const std::string& peer, const Heartbeat& hb) {
    auto it = nodes.find(hb.node_id);
    if (it == nodes.end() || !it->second.info.alive || hb.node_id != peer) {
      send(peer, HeartbeatReply{.known = false});  // register (again) first
      return;
    }
    NodeState& n = it->second;
    n.last_seen = Clock::now();
    n.info.last_seen_ms = now_ms();
    n.info.workers = hb.workers;
    n.info.drivers = hb.drivers;
    n.info.objects = hb.objects;
    n.info.object_bytes = hb.object_bytes;
    n.info.store_bytes = hb.store_bytes;
    n.slots = hb.slots;
    HeartbeatReply reply{.known = true};
    LeaseOut out;
    leases->heartbeat(
        hb.node_id, hb.wanted, hb.leases,
        [this](const std::string& node) {
          auto found = nodes.find(node);
          return found != nodes.end() && found->second.info.alive;
        },
        Clock::now(), reply, out);
    send_all(out);
    std::set<std::string> reported;
    for (const JobReport& report : hb.jobs) {
      reported.insert(report.job_id);
      auto j = jobs.find(report.job_id);
      if (j == jobs.end()) {
        reply.done.push_back(report.job_id);  // not a job of this head's: forget it
        continue;
      }
      update_job(j->second, hb.node_id, report, reply);
    }
    // Jobs placed on this node that it does not know: it never got the JobStart (or lost it).
    for (auto& [id, j] : jobs) {
      if (j.record.info.node_id == hb.node_id && state_of(j.record) == JobState::kPending && !reported.count(id) &&
          Clock::now() - j.start_sent > kRestartJobAfter) {
        if (j.record.stop_requested) {  // stopped before its node ever had it: it never starts
          j.record.info.state = static_cast<uint8_t>(JobState::kStopped);
          j.record.info.ended_ms = now_ms();
          j.record.info.message = "stopped before it started";
          persist(j);
        } else {
          start_job(j);
        }
      }
    }
    send(peer, reply);
  }

  void update_job(JobState_& j, const std::string& node, const JobReport& report, HeartbeatReply& reply) {
    JobInfo& info = j.record.info;
    const auto reported = static_cast<JobState>(report.state);
    if (info.node_id != node) {
      send(node, JobKill{report.job_id});  // not placed there (any more): it must not run
      reply.done.push_back(report.job_id);
      return;
    }
    if (is_final(state_of(j.record))) {
      // The head gave up on it (its node was declared dead) or already has its end.
      if (!is_final(reported)) send(node, JobKill{report.job_id});
    } else if (reported == JobState::kRunning && state_of(j.record) == JobState::kPending) {
      info.state = static_cast<uint8_t>(JobState::kRunning);
      info.started_ms = now_ms();
      persist(j);
    } else if (is_final(reported)) {
      info.state = report.state;
      info.exit_code = report.exit_code;
      info.message = report.message;
      info.ended_ms = now_ms();
      if (info.started_ms == 0) info.started_ms = info.ended_ms;
      j.record.final_log_size = report.log_size;
      persist(j);
      log()->info("head: job {} {}{}", info.job_id, to_string(reported),
                  info.message.empty() ? "" : ": " + info.message);
    }
    if (j.record.stop_requested && !is_final(reported)) send(node, JobKill{report.job_id});
    reply.logs.push_back({report.job_id, j.log_size});
    if (is_final(reported) && is_final(state_of(j.record)) && j.log_size >= report.log_size) {
      reply.done.push_back(report.job_id);
    }
  }

  void on(const std::string& peer, const JobLog& l) {
    auto j = jobs.find(l.job_id);
    if (j == jobs.end() || j->second.record.info.node_id != peer || l.offset != j->second.log_size ||
        l.data.data.size() > kMaxLogChunk) {
      return;  // stale or duplicate: the next heartbeat reply says where to resume
    }
    std::ofstream out(log_path(l.job_id), std::ios::binary | std::ios::app);
    out.write(l.data.data.data(), static_cast<std::streamsize>(l.data.data.size()));
    if (out) j->second.log_size += l.data.data.size();
  }

  void on(const std::string& peer, const PackageFetch& f) {
    PackageData reply{.hash = f.hash};
    if (!is_content_hash(f.hash) || !fs::exists(package_path(f.hash))) {
      reply.error = "the head has no package " + f.hash;
    } else {
      std::ifstream in(package_path(f.hash), std::ios::binary);
      std::ostringstream bytes;
      bytes << in.rdbuf();
      reply.ok = true;
      reply.data.data = bytes.str();
    }
    send(peer, reply);
  }

  void send_all(const LeaseOut& out) {
    for (const auto& [node, start] : out.starts) send(node, start);
    for (const auto& [node, answer] : out.answers) send(node, answer);
  }

  // A node with no free slot for a driver's worker: placed on another node (lease_book.h).
  void on(const std::string& peer, const LeaseAsk& a) {
    auto it = nodes.find(peer);
    const WorkerLease& l = a.lease;
    if (it == nodes.end() || !it->second.info.alive || l.owner != peer || l.lease_id.rfind(peer + ":", 0) != 0 ||
        l.endpoint.rfind("tcp://", 0) != 0 || l.argv.empty()) {
      rejected.fetch_add(1);
      log()->warn("head: rejected a lease ask from '{}': not a live node's, or not a worker it can ask for", peer);
      return;
    }
    std::vector<NodeSlots> slots;
    for (const auto& [id, n] : nodes) slots.push_back({id, n.info.alive, n.slots, n.info.workers});
    LeaseOut out;
    leases->ask(l, slots, Clock::now(), out);
    for (const auto& [node, start] : out.starts) {
      log()->info("head: worker {} of driver {} on node {} placed on node {}", l.index, l.driver_pid, peer, node);
    }
    send_all(out);
  }

  void check_nodes() {
    const auto now = Clock::now();
    for (auto& [id, n] : nodes) {
      if (!n.info.alive || now - n.last_seen <= options.node_timeout) continue;
      n.info.alive = false;
      persist(n);
      const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - n.last_seen).count();
      log()->warn("head: node {} ({}) is dead: no heartbeat for {} ms", id, n.info.hostname, silent);
      LeaseOut out;
      leases->node_died(id, fmt::format("the node ({}) died: no heartbeat for {} ms", n.info.hostname, silent), out);
      send_all(out);
      for (auto& [job_id, j] : jobs) {
        if (j.record.info.node_id != id || is_final(state_of(j.record))) continue;
        j.record.info.state = static_cast<uint8_t>(JobState::kFailed);
        j.record.info.exit_code = -1;
        j.record.info.message = "its node " + id + " died (no heartbeat for " + std::to_string(silent) + " ms)";
        j.record.info.ended_ms = now_ms();
        persist(j);
        log()->warn("head: job {} FAILED: {}", job_id, j.record.info.message);
      }
    }
  }

  // --- jobs ----------------------------------------------------------------------------------

  void start_job(JobState_& j) {
    j.start_sent = Clock::now();
    send(j.record.info.node_id, JobStart{j.record.info.job_id, j.record.info.argv, j.record.env, j.record.package});
  }

  size_t load_of(const std::string& node) const {
    size_t n = 0;
    for (const auto& [id, j] : jobs) n += j.record.info.node_id == node && !is_final(state_of(j.record));
    return n;
  }

  // The resources a node's unfinished jobs hold.
  std::map<std::string, double> used_on(const std::string& node) const {
    std::map<std::string, double> used;
    for (const auto& [id, j] : jobs) {
      if (j.record.info.node_id != node || is_final(state_of(j.record))) continue;
      for (const auto& [name, qty] : j.record.info.resources) used[name] += qty;
    }
    return used;
  }

  static bool fits(const NodeInfo& n, const std::map<std::string, double>& used,
                   const std::map<std::string, double>& need) {
    for (const auto& [name, qty] : need) {
      auto have = n.resources.find(name);
      auto taken = used.find(name);
      if (qty > 0 && (have == n.resources.end() || have->second - (taken == used.end() ? 0 : taken->second) < qty)) {
        return false;
      }
    }
    return true;
  }

  static std::string describe(const std::map<std::string, double>& r) {
    std::string s;
    for (const auto& [name, qty] : r) s += (s.empty() ? "" : ", ") + name + " " + fmt::format("{:g}", qty);
    return s;
  }

  void place_jobs() {
    for (auto& [id, j] : jobs) {
      if (!j.record.info.node_id.empty() || is_final(state_of(j.record))) continue;
      const NodeState* best = nullptr;
      size_t best_load = 0;
      bool feasible = false;  // some live node has that much in all
      for (const auto& [node_id, n] : nodes) {
        if (!n.info.alive) continue;
        feasible = feasible || fits(n.info, {}, j.record.info.resources);
        if (!fits(n.info, used_on(node_id), j.record.info.resources)) continue;
        const size_t load = load_of(node_id);
        if (best == nullptr || load < best_load) best = &n, best_load = load;
      }
      if (best == nullptr) {  // it waits: say for what
        const std::string why =
            nodes.empty() || !feasible
                ? "waiting for a node with " +
                      (j.record.info.resources.empty() ? std::string("room") : describe(j.record.info.resources))
                : "waiting for " + describe(j.record.info.resources) + " to be free";
        if (j.record.info.message != why) {
          j.record.info.message = why;
          persist(j);
        }
        continue;
      }
      j.record.info.message.clear();
      j.record.info.node_id = best->info.node_id;
      persist(j);
      log()->info("head: job {} placed on node {}", id, best->info.node_id);
      start_job(j);
    }
  }

  void on(const std::string& peer, const StatusRequest&) {
    StatusReply reply{.head_address = address};
    for (const auto& [id, n] : nodes) {
      NodeInfo info = n.info;
      info.jobs = static_cast<uint32_t>(load_of(id));
      info.used = used_on(id);
      reply.nodes.push_back(std::move(info));
    }
    for (const auto& [id, j] : jobs) reply.jobs.push_back(info_of(j));
    std::sort(reply.jobs.begin(), reply.jobs.end(),
              [](const JobInfo& a, const JobInfo& b) { return a.submitted_ms < b.submitted_ms; });
    send(peer, reply);
  }

  JobInfo info_of(const JobState_& j) const {
    JobInfo info = j.record.info;
    info.log_size = j.log_size;
    return info;
  }

  void on(const std::string& peer, const PackageHave& h) {
    if (is_content_hash(h.hash) && fs::exists(package_path(h.hash))) {
      send(peer, Reply{.ok = true});
    } else {
      send(peer, Reply::of(Status::not_found("the head has no package " + h.hash)));
    }
  }

  void on(const std::string& peer, const PackageUpload& u) {
    if (!is_content_hash(u.hash) || content_hash(u.data.data) != u.hash) {
      send(peer, Reply::of(Status::corruption("the uploaded package does not match its hash")));
      return;
    }
    const fs::path path = package_path(u.hash);
    const fs::path tmp = path.string() + ".part";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(u.data.data.data(), static_cast<std::streamsize>(u.data.data.size()));
    out.close();
    std::error_code ec;
    if (!out || (fs::rename(tmp, path, ec), ec)) {
      send(peer,
           Reply::of(Status::io_error("the head cannot store the package: " + (ec ? ec.message() : "write failed"))));
      return;
    }
    log()->info("head: stored package {} ({} bytes)", u.hash.substr(0, 12), u.data.data.size());
    send(peer, Reply{.ok = true});
  }

  void on(const std::string& peer, const JobSubmit& s) {
    if (s.argv.empty() || s.argv[0].empty()) {
      send(peer, Reply::of(Status::invalid_argument("a job needs a command")));
      return;
    }
    for (const auto& [name, qty] : s.resources) {
      if (name.empty() || !std::isfinite(qty) || qty < 0) {
        send(peer, Reply::of(Status::invalid_argument("a job's resource '" + name + "' must be named and >= 0")));
        return;
      }
    }
    if (!s.package.empty() && (!is_content_hash(s.package) || !fs::exists(package_path(s.package)))) {
      send(peer, Reply::of(Status::not_found("the head has no package " + s.package + "; upload it first")));
      return;
    }
    JobState_ j;
    j.record.info.job_id = random_id("job");
    j.record.info.argv = s.argv;
    j.record.info.state = static_cast<uint8_t>(JobState::kPending);
    j.record.info.submitted_ms = now_ms();
    j.record.info.resources = s.resources;
    j.record.env = s.env;
    j.record.package = s.package;
    if (Status st = store->put_job(j.record); !st.is_ok()) {  // durable before it is acknowledged
      send(peer, Reply::of(st));
      return;
    }
    log()->info("head: job {} submitted: {}", j.record.info.job_id, s.argv[0]);
    send(peer, JobSubmitted{j.record.info.job_id});
    jobs[j.record.info.job_id] = std::move(j);
    place_jobs();
  }

  void on(const std::string& peer, const JobQuery& q) {
    auto j = jobs.find(q.job_id);
    if (j == jobs.end()) {
      send(peer, Reply::of(Status::not_found("no job " + q.job_id)));
      return;
    }
    send(peer, JobInfoReply{info_of(j->second)});
  }

  void on(const std::string& peer, const LogsRequest& r) {
    auto j = jobs.find(r.job_id);
    if (j == jobs.end()) {
      send(peer, Reply::of(Status::not_found("no job " + r.job_id)));
      return;
    }
    LogsReply reply;
    if (r.offset < j->second.log_size) {
      std::ifstream in(log_path(r.job_id), std::ios::binary);
      in.seekg(static_cast<std::streamoff>(r.offset));
      reply.data.data.resize(std::min<uint64_t>(kMaxLogChunk, j->second.log_size - r.offset));
      in.read(reply.data.data.data(), static_cast<std::streamsize>(reply.data.data.size()));
      reply.data.data.resize(static_cast<size_t>(in.gcount()));
    }
    const JobRecord& rec = j->second.record;
    const bool node_gone =
        rec.info.node_id.empty() || !nodes.count(rec.info.node_id) || !nodes.at(rec.info.node_id).info.alive;
    reply.finished = is_final(state_of(rec)) && r.offset + reply.data.data.size() >= j->second.log_size &&
                     (j->second.log_size >= rec.final_log_size || node_gone);
    send(peer, reply);
  }

  void on(const std::string& peer, const JobStop& s) {
    auto it = jobs.find(s.job_id);
    if (it == jobs.end()) {
      send(peer, Reply::of(Status::not_found("no job " + s.job_id)));
      return;
    }
    JobState_& j = it->second;
    if (is_final(state_of(j.record))) {
      send(peer, Reply{.ok = true,
                       .message = "job " + s.job_id + " already ended: " + std::string(to_string(state_of(j.record)))});
      return;
    }
    j.record.stop_requested = true;
    if (j.record.info.node_id.empty()) {
      j.record.info.state = static_cast<uint8_t>(JobState::kStopped);
      j.record.info.ended_ms = now_ms();
    } else {
      send(j.record.info.node_id, JobKill{s.job_id});
    }
    persist(j);
    log()->info("head: job {} asked to stop", s.job_id);
    send(peer, Reply{.ok = true});
  }

  // Messages only a head sends are not requests.
  template <class M>
  void on(const std::string&, const M&) {}
};

Result<std::unique_ptr<Head>> Head::start(HeadOptions options) {
  if (sodium_init() < 0) return Status::internal("libsodium cannot start");
  if (options.state_dir.empty()) return Status::invalid_argument("the head needs a state directory");
  std::unique_ptr<Head> head(new Head());
  head->s_ = std::make_unique<Server>();
  Server& s = *head->s_;
  s.options = std::move(options);
  WEFT_RETURN_IF_ERROR(s.load());
  WEFT_RETURN_IF_ERROR(s.bind());
  log()->info("head: listening at {} (CURVE), state in {}", s.address, s.options.state_dir);
  s.thread = std::thread([&s] { s.run(); });
  return head;
}

Head::~Head() {
  if (s_ == nullptr) return;
  s_->stop.store(true);
  if (s_->thread.joinable()) s_->thread.join();
}

std::string Head::address() const { return s_->address; }
uint64_t Head::rejected_messages() const { return s_->rejected.load(); }
uint64_t Head::refused_connections() const { return s_->refused.load(); }

}  // namespace weft::cluster
