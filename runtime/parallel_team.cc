#include "weft/parallel.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <thread>

#include "runtime/runtime.h"
#include "weft/detail/runnable.h"
#include "weft/errors.h"

#include "weft/detail/spin.h"

namespace weft {
namespace {

// How long a helper waits for the team's next loop before giving its worker back: longer than the
// gap between two loops of a forward pass, far shorter than the gap between forward passes.
constexpr auto kLinger = std::chrono::microseconds(60);
constexpr uint64_t kFieldMask = (uint64_t{1} << 20) - 1;
constexpr int64_t kMaxChunks = int64_t{1} << 19;
constexpr int kMaxSlots = 64;

using detail::cpu_relax;
inline uint64_t chunks_of(uint64_t s) { return (s >> 20) & kFieldMask; }
inline uint64_t next_of(uint64_t s) { return s & kFieldMask; }

}  // namespace

struct ParallelTeam::State {
  int size = 1;
  std::atomic<Slo> slo{Slo::kStandard};
  // The current loop: written by the caller before it publishes `loop` (release); read by a
  // helper only after it claimed a chunk, and unchanged until every claimed chunk is done.
  Body body = nullptr;
  void* ctx = nullptr;
  int64_t n = 0, grain = 1;
  uint32_t tag = 0;
  // Loop tag (24 bits) | chunk count (20 bits) | next chunk (20 bits): a helper holding an old
  // view cannot claim a chunk of a later loop, because its CAS fails.
  alignas(64) std::atomic<uint64_t> loop{0};
  alignas(64) std::atomic<int64_t> done{0};
  alignas(64) std::atomic<uint64_t> generation{0};  // bumped per loop
  std::atomic<int> helpers{0};                      // helpers submitted and not yet gone
  std::atomic<uint64_t> slots{1};                   // bit s: slot s in use (slot 0: the caller)
  std::atomic<bool> stop{false};

  int claim_slot() {
    uint64_t used = slots.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t free = ~used;
      const int s = free == 0 ? kMaxSlots : std::countr_zero(free);
      if (s >= size) return -1;
      if (slots.compare_exchange_weak(used, used | (uint64_t{1} << s), std::memory_order_acq_rel)) return s;
    }
  }
  void release_slot(int s) { slots.fetch_and(~(uint64_t{1} << s), std::memory_order_acq_rel); }

  // Claims and runs chunks of the published loop until none is left.
  void work(int slot) {
    uint64_t s = loop.load(std::memory_order_acquire);
    while (next_of(s) < chunks_of(s)) {
      if (!loop.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      const int64_t c = static_cast<int64_t>(next_of(s));
      body(ctx, c * grain, std::min(n, (c + 1) * grain), slot);
      done.fetch_add(1, std::memory_order_acq_rel);
      s = loop.load(std::memory_order_acquire);
    }
  }

  // A helper's life: join loops until none comes for kLinger.
  void help() {
    const int slot = claim_slot();
    if (slot >= 0) {
      for (;;) {
        const uint64_t seen = generation.load(std::memory_order_acquire);
        if (stop.load(std::memory_order_acquire)) break;
        work(slot);
        const auto until = Clock::now() + kLinger;
        bool next = false;
        for (int spin = 0;; ++spin) {
          if (generation.load(std::memory_order_acquire) != seen) {
            next = true;
            break;
          }
          if ((spin & 63) == 63 && Clock::now() > until) break;
          cpu_relax();
        }
        if (!next) break;
      }
      release_slot(slot);
    }
    helpers.fetch_sub(1, std::memory_order_acq_rel);
  }
};

class ParallelTeam::Helper final : public detail::Runnable {
 public:
  explicit Helper(std::shared_ptr<State> s) : s_(std::move(s)) {}
  void run() override {
    s_->help();
    delete this;
  }
  void cancel() override {
    s_->helpers.fetch_sub(1, std::memory_order_acq_rel);
    delete this;
  }

 private:
  std::shared_ptr<State> s_;
};

ParallelTeam::ParallelTeam(int max_threads, Slo slo) : state_(std::make_shared<State>()) {
  runtime::Runtime* rt = runtime::live();
  if (rt == nullptr) throw Error("weft::ParallelTeam: the runtime is not running (call weft::init first)");
  const int workers = rt->executor().num_workers();
  size_ = std::min(kMaxSlots, max_threads > 0 ? max_threads : workers + 1);
  state_->size = size_;
  state_->slo.store(slo);
}

ParallelTeam::~ParallelTeam() {
  // Lingering helpers leave at once; queued ones leave as soon as they start.
  state_->stop.store(true, std::memory_order_seq_cst);
  state_->generation.fetch_add(1, std::memory_order_seq_cst);
}

void ParallelTeam::set_priority(Slo slo) { state_->slo.store(slo, std::memory_order_relaxed); }

void ParallelTeam::run(int64_t n, int64_t grain, Body body, void* ctx) {
  if (n <= 0) return;
  grain = std::max<int64_t>({grain, 1, (n + kMaxChunks - 1) / kMaxChunks});
  const int64_t chunks = (n + grain - 1) / grain;
  if (size_ == 1 || chunks == 1) {
    for (int64_t b = 0; b < n; b += grain) body(ctx, b, std::min(n, b + grain), 0);
    return;
  }
  State& s = *state_;
  std::lock_guard<std::mutex> lock(run_mu_);
  s.body = body;
  s.ctx = ctx;
  s.n = n;
  s.grain = grain;
  s.done.store(0, std::memory_order_relaxed);
  s.tag = (s.tag + 1) & 0xFFFFFF;
  s.loop.store((uint64_t{s.tag} << 40) | (static_cast<uint64_t>(chunks) << 20), std::memory_order_release);
  s.generation.fetch_add(1, std::memory_order_seq_cst);

  if (runtime::Runtime* rt = runtime::live()) {
    sched::Executor& ex = rt->executor();
    const int others = ex.num_workers() - (ex.in_worker_thread() ? 1 : 0);
    const int64_t want = std::min<int64_t>({static_cast<int64_t>(size_) - 1, chunks - 1, others});
    for (int64_t have = s.helpers.load(std::memory_order_acquire); have < want; ++have) {
      s.helpers.fetch_add(1, std::memory_order_acq_rel);
      auto* h = new Helper(state_);
      h->set_priority(s.slo.load(std::memory_order_relaxed), detail::kNoDeadline);
      ex.submit(h);
    }
  }
  s.work(0);
  // Only chunks already claimed are outstanding, and their helpers are running them.
  for (int spin = 0; s.done.load(std::memory_order_acquire) < chunks; ++spin) {
    if (spin < 4096) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace weft
