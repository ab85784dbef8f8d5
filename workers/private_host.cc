// The private node: the driver starts its workers as children and serves the store itself.
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "core/logging.h"
#include "objectstore/store_server.h"
#include "workers/worker_host.h"
#include "workers/worker_process.h"

extern char** environ;

namespace weft::workers {

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

std::vector<std::string> worker_environment(const std::vector<std::string>& driver_env, const std::string& endpoint,
                                            uint32_t index, const std::string& store_socket, pid_t driver) {
  std::vector<std::string> env;
  for (const std::string& e : driver_env) {
    if (e.rfind("WEFT_WORKER_", 0) != 0) env.push_back(e);
  }
  env.push_back(std::string(kEndpointEnv) + "=" + endpoint);
  env.push_back(std::string(kIndexEnv) + "=" + std::to_string(index));
  env.push_back(std::string(kStoreEnv) + "=" + store_socket);
  env.push_back(std::string(kDriverPidEnv) + "=" + std::to_string(driver));
  return env;
}

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == '\0') {
      args.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  }
  if (args.empty()) args.push_back("weft-worker");
  return args;
}

std::string own_executable() {
  // The program's own path (not /proc/self/exe), so workers carry its name in ps and top.
  char self[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  return len > 0 ? std::string(self, static_cast<size_t>(len)) : "/proc/self/exe";
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status))
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return "stopped";
}

namespace {

class PrivateHost final : public WorkerHost {
 public:
  PrivateHost(std::string endpoint, int default_workers)
      : endpoint_(std::move(endpoint)), default_workers_(default_workers) {}
  ~PrivateHost() override { stop(std::chrono::milliseconds(0)); }

  Status serve_store(const std::string& dir, size_t store_bytes) {
    store_socket_ = dir + "/store.sock";
    WEFT_ASSIGN_OR_RETURN(std::unique_ptr<objectstore::Store> store,
                          objectstore::Store::create({.capacity = store_bytes}));
    WEFT_ASSIGN_OR_RETURN(store_, objectstore::StoreServer::start(store_socket_, std::move(store)));
    return Status::ok();
  }

  std::string store_socket() const override { return store_socket_; }
  int default_workers() const override { return default_workers_; }

  Result<pid_t> start(uint32_t index) override {
    std::vector<std::string> env = worker_environment(current_environment(), endpoint_, index, store_socket_, getpid());
    std::vector<char*> envp, args;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, executable_.c_str(), nullptr, nullptr, args.data(), envp.data());
    if (rc != 0) return Status::io_error(fmt::format("cannot start a worker process: {}", std::strerror(rc)));
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (index >= children_.size()) children_.resize(index + 1);
    children_[index] = Child{pid, pidfd};
    return pid;
  }

  void add_poll_items(std::vector<zmq::pollitem_t>& items) override {
    polled_.clear();
    for (uint32_t i = 0; i < children_.size(); ++i) {
      if (children_[i].pidfd < 0) continue;
      items.push_back({nullptr, children_[i].pidfd, ZMQ_POLLIN, 0});
      polled_.push_back(i);
    }
  }

  std::vector<WorkerExit> exits(const zmq::pollitem_t* first) override {
    std::vector<WorkerExit> out;
    for (size_t k = 0; k < polled_.size(); ++k) {
      if (!(first[k].revents & ZMQ_POLLIN)) continue;
      Child& c = children_[polled_[k]];
      int status = 0;
      waitpid(c.pid, &status, 0);
      close(c.pidfd);
      out.push_back({polled_[k], c.pid, describe_exit(status)});
      c = Child{};
    }
    polled_.clear();
    return out;
  }

  void stop(std::chrono::milliseconds grace) override {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (Child& c : children_) {
      if (c.pid <= 0) continue;
      int status = 0;
      bool killed = false;
      while (waitpid(c.pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
          kill(c.pid, SIGKILL);
          waitpid(c.pid, &status, 0);
          killed = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!killed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        log()->warn("driver: worker pid {} {} while stopping", c.pid, describe_exit(status));
      }
      if (c.pidfd >= 0) close(c.pidfd);
      c = Child{};
    }
    store_.reset();
  }

 private:
  struct Child {
    pid_t pid = -1;
    int pidfd = -1;
  };
  std::string endpoint_;
  int default_workers_;
  std::string store_socket_;
  std::unique_ptr<objectstore::StoreServer> store_;
  std::vector<std::string> argv_ = own_command_line();
  std::string executable_ = own_executable();
  std::vector<Child> children_;
  std::vector<uint32_t> polled_;
};

}  // namespace

Result<std::unique_ptr<WorkerHost>> make_private_host(const std::string& dir, const std::string& endpoint,
                                                      size_t store_bytes, int default_workers) {
  auto host = std::make_unique<PrivateHost>(endpoint, default_workers);
  WEFT_RETURN_IF_ERROR(host->serve_store(dir, store_bytes));
  return std::unique_ptr<WorkerHost>(std::move(host));
}

}  // namespace weft::workers
