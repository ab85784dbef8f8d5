#include "kernels/cpu/thread_team.h"

#include <algorithm>

#include "weft/detail/spin.h"

namespace weft::kernels::cpu {
namespace {

// About 50-100 us of spinning before a helper sleeps: longer than the gap between two loops of a
// forward pass, far shorter than the gap between requests.
constexpr int kSpinRounds = 20000;
constexpr uint64_t kFieldMask = (uint64_t{1} << 20) - 1;
constexpr int64_t kMaxChunks = int64_t{1} << 19;

using weft::detail::cpu_relax;

inline uint64_t chunks_of(uint64_t s) { return (s >> 20) & kFieldMask; }
inline uint64_t next_of(uint64_t s) { return s & kFieldMask; }

}  // namespace

ThreadTeam::ThreadTeam(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  helpers_.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) helpers_.emplace_back([this, t] { helper_main(t); });
}

ThreadTeam::~ThreadTeam() {
  stop_.store(true, std::memory_order_seq_cst);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  generation_.notify_all();
  for (auto& h : helpers_) h.join();
}

void ThreadTeam::work(int thread) {
  uint64_t s = state_.load(std::memory_order_acquire);
  while (next_of(s) < chunks_of(s)) {
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const int64_t c = static_cast<int64_t>(next_of(s));
    fn_(ctx_, c * grain_, std::min(n_, (c + 1) * grain_), thread);
    done_.fetch_add(1, std::memory_order_acq_rel);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadTeam::helper_main(int thread) {
  for (;;) {
    const uint64_t seen = generation_.load(std::memory_order_seq_cst);
    if (stop_.load(std::memory_order_acquire)) return;
    work(thread);
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinRounds; ++spin) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    while (g == seen) {
      // Announce the sleep before re-checking, so run() either sees a sleeper or we see its bump.
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      if (generation_.load(std::memory_order_seq_cst) == seen) generation_.wait(seen, std::memory_order_seq_cst);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      g = generation_.load(std::memory_order_acquire);
    }
  }
}

void ThreadTeam::run(int64_t n, int64_t grain, Body fn, void* ctx) {
  if (n <= 0) return;
  grain = std::max<int64_t>({grain, 1, (n + kMaxChunks - 1) / kMaxChunks});
  const int64_t chunks = (n + grain - 1) / grain;
  if (helpers_.empty() || chunks == 1) {
    for (int64_t b = 0; b < n; b += grain) fn(ctx, b, std::min(n, b + grain), 0);
    return;
  }
  std::lock_guard<std::mutex> lock(run_mu_);
  fn_ = fn;
  ctx_ = ctx;
  n_ = n;
  grain_ = grain;
  done_.store(0, std::memory_order_relaxed);
  tag_ = (tag_ + 1) & 0xFFFFFF;
  state_.store((uint64_t{tag_} << 40) | (static_cast<uint64_t>(chunks) << 20), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  work(0);
  // Only chunks already claimed are outstanding; a helper that never woke holds nothing up.
  for (int spin = 0; done_.load(std::memory_order_acquire) < chunks; ++spin) {
    if (spin < kSpinRounds) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace weft::kernels::cpu
