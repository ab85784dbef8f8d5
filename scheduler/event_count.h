// An event count: lets threads sleep until "something happened" without lost wake-ups.
//
// Protocol (as in Eigen's and Taskflow's notifiers):
//   waiter:   key = prepare_wait(); if (condition holds) { cancel_wait(); ... } else commit_wait(key);
//   notifier: make the condition true; notify_one() / notify_all();
// prepare_wait announces the waiter (seq_cst) before it re-checks the condition, and notify reads
// the waiter count (seq_cst) after making the condition true, so either the waiter sees the
// change or the notifier sees the waiter and bumps the epoch, which ends the waiter's futex wait.
// Notify costs one load when nobody waits.
#pragma once

#include <atomic>
#include <cstdint>

#include "chase_lev_deque.h"
#include "weft/detail/runnable.h"

namespace weft::sched {

class EventCount {
 public:
  uint32_t prepare_wait() {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return epoch_.load(std::memory_order_seq_cst);
  }
  void cancel_wait() { waiters_.fetch_sub(1, std::memory_order_seq_cst); }
  // Sleeps until notified after prepare_wait returned `key`, or until the deadline.
  void commit_wait(uint32_t key, int64_t deadline_ns = detail::kNoDeadline);

  void notify_one() { notify(false); }
  void notify_all() { notify(true); }
  // seq_cst: a notifier may use this as its check for sleepers (see notify()).
  int waiters() const { return static_cast<int>(waiters_.load(std::memory_order_seq_cst)); }

 private:
  void notify(bool all);
  alignas(kCacheLine) std::atomic<uint32_t> epoch_{0};
  alignas(kCacheLine) std::atomic<uint32_t> waiters_{0};
};

}  // namespace weft::sched
