#include "work_stealing_pool.h"

#include <pthread.h>

#include <algorithm>

namespace weft::sched {
namespace {

std::atomic<uint64_t> g_next_pool_id{1};

// Per-thread view of the pool it works for. A thread may touch several pools over its life; the
// cached entry is for the last one (others go through the registry's map).
struct ThreadCtx {
  uint64_t pool_id = 0;
  void* set = nullptr;
  int worker_index = -1;
  int help_depth = 0;
  uint64_t rng = 0;
};
thread_local ThreadCtx tls;

uint64_t next_random(uint64_t& s) {
  if (s == 0) s = reinterpret_cast<uintptr_t>(&s) | 1;  // distinct per thread
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

constexpr int kSpinRounds = 32;
// Most tasks a thief moves from a push-only deque in one steal.
constexpr int64_t kStealBatch = 32;
// Batches are taken only from a backlog this deep; shorter queues are stolen one task at a time,
// so a short task is never parked behind a long one in another worker's deque.
constexpr int64_t kStealBatchBacklog = 16;

}  // namespace

WorkStealingPool::WorkStealingPool(const PoolOptions& options)
    : id_(g_next_pool_id.fetch_add(1, std::memory_order_relaxed)) {
  int n = std::max(1, std::min(options.num_workers, kMaxSets / 2));
  for (int i = 0; i < n; ++i) {
    owned_.push_back(std::make_unique<QueueSet>());
    sets_[i].store(owned_.back().get(), std::memory_order_relaxed);
  }
  num_sets_.store(n, std::memory_order_release);
  workers_.reserve(n);
  for (int i = 0; i < n; ++i) {
    workers_.emplace_back([this, i] { worker_main(i); });
    std::string name = options.thread_name.substr(0, 11) + "-" + std::to_string(i);
    pthread_setname_np(workers_.back().native_handle(), name.substr(0, 15).c_str());
  }
}

WorkStealingPool::~WorkStealingPool() { shutdown(); }

int WorkStealingPool::current_worker_index() const { return tls.pool_id == id_ ? tls.worker_index : -1; }

WorkStealingPool::QueueSet& WorkStealingPool::local_set() {
  if (tls.pool_id == id_) return *static_cast<QueueSet*>(tls.set);
  return register_external();
}

WorkStealingPool::QueueSet& WorkStealingPool::register_external() {
  std::lock_guard lock(registry_mu_);
  const auto tid = std::this_thread::get_id();
  QueueSet* q = nullptr;
  if (auto it = external_.find(tid); it != external_.end()) {
    q = it->second;
  } else {
    int n = num_sets_.load(std::memory_order_relaxed);
    if (n < kMaxSets - 1) {
      owned_.push_back(std::make_unique<QueueSet>());
      q = owned_.back().get();
      q->push_only = true;  // threads outside the pool never run tasks (see help_until)
      sets_[n].store(q, std::memory_order_release);
      num_sets_.store(n + 1, std::memory_order_release);
    } else {
      // Table full (thousands of distinct submitting threads): share one set, owner ops locked.
      if (overflow_ == nullptr) {
        owned_.push_back(std::make_unique<QueueSet>());
        overflow_ = owned_.back().get();
        overflow_->owner_mu = &overflow_mu_;
        overflow_->push_only = true;
        sets_[kMaxSets - 1].store(overflow_, std::memory_order_release);
        num_sets_.store(kMaxSets, std::memory_order_release);
      }
      q = overflow_;
    }
    external_.emplace(tid, q);
  }
  tls.pool_id = id_;
  tls.set = q;
  tls.worker_index = -1;
  tls.help_depth = 0;
  return *q;
}

void WorkStealingPool::submit(detail::Runnable* r) { push(local_set(), r); }

void WorkStealingPool::push(QueueSet& q, detail::Runnable* r) {
  const int cls = r->slo_index();
  {
    std::unique_lock<std::mutex> lock;
    if (q.owner_mu) lock = std::unique_lock(*q.owner_mu);
    if (r->deadline_ns() != detail::kNoDeadline) {
      q.heaps[cls].push(r);
    } else {
      q.deques[cls].push(r);
    }
  }
  if (!hints_[cls].set.load(std::memory_order_seq_cst)) hints_[cls].set.store(true, std::memory_order_seq_cst);
  // Read the rarely-written sleeper count first; the searcher count changes with every idle spell.
  if (sleep_.waiters() > 0 && searching_.load(std::memory_order_seq_cst) == 0) sleep_.notify_one();
}

detail::Runnable* WorkStealingPool::pop_local(QueueSet& q, int cls) {
  std::unique_lock<std::mutex> lock;
  if (q.owner_mu) lock = std::unique_lock(*q.owner_mu);
  if (detail::Runnable* r = q.heaps[cls].pop()) return r;
  return q.deques[cls].pop();
}

bool WorkStealingPool::has_local_below(QueueSet& q, int cls) {
  for (int c = cls + 1; c < kNumSloClasses; ++c) {
    if (!q.heaps[c].empty() || q.deques[c].size() > 0) return true;
  }
  return false;
}

detail::Runnable* WorkStealingPool::find_task(QueueSet& self, uint64_t& rng, bool may_clear) {
  for (int cls = 0; cls < kNumSloClasses; ++cls) {
    if (detail::Runnable* r = pop_local(self, cls)) return r;
    if (hints_[cls].set.load(std::memory_order_seq_cst)) {
      if (detail::Runnable* r = steal_class(cls, &self, rng, may_clear || has_local_below(self, cls))) return r;
    }
  }
  return nullptr;
}

detail::Runnable* WorkStealingPool::steal_class(int cls, QueueSet* self, uint64_t& rng, bool may_clear) {
  if (detail::Runnable* r = scan_class(cls, self, rng)) return r;
  if (!may_clear) return nullptr;
  // Found nothing: clear the hint, then look once more. A push that this second scan misses
  // necessarily reads the cleared hint afterwards and sets it again.
  hints_[cls].set.store(false, std::memory_order_seq_cst);
  detail::Runnable* r = scan_class(cls, self, rng);
  if (r != nullptr) hints_[cls].set.store(true, std::memory_order_seq_cst);
  return r;
}

detail::Runnable* WorkStealingPool::scan_class(int cls, QueueSet* self, uint64_t& rng) {
  const int n = num_sets_.load(std::memory_order_acquire);
  const int start = static_cast<int>(next_random(rng) % static_cast<uint64_t>(n));
  // Most urgent first: the victim whose earliest deadline is earliest.
  for (int attempt = 0; attempt < 4; ++attempt) {
    QueueSet* best = nullptr;
    int64_t best_deadline = detail::kNoDeadline;
    for (int i = 0; i < n; ++i) {
      QueueSet* q = sets_[(start + i) % n].load(std::memory_order_acquire);
      if (q == nullptr || q == self) continue;
      int64_t d = q->heaps[cls].min_deadline();
      if (d < best_deadline) {
        best_deadline = d;
        best = q;
      }
    }
    if (best == nullptr) break;
    if (detail::Runnable* r = best->heaps[cls].pop()) {
      if (!best->heaps[cls].empty() && sleep_.waiters() > 0) sleep_.notify_one();  // see steal_from
      return r;
    }
  }
  // Workers' deques first: what sits there was already taken from a submitter and waits behind a
  // running task, so it is the oldest work. Then the submitters' (push-only) deques.
  for (int pass = 0; pass < 2; ++pass) {
    const bool want_push_only = pass == 1;
    for (int i = 0; i < n; ++i) {
      QueueSet* q = sets_[(start + i) % n].load(std::memory_order_acquire);
      if (q == nullptr || q == self || q->push_only != want_push_only) continue;
      if (detail::Runnable* r = steal_from(*q, cls, self)) return r;
    }
  }
  return nullptr;
}

detail::Runnable* WorkStealingPool::steal_from(QueueSet& q, int cls, QueueSet* self) {
  detail::Runnable* r = nullptr;
  bool took_batch = false;
  if (q.push_only && self != nullptr && !self->push_only && self->owner_mu == nullptr) {
    // Taking a batch keeps thieves off the submitter's cache lines for a while.
    const int64_t before = self->deques[cls].size();
    r = q.deques[cls].steal_batch(self->deques[cls], kStealBatch, kStealBatchBacklog);
    took_batch = self->deques[cls].size() > before;
  } else {
    r = q.deques[cls].steal();
  }
  // Work left behind (in the victim, or moved here): make sure another worker comes for it. The
  // searcher count cannot be trusted here, since this thief may itself be counted and is about to
  // stop searching to run `r`.
  if (r != nullptr && (took_batch || !q.deques[cls].empty()) && sleep_.waiters() > 0) sleep_.notify_one();
  return r;
}

void WorkStealingPool::execute(detail::Runnable* r) {
  if (stopping_.load(std::memory_order_relaxed)) {
    r->cancel();
  } else {
    r->run();
  }
}

void WorkStealingPool::worker_main(int index) {
  QueueSet& self = *sets_[index].load(std::memory_order_acquire);
  tls.pool_id = id_;
  tls.set = &self;
  tls.worker_index = index;
  tls.help_depth = 0;
  uint64_t& rng = tls.rng;
  while (true) {
    detail::Runnable* r = find_task(self, rng, false);
    if (r == nullptr) {
      searching_.fetch_add(1, std::memory_order_seq_cst);
      for (int spin = 0; r == nullptr && spin < kSpinRounds; ++spin) {
        if (spin < kSpinRounds / 2) {
          for (int k = 0; k < 32; ++k) cpu_relax();
        } else {
          std::this_thread::yield();
        }
        r = find_task(self, rng, false);
      }
      searching_.fetch_sub(1, std::memory_order_seq_cst);
    }
    if (r != nullptr) {
      execute(r);
      continue;
    }
    // No longer searching: re-check everything (clearing stale hints) before sleeping.
    uint32_t key = sleep_.prepare_wait();
    r = find_task(self, rng, true);
    if (r != nullptr) {
      sleep_.cancel_wait();
      execute(r);
      continue;
    }
    if (stopping_.load(std::memory_order_seq_cst)) {
      sleep_.cancel_wait();
      break;
    }
    sleep_.commit_wait(key);
  }
}

bool WorkStealingPool::help_until(const std::function<bool()>& done, const std::function<bool()>& prepare_sleep,
                                  int64_t deadline_ns) {
  QueueSet& self = local_set();
  ThreadCtx& ctx = tls;
  // Only this pool's workers run tasks while they wait: that is what lets a task get the results
  // of tasks it submitted, even with one worker. Other threads (the driver) just sleep, so a long
  // task never delays their return. A timed wait never runs tasks either (it would overshoot its
  // deadline), and bounded nesting keeps a worker's stack bounded.
  const bool can_help = ctx.worker_index >= 0 && ctx.help_depth < kMaxHelpDepth && deadline_ns == detail::kNoDeadline;
  auto run_here = [&](detail::Runnable* r) {
    ++ctx.help_depth;
    execute(r);
    --ctx.help_depth;
  };
  EventCount& sleep = can_help ? sleep_ : waiters_;
  int idle_rounds = 0;
  while (!done()) {
    if (can_help) {
      if (detail::Runnable* r = find_task(self, ctx.rng)) {
        run_here(r);
        idle_rounds = 0;
        continue;
      }
    }
    if (deadline_ns != detail::kNoDeadline && detail::now_ns() >= deadline_ns) return done();
    if (idle_rounds++ < kSpinRounds / 2) {
      std::this_thread::yield();
      continue;
    }
    uint32_t key = sleep.prepare_wait();
    if (done() || !prepare_sleep()) {
      sleep.cancel_wait();
      continue;
    }
    if (can_help) {
      if (detail::Runnable* r = find_task(self, ctx.rng)) {
        sleep.cancel_wait();
        run_here(r);
        continue;
      }
    }
    sleep.commit_wait(key, deadline_ns);
  }
  return true;
}

void WorkStealingPool::shutdown() {
  std::lock_guard lock(shutdown_mu_);
  if (stopped_.load(std::memory_order_acquire)) return;
  stopping_.store(true, std::memory_order_seq_cst);
  sleep_.notify_all();
  waiters_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  // Cancel what is left: work pushed by external threads, and the dependents that cancellations
  // make ready (they land in this thread's own set, which the loop also drains).
  cancel_pending();
  stopped_.store(true, std::memory_order_release);
}

void WorkStealingPool::cancel_pending() {
  QueueSet& self = local_set();
  uint64_t rng = 0;
  while (true) {
    detail::Runnable* r = nullptr;
    for (int cls = 0; cls < kNumSloClasses && r == nullptr; ++cls) {
      r = pop_local(self, cls);
      if (r == nullptr) r = scan_class(cls, &self, rng);
    }
    if (r == nullptr) break;
    r->cancel();
  }
}

}  // namespace weft::sched
