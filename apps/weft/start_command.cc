#include "apps/weft/start_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "apps/weft/cli_args.h"
#include "apps/weft/cluster_session.h"
#include "cluster/head.h"
#include "cluster/node_agent.h"
#include "cluster/status_page.h"

namespace weft::cli {
namespace {
namespace fs = std::filesystem;

constexpr const char* kStartHelp =
    "usage: weft start --head [--port P] [--bind ADDR] [options]\n"
    "       weft start --address HOST:PORT [options]\n"
    "  starts this machine's part of a cluster in the background and returns (--block: stays in\n"
    "  the foreground until SIGINT/SIGTERM); `weft stop` stops it\n"
    "  --head          start the cluster's head (and a node on this machine, unless --no-node)\n"
    "  --port          the head's port (default 7380; 0: any free port)\n"
    "  --bind          the address the head listens at (default 127.0.0.1: this machine only)\n"
    "  --state-dir     the head's database, uploaded working directories and jobs' output\n"
    "                  (default ~/.weft/head); a head restarted with the same one loses nothing\n"
    "  --address       join the head at HOST:PORT as a node\n"
    "  --credential    the cluster's credential file (default $WEFT_CREDENTIAL or ~/.weft/cluster.key;\n"
    "                  the head creates it, readable by its owner only: copy it to each machine)\n"
    "  --resources     the node's resources as JSON, e.g. '{\"CPU\": 8, \"GPU\": 1}' (default: its cores)\n"
    "  --slots         the node's worker processes running at once (default: one per core)\n"
    "  --store-bytes   the node's object store size (default: 30% of memory)\n"
    "  --node-timeout  seconds without a heartbeat before the head declares a node dead (default 5)\n"
    "  --job-paths     directories (or files) the node's jobs may read besides their own directory,\n"
    "                  the system's files and their program's directory, e.g. models (repeatable;\n"
    "                  jobs are confined with Landlock where the kernel has it)\n"
    "  --no-sandbox    run jobs unconfined: they may read whatever this user can\n"
    "  --page-port     the head's read-only status page (default 7381; 0: any free port); its URL,\n"
    "                  printed at start, carries a token derived from the credential\n"
    "  --no-page       no status page\n";

struct StartPlan {
  bool head = false, node = true, page = true;
  int page_port = 7381;
  cluster::HeadOptions head_options;
  cluster::NodeAgentOptions node_options;
};

std::string home_path(const std::string& rel) {
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : "/tmp") + "/" + rel;
}

Result<StartPlan> plan(const Args& a) {
  StartPlan p;
  p.head = a.has("head");
  p.node = !a.has("no-node");
  p.page = !a.has("no-page");
  auto page_port = a.get_int("page-port", 7381);
  if (!page_port.ok() || *page_port < 0 || *page_port > 65535)
    return Status::invalid_argument("--page-port takes 0..65535");
  p.page_port = *page_port;
  if (p.head == a.has("address")) return Status::invalid_argument("give either --head or --address HOST:PORT");
  auto port = a.get_int("port", 7380);
  auto slots = a.get_int("slots", 0);
  auto store_bytes = a.get_double("store-bytes", 0);
  auto timeout = a.get_double("node-timeout", 5);
  if (!port.ok() || *port < 0 || *port > 65535) return Status::invalid_argument("--port takes 0..65535");
  if (!slots.ok() || !store_bytes.ok() || *slots < 0 || *store_bytes < 0) {
    return Status::invalid_argument("--slots and --store-bytes take numbers >= 0");
  }
  if (!timeout.ok() || *timeout <= 0) return Status::invalid_argument("--node-timeout takes seconds > 0");
  const std::string credential_path = a.get("credential", cluster::default_credential_path());
  if (p.head) {
    // The cluster keeps its credential across restarts of the head, so nodes' copies stay valid.
    auto existing = cluster::Credential::load(credential_path);
    if (existing.ok()) {
      p.head_options.credential = *existing;
    } else if (existing.status().code() == StatusCode::kNotFound) {
      WEFT_ASSIGN_OR_RETURN(p.head_options.credential, cluster::Credential::generate());
      WEFT_RETURN_IF_ERROR(p.head_options.credential.save(credential_path));
    } else {
      return existing.status();
    }
    p.head_options.bind = a.get("bind", "127.0.0.1");
    p.head_options.port = *port;
    p.head_options.state_dir = a.get("state-dir", home_path(".weft/head"));
    p.head_options.node_timeout = std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000));
    p.node_options.credential = p.head_options.credential;
  } else {
    WEFT_ASSIGN_OR_RETURN(p.node_options.credential, cluster::Credential::load(credential_path));
    p.node_options.head_address = a.get("address", "");
  }
  if (a.has("resources")) {
    try {
      p.node_options.resources = nlohmann::json::parse(a.get("resources", "")).get<std::map<std::string, double>>();
    } catch (const std::exception&) {
      return Status::invalid_argument("--resources takes a JSON object of numbers, e.g. '{\"CPU\": 8, \"GPU\": 1}'");
    }
    for (const auto& [name, qty] : p.node_options.resources) {
      if (name.empty() || !std::isfinite(qty) || qty < 0) {
        return Status::invalid_argument("--resources: '" + name + "' must be a number >= 0");
      }
    }
  }
  for (const std::string& path : a.all("job-paths")) {
    std::error_code ec;
    const fs::path full = fs::absolute(path, ec);
    if (ec || !fs::exists(full)) return Status::not_found("--job-paths: no " + path);
    p.node_options.job_paths.push_back(full.string());
  }
  p.node_options.sandbox = !a.has("no-sandbox");
  p.node_options.slots = *slots;
  p.node_options.store_bytes = static_cast<size_t>(*store_bytes);
  return p;
}

// Runs the daemon until SIGINT/SIGTERM. `ready_fd` (or -1) gets one line once it serves: "ok" and
// what to print, or "error" and why.
int serve(StartPlan p, const std::string& credential_path, int ready_fd) {
  auto tell = [&](const std::string& line) {
    if (ready_fd >= 0) {
      (void)!write(ready_fd, line.data(), line.size());
      ::close(ready_fd);
      ready_fd = -1;
    }
  };
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto session = session_dir();
  if (!session.ok()) {
    tell("error " + session.status().to_string());
    std::fprintf(stderr, "weft start: %s\n", session.status().to_string().c_str());
    return 1;
  }
  std::unique_ptr<cluster::Head> head;
  std::unique_ptr<cluster::NodeAgent> node;
  std::unique_ptr<cluster::StatusPage> page;
  std::string message;
  if (p.head) {
    auto h = cluster::Head::start(p.head_options);
    if (!h.ok()) {
      tell("error " + h.status().to_string());
      std::fprintf(stderr, "weft start: %s\n", h.status().to_string().c_str());
      return 1;
    }
    head = std::move(*h);
    p.node_options.head_address = head->address();
    (void)record_head_address(head->address());
    (void)record_daemon({getpid(), "head " + head->address()});
    message = "weft head (pid " + std::to_string(getpid()) + ") listening at " + head->address() + "\n" +
              "  nodes join with:   weft start --address " + head->address() + "\n" +
              "  the credential:    " + credential_path + " (copy it to every machine that joins or submits;\n" +
              "                     only its owner may read it)\n" +
              "  state:             " + p.head_options.state_dir + "\n";
    if (p.page) {
      auto sp = cluster::StatusPage::start({.head_address = head->address(),
                                            .credential = p.head_options.credential,
                                            .bind = p.head_options.bind,
                                            .port = p.page_port});
      if (!sp.ok()) {
        tell("error " + sp.status().to_string());
        std::fprintf(stderr, "weft start: %s (--page-port, or --no-page)\n", sp.status().to_string().c_str());
        return 1;
      }
      page = std::move(*sp);
      message += "  status page:       " + page->url() + "\n";
    }
  }
  if (p.node) {
    p.node_options.work_dir = *session + "/node-" + std::to_string(getpid());
    auto n = cluster::NodeAgent::start(p.node_options);
    if (!n.ok()) {
      tell("error " + n.status().to_string());
      std::fprintf(stderr, "weft start: %s\n", n.status().to_string().c_str());
      return 1;
    }
    node = std::move(*n);
    if (!p.head) (void)record_daemon({getpid(), "node " + node->node_id() + " of " + p.node_options.head_address});
    message += "weft node " + node->node_id() + " (pid " + std::to_string(getpid()) + ") joined " +
               p.node_options.head_address + "; drivers here attach at " + node->node_socket() + "\n";
  }
  std::printf("%s", message.c_str());
  std::fflush(stdout);
  tell("ok " + message);
  int sig = 0;
  sigwait(&stop, &sig);
  std::printf("weft: stopping (signal %d)\n", sig);
  std::fflush(stdout);
  page.reset();
  node.reset();
  head.reset();
  if (p.head) forget_head_address();
  forget_daemon(getpid());
  return 0;
}

}  // namespace

int start_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv,
                       {"port", "bind", "state-dir", "address", "credential", "resources", "slots", "store-bytes",
                        "node-timeout", "job-paths", "page-port"},
                       {"head", "no-node", "no-sandbox", "no-page", "block", "help"});
  if (!a.ok() || a->has("help")) {
    if (!a.ok()) std::fprintf(stderr, "weft start: %s\n", a.status().message().c_str());
    std::fprintf(a.ok() ? stdout : stderr, "%s", kStartHelp);
    return a.ok() ? 0 : 2;
  }
  auto p = plan(*a);
  if (!p.ok()) {
    std::fprintf(stderr, "weft start: %s\n", p.status().to_string().c_str());
    return 2;
  }
  const std::string credential_path = a->get("credential", cluster::default_credential_path());
  if (a->has("block")) return serve(std::move(*p), credential_path, -1);

  // In the background: a child in a session of its own, its output in the session directory; the
  // parent returns once the child serves (or says why it cannot). No thread exists yet to fork.
  auto session = session_dir();
  if (!session.ok()) {
    std::fprintf(stderr, "weft start: %s\n", session.status().to_string().c_str());
    return 1;
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return 1;
  const pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    ::close(pipe_fds[0]);
    setsid();
    const std::string log = *session + "/" + (p->head ? "head" : "node") + "-" + std::to_string(getpid()) + ".log";
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::exit(serve(std::move(*p), credential_path, pipe_fds[1]));
  }
  ::close(pipe_fds[1]);
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) reply.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  if (reply.rfind("ok ", 0) == 0) {
    std::printf("%s", reply.substr(3).c_str());
    std::printf("  its log:           %s/%s-%d.log; stop with: weft stop\n", session->c_str(),
                p->head ? "head" : "node", static_cast<int>(pid));
    return 0;
  }
  std::fprintf(stderr, "weft start: %s\n",
               reply.empty() ? "the daemon exited before serving" : reply.substr(6).c_str());
  waitpid(pid, nullptr, WNOHANG);
  return 1;
}

int stop_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv, {"timeout"}, {"force", "help"});
  if (!a.ok() || a->has("help")) {
    std::fprintf(a.ok() ? stdout : stderr,
                 "usage: weft stop [--force] [--timeout SECONDS]\n"
                 "  stops the heads and nodes `weft start` left running on this machine (SIGTERM; their\n"
                 "  jobs are stopped too); after --timeout (default 15 s), or at once with --force, SIGKILL\n");
    return a.ok() ? 0 : 2;
  }
  auto timeout_arg = a->get_double("timeout", 15);
  const double timeout = timeout_arg.ok() && *timeout_arg >= 0 ? *timeout_arg : 15;
  const auto daemons = recorded_daemons();
  if (daemons.empty()) {
    std::printf("weft stop: nothing started here is running\n");
    return 0;
  }
  for (const auto& d : daemons) ::kill(d.pid, a->has("force") ? SIGKILL : SIGTERM);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  for (const auto& d : daemons) {
    while (::kill(d.pid, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const bool killed = ::kill(d.pid, 0) == 0;
    if (killed) ::kill(d.pid, SIGKILL);
    forget_daemon(d.pid);
    std::printf("weft stop: stopped %s (pid %d)%s\n", d.what.c_str(), static_cast<int>(d.pid),
                killed || a->has("force") ? " with SIGKILL" : "");
  }
  forget_head_address();
  return 0;
}

}  // namespace weft::cli
