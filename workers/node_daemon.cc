#include "workers/node_daemon.h"

#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <zmq.hpp>

#include "core/logging.h"
#include "objectstore/store_server.h"
#include "workers/node_protocol.h"
#include "workers/worker_host.h"
#include "workers/worker_process.h"

namespace weft::workers {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kMaxWorkersPerDriver = 4096;

int pidfd_of(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

struct Child {
  pid_t pid = -1;
  int pidfd = -1;
  std::string lease;  // non-empty: it runs on another node (pid is that node's)
};

struct Driver {
  std::string identity;
  node::Attach spec;
  int pidfd = -1;
  std::map<uint32_t, Child> workers;
  std::deque<uint32_t> parked;                 // spawns waiting for a slot, oldest first
  uint32_t yielding = 0;                       // workers it was asked to retire and has not yet
  std::optional<Clock::time_point> detach_by;  // detaching: kill what is left then
  node::Reach reach;                           // in a cluster: how workers elsewhere reach it
  std::map<uint32_t, std::string> leasing;     // workers asked for elsewhere, not yet answered
};

// A worker run here for a driver on another node.
struct Leased {
  LeaseRequest spec;
  Child child;
  bool exited = false;
  std::string how;
};

void kill_and_reap(Child& c) {
  if (c.pid <= 0 || !c.lease.empty()) {  // one running elsewhere is let go by its lease
    c = Child{};
    return;
  }
  kill(c.pid, SIGKILL);
  int status = 0;
  waitpid(c.pid, &status, 0);
  if (c.pidfd >= 0) close(c.pidfd);
  c = Child{};
}

}  // namespace

struct NodeDaemon::Server {
  NodeOptions options;
  std::string socket_path, store_path;
  std::unique_ptr<objectstore::StoreServer> store;
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  int wake_fd = -1;
  std::atomic<bool> stop{false};
  std::thread thread;

  std::unordered_map<std::string, Driver> drivers;  // by identity
  struct Published {
    int64_t driver = 0;
    std::string class_name;
  };
  std::unordered_map<std::string, Published> names;  // the drivers' named actors
  mutable std::mutex counts_mu;
  NodeCounts counts;

  // Leases. The daemon thread's own: which driver and worker each lease of ours serves (the
  // leases we want), the workers run here for others, when parked workers were last offered.
  std::map<std::string, std::pair<std::string, uint32_t>> lease_owner;
  std::map<std::string, Leased> leased;
  uint64_t next_lease = 0;
  Clock::time_point next_lease_retry{};
  // Shared with the node agent's thread.
  mutable std::mutex lease_mu;
  std::vector<LeaseRequest> lease_asks, lease_starts;
  struct Answer {
    std::string lease_id, node;
    int64_t pid = 0;
    bool ended = false;
    std::string how;
  };
  std::vector<Answer> lease_answers;
  std::vector<std::string> lease_kills, lease_forgets, wanted_snapshot;
  std::vector<LeasedWorker> leased_snapshot;
  uint64_t lease_version = 0;

  void wake() {
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }

  void send(const std::string& identity, const node::NodeMessage& m) {
    try {
      router.send(zmq::buffer(identity), zmq::send_flags::sndmore);
      router.send(zmq::buffer(node::encode(m)), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      log()->warn("node: cannot answer a driver: {}", e.what());
    }
  }

  void reject(const std::string& why) {
    log()->warn("node: {}", why);
    std::lock_guard<std::mutex> lock(counts_mu);
    ++counts.rejected_messages;
  }

  void attach(const std::string& identity, node::Attach a) {
    node::Attached reply;
    reply.node_pid = getpid();
    reply.cluster_host = options.cluster_host;
    reply.store_socket = store_path;
    reply.default_workers = static_cast<uint32_t>(options.workers);
    if (drivers.contains(identity)) {
      reply.message = "this connection is attached already";
    } else if (a.pid <= 0 || a.endpoint.empty() || a.argv.empty()) {
      reply.message = "an attach needs the driver's pid, endpoint and command line";
    } else if (access(a.executable.c_str(), X_OK) != 0) {
      reply.message = "cannot run the driver's executable '" + a.executable + "': " + std::strerror(errno);
    } else {
      const int pidfd = pidfd_of(static_cast<pid_t>(a.pid));
      if (pidfd < 0) {
        reply.message = fmt::format("no process {} to attach", a.pid);
      } else {
        log()->info("node: driver {} ({}) attached", a.pid, a.executable);
        drivers[identity] = Driver{identity, std::move(a), pidfd, {}, {}, 0, std::nullopt, {}, {}};
        reply.ok = true;
      }
    }
    send(identity, reply);
  }

  // Worker processes running on this machine (those of leases elsewhere are not).
  size_t running() const {
    size_t n = 0;
    for (const auto& [id, d] : drivers) {
      for (const auto& [index, c] : d.workers) n += c.lease.empty();
    }
    for (const auto& [id, l] : leased) n += !l.exited;
    return n;
  }

  // The workers of `d` running on this machine (the slots it holds here).
  static size_t local_count(const Driver& d) {
    size_t n = 0;
    for (const auto& [index, c] : d.workers) n += c.lease.empty();
    return n;
  }

  // --- leases of this node's drivers ---------------------------------------------------------

  bool can_lease(const Driver& d) const { return !options.cluster_host.empty() && !d.reach.endpoint.empty(); }

  // Asks the cluster for worker `index` of `d` on another node; it waits parked meanwhile.
  void ask_lease(Driver& d, uint32_t index) {
    const std::string id = options.node_id + ":" + std::to_string(++next_lease);
    d.leasing[index] = id;
    lease_owner[id] = {d.identity, index};
    LeaseRequest r{id,
                   options.node_id,
                   index,
                   d.spec.pid,
                   d.spec.executable,
                   d.spec.argv,
                   d.spec.env,
                   d.spec.cwd,
                   d.reach.endpoint,
                   d.reach.server_public,
                   d.reach.worker_public,
                   d.reach.worker_secret};
    std::lock_guard<std::mutex> lock(lease_mu);
    lease_asks.push_back(std::move(r));
    wanted_snapshot.push_back(id);  // wanted from now on, before the next refresh says so too
    ++lease_version;
  }

  // Lets go of what worker `index` of `d` holds elsewhere: an unanswered ask, or a lease.
  void release(Driver& d, uint32_t index) {
    if (auto it = d.leasing.find(index); it != d.leasing.end()) {
      lease_owner.erase(it->second);
      d.leasing.erase(it);
    }
    if (auto it = d.workers.find(index); it != d.workers.end() && !it->second.lease.empty()) {
      lease_owner.erase(it->second.lease);
      d.workers.erase(it);
    }
  }

  void release_all(Driver& d) {
    std::vector<uint32_t> indices;
    for (const auto& [index, id] : d.leasing) indices.push_back(index);
    for (const auto& [index, c] : d.workers) {
      if (!c.lease.empty()) indices.push_back(index);
    }
    for (uint32_t index : indices) release(d, index);
  }

  void on_lease_answer(const Answer& a) {
    auto owner = lease_owner.find(a.lease_id);
    if (owner == lease_owner.end()) return;  // let go meanwhile: the head stops it
    auto d_it = drivers.find(owner->second.first);
    const uint32_t index = owner->second.second;
    if (d_it == drivers.end()) {
      lease_owner.erase(owner);
      return;
    }
    Driver& d = d_it->second;
    if (auto it = d.leasing.find(index); it != d.leasing.end() && it->second == a.lease_id) {
      d.leasing.erase(it);
      if (!a.ended && a.pid > 0) {
        log()->info("node: worker {} of driver {} runs on node {} (pid {})", index, d.spec.pid, a.node, a.pid);
        d.workers[index] = Child{static_cast<pid_t>(a.pid), -1, a.lease_id};
        send(d.identity, node::Spawned{index, a.pid, ""});
      } else {
        lease_owner.erase(owner);
        log()->info("node: worker {} of driver {} waits here for a slot: {}", index, d.spec.pid, a.how);
        d.parked.push_back(index);
        rebalance();
      }
      return;
    }
    auto w = d.workers.find(index);
    if (w == d.workers.end() || w->second.lease != a.lease_id || !a.ended) return;
    const pid_t pid = w->second.pid;
    d.workers.erase(w);
    lease_owner.erase(owner);
    if (d.yielding > 0) --d.yielding;
    if (!d.detach_by) send(d.identity, node::Exited{index, pid, "on node " + a.node + ": " + a.how});
  }

  // Every couple of seconds, parked workers are offered to the cluster again (a node may have
  // joined, or freed slots).
  void retry_leases() {
    if (options.cluster_host.empty() || Clock::now() < next_lease_retry) return;
    next_lease_retry = Clock::now() + std::chrono::seconds(2);
    for (auto& [id, d] : drivers) {
      if (!can_lease(d) || d.detach_by || !d.leasing.empty()) continue;
      while (!d.parked.empty()) {
        const uint32_t index = d.parked.front();
        d.parked.pop_front();
        ask_lease(d, index);
      }
    }
  }

  // --- workers run here for drivers elsewhere -------------------------------------------------

  void start_leased_now(LeaseRequest r) {
    if (leased.contains(r.lease_id)) return;
    Leased& l = leased[r.lease_id];
    l.spec = r;
    std::vector<std::string> env = worker_environment(r.env, r.endpoint, r.index, "", static_cast<pid_t>(r.driver_pid));
    env.push_back(std::string(kCurveEnv) + "=" + r.server_public + " " + r.worker_public + " " + r.worker_secret);
    std::error_code ec;
    const std::string cwd = std::filesystem::is_directory(r.cwd, ec) ? r.cwd : "/";
    auto pid = start_process(r.executable, r.argv, env, cwd);
    if (!pid.ok()) {
      l.exited = true;
      l.how = pid.status().message();
      log()->warn("node: cannot start worker {} for a driver on node {}: {}", r.index, r.owner, l.how);
    } else {
      l.child = Child{*pid, pidfd_of(*pid), ""};
      log()->info("node: started worker {} (pid {}) for driver {} on node {}", r.index, *pid, r.driver_pid, r.owner);
    }
  }

  void on_leased_exit(Leased& l) {
    int status = 0;
    waitpid(l.child.pid, &status, 0);
    if (l.child.pidfd >= 0) close(l.child.pidfd);
    l.child.pidfd = -1;
    l.exited = true;
    l.how = describe_exit(status);
    rebalance();
  }

  // Takes what the agent brought and publishes what it reads.
  void exchange_leases() {
    std::vector<Answer> answers;
    std::vector<LeaseRequest> starts;
    std::vector<std::string> kills, forgets;
    {
      std::lock_guard<std::mutex> lock(lease_mu);
      answers.swap(lease_answers);
      starts.swap(lease_starts);
      kills.swap(lease_kills);
      forgets.swap(lease_forgets);
    }
    for (const Answer& a : answers) on_lease_answer(a);
    for (LeaseRequest& r : starts) start_leased_now(std::move(r));
    for (const std::string& id : kills) {
      auto it = leased.find(id);
      if (it == leased.end() || it->second.exited) continue;
      log()->info("node: stopping worker {} (pid {}): its driver on node {} no longer wants it", it->second.spec.index,
                  it->second.child.pid, it->second.spec.owner);
      kill(it->second.child.pid, SIGKILL);  // reaped when its pidfd says so
    }
    for (const std::string& id : forgets) {
      if (auto it = leased.find(id); it != leased.end() && it->second.exited) leased.erase(it);
    }
    retry_leases();
    std::vector<LeasedWorker> snapshot;
    for (const auto& [id, l] : leased)
      snapshot.push_back({id, l.spec.owner, l.child.pid > 0 ? l.child.pid : 0, l.exited, l.how});
    std::vector<std::string> wanted;
    for (const auto& [id, owner] : lease_owner) wanted.push_back(id);
    std::lock_guard<std::mutex> lock(lease_mu);
    const bool changed = snapshot.size() != leased_snapshot.size() ||
                         !std::equal(snapshot.begin(), snapshot.end(), leased_snapshot.begin(),
                                     [](const LeasedWorker& a, const LeasedWorker& b) {
                                       return a.lease_id == b.lease_id && a.pid == b.pid && a.exited == b.exited;
                                     });
    if (changed) ++lease_version;
    leased_snapshot = std::move(snapshot);
    wanted_snapshot = std::move(wanted);
  }

  // A driver's request for worker `index`: started if a slot is free, parked otherwise.
  void request(Driver& d, uint32_t index) {
    if (index >= kMaxWorkersPerDriver) {
      send(d.identity, node::Spawned{index, -1, fmt::format("worker index {} is out of range", index)});
      return;
    }
    release(d, index);
    if (auto it = d.workers.find(index); it != d.workers.end()) {  // replaced: the old one goes
      kill_and_reap(it->second);
      d.workers.erase(it);
    }
    std::erase(d.parked, index);
    if (running() < static_cast<size_t>(options.slots)) return spawn(d, index);
    if (can_lease(d)) {  // no slot here: another node may have one
      ask_lease(d, index);
      send(d.identity, node::Spawned{index, 0, "", /*parked=*/true});
      return;
    }
    d.parked.push_back(index);
    send(d.identity, node::Spawned{index, 0, "", /*parked=*/true});
    rebalance();
  }

  // Free slots go to parked workers of the driver running the fewest; then a driver short of its
  // fair share asks the one furthest above it to yield.
  void rebalance() {
    for (;;) {
      Driver* next = nullptr;
      for (auto& [id, d] : drivers) {
        if (d.parked.empty() || d.detach_by) continue;
        if (next == nullptr || local_count(d) < local_count(*next)) next = &d;
      }
      if (next == nullptr || running() >= static_cast<size_t>(options.slots)) break;
      const uint32_t index = next->parked.front();
      next->parked.pop_front();
      spawn(*next, index);
    }
    size_t wanting = 0;
    for (auto& [id, d] : drivers) wanting += !d.detach_by && (!d.workers.empty() || !d.parked.empty());
    if (wanting == 0) return;
    const size_t share = std::max<size_t>(1, static_cast<size_t>(options.slots) / wanting);
    size_t short_by = 0;
    for (auto& [id, d] : drivers) {
      if (!d.parked.empty() && local_count(d) < share) short_by += std::min(d.parked.size(), share - local_count(d));
    }
    for (auto& [id, d] : drivers) {
      if (short_by == 0) break;
      const size_t keeps = local_count(d) - std::min<size_t>(d.yielding, local_count(d));
      if (keeps <= share) continue;
      const auto give = static_cast<uint32_t>(std::min(keeps - share, short_by));
      d.yielding += give;
      short_by -= give;
      log()->info("node: driver {} runs {} workers, above its share of {}: asked to yield {}", d.spec.pid,
                  local_count(d), share, give);
      send(d.identity, node::Yield{give});
    }
  }

  static Result<pid_t> start_process(const std::string& executable, std::vector<std::string> argv,
                                     std::vector<std::string> env, const std::string& cwd) {
    std::vector<char*> envp, args;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, executable.c_str(), &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return Status::io_error(fmt::format("cannot start '{}': {}", executable, std::strerror(rc)));
    return pid;
  }

  void spawn(Driver& d, uint32_t index) {
    node::Spawned reply{index, -1, ""};
    auto pid = start_process(
        d.spec.executable, d.spec.argv,
        worker_environment(d.spec.env, d.spec.endpoint, index, store_path, static_cast<pid_t>(d.spec.pid)), d.spec.cwd);
    if (!pid.ok()) {
      reply.message = pid.status().message();
    } else {
      d.workers[index] = Child{*pid, pidfd_of(*pid), ""};
      reply.pid = *pid;
    }
    send(d.identity, reply);
  }

  const Driver* driver_by_pid(int64_t pid) const {
    for (const auto& [id, d] : drivers) {
      if (d.spec.pid == pid && !d.detach_by) return &d;
    }
    return nullptr;
  }

  // The directory: any connection may ask.
  bool directory(const std::string& identity, const node::NodeMessage& msg) {
    if (const auto* n = std::get_if<node::Name>(&msg)) {
      node::Named reply{n->seq, false, ""};
      auto it = names.find(n->name);
      if (driver_by_pid(n->driver) == nullptr) {
        reply.message = fmt::format("no driver {} is attached to this node", n->driver);
      } else if (n->name.empty()) {
        reply.message = "an actor's name cannot be empty";
      } else if (it != names.end()) {
        reply.message = fmt::format("the name '{}' is taken by an actor of driver {}", n->name, it->second.driver);
      } else {
        names[n->name] = Published{n->driver, n->class_name};
        reply.ok = true;
      }
      send(identity, reply);
    } else if (const auto* f = std::get_if<node::Find>(&msg)) {
      node::Found reply{f->seq, 0, "", ""};
      if (auto it = names.find(f->name); it != names.end()) {
        if (const Driver* d = driver_by_pid(it->second.driver)) {
          reply.driver = d->spec.pid;
          reply.endpoint = d->spec.endpoint;
          reply.class_name = it->second.class_name;
        }
      }
      send(identity, reply);
    } else if (const auto* l = std::get_if<node::Locate>(&msg)) {
      const Driver* d = driver_by_pid(l->driver);
      send(identity, node::Located{l->seq, d != nullptr ? d->spec.endpoint : ""});
    } else {
      return false;
    }
    return true;
  }

  void forget_names(int64_t driver) {
    std::erase_if(names, [driver](const auto& kv) { return kv.second.driver == driver; });
  }

  void on_message(const std::string& identity, std::string_view bytes) {
    auto msg = node::decode_node(bytes);
    if (!msg.ok()) return reject(msg.status().message());
    if (auto* a = std::get_if<node::Attach>(&*msg)) return attach(identity, std::move(*a));
    if (directory(identity, *msg)) return;
    auto it = drivers.find(identity);
    if (it == drivers.end())
      return reject(fmt::format("a {} message from a driver that never attached", node::name_of(*msg)));
    Driver& d = it->second;
    if (const auto* s = std::get_if<node::Spawn>(&*msg)) {
      if (!d.detach_by) request(d, s->index);
    } else if (auto* r = std::get_if<node::Reach>(&*msg)) {
      if (options.cluster_host.empty() || r->endpoint.rfind("tcp://", 0) != 0) {
        reject(
            fmt::format("driver {} offered to be reached at '{}', but this node is not in a cluster or that is "
                        "not a tcp:// endpoint",
                        d.spec.pid, r->endpoint));
      } else {
        d.reach = std::move(*r);
        log()->info("node: driver {} is reached from other nodes at {}", d.spec.pid, d.reach.endpoint);
      }
    } else if (const auto* detach = std::get_if<node::Detach>(&*msg)) {
      d.detach_by = Clock::now() + std::chrono::milliseconds(std::min<uint32_t>(detach->grace_ms, 60000));
      finish_detach(d);
    } else {
      reject(fmt::format("unexpected {} message from driver {}", node::name_of(*msg), d.spec.pid));
    }
  }

  // Erases a detaching driver whose workers are all gone (after saying so); returns true then.
  bool finish_detach(Driver& d) {
    if (!d.detach_by) return false;
    for (auto& [index, id] : d.leasing) lease_owner.erase(id);
    d.leasing.clear();
    if (!d.workers.empty()) return false;
    send(d.identity, node::Detached{});
    log()->info("node: driver {} detached", d.spec.pid);
    forget_names(d.spec.pid);
    close(d.pidfd);
    const std::string id = d.identity;
    drivers.erase(id);
    rebalance();
    return true;
  }

  void on_worker_exit(Driver& d, uint32_t index) {
    Child c = d.workers.at(index);
    int status = 0;
    waitpid(c.pid, &status, 0);
    close(c.pidfd);
    d.workers.erase(index);
    if (d.yielding > 0) --d.yielding;
    if (!d.detach_by) send(d.identity, node::Exited{index, c.pid, describe_exit(status)});
    rebalance();
  }

  void on_driver_death(Driver& d) {
    log()->warn("node: driver {} died; stopping its {} workers", d.spec.pid, d.workers.size());
    forget_names(d.spec.pid);
    release_all(d);
    for (auto& [index, c] : d.workers) kill_and_reap(c);
    close(d.pidfd);
    const std::string id = d.identity;
    drivers.erase(id);
    rebalance();
  }

  void run() {
    while (!stop.load()) {
      // What each poll item is: the router, the wake fd, then drivers and their workers.
      exchange_leases();
      struct Source {
        std::string driver;  // empty: a leased worker (`lease`)
        std::optional<uint32_t> worker;
        std::string lease;
      };
      std::vector<zmq::pollitem_t> items = {{router.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
      std::vector<Source> sources;
      for (auto& [id, d] : drivers) {
        items.push_back({nullptr, d.pidfd, ZMQ_POLLIN, 0});
        sources.push_back({id, std::nullopt, ""});
        for (auto& [index, c] : d.workers) {
          if (c.pidfd < 0) continue;
          items.push_back({nullptr, c.pidfd, ZMQ_POLLIN, 0});
          sources.push_back({id, index, ""});
        }
      }
      for (auto& [id, l] : leased) {
        if (l.exited || l.child.pidfd < 0) continue;
        items.push_back({nullptr, l.child.pidfd, ZMQ_POLLIN, 0});
        sources.push_back({"", std::nullopt, id});
      }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t v;
        (void)!read(wake_fd, &v, sizeof v);
      }
      if (items[0].revents & ZMQ_POLLIN) {
        for (;;) {
          zmq::message_t id, body;
          if (!router.recv(id, zmq::recv_flags::dontwait)) break;
          if (!id.more()) continue;
          (void)router.recv(body, zmq::recv_flags::none);
          bool extra = false;
          while (body.more()) {
            zmq::message_t more;
            (void)router.recv(more, zmq::recv_flags::none);
            body.rebuild(0);
            extra = true;
          }
          if (extra) {
            reject("a message of several frames");
            continue;
          }
          on_message(id.to_string(), std::string_view(static_cast<const char*>(body.data()), body.size()));
        }
      }
      for (size_t k = 2; k < items.size(); ++k) {
        if (!(items[k].revents & ZMQ_POLLIN)) continue;
        const Source& src = sources[k - 2];
        if (!src.lease.empty()) {
          if (auto l = leased.find(src.lease); l != leased.end() && !l->second.exited) on_leased_exit(l->second);
          continue;
        }
        auto it = drivers.find(src.driver);
        if (it == drivers.end()) continue;
        if (src.worker) {
          if (it->second.workers.contains(*src.worker)) on_worker_exit(it->second, *src.worker);
        } else {
          on_driver_death(it->second);
        }
      }
      // Detaching drivers: done, or out of time (their workers are killed, then reaped above).
      std::vector<std::string> ids;
      for (auto& [id, d] : drivers) ids.push_back(id);
      for (const std::string& id : ids) {
        Driver& d = drivers.at(id);
        if (finish_detach(d) || !d.detach_by || Clock::now() < *d.detach_by) continue;
        release_all(d);
        for (auto& [index, c] : d.workers) kill(c.pid, SIGKILL);
        if (finish_detach(d)) continue;
      }
      std::lock_guard<std::mutex> lock(counts_mu);
      counts.drivers = drivers.size();
      counts.workers = running();
      counts.parked = 0;
      for (auto& [id, d] : drivers) counts.parked += d.parked.size();
    }
    for (auto& [id, d] : drivers) {
      for (auto& [index, c] : d.workers) kill_and_reap(c);
      close(d.pidfd);
    }
    drivers.clear();
    for (auto& [id, l] : leased) {
      if (!l.exited) kill_and_reap(l.child);
    }
  }
};

Result<std::unique_ptr<NodeDaemon>> NodeDaemon::start(const NodeOptions& options) {
  if (options.address.rfind("unix:", 0) != 0 || options.address.size() <= 5) {
    return Status::invalid_argument("a node address is unix:PATH, not '" + options.address + "'");
  }
  if (options.workers < 0) return Status::invalid_argument("workers must be >= 0 (0: one per core)");
  std::unique_ptr<NodeDaemon> node(new NodeDaemon());
  node->s_ = std::make_unique<Server>();
  Server& s = *node->s_;
  s.options = options;
  if (s.options.workers == 0) s.options.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (s.options.slots < 0) return Status::invalid_argument("slots must be >= 0 (0: one per core)");
  if (s.options.slots == 0) s.options.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  s.socket_path = options.address.substr(5);
  s.store_path = s.socket_path + ".store";
  std::error_code ec;
  std::filesystem::remove(s.socket_path, ec);  // a stale socket of a node that is gone
  std::filesystem::remove(s.store_path, ec);
  {
    WEFT_ASSIGN_OR_RETURN(std::unique_ptr<objectstore::Store> store,
                          objectstore::Store::create({.capacity = options.store_bytes}));
    WEFT_ASSIGN_OR_RETURN(s.store, objectstore::StoreServer::start(s.store_path, std::move(store)));
  }
  try {
    s.router.set(zmq::sockopt::linger, 0);
    s.router.set(zmq::sockopt::router_mandatory, 1);
    s.router.bind("ipc://" + s.socket_path);
  } catch (const zmq::error_t& e) {
    return Status::io_error("cannot listen at " + options.address + ": " + e.what());
  }
  chmod(s.socket_path.c_str(), 0600);  // only its owner's drivers
  chmod(s.store_path.c_str(), 0600);
  s.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  s.thread = std::thread([&s] { s.run(); });
  log()->info("node: listening at {} (store: {})", options.address, s.store_path);
  return node;
}

NodeDaemon::~NodeDaemon() {
  if (!s_) return;
  s_->stop.store(true);
  const uint64_t one = 1;
  (void)!write(s_->wake_fd, &one, sizeof one);
  if (s_->thread.joinable()) s_->thread.join();
  s_->store.reset();
  close(s_->wake_fd);
  std::error_code ec;
  std::filesystem::remove(s_->socket_path, ec);
  std::filesystem::remove(s_->store_path, ec);
}

std::string NodeDaemon::address() const { return s_->options.address; }
std::string NodeDaemon::store_socket() const { return s_->store_path; }
size_t NodeDaemon::slots() const { return static_cast<size_t>(s_->options.slots); }

objectstore::StoreStats NodeDaemon::store_stats() const { return s_->store->stats(); }

std::vector<LeaseRequest> NodeDaemon::take_lease_asks() {
  std::lock_guard<std::mutex> lock(s_->lease_mu);
  return std::exchange(s_->lease_asks, {});
}

std::vector<std::string> NodeDaemon::wanted_leases() const {
  std::lock_guard<std::mutex> lock(s_->lease_mu);
  return s_->wanted_snapshot;
}

void NodeDaemon::lease_answer(const std::string& lease_id, const std::string& node, int64_t pid, bool ended,
                              const std::string& how) {
  {
    std::lock_guard<std::mutex> lock(s_->lease_mu);
    s_->lease_answers.push_back({lease_id, node, pid, ended, how});
  }
  s_->wake();
}

void NodeDaemon::start_leased(LeaseRequest request) {
  {
    std::lock_guard<std::mutex> lock(s_->lease_mu);
    s_->lease_starts.push_back(std::move(request));
  }
  s_->wake();
}

void NodeDaemon::kill_leased(const std::string& lease_id) {
  {
    std::lock_guard<std::mutex> lock(s_->lease_mu);
    s_->lease_kills.push_back(lease_id);
  }
  s_->wake();
}

void NodeDaemon::forget_leased(const std::string& lease_id) {
  {
    std::lock_guard<std::mutex> lock(s_->lease_mu);
    s_->lease_forgets.push_back(lease_id);
  }
  s_->wake();
}

std::vector<LeasedWorker> NodeDaemon::leased() const {
  std::lock_guard<std::mutex> lock(s_->lease_mu);
  return s_->leased_snapshot;
}

uint64_t NodeDaemon::lease_version() const {
  std::lock_guard<std::mutex> lock(s_->lease_mu);
  return s_->lease_version;
}

NodeCounts NodeDaemon::counts() const {
  std::lock_guard<std::mutex> lock(s_->counts_mu);
  return s_->counts;
}

}  // namespace weft::workers
