// What a job's driver may touch on its node's filesystem, enforced with Landlock (the kernel's
// unprivileged sandbox, Linux 5.13+): read and write its own directory (the copy of its working
// directory, with TMPDIR inside it), read and run the system's files (/usr, /lib, /bin, /etc,
// /opt, /proc, /sys; /dev for reading and writing), the directory of its program, and whatever the
// node's operator adds (`weft start --job-paths`: models, datasets). Nothing else: not the
// cluster's credential, the user's home, other jobs' directories or the head's state.
//
//   SandboxPlan plan({"/usr", ...}, {"/run/user/1000/weft/node-7/jobs/job-1"});   // before fork
//   if (!plan.enter()) ...                                     // in the child, before exec
//
// The node's worker processes, which the driver's tasks run in, are the node's and are not
// confined by it.
#pragma once

#include <string>
#include <vector>

namespace weft::cluster {

// The Landlock ABI version this kernel offers; 0 when it has none.
int landlock_abi();

// The system paths a job reads and runs from.
std::vector<std::string> system_read_paths();

class SandboxPlan {
 public:
  SandboxPlan(std::vector<std::string> read_paths, std::vector<std::string> write_paths);

  // Confines the calling process (and what it starts) for good. Async-signal-safe: made for the
  // child between fork and exec. False when the kernel refused (the caller must not run the job).
  bool enter() const noexcept;

 private:
  std::vector<std::string> read_, write_;
  int abi_ = 0;
};

}  // namespace weft::cluster
