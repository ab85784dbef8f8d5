// LoRA finetuning co-served with inference (FlexLLM's hybrid token scheduler): each iteration the
// engine computes its inference tokens first, then the running finetuning job takes what the
// iteration has left — forward chunks of its current training sequence and layers of its backward
// pass (finetune::Finetuner::work), sized from their measured cost to fit:
//
//   - the tightest time per output token among the decoding requests (less the inference pass
//     and a margin), so finetuning never makes a request late, and
//   - the iteration's unused token budget (max_num_batched_tokens less the inference tokens, at
//     the measured cost of an inference token), as FlexLLM fills the batch;
//   - never more than a fixed slice, which is also what an iteration with no inference at all
//     gives, so an arrival waits at most that long.
//
// The engine actor runs this share as its own call at the batch class (EngineActor::finetune)
// after the step's tokens have gone to their clients.
//
// Its parallel loops run at the batch class on the runtime's workers. Jobs run one at a time in
// submission order; a finished job's adapter is handed back to be served under its model name, and
// saved where the job said. Cancelling frees a job's memory at once. Not thread-safe: the engine
// actor calls it between iterations.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "finetune/finetuner.h"
#include "llm/llama_model.h"
#include "serving/engine.h"
#include "serving/engine_types.h"
#include "weft/parallel.h"

namespace weft::serving {

// How finetuning shares the machine with inference. kCo is weft's (above); the other two are the
// baselines FlexLLM compares with, kept for the benchmark (scripts/bench finetune).
enum class FinetuneSharing : uint8_t {
  kCo = 0,        // each iteration's slack, sized per iteration (the top of this file)
  kTemporal = 1,  // whole iterations alternate: after each inference iteration, as long again of finetuning
  kSpatial = 2,   // cores split: finetuning on its own threads (spatial_threads), all the time
};

struct CoFinetuningOptions {
  int64_t idle_slice_ns = 100'000'000;  // finetuning per iteration when there is no inference
  double margin = 0.8;                  // share of an iteration's slack that finetuning may take
  FinetuneSharing sharing = FinetuneSharing::kCo;
  int spatial_threads = 1;  // kSpatial: finetuning's own threads
};

class CoFinetuning {
 public:
  CoFinetuning(std::shared_ptr<const llm::LlamaModel> model, weft::ParallelFor& team, CoFinetuningOptions options = {});
  ~CoFinetuning();

  // Queues a job: kAlreadyExists for a known id, kInvalidArgument for bad settings or data.
  Status submit(const FinetuneJobSpec& spec, std::vector<FinetuneEvent>& events);
  // Ends a queued or running job and frees it; kNotFound when there is none of that id.
  Status cancel(const std::string& id, std::vector<FinetuneEvent>& events);
  bool active() const;
  int jobs() const;
  // kSpatial: its thread has news that run() has not handed over yet.
  bool has_news() const;

  // A finished job's adapter, to serve.
  struct Finished {
    std::string id;  // the job's
    std::string name;
    std::shared_ptr<const llm::LoraAdapter> adapter;
  };
  // The finetuning share of one iteration that computed `inference_tokens` tokens in
  // `inference_ns` (see the top of this file); news goes to `events`.
  std::vector<Finished> run(const Engine& engine, int inference_tokens, int64_t inference_ns,
                            std::vector<FinetuneEvent>& events);
  // The budget run() gives finetuning after such an iteration (0: none), and whether one piece
  // runs even beyond it.
  int64_t budget_ns(const Engine& engine, int inference_tokens, int64_t inference_ns, bool* at_least_one) const;

  int64_t tokens() const;
  int64_t steps() const;
  int64_t ns() const;

 private:
  struct Job;
  struct Counts {
    int64_t tokens = 0, steps = 0, ns = 0;
  };
  // A piece of `job`'s work within `budget` on `team`, its news to `events` and `finished`; true
  // when the job is over (succeeded or failed). Touches nothing shared.
  bool work(Job& job, int64_t budget, bool at_least_one, weft::ParallelFor& team, std::vector<FinetuneEvent>& events,
            std::vector<Finished>& finished, Counts& counts);
  bool work_unguarded(Job& job, int64_t budget, bool at_least_one, weft::ParallelFor& team,
                      std::vector<FinetuneEvent>& events, std::vector<Finished>& finished, Counts& counts);
  void add(const Counts& c);  // mu_ held
  void spatial_loop();        // kSpatial's thread

  std::shared_ptr<const llm::LlamaModel> model_;
  weft::ParallelFor* team_;
  CoFinetuningOptions options_;
  mutable std::mutex mu_;  // guards everything below (kSpatial's thread works under it)
  std::deque<std::unique_ptr<Job>> jobs_;
  int64_t tokens_ = 0, steps_ = 0, ns_ = 0;
  // kSpatial: its thread, its team, and what it produced since the last run().
  std::unique_ptr<weft::ParallelFor> spatial_team_;
  std::thread spatial_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool busy_ = false;  // kSpatial's thread is working on the front job
  int pausing_ = 0;    // callers waiting for it to finish a slice (cancel)
  std::vector<FinetuneEvent> spatial_events_;
  std::vector<Finished> spatial_finished_;
};

}  // namespace weft::serving
