// The unit the scheduler runs. Internal: users see tasks and actors, never Runnables.
#pragma once

#include <cstdint>
#include <limits>

#include "weft/export.h"
#include "weft/options.h"

namespace weft::detail {

inline constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

// Nanoseconds on the steady clock: the scheduler's time base for deadlines.
inline int64_t to_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline int64_t now_ns() { return to_ns(Clock::now()); }

// A ready piece of work. The scheduler calls exactly one of run() or cancel(), exactly once per
// submission, on some thread; either may free the object, so the scheduler never touches it after.
class RemoteTask;

class WEFT_API Runnable {
 public:
  virtual void run() = 0;
  // Completes the work without executing it (the runtime is shutting down).
  virtual void cancel() = 0;
  // The runnable as a task another process could run, or null (see remote_task.h).
  virtual RemoteTask* remote() { return nullptr; }

  Slo slo() const { return slo_; }
  int slo_index() const { return static_cast<int>(slo_); }
  int64_t deadline_ns() const { return deadline_ns_; }
  void set_priority(Slo slo, int64_t deadline_ns) {
    slo_ = slo;
    deadline_ns_ = deadline_ns;
  }

 protected:
  ~Runnable() = default;

 private:
  Slo slo_ = Slo::kStandard;
  int64_t deadline_ns_ = kNoDeadline;
};

}  // namespace weft::detail
