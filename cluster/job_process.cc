#include "cluster/job_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weft::cluster {
namespace {

void say(const char* s) { (void)!write(2, s, strlen(s)); }

// The job itself, in the guardian's group: only async-signal-safe calls (the node has threads).
[[noreturn]] void exec_job(char** args, char** envp, const char* cwd, const SandboxPlan* sandbox, const char* program) {
  ::close(3);
  ::close(4);
  signal(SIGTERM, SIG_DFL);  // the guardian ignores it; the job must not
  if (chdir(cwd) != 0) {
    say("weft: cannot enter the job's directory\n");
    _exit(127);
  }
  if (sandbox != nullptr && !sandbox->enter()) {
    say("weft: the kernel refused to confine the job (Landlock); it does not run\n");
    _exit(126);
  }
  if (*program != '\0') {
    execve(program, args, envp);
  } else {
    execvpe(args[0], args, envp);
  }
  say("weft: cannot run the job's command: ");
  say(args[0]);
  say("\n");
  _exit(127);
}

// The guardian: leads the job's process group, reaps the job and writes its wait status to fd 4,
// and kills the whole group — itself included — once the job has exited or the node is gone
// (fd 3, the read end of a pipe only the node writes to, reports end of file).
[[noreturn]] void guard(char** args, char** envp, const char* cwd, const SandboxPlan* sandbox, const char* program) {
  signal(SIGTERM, SIG_IGN);  // the node's SIGTERM to the group is for the job
  const pid_t job = fork();
  if (job < 0) _exit(127);
  if (job == 0) exec_job(args, envp, cwd, sandbox, program);
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(job, &status, WNOHANG);
    if (r == job) {
      (void)!write(4, &status, sizeof status);
      break;
    }
    pollfd node{3, POLLIN, 0};
    if (poll(&node, 1, 100) > 0) break;  // the node died: nothing is left to report to
  }
  kill(0, SIGKILL);
  _exit(0);
}

}  // namespace

Result<std::unique_ptr<JobProcess>> JobProcess::spawn(const std::vector<std::string>& argv,
                                                      const std::vector<std::string>& env, const std::string& cwd,
                                                      const std::string& log_path, const SandboxPlan* sandbox,
                                                      const std::string& program) {
  if (argv.empty()) return Status::invalid_argument("a job needs a command");
  // Everything the children need is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Status::io_error("cannot open " + log_path + ": " + std::strerror(errno));
  int alive[2], status[2];
  if (pipe2(alive, O_CLOEXEC) != 0 || pipe2(status, O_CLOEXEC) != 0) {
    ::close(log_fd);
    return Status::io_error(std::string("cannot start the job: pipe: ") + std::strerror(errno));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {log_fd, alive[0], alive[1], status[0], status[1]}) ::close(fd);
    return Status::io_error(std::string("cannot start the job: fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the node blocks its stop signals; the job must not
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    dup2(alive[0], 3);
    dup2(status[1], 4);
    syscall(SYS_close_range, 5u, ~0u, 0u);  // nothing of the node's (other jobs' pipes included)
    guard(args.data(), envp.data(), cwd.c_str(), sandbox, program.c_str());
  }
  for (int fd : {log_fd, alive[0], status[1]}) ::close(fd);
  std::unique_ptr<JobProcess> p(new JobProcess());
  p->pid_ = pid;
  p->alive_fd_ = alive[1];
  p->status_fd_ = status[0];
  return p;
}

JobProcess::~JobProcess() {
  if (pid_ > 0 && !reaped_) {
    signal_group(SIGKILL);
    int st = 0;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  if (alive_fd_ >= 0) ::close(alive_fd_);
  if (status_fd_ >= 0) ::close(status_fd_);
}

bool JobProcess::reap() {
  if (reaped_) return true;
  int guardian = 0;
  if (waitpid(pid_, &guardian, WNOHANG) != pid_) return false;
  reaped_ = true;
  int status = 0;
  if (::read(status_fd_, &status, sizeof status) != sizeof status) {
    term_signal_ = SIGKILL;  // the guardian was killed before the job ended: so was the job
    return true;
  }
  if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
  return true;
}

void JobProcess::signal_group(int sig) const {
  if (pid_ > 0 && !reaped_) ::kill(-pid_, sig);
}

}  // namespace weft::cluster
