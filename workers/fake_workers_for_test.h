// In-memory stand-ins for the dispatcher's transport and worker host, for unit tests of
// ProcessExecutor with no processes or sockets: the test plays the workers. Each started worker
// says hello at once; the test reads what the dispatcher sent each worker, answers as it, and
// kills it (the host then reports its exit, as a pidfd would).
//
//   FakeWorkers w;
//   auto ex = ProcessExecutor::start_with({.processes = 2}, w.transport(), w.host());
//   auto task = w.next_to(0);           // a control message the dispatcher sent worker 0
//   w.reply(0, TaskResult{...});
//   w.kill(0);                          // restarted by the dispatcher: w.starts(0) == 2
//   w.park_starts(true); w.grant(1);     // a node with no free slot, then one
//   w.ask_yield(1);                      // the node wants a worker back
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "workers/control.h"
#include "workers/transport.h"
#include "workers/worker_host.h"

namespace weft::workers::testing {

class FakeWorkers {
 public:
  FakeWorkers() : to_dispatcher_fd_(eventfd(0, EFD_NONBLOCK)), exits_fd_(eventfd(0, EFD_NONBLOCK)) {}
  ~FakeWorkers() {
    close(to_dispatcher_fd_);
    close(exits_fd_);
  }

  std::unique_ptr<Transport> transport() { return std::make_unique<FakeTransport>(this); }
  std::unique_ptr<WorkerHost> host(int default_workers = 2) {
    return std::make_unique<FakeHost>(this, default_workers);
  }

  // The next message the dispatcher sent to the current incarnation of worker `index`.
  std::optional<ControlMessage> next_to(uint32_t index, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !inbox_[index].empty(); })) return std::nullopt;
    ControlMessage m = std::move(inbox_[index].front());
    inbox_[index].pop_front();
    return m;
  }
  // Whatever worker sent something next, with its message.
  std::optional<std::pair<uint32_t, ControlMessage>> next_to_any(
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<uint32_t> who;
    cv_.wait_for(lock, timeout, [&] {
      for (auto& [i, q] : inbox_) {
        if (!q.empty()) {
          who = i;
          return true;
        }
      }
      return false;
    });
    if (!who) return std::nullopt;
    ControlMessage m = std::move(inbox_[*who].front());
    inbox_[*who].pop_front();
    return std::make_pair(*who, std::move(m));
  }
  // Sends `m` to the dispatcher as worker `index`.
  void reply(uint32_t index, const ControlMessage& m) {
    std::lock_guard<std::mutex> lock(mu_);
    deliver_locked(identity_locked(index), encode(m));
  }
  // Raw bytes from a peer that may never have said hello.
  void deliver(const std::string& peer, std::string bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    deliver_locked(peer, std::move(bytes));
  }
  // Worker `index` dies: its messages are dropped and the host reports it.
  void kill(uint32_t index, std::string how = "killed by signal 9 (Killed)") {
    std::lock_guard<std::mutex> lock(mu_);
    Incarnation& w = workers_[index];
    exits_.push_back({index, w.pid, std::move(how)});
    w.alive = false;
    inbox_[index].clear();
    const uint64_t one = 1;
    (void)!write(exits_fd_, &one, sizeof one);
  }
  // While set, starts are parked (no slot): grant() starts one later.
  void park_starts(bool park) {
    std::lock_guard<std::mutex> lock(mu_);
    park_ = park;
  }
  void grant(uint32_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    const pid_t pid = start_locked(index);
    granted_.emplace_back(index, pid);
    wake_host_locked();
  }
  void ask_yield(uint32_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    yield_ += n;
    wake_host_locked();
  }
  int starts(uint32_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    return workers_[index].starts;
  }
  pid_t pid_of(uint32_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    return workers_[index].pid;
  }

 private:
  struct Incarnation {
    int starts = 0;
    pid_t pid = -1;
    bool alive = false;
  };

  pid_t start_locked(uint32_t index) {
    Incarnation& inc = workers_[index];
    ++inc.starts;
    inc.pid = static_cast<pid_t>(10000 + 100 * index + inc.starts);
    inc.alive = true;
    inbox_[index].clear();
    deliver_locked(identity_locked(index), encode(Hello{index, inc.pid}));
    return inc.pid;
  }
  void wake_host_locked() {
    const uint64_t one = 1;
    (void)!write(exits_fd_, &one, sizeof one);
  }
  std::string identity_locked(uint32_t index) {
    return "w" + std::to_string(index) + "." + std::to_string(workers_[index].starts);
  }
  void deliver_locked(const std::string& peer, std::string bytes) {
    to_dispatcher_.emplace_back(peer, std::move(bytes));
    const uint64_t one = 1;
    (void)!write(to_dispatcher_fd_, &one, sizeof one);
  }

  class FakeTransport final : public Transport {
   public:
    explicit FakeTransport(FakeWorkers* w) : w_(w) {}
    std::string endpoint() const override { return "fake://dispatcher"; }
    void send(const std::string& peer, std::string_view bytes) override {
      std::lock_guard<std::mutex> lock(w_->mu_);
      for (auto& [index, inc] : w_->workers_) {
        if (!inc.alive || w_->identity_locked(index) != peer) continue;
        auto m = decode_control(bytes);
        if (m.ok()) w_->inbox_[index].push_back(std::move(*m));
        w_->cv_.notify_all();
      }
    }
    void add_poll_items(std::vector<zmq::pollitem_t>& items) override {
      items.push_back({nullptr, w_->to_dispatcher_fd_, ZMQ_POLLIN, 0});
    }
    std::optional<std::pair<std::string, std::string>> receive() override {
      std::lock_guard<std::mutex> lock(w_->mu_);
      uint64_t v;
      (void)!read(w_->to_dispatcher_fd_, &v, sizeof v);
      if (w_->to_dispatcher_.empty()) return std::nullopt;
      auto m = std::move(w_->to_dispatcher_.front());
      w_->to_dispatcher_.pop_front();
      return m;
    }

   private:
    FakeWorkers* w_;
  };

  class FakeHost final : public WorkerHost {
   public:
    FakeHost(FakeWorkers* w, int default_workers) : w_(w), default_workers_(default_workers) {}
    std::string store_socket() const override { return ""; }
    int default_workers() const override { return default_workers_; }
    Result<pid_t> start(uint32_t index) override {
      std::lock_guard<std::mutex> lock(w_->mu_);
      if (w_->park_) return pid_t{0};
      return w_->start_locked(index);
    }
    std::vector<std::pair<uint32_t, pid_t>> granted() override {
      std::lock_guard<std::mutex> lock(w_->mu_);
      return std::exchange(w_->granted_, {});
    }
    uint32_t take_yield() override {
      std::lock_guard<std::mutex> lock(w_->mu_);
      return std::exchange(w_->yield_, 0);
    }
    void add_poll_items(std::vector<zmq::pollitem_t>& items) override {
      items.push_back({nullptr, w_->exits_fd_, ZMQ_POLLIN, 0});
    }
    std::vector<WorkerExit> exits(const zmq::pollitem_t*) override {
      std::lock_guard<std::mutex> lock(w_->mu_);
      uint64_t v;
      (void)!read(w_->exits_fd_, &v, sizeof v);
      return std::exchange(w_->exits_, {});
    }
    void stop(std::chrono::milliseconds) override {}

   private:
    FakeWorkers* w_;
    int default_workers_;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  int to_dispatcher_fd_, exits_fd_;
  std::deque<std::pair<std::string, std::string>> to_dispatcher_;
  std::map<uint32_t, std::deque<ControlMessage>> inbox_;
  std::map<uint32_t, Incarnation> workers_;
  std::vector<WorkerExit> exits_;
  bool park_ = false;
  std::vector<std::pair<uint32_t, pid_t>> granted_;
  uint32_t yield_ = 0;
};

}  // namespace weft::workers::testing
