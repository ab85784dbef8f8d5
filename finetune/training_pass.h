// One training sequence's forward and backward pass through a LoRA adapter on a frozen model, in
// pieces a serving iteration can interleave with inference, each as small as one layer:
//
//   - forward(n, k): a chunk of the next n tokens goes through the next k layers (attending to the
//     earlier tokens' saved keys and values, as a chunked prefill does); a chunk in flight carries on
//     through further calls until it is through every layer;
//   - output(m): once every token is through, the output layer and cross-entropy of the next m
//     trained tokens (the vocabulary-sized product, the costliest piece per token);
//   - backward(k): then the next k layers of the backward pass, last first.
//
//   TrainingPass pass = TrainingPass::start(model, adapter, example, team).value();
//   while (!pass.forward_done()) WEFT_RETURN_IF_ERROR(pass.forward(64));
//   while (!pass.done()) WEFT_RETURN_IF_ERROR(pass.backward(4, grads));  // runs the output first
//   double loss = pass.loss_sum() / pass.loss_tokens();
//
// Any split gives the same bits. Arithmetic: float32 throughout, the base weights dequantized a
// tile at a time (float_kernels.h), attention exact (no fp16 cache). Saved per token and layer:
// the layer's input and its mid-layer residual (the norms recompute from them), q and k after
// rotation, v, the attention output, gate and up, and each LoRA's rank-r activations A x — what
// the gradients of A and B and the backward of attention, the norms and SwiGLU need; normalised
// inputs, the SwiGLU product and attention probabilities are recomputed. Gradients are of the
// *sum* of the trained tokens' cross-entropy; the optimizer divides by the tokens it accumulated.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/ops.h"
#include "llm/llama_model.h"
#include "llm/lora_adapter.h"
#include "llm/model_weights.h"
#include "weft/parallel.h"
#include "weft/status.h"

namespace weft::finetune {

/// A tokenised training sequence: token t is trained on (predicted from the tokens before it)
/// where trained[t] is set; trained[0] is ignored.
struct TrainingExample {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trained;
  int trained_tokens() const;
};

/// A LoRA adapter of `like`'s shape with every value zero: a gradient accumulator.
llm::LoraAdapter zero_gradients(const llm::LoraAdapter& like);

/// See the top of this file. The model, adapter and team must outlive it.
class TrainingPass {
 public:
  /// kInvalidArgument for an example with fewer than two tokens, token ids outside the vocabulary
  /// or nothing to train on, or an adapter that does not fit the model.
  static Result<TrainingPass> start(const llm::LlamaModel& model, const llm::LoraAdapter& adapter,
                                    TrainingExample example, weft::ParallelFor& team);
  TrainingPass(TrainingPass&&) noexcept;
  TrainingPass& operator=(TrainingPass&&) noexcept;
  ~TrainingPass();

  /// Takes a chunk through the next `layers` layers (at least one): the chunk in flight, or a new
  /// one of the next `tokens` tokens (at least one).
  Status forward(int tokens, int layers = 1 << 30);
  /// The output layer and loss of the next `tokens` trained tokens (at least one).
  /// kFailedPrecondition before the forward pass is done.
  Status output(int tokens);
  /// Runs the rest of the output, then the next `layers` layers (at least one) of the backward
  /// pass, adding into `grads` (zero_gradients of the adapter). kFailedPrecondition before the
  /// forward pass is done.
  Status backward(int layers, llm::LoraAdapter& grads);

  int tokens() const { return static_cast<int>(example_.tokens.size()); }
  int layers() const { return config_.n_layers; }
  int forwarded() const { return forwarded_; }
  bool forward_done() const { return forwarded_ == tokens(); }
  /// The chunk in flight (0 when none) and the layers it has been through.
  int chunk_tokens() const { return chunk_end_ - forwarded_; }
  int chunk_layers() const { return chunk_layer_; }
  /// Trained tokens whose output is still to compute.
  int output_left() const { return static_cast<int>(at_.size()) - output_done_; }
  bool output_done() const { return forward_done() && output_left() == 0; }
  /// Layers the backward pass has finished (the output layer and loss come with the first).
  int backwarded() const { return backwarded_; }
  bool done() const { return backwarded_ == layers(); }
  /// The summed cross-entropy of the trained tokens (complete once the output is done) and how
  /// many there are.
  double loss_sum() const { return loss_sum_; }
  int loss_tokens() const { return example_.trained_tokens(); }
  /// Bytes of activations held for the backward pass, and what keeping every intermediate of the
  /// forward pass would hold (for comparison).
  size_t saved_bytes() const;
  size_t all_activation_bytes() const;

 private:
  TrainingPass(const llm::LlamaModel& model, const llm::LoraAdapter& adapter, weft::ParallelFor& team);
  struct Layer;  // what one layer saved
  Status layer_forward(int l);
  Status layer_backward(int l, llm::LoraAdapter& grads);

  const llm::LlamaModel* model_;
  const llm::LoraAdapter* adapter_;
  weft::ParallelFor* team_;
  llm::ModelConfig config_;
  llm::ModelWeights weights_;
  kernels::cpu::RopeParams rope_;  // the model's rotary embedding
  TrainingExample example_;
  std::vector<Layer> saved_;
  std::vector<float> h_final_;  // [T][d] the last layer's output
  std::vector<float> grad_;     // [T][d] the loss's gradient at the next layer to go back through
  int forwarded_ = 0, backwarded_ = 0;
  int chunk_end_ = 0, chunk_layer_ = 0;     // the chunk in flight: [forwarded_, chunk_end_), layers done
  std::vector<float> cur_;                  // its hidden state [chunk][d]
  std::vector<float> rope_cos_, rope_sin_;  // its rotary angles
  std::vector<int> at_;                     // positions whose next token is trained on
  int output_done_ = 0;
  double loss_sum_ = 0;
};

}  // namespace weft::finetune
