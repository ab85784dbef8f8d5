// One job's driver process on a node: started in a session (process group) of its own, in the
// job's directory, with its output (stdout and stderr together) appended to a file; stopped with
// its whole group. A small guardian process leads the group: it reaps the driver, hands its exit
// status to the node through a pipe, and kills whatever the driver left behind; and when the node
// dies (a pipe only the node writes to closes) it kills the group, so a dead node leaves nothing
// running that its head no longer knows of.
//
//   WEFT_ASSIGN_OR_RETURN(auto p, JobProcess::spawn({"python3", "job.py"}, env, dir, dir + ".log"));
//   while (!p->reap()) ...;   // p->exit_code(), p->term_signal()
//
// Not thread-safe: its node agent's thread owns it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "cluster/job_sandbox.h"
#include "weft/status.h"

namespace weft::cluster {

class JobProcess {
 public:
  // `env`: "NAME=value" entries, the whole environment. argv[0] is looked up in env's PATH.
  // `sandbox`: confine the driver (job_sandbox.h) before it runs; null: run it unconfined.
  // `program`: the file to run (argv[0] resolved by the caller); empty: argv[0] on this process's PATH.
  static Result<std::unique_ptr<JobProcess>> spawn(const std::vector<std::string>& argv,
                                                   const std::vector<std::string>& env, const std::string& cwd,
                                                   const std::string& log_path, const SandboxPlan* sandbox = nullptr,
                                                   const std::string& program = "");
  // Kills the group (SIGKILL) if it still runs, and reaps it.
  ~JobProcess();

  pid_t pid() const { return pid_; }
  // Whether the process has exited (checks without waiting).
  bool reap();
  int exit_code() const { return exit_code_; }      // valid once reaped; -1 if signalled
  int term_signal() const { return term_signal_; }  // the signal that ended it, or 0
  // Sends `sig` to the job's whole process group (the guardian ignores SIGTERM).
  void signal_group(int sig) const;

 private:
  JobProcess() = default;
  pid_t pid_ = -1;                      // the guardian's, and the group's
  int alive_fd_ = -1, status_fd_ = -1;  // the node's ends of the two pipes
  bool reaped_ = false;
  int exit_code_ = -1, term_signal_ = 0;
};

}  // namespace weft::cluster
