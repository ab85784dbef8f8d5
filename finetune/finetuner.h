// A LoRA finetuning run over a dataset: epochs of shuffled sequences, an optimizer step every
// `batch_size` sequences (their gradients accumulated, averaged over their trained tokens).
//
//   WEFT_ASSIGN_OR_RETURN(auto run, Finetuner::create(model, dataset.examples, options, team));
//   while (!run->done()) {
//     WEFT_ASSIGN_OR_RETURN(StepReport r, run->step());
//     std::printf("step %d loss %.3f\n", r.step, r.loss);
//   }
//   WEFT_RETURN_IF_ERROR(run->adapter().save_peft("out", model.config(), "SmolLM2"));
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "finetune/optimizer.h"
#include "finetune/training_pass.h"
#include "llm/llama_model.h"
#include "llm/lora_adapter.h"

namespace weft::finetune {

struct FinetuneOptions {
  llm::LoraConfig lora;
  OptimizerOptions optimizer;
  int epochs = 3;
  int batch_size = 4;      ///< sequences per optimizer step (gradient accumulation)
  uint64_t seed = 0;       ///< the adapter's initial A and the order of sequences
  int chunk_tokens = 256;  ///< tokens per forward piece
};

struct StepReport {
  int step = 0;             ///< 1-based
  int epoch = 0;            ///< 1-based
  double loss = 0;          ///< mean cross-entropy of the step's trained tokens
  int tokens = 0;           ///< trained tokens in the step
  int sequence_tokens = 0;  ///< all tokens of the step's sequences
  float grad_norm = 0;      ///< before clipping
};

/// What a kind of piece of work costs: time = fixed + per_unit x units, fitted over the pieces run
/// so far (exponentially weighted least squares, so it follows the machine's load).
class PieceCost {
 public:
  void observe(double units, double ns);
  bool known() const { return samples_ > 0; }
  double predict(double units) const;
  /// The most units (up to `most`) a piece may have to take at most `ns`; 0 when one does not fit.
  int units_within(double ns, int most) const;

 private:
  int samples_ = 0;
  double n_ = 0, t_ = 0, nn_ = 0, nt_ = 0;  // weighted means of units, time, units², units x time
};

/// What one call to Finetuner::work did.
struct WorkSlice {
  int forward_tokens = 0;          ///< tokens that finished the forward pass
  int pieces = 0;                  ///< pieces of work run
  int64_t ns = 0;                  ///< time it took
  std::optional<StepReport> step;  ///< set when an optimizer step completed
};

class Finetuner {
 public:
  /// kInvalidArgument for no examples, bad options, or an example the model cannot take.
  static Result<std::unique_ptr<Finetuner>> create(const llm::LlamaModel& model, std::vector<TrainingExample> examples,
                                                   const FinetuneOptions& options, weft::ParallelFor& team);
  /// Forward and backward of the next batch of sequences, then an optimizer step.
  Result<StepReport> step();
  /// Finetuning work predicted (from the measured cost of earlier pieces) to take at most
  /// `budget_ns`: pieces of the current sequence (a chunk of tokens through some layers, the
  /// output of some trained tokens, some layers of backward pass), and the optimizer step when a
  /// batch completes. With `at_least_one`, one small piece even when it does not fit, so the run
  /// advances on a machine with nothing else to do. Stops after an optimizer step.
  Result<WorkSlice> work(int64_t budget_ns, bool at_least_one);
  bool done() const { return step_ >= total_steps_; }
  int total_steps() const { return total_steps_; }
  int steps_done() const { return step_; }
  const llm::LoraAdapter& adapter() const { return adapter_; }
  /// Activation bytes the largest sequence holds between its forward and backward pass, and what
  /// keeping every intermediate would hold.
  size_t peak_saved_bytes() const { return peak_saved_; }
  size_t peak_all_bytes() const { return peak_all_; }
  int peak_tokens() const { return peak_tokens_; }  ///< that sequence's length

 private:
  Finetuner(const llm::LlamaModel& model, const FinetuneOptions& options, weft::ParallelFor& team,
            llm::LoraAdapter adapter);
  const TrainingExample& next_example();
  // Starts the next sequence of the current batch (or a new batch).
  Status begin_sequence();
  // Adds the finished pass into the batch; at the batch's end, the optimizer step.
  std::optional<StepReport> end_sequence();

  const llm::LlamaModel* model_;
  FinetuneOptions options_;
  weft::ParallelFor* team_;
  std::vector<TrainingExample> examples_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
  int epoch_ = 0;
  llm::LoraAdapter adapter_, grads_;
  std::optional<Optimizer> optimizer_;
  int step_ = 0, total_steps_ = 0;
  size_t peak_saved_ = 0, peak_all_ = 0;
  int peak_tokens_ = 0;
  std::optional<TrainingPass> pass_;        // the sequence in progress
  size_t batch_take_ = 0, batch_done_ = 0;  // sequences of the current batch, and finished
  StepReport batch_;                        // what the current batch has summed so far
  double batch_loss_ = 0;
  PieceCost forward_cost_;   // one layer of a chunk, by the chunk's tokens
  PieceCost output_cost_;    // by trained tokens
  PieceCost backward_cost_;  // one layer, by the sequence's tokens
};

}  // namespace weft::finetune
