#include "cluster/job_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weft::cluster {

Result<std::unique_ptr<JobProcess>> JobProcess::spawn(const std::vector<std::string>& argv,
                                                      const std::vector<std::string>& env, const std::string& cwd,
                                                      const std::string& log_path) {
  if (argv.empty()) return Status::invalid_argument("a job needs a command");
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Status::io_error("cannot open " + log_path + ": " + std::strerror(errno));
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    ::close(log_fd);
    return Status::io_error(std::string("cannot start the job: fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    if (chdir(cwd.c_str()) != 0) {
      static const char kMsg[] = "weft: cannot enter the job's directory\n";
      (void)!write(2, kMsg, sizeof kMsg - 1);
      _exit(127);
    }
    execvpe(args[0], args.data(), envp.data());
    static const char kMsg[] = "weft: cannot run the job's command: ";
    (void)!write(2, kMsg, sizeof kMsg - 1);
    (void)!write(2, args[0], strlen(args[0]));
    (void)!write(2, "\n", 1);
    _exit(127);
  }
  ::close(log_fd);
  std::unique_ptr<JobProcess> p(new JobProcess());
  p->pid_ = pid;
  return p;
}

JobProcess::~JobProcess() {
  if (pid_ <= 0 || reaped_) return;
  signal_group(SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

bool JobProcess::reap() {
  if (reaped_) return true;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r != pid_) return false;
  reaped_ = true;
  if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
  // The group may outlive its leader: end what the driver left behind.
  ::kill(-pid_, SIGKILL);
  return true;
}

void JobProcess::signal_group(int sig) const {
  if (pid_ > 0) ::kill(-pid_, sig);
}

}  // namespace weft::cluster
