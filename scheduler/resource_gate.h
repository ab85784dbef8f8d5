// Admission of tasks that declare resources ({"GPU", 1}, {"CPU", 2}, custom names).
//
// A task whose needs fit what is free takes them at once; otherwise it is parked, and release()
// hands back parked tasks that now fit, most urgent first (SLO class, then deadline, then
// arrival). A need the node can never meet is infeasible and reported with what the node has.
// Tasks that declare no resources never come here: worker threads bound their concurrency.
//
// Thread safety: one mutex guards all state; it is only taken by tasks that declare resources.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "weft/detail/runnable.h"
#include "weft/options.h"

namespace weft::sched {

class ResourceGate {
 public:
  enum class Outcome { kNow, kParked, kInfeasible };

  explicit ResourceGate(ResourceSet capacity);

  // `need` must stay valid until the runnable is handed back by release() or drain_parked().
  Outcome acquire(detail::Runnable* r, const ResourceSet& need, std::string* why);
  // Returns resources; the result holds parked runnables that now hold theirs.
  std::vector<detail::Runnable*> release(const ResourceSet& need);
  // Removes every parked runnable (shutdown) without granting resources.
  std::vector<detail::Runnable*> drain_parked();

  ResourceSet capacity() const;
  ResourceSet available() const;
  static std::string describe(const ResourceSet& r);

 private:
  struct Parked {
    int cls;
    int64_t deadline;
    uint64_t seq;
    detail::Runnable* runnable;
    const ResourceSet* need;
  };
  bool fits_locked(const ResourceSet& need) const;
  void take_locked(const ResourceSet& need);

  mutable std::mutex mu_;
  ResourceSet capacity_;   // immutable after construction
  ResourceSet available_;  // guarded by mu_
  std::vector<Parked> parked_;  // guarded by mu_, kept sorted by urgency
  uint64_t seq_ = 0;            // guarded by mu_
};

}  // namespace weft::sched
