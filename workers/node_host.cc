// A driver's side of a `weft node` daemon: its workers are started and watched there.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "core/logging.h"
#include "workers/node_protocol.h"
#include "workers/worker_host.h"

namespace weft::workers {
namespace {

using namespace std::chrono_literals;

class NodeHost final : public WorkerHost {
 public:
  ~NodeHost() override {
    if (node_pidfd_ >= 0) close(node_pidfd_);
  }

  Status attach(const std::string& address, const std::string& endpoint) {
    if (address.rfind("unix:", 0) != 0 || address.size() <= 5) {
      return Status::invalid_argument("a node address is unix:PATH (the socket `weft node` printed), not '" + address +
                                      "'");
    }
    address_ = address;
    if (access(address.c_str() + 5, F_OK) != 0) {
      return Status::unavailable("no node listens at " + address + " (start one with `weft node --address " + address +
                                 "`)");
    }
    sock_.set(zmq::sockopt::linger, 0);
    sock_.connect("ipc://" + address.substr(5));
    char cwd[PATH_MAX] = {};
    node::Attach a{getpid(),
                   endpoint,
                   own_executable(),
                   own_command_line(),
                   current_environment(),
                   getcwd(cwd, sizeof cwd) != nullptr ? cwd : "/"};
    WEFT_RETURN_IF_ERROR(send(a));
    WEFT_ASSIGN_OR_RETURN(node::NodeMessage reply, receive_until<node::Attached>(10s));
    const auto& attached = std::get<node::Attached>(reply);
    if (!attached.ok)
      return Status::failed_precondition("the node at " + address + " refused this driver: " + attached.message);
    store_socket_ = attached.store_socket;
    default_workers_ = static_cast<int>(attached.default_workers);
    node_pid_ = static_cast<pid_t>(attached.node_pid);
    cluster_host_ = attached.cluster_host;
    node_pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, node_pid_, 0));
    return Status::ok();
  }

  std::string store_socket() const override { return store_socket_; }
  std::string cluster_host() const override { return cluster_host_; }
  Status offer_reach(const RemoteReach& r) override {
    return send(node::Reach{r.endpoint, r.server_public, r.worker_public, r.worker_secret});
  }
  int default_workers() const override { return default_workers_; }

  Result<pid_t> start(uint32_t index) override {
    if (node_dead_) return Status::unavailable("the node at " + address_ + " is gone");
    WEFT_RETURN_IF_ERROR(send(node::Spawn{index}));
    while (true) {
      WEFT_ASSIGN_OR_RETURN(node::NodeMessage reply, receive_until<node::Spawned>(10s));
      const auto& spawned = std::get<node::Spawned>(reply);
      if (spawned.index != index) {  // a parked worker of earlier, started now
        handle(reply);
        continue;
      }
      if (spawned.parked) {
        parked_.insert(index);
        return pid_t{0};
      }
      if (spawned.pid <= 0)
        return Status::io_error("the node could not start worker " + std::to_string(index) + ": " + spawned.message);
      parked_.erase(index);
      alive_[index] = static_cast<pid_t>(spawned.pid);
      return static_cast<pid_t>(spawned.pid);
    }
  }

  std::vector<std::pair<uint32_t, pid_t>> granted() override { return std::exchange(granted_, {}); }
  uint32_t take_yield() override { return std::exchange(yield_, 0); }

  void add_poll_items(std::vector<zmq::pollitem_t>& items) override {
    items.push_back({sock_.handle(), 0, ZMQ_POLLIN, 0});
    polled_pidfd_ = node_pidfd_ >= 0;
    if (polled_pidfd_) items.push_back({nullptr, node_pidfd_, ZMQ_POLLIN, 0});
  }

  std::vector<WorkerExit> exits(const zmq::pollitem_t* first) override {
    if (first[0].revents & ZMQ_POLLIN) drain();
    if (polled_pidfd_ && !node_dead_ && (first[1].revents & ZMQ_POLLIN)) {
      node_dead_ = true;
      log()->error("driver: the node at {} (pid {}) died, and its workers with it", address_, node_pid_);
      for (auto& [index, pid] : alive_)
        exits_.push_back({index, pid, fmt::format("gone with its node (pid {})", node_pid_)});
      alive_.clear();
      close(node_pidfd_);
      node_pidfd_ = -1;
    }
    return std::exchange(exits_, {});
  }

  void stop(std::chrono::milliseconds grace) override {
    if (node_dead_) return;
    if (!send(node::Detach{static_cast<uint32_t>(grace.count())}).is_ok()) return;
    auto done = receive_until<node::Detached>(grace + 5s);
    if (!done.ok())
      log()->warn("driver: the node did not confirm that this driver's workers stopped: {}", done.status().message());
  }

 private:
  Status send(const node::NodeMessage& m) {
    try {
      sock_.send(zmq::buffer(node::encode(m)), zmq::send_flags::none);
      return Status::ok();
    } catch (const zmq::error_t& e) {
      return Status::unavailable(std::string("cannot reach the node: ") + e.what());
    }
  }

  // Receives until a message of type M arrives (other messages are handled on the way).
  template <class M>
  Result<node::NodeMessage> receive_until(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return Status::unavailable("no answer from the node at " + address_ + " (is `weft node` running there?)");
      }
      zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, left);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      if (!sock_.recv(m, zmq::recv_flags::dontwait)) continue;
      auto msg = node::decode_node(std::string_view(static_cast<const char*>(m.data()), m.size()));
      if (!msg.ok()) {
        log()->warn("driver: from the node: {}", msg.status().message());
        continue;
      }
      if (std::holds_alternative<M>(*msg)) return std::move(*msg);
      handle(*msg);
    }
  }

  void drain() {
    zmq::message_t m;
    while (sock_.recv(m, zmq::recv_flags::dontwait)) {
      auto msg = node::decode_node(std::string_view(static_cast<const char*>(m.data()), m.size()));
      if (msg.ok()) handle(*msg);
    }
  }

  void handle(const node::NodeMessage& msg) {
    if (const auto* s = std::get_if<node::Spawned>(&msg)) {
      if (s->pid > 0 && parked_.erase(s->index) > 0) {
        alive_[s->index] = static_cast<pid_t>(s->pid);
        granted_.emplace_back(s->index, static_cast<pid_t>(s->pid));
      }
    } else if (const auto* y = std::get_if<node::Yield>(&msg)) {
      yield_ += y->count;
    }
    if (const auto* e = std::get_if<node::Exited>(&msg)) {
      auto it = alive_.find(e->index);
      if (it == alive_.end() || it->second != e->pid) return;  // an earlier incarnation
      alive_.erase(it);
      exits_.push_back({e->index, static_cast<pid_t>(e->pid), e->how});
    }
  }

  zmq::context_t ctx_{1};
  zmq::socket_t sock_{ctx_, zmq::socket_type::dealer};
  std::string address_, store_socket_, cluster_host_;
  int default_workers_ = 1;
  pid_t node_pid_ = -1;
  int node_pidfd_ = -1;
  bool node_dead_ = false;
  bool polled_pidfd_ = false;
  std::unordered_map<uint32_t, pid_t> alive_;
  std::unordered_set<uint32_t> parked_;
  std::vector<std::pair<uint32_t, pid_t>> granted_;
  uint32_t yield_ = 0;
  std::vector<WorkerExit> exits_;
};

}  // namespace

Result<std::unique_ptr<WorkerHost>> attach_to_node(const std::string& address, const std::string& endpoint) {
  auto host = std::make_unique<NodeHost>();
  WEFT_RETURN_IF_ERROR(host->attach(address, endpoint));
  return std::unique_ptr<WorkerHost>(std::move(host));
}

}  // namespace weft::workers
