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

namespace weft::workers {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kMaxWorkersPerDriver = 4096;

int pidfd_of(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

struct Child {
  pid_t pid = -1;
  int pidfd = -1;
};

struct Driver {
  std::string identity;
  node::Attach spec;
  int pidfd = -1;
  std::map<uint32_t, Child> workers;
  std::deque<uint32_t> parked;                 // spawns waiting for a slot, oldest first
  uint32_t yielding = 0;                       // workers it was asked to retire and has not yet
  std::optional<Clock::time_point> detach_by;  // detaching: kill what is left then
};

void kill_and_reap(Child& c) {
  if (c.pid <= 0) return;
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
        drivers[identity] = Driver{identity, std::move(a), pidfd, {}, {}, 0, std::nullopt};
        reply.ok = true;
      }
    }
    send(identity, reply);
  }

  size_t running() const {
    size_t n = 0;
    for (const auto& [id, d] : drivers) n += d.workers.size();
    return n;
  }

  // A driver's request for worker `index`: started if a slot is free, parked otherwise.
  void request(Driver& d, uint32_t index) {
    if (index >= kMaxWorkersPerDriver) {
      send(d.identity, node::Spawned{index, -1, fmt::format("worker index {} is out of range", index)});
      return;
    }
    if (auto it = d.workers.find(index); it != d.workers.end()) {  // replaced: the old one goes
      kill_and_reap(it->second);
      d.workers.erase(it);
    }
    std::erase(d.parked, index);
    if (running() < static_cast<size_t>(options.slots)) return spawn(d, index);
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
        if (next == nullptr || d.workers.size() < next->workers.size()) next = &d;
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
      if (!d.parked.empty() && d.workers.size() < share)
        short_by += std::min(d.parked.size(), share - d.workers.size());
    }
    for (auto& [id, d] : drivers) {
      if (short_by == 0) break;
      const size_t keeps = d.workers.size() - std::min<size_t>(d.yielding, d.workers.size());
      if (keeps <= share) continue;
      const auto give = static_cast<uint32_t>(std::min(keeps - share, short_by));
      d.yielding += give;
      short_by -= give;
      log()->info("node: driver {} runs {} workers, above its share of {}: asked to yield {}", d.spec.pid,
                  d.workers.size(), share, give);
      send(d.identity, node::Yield{give});
    }
  }

  void spawn(Driver& d, uint32_t index) {
    node::Spawned reply{index, -1, ""};
    std::vector<std::string> env =
        worker_environment(d.spec.env, d.spec.endpoint, index, store_path, static_cast<pid_t>(d.spec.pid));
    std::vector<char*> envp, args;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : d.spec.argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addchdir_np(&actions, d.spec.cwd.c_str());
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, d.spec.executable.c_str(), &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      reply.message = fmt::format("cannot start '{}': {}", d.spec.executable, std::strerror(rc));
    } else {
      d.workers[index] = Child{pid, pidfd_of(pid)};
      reply.pid = pid;
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
    } else if (const auto* detach = std::get_if<node::Detach>(&*msg)) {
      d.detach_by = Clock::now() + std::chrono::milliseconds(std::min<uint32_t>(detach->grace_ms, 60000));
      finish_detach(d);
    } else {
      reject(fmt::format("unexpected {} message from driver {}", node::name_of(*msg), d.spec.pid));
    }
  }

  // Erases a detaching driver whose workers are all gone (after saying so); returns true then.
  bool finish_detach(Driver& d) {
    if (!d.detach_by || !d.workers.empty()) return false;
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
    for (auto& [index, c] : d.workers) kill_and_reap(c);
    close(d.pidfd);
    const std::string id = d.identity;
    drivers.erase(id);
    rebalance();
  }

  void run() {
    while (!stop.load()) {
      // What each poll item is: the router, the wake fd, then drivers and their workers.
      struct Source {
        std::string driver;
        std::optional<uint32_t> worker;
      };
      std::vector<zmq::pollitem_t> items = {{router.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd, ZMQ_POLLIN, 0}};
      std::vector<Source> sources;
      for (auto& [id, d] : drivers) {
        items.push_back({nullptr, d.pidfd, ZMQ_POLLIN, 0});
        sources.push_back({id, std::nullopt});
        for (auto& [index, c] : d.workers) {
          if (c.pidfd < 0) continue;
          items.push_back({nullptr, c.pidfd, ZMQ_POLLIN, 0});
          sources.push_back({id, index});
        }
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
        for (auto& [index, c] : d.workers) kill(c.pid, SIGKILL);
      }
      std::lock_guard<std::mutex> lock(counts_mu);
      counts.drivers = drivers.size();
      counts.workers = 0;
      counts.parked = 0;
      for (auto& [id, d] : drivers) {
        counts.workers += d.workers.size();
        counts.parked += d.parked.size();
      }
    }
    for (auto& [id, d] : drivers) {
      for (auto& [index, c] : d.workers) kill_and_reap(c);
      close(d.pidfd);
    }
    drivers.clear();
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

objectstore::StoreStats NodeDaemon::store_stats() const { return s_->store->stats(); }

NodeCounts NodeDaemon::counts() const {
  std::lock_guard<std::mutex> lock(s_->counts_mu);
  return s_->counts;
}

}  // namespace weft::workers
