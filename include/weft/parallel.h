// Data-parallel loops (fork-join) on the runtime's own worker threads.
//
//   weft::init();
//   weft::ParallelTeam team;  // the runtime's workers, plus the calling thread
//   team.parallel_for(rows, /*grain=*/16, [&](int64_t begin, int64_t end, int slot) { ... });
//
// A loop is cut into chunks of `grain` iterations, handed out dynamically; the calling thread runs
// chunks too and returns when every chunk is done. `slot` is in [0, size()) and unique among the
// threads running one loop at a time, for per-thread scratch; which slot runs a chunk never
// changes what the chunk computes.
//
// ParallelTeam is how compute-heavy code (a model's forward pass) shares the cores with ordinary
// tasks instead of bringing a thread pool of its own: a loop submits helper runnables to the
// runtime's executor at the team's SLO class, and workers that pick one up join the loop. Loops
// of a forward pass are microseconds apart, so a helper that finds no chunk left lingers briefly
// (tens of microseconds) for the team's next loop before it gives its worker back; a loop never
// waits for a helper that has not started (the caller runs whatever nobody claimed).
//
// Thread safety: parallel_for may be called from any thread, including tasks; concurrent calls on
// one team take turns. A loop body must not call parallel_for on the same team. The team must be
// destroyed before weft::shutdown.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <type_traits>

#include "weft/export.h"
#include "weft/options.h"

namespace weft {

/// Anything that runs data-parallel loops: ParallelTeam here, or a thread team of its own for
/// programs that do not start the runtime.
class WEFT_API ParallelFor {
 public:
  /// A loop body: runs iterations [begin, end) as slot `slot` (< size(), one thread at a time).
  using Body = void (*)(void* ctx, int64_t begin, int64_t end, int slot);
  virtual ~ParallelFor() = default;

  /// Upper bound (exclusive) of the slots a loop body sees.
  virtual int size() const = 0;

  /// run() with a callable fn(begin, end, slot).
  template <class F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    auto call = [](void* ctx, int64_t b, int64_t e, int slot) { (*static_cast<Fn*>(ctx))(b, e, slot); };
    run(n, grain, call, const_cast<void*>(static_cast<const void*>(&fn)));
  }

  /// Runs body(ctx, begin, end, slot) over [0, n) in chunks of `grain`, returning when all are done.
  virtual void run(int64_t n, int64_t grain, Body body, void* ctx) = 0;
};

/// Data-parallel loops on the runtime's own worker threads (no second thread pool), at an SLO
/// class: the caller runs chunks too, idle workers help.
class WEFT_API ParallelTeam final : public ParallelFor {
 public:
  /// At most `max_threads` threads (the caller included) run one loop; 0: every worker thread of
  /// the runtime, plus the caller. Requires a running runtime; raises weft::Error otherwise.
  explicit ParallelTeam(int max_threads = 0, Slo slo = Slo::kStandard);
  ~ParallelTeam() override;
  ParallelTeam(const ParallelTeam&) = delete;
  ParallelTeam& operator=(const ParallelTeam&) = delete;

  int size() const override { return size_; }
  /// The SLO class of this team's helpers from the next loop on (the class of the work it serves).
  void set_priority(Slo slo);

  void run(int64_t n, int64_t grain, Body body, void* ctx) override;

 private:
  struct State;  ///< shared with helpers, so a team never waits for a helper that has not started
  class Helper;
  int size_ = 1;
  std::shared_ptr<State> state_;
  std::mutex run_mu_;  ///< one loop at a time
};

}  // namespace weft
