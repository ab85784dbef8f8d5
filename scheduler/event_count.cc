#include "event_count.h"

#include "futex.h"

namespace weft::sched {

void EventCount::commit_wait(uint32_t key, int64_t deadline_ns) {
  while (epoch_.load(std::memory_order_seq_cst) == key) {
    futex_wait(&epoch_, key, deadline_ns);
    if (deadline_ns != detail::kNoDeadline && detail::now_ns() >= deadline_ns) break;
  }
  waiters_.fetch_sub(1, std::memory_order_seq_cst);
}

void EventCount::notify(bool all) {
  if (waiters_.load(std::memory_order_seq_cst) == 0) return;
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&epoch_, all ? INT32_MAX : 1);
}

}  // namespace weft::sched
