// A work-stealing thread pool with SLO priority classes: the embedded runtime's executor.
//
// Every thread that submits or runs work owns a QueueSet: per SLO class, one Chase–Lev deque
// (tasks without deadline; owner pops newest-first for locality, thieves take oldest-first) and
// one deadline heap (earliest deadline first). Workers own one each; other threads (the driver,
// user threads) get one on first use, which workers steal from. There is no global queue and no
// global lock on the submit/steal/execute path.
//
// Order of search for a worker: its own latency-critical work, then latency-critical work it can
// steal, then its own standard work, stealing standard work, then batch work likewise; within a
// class, heap (deadlines) before deque. Stealing scans victims from a random start and, for
// deadline heaps, takes the victim whose earliest deadline is earliest. A per-class "hint" flag
// (set by pushes, cleared-then-rechecked by thieves that find nothing) lets a thread skip
// scanning other queues for classes that are empty everywhere, without ever missing a push.
//
// Idle workers search (spin) briefly, then sleep on an EventCount. A push wakes one sleeper only
// when no worker is searching; a thief that leaves work behind in its victim wakes one more.
//
// Thread safety: all public methods are thread-safe. shutdown() must not race with submissions
// from threads that are not running tasks of this pool.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "chase_lev_deque.h"
#include "deadline_heap.h"
#include "event_count.h"
#include "executor.h"

namespace weft::sched {

struct PoolOptions {
  int num_workers = 1;
  std::string thread_name = "weft-worker";
};

class WorkStealingPool final : public Executor {
 public:
  explicit WorkStealingPool(const PoolOptions& options);
  ~WorkStealingPool() override;

  void submit(detail::Runnable* r) override;
  bool help_until(const std::function<bool()>& done, const std::function<bool()>& prepare_sleep,
                  int64_t deadline_ns) override;
  void wake_sleepers() override {
    sleep_.notify_all();
    waiters_.notify_all();
  }
  void shutdown() override;
  void cancel_pending() override;
  bool in_worker_thread() const override { return current_worker_index() >= 0; }
  int num_workers() const override { return static_cast<int>(workers_.size()); }

  // Index of the calling worker thread in this pool, or -1.
  int current_worker_index() const;

 private:
  struct alignas(kCacheLine) QueueSet {
    ChaseLevDeque<detail::Runnable*> deques[kNumSloClasses];
    DeadlineHeap heaps[kNumSloClasses];
    // Sets shared by several threads (overflow) serialise owner operations with this mutex.
    std::mutex* owner_mu = nullptr;
    // The owner never pops (a thread that submits but does not run tasks), so thieves may take
    // batches from its deques.
    bool push_only = false;
  };
  struct alignas(kCacheLine) Hint {
    std::atomic<bool> set{false};
  };

  static constexpr int kMaxSets = 1024;
  static constexpr int kMaxHelpDepth = 256;

  QueueSet& local_set();
  QueueSet& register_external();
  void push(QueueSet& q, detail::Runnable* r);
  detail::Runnable* pop_local(QueueSet& q, int cls);
  // `may_clear`: allowed to clear stale hints (before sleeping). Idle spinning passes false so that
  // it never writes shared lines; hints are also cleared when lower-class local work would run.
  detail::Runnable* find_task(QueueSet& self, uint64_t& rng, bool may_clear = true);
  detail::Runnable* steal_class(int cls, QueueSet* self, uint64_t& rng, bool may_clear);
  static bool has_local_below(QueueSet& q, int cls);
  detail::Runnable* scan_class(int cls, QueueSet* self, uint64_t& rng);
  detail::Runnable* steal_from(QueueSet& victim, int cls, QueueSet* self);
  void execute(detail::Runnable* r);
  void worker_main(int index);

  const uint64_t id_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  EventCount sleep_;    // threads that run tasks: idle workers, and workers helping in help_until
  EventCount waiters_;  // threads that only wait (non-workers, timed waits): never woken by push, so
                        // a push's single wake-up always reaches a thread that can run the task
  Hint hints_[kNumSloClasses];
  // Workers currently looking for work. A push skips waking a sleeper while one is searching:
  // the searcher re-checks every queue before it may sleep.
  alignas(kCacheLine) std::atomic<int> searching_{0};

  // Victim table: [0, num_workers) are workers; then external threads. Append-only.
  std::array<std::atomic<QueueSet*>, kMaxSets> sets_{};
  std::atomic<int> num_sets_{0};

  std::mutex registry_mu_;  // guards external_, owned_, overflow creation
  std::unordered_map<std::thread::id, QueueSet*> external_;
  std::vector<std::unique_ptr<QueueSet>> owned_;
  std::mutex overflow_mu_;  // owner lock of the overflow set (used when the table is full)
  QueueSet* overflow_ = nullptr;

  std::vector<std::thread> workers_;
  std::mutex shutdown_mu_;
};

}  // namespace weft::sched
