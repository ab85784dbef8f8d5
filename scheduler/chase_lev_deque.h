// A lock-free work-stealing deque of pointers.
//
// The algorithm is Chase & Lev, "Dynamic Circular Work-Stealing Deque" (SPAA 2005), with the
// C11 memory orderings of Lê, Pop, Cohen & Zappa Nardelli, "Correct and Efficient Work-Stealing
// for Weak Memory Models" (PPoPP 2013). Where that paper uses seq_cst fences we use seq_cst
// accesses instead (same cost on x86, and visible to ThreadSanitizer, which ignores fences).
//
// Contract: one owner thread calls push() and pop() (LIFO end); any thread calls steal() (FIFO
// end). The deque grows without bound; retired buffers are kept until destruction because a
// thief may still be reading one. Empty results are nullptr.
#pragma once

#include <atomic>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace weft::sched {

inline constexpr size_t kCacheLine = 64;

template <class T>
class ChaseLevDeque {
  static_assert(std::is_pointer_v<T>, "ChaseLevDeque holds pointers");

 public:
  explicit ChaseLevDeque(size_t initial_capacity = 256) {
    size_t cap = 1;
    while (cap < initial_capacity) cap <<= 1;
    auto a = std::make_unique<Array>(cap);
    array_.store(a.get(), std::memory_order_relaxed);
    retired_.push_back(std::move(a));
  }
  ChaseLevDeque(const ChaseLevDeque&) = delete;
  ChaseLevDeque& operator=(const ChaseLevDeque&) = delete;

  // Owner only.
  void push(T item) {
    int64_t b = bottom_.load(std::memory_order_relaxed);
    Array* a = array_.load(std::memory_order_relaxed);
    // top_ only grows, so a stale copy under-estimates free space: re-read the contended line only
    // when the stale copy says the buffer is full.
    if (b - top_cache_ > static_cast<int64_t>(a->capacity) - 1) {
      top_cache_ = top_.load(std::memory_order_acquire);
      if (b - top_cache_ > static_cast<int64_t>(a->capacity) - 1) a = grow(a, top_cache_, b);
    }
    a->put(b, item);
    // seq_cst (not just release): pairs with the seq_cst loads of sleepers' and hint checks in
    // the scheduler, so a push is never missed by a thread about to sleep.
    bottom_.store(b + 1, std::memory_order_seq_cst);
  }

  // Owner only. Takes the most recently pushed item.
  T pop() {
    int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Array* a = array_.load(std::memory_order_relaxed);
    bottom_.store(b, std::memory_order_seq_cst);
    int64_t t = top_.load(std::memory_order_seq_cst);
    top_cache_ = t;
    if (t > b) {
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T item = a->get(b);
    if (t == b) {
      // Last item: race thieves for it.
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) item = nullptr;
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

  // Any thread. Takes the oldest item; nullptr only when the deque was seen empty (a lost race
  // with another thief or the owner is retried, so callers can trust an empty answer).
  T steal() {
    while (true) {
      int64_t t = top_.load(std::memory_order_seq_cst);
      int64_t b = bottom_.load(std::memory_order_seq_cst);
      if (t >= b) return nullptr;
      Array* a = array_.load(std::memory_order_acquire);
      T item = a->get(t);
      if (top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) return item;
    }
  }

  // Any thread, but only on a deque whose owner never pops (a push-only deque, such as the one of
  // a submitting thread that does not run tasks). Moves up to half of the items, at most `max`,
  // oldest first, into `into` (which the caller owns) and returns one more for the caller to run.
  // With no owner pops there is no race at the bottom end, so one CAS on top_ claims the batch.
  // Below `min_backlog` items it takes one, so that short queues stay first-in first-out.
  template <class Deque>
  T steal_batch(Deque& into, int64_t max, int64_t min_backlog) {
    while (true) {
      int64_t t = top_.load(std::memory_order_seq_cst);
      int64_t b = bottom_.load(std::memory_order_seq_cst);
      if (t >= b) return nullptr;
      int64_t k = b - t < min_backlog ? 1 : std::min<int64_t>(max, (b - t + 1) / 2);
      Array* a = array_.load(std::memory_order_acquire);
      T first = a->get(t);
      T rest[kMaxBatch];
      k = std::min<int64_t>(k, kMaxBatch + 1);
      for (int64_t i = 1; i < k; ++i) rest[i - 1] = a->get(t + i);
      if (top_.compare_exchange_strong(t, t + k, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        for (int64_t i = 1; i < k; ++i) into.push(rest[i - 1]);
        return first;
      }
    }
  }
  static constexpr int64_t kMaxBatch = 63;

  // Approximate when other threads are active.
  bool empty() const {
    return top_.load(std::memory_order_seq_cst) >= bottom_.load(std::memory_order_seq_cst);
  }
  int64_t size() const {
    int64_t n = bottom_.load(std::memory_order_relaxed) - top_.load(std::memory_order_relaxed);
    return n < 0 ? 0 : n;
  }

 private:
  struct Array {
    explicit Array(size_t cap) : capacity(cap), mask(cap - 1), slots(new std::atomic<T>[cap]) {}
    void put(int64_t i, T v) { slots[static_cast<size_t>(i) & mask].store(v, std::memory_order_relaxed); }
    T get(int64_t i) const { return slots[static_cast<size_t>(i) & mask].load(std::memory_order_relaxed); }
    size_t capacity;
    size_t mask;
    std::unique_ptr<std::atomic<T>[]> slots;
  };

  Array* grow(Array* old, int64_t t, int64_t b) {
    auto bigger = std::make_unique<Array>(old->capacity * 2);
    for (int64_t i = t; i < b; ++i) bigger->put(i, old->get(i));
    Array* raw = bigger.get();
    retired_.push_back(std::move(bigger));
    array_.store(raw, std::memory_order_release);
    return raw;
  }

  alignas(kCacheLine) std::atomic<int64_t> top_{0};     // thieves' end; own line: avoids false sharing with bottom_
  alignas(kCacheLine) std::atomic<int64_t> bottom_{0};  // owner's end
  alignas(kCacheLine) std::atomic<Array*> array_{nullptr};
  int64_t top_cache_ = 0;                         // owner only: last top_ the owner saw
  std::vector<std::unique_ptr<Array>> retired_;  // owner only; freed with the deque
};

}  // namespace weft::sched
