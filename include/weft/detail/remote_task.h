// A task that can run in another process. Internal.
//
// Function tasks of registered functions (WEFT_REMOTE) whose parameters and result travel by
// value implement it; a multi-process executor packs their arguments, runs them in a worker
// process through the registry's invoker, and finishes them with the packed result. Everything
// else (actor calls, tasks taking ObjectRefs as parameters) runs in the driver.
#pragma once

#include <string>
#include <string_view>

#include "weft/detail/hooks.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft {
struct RemoteEntry;
}

namespace weft::detail {

class WEFT_API RemoteTask {
 public:
  // The registered function to run remotely, or null when this task must run locally (not
  // registered, a parameter that cannot travel by value, or a failed dependency to report).
  virtual const RemoteEntry* remote_entry() = 0;
  // The arguments, resolved, as one MessagePack array (the invoker's input).
  virtual Result<std::string> pack_arguments() = 0;
  // Completes the task with the invoker's output (a value that fails to decode fails the task).
  virtual void finish_remote(std::string_view packed_result) = 0;
  // Completes the task with an error (the remote function raised, or its worker died).
  virtual void fail_remote(ErrorPtr error) = 0;
  // The worker running this task died: true (and one retry used) when max_retries allows
  // another attempt.
  virtual bool retry_after_worker_death() = 0;
  virtual const std::string& task_name() const = 0;

 protected:
  ~RemoteTask() = default;
};

}  // namespace weft::detail
