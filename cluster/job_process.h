// One job's driver process on a node: started in a session (process group) of its own, in the
// job's directory, with its output (stdout and stderr together) appended to a file; killed with
// its whole group. If the node's process dies, the driver is killed too (PR_SET_PDEATHSIG), so a
// dead node leaves no job running that its head no longer knows of.
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

#include "weft/status.h"

namespace weft::cluster {

class JobProcess {
 public:
  // `env`: "NAME=value" entries, the whole environment. argv[0] is looked up in env's PATH.
  static Result<std::unique_ptr<JobProcess>> spawn(const std::vector<std::string>& argv,
                                                   const std::vector<std::string>& env, const std::string& cwd,
                                                   const std::string& log_path);
  // Kills the group (SIGKILL) if it still runs, and reaps it.
  ~JobProcess();

  pid_t pid() const { return pid_; }
  // Whether the process has exited (checks without waiting).
  bool reap();
  int exit_code() const { return exit_code_; }      // valid once reaped; -1 if signalled
  int term_signal() const { return term_signal_; }  // the signal that ended it, or 0
  // Sends `sig` to the job's whole process group.
  void signal_group(int sig) const;

 private:
  JobProcess() = default;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1, term_signal_ = 0;
};

}  // namespace weft::cluster
