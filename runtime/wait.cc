// Blocking on objects: get and wait.
#include <vector>

#include "runtime/runtime.h"
#include "weft/api.h"
#include "weft/detail/hooks.h"
#include "weft/detail/object.h"

namespace weft::detail {

bool wait_done(ObjectBase* const* objs, size_t n, size_t k, int64_t deadline_ns) {
  size_t done_count = 0;
  std::vector<ObjectBase*> pending;
  for (size_t i = 0; i < n; ++i) {
    if (objs[i]->done()) {
      ++done_count;
    } else {
      pending.push_back(objs[i]);
    }
  }
  if (done_count >= k) return true;
  runtime::Runtime* rt = runtime::live();
  if (rt == nullptr) throw Error("weft: waiting for an object that is not ready, but the runtime is not running");

  // Cheap check after every task this thread runs: objects finish roughly in order, so look at
  // the tail only. The full rescan happens before sleeping.
  auto done = [&] {
    while (!pending.empty() && pending.back()->done()) {
      pending.pop_back();
      ++done_count;
    }
    return done_count >= k;
  };
  auto prepare_sleep = [&] {
    for (size_t i = 0; i < pending.size();) {
      if (pending[i]->done()) {
        pending[i] = pending.back();
        pending.pop_back();
        ++done_count;
      } else {
        ++i;
      }
    }
    if (done_count >= k) return false;
    for (ObjectBase* o : pending) {
      if (!o->arm_sleeper()) return false;  // finished meanwhile: re-check instead of sleeping
    }
    return true;
  };
  return rt->executor().help_until(done, prepare_sleep, deadline_ns);
}

void wait_some(ObjectBase* const* objs, size_t n, size_t k, int64_t deadline_ns) {
  if (k == 0) return;
  (void)wait_done(objs, n, k, deadline_ns);
}

}  // namespace weft::detail
