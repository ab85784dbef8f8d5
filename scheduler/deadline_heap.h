// Runnables with deadlines, earliest first (ties in arrival order).
//
// Thread safety: a small mutex guards the heap; `min_deadline()` is a lock-free peek so that
// thieves can pick the most urgent heap without locking every one. Deadline tasks are the
// minority, so this lock is off the common submit/steal path.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "chase_lev_deque.h"
#include "weft/detail/runnable.h"

namespace weft::sched {

class DeadlineHeap {
 public:
  void push(detail::Runnable* r) {
    std::lock_guard lock(mu_);
    heap_.push_back(Entry{r->deadline_ns(), seq_++, r});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    min_.store(heap_.front().deadline, std::memory_order_seq_cst);
  }
  detail::Runnable* pop() {
    if (min_.load(std::memory_order_seq_cst) == kEmpty) return nullptr;
    std::lock_guard lock(mu_);
    if (heap_.empty()) return nullptr;
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    detail::Runnable* r = heap_.back().runnable;
    heap_.pop_back();
    min_.store(heap_.empty() ? kEmpty : heap_.front().deadline, std::memory_order_seq_cst);
    return r;
  }
  // Earliest deadline queued, or INT64_MAX when empty. Lock-free, may be stale.
  int64_t min_deadline() const { return min_.load(std::memory_order_seq_cst); }
  bool empty() const { return min_deadline() == kEmpty; }

 private:
  static constexpr int64_t kEmpty = detail::kNoDeadline;
  struct Entry {
    int64_t deadline;
    uint64_t seq;
    detail::Runnable* runnable;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
    }
  };

  std::mutex mu_;
  std::vector<Entry> heap_;  // guarded by mu_
  uint64_t seq_ = 0;         // guarded by mu_
  std::atomic<int64_t> min_{kEmpty};
};

}  // namespace weft::sched
