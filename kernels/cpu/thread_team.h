// A fixed team of threads for the data-parallel loops inside one operator (fork-join, like an
// OpenMP "parallel for"): the calling thread works too, and helpers spin briefly between loops
// before they sleep, because a forward pass runs hundreds of short loops back to back.
//
//   ThreadTeam team(4);
//   team.parallel_for(rows, /*grain=*/16, [&](int64_t begin, int64_t end, int thread) { ... });
//
// Chunks of `grain` iterations are handed out dynamically (an atomic counter), so a thread slowed
// by a noisy neighbour does not hold the loop back; which thread runs a chunk never changes what
// the chunk computes. Thread safety: parallel_for may be called from any thread; concurrent calls
// are serialised by a mutex (one loop runs at a time). fn must not call parallel_for on the same
// team. A ThreadTeam is for programs that do not start the runtime (tools, benchmarks, tests);
// under the runtime a forward pass runs its loops on a weft::ParallelTeam (the runtime's workers)
// through the same weft::ParallelFor interface.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "weft/export.h"
#include "weft/parallel.h"

namespace weft::kernels::cpu {

class WEFT_API ThreadTeam final : public weft::ParallelFor {
 public:
  // `threads` >= 1 counts the caller; 0 means one per hardware thread.
  explicit ThreadTeam(int threads = 0);
  ~ThreadTeam() override;
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  int size() const override { return static_cast<int>(helpers_.size()) + 1; }
  void run(int64_t n, int64_t grain, Body fn, void* ctx) override;

 private:
  using Fn = Body;
  void helper_main(int thread);
  // Claims and runs chunks of the loop published in state_ until none is left.
  void work(int thread);

  std::mutex run_mu_;  // one loop at a time
  std::vector<std::thread> helpers_;
  // The current loop. The caller writes these, then publishes state_ (release); a helper reads
  // them only after claiming a chunk, and the loop cannot end (nor the fields change) before that
  // chunk is done.
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  // Loop tag (24 bits) | chunk count (20 bits) | next chunk (20 bits): a helper that wakes late
  // cannot claim a chunk of a later loop under an earlier loop's view, because its CAS fails.
  alignas(64) std::atomic<uint64_t> state_{0};
  alignas(64) std::atomic<int64_t> done_{0};         // chunks finished in the current loop
  alignas(64) std::atomic<uint64_t> generation_{0};  // bumped per loop, for sleeping helpers
  std::atomic<int> sleepers_{0};                     // helpers blocked in generation_.wait
  std::atomic<bool> stop_{false};
  uint32_t tag_ = 0;
};

}  // namespace weft::kernels::cpu
