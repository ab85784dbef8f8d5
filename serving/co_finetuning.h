// LoRA finetuning co-served with inference (FlexLLM's hybrid token scheduler): each iteration the
// engine computes its inference tokens first, then the running finetuning job takes what the
// iteration has left — forward chunks of its current training sequence and layers of its backward
// pass (finetune::Finetuner::work), sized from their measured cost to fit:
//
//   - the tightest time per output token among the decoding requests (less the inference pass
//     and a margin), so finetuning never makes a request late, and
//   - the iteration's unused token budget (max_num_batched_tokens less the inference tokens, at
//     the measured cost of an inference token), as FlexLLM fills the batch;
//   - with no inference at all, a fixed slice, so an arrival waits at most that long.
//
// Its parallel loops run at the batch class on the runtime's workers. Jobs run one at a time in
// submission order; a finished job's adapter is handed back to be served under its model name, and
// saved where the job said. Cancelling frees a job's memory at once. Not thread-safe: the engine
// actor calls it between iterations.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "finetune/finetuner.h"
#include "llm/llama_model.h"
#include "serving/engine.h"
#include "serving/engine_types.h"
#include "weft/parallel.h"

namespace weft::serving {

struct CoFinetuningOptions {
  int64_t idle_slice_ns = 100'000'000;  // finetuning per iteration when there is no inference
  double margin = 0.8;                  // share of an iteration's slack that finetuning may take
};

class CoFinetuning {
 public:
  CoFinetuning(std::shared_ptr<const llm::LlamaModel> model, weft::ParallelFor& team, CoFinetuningOptions options = {});
  ~CoFinetuning();

  // Queues a job: kAlreadyExists for a known id, kInvalidArgument for bad settings or data.
  Status submit(const FinetuneJobSpec& spec, std::vector<FinetuneEvent>& events);
  // Ends a queued or running job and frees it; kNotFound when there is none of that id.
  Status cancel(const std::string& id, std::vector<FinetuneEvent>& events);
  bool active() const { return !jobs_.empty(); }
  int jobs() const { return static_cast<int>(jobs_.size()); }

  // A finished job's adapter, to serve.
  struct Finished {
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

  int64_t tokens() const { return tokens_; }
  int64_t steps() const { return steps_; }
  int64_t ns() const { return ns_; }

 private:
  struct Job;
  std::shared_ptr<const llm::LlamaModel> model_;
  weft::ParallelFor* team_;
  CoFinetuningOptions options_;
  std::deque<std::unique_ptr<Job>> jobs_;
  int64_t tokens_ = 0, steps_ = 0, ns_ = 0;
};

}  // namespace weft::serving
