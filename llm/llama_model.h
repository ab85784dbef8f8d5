// A Llama-family decoder loaded from GGUF, with a forward pass over a flat token batch.
//
//   WEFT_ASSIGN_OR_RETURN(auto model, LlamaModel::load("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
//   KvCache kv = model->make_cache(/*max_tokens=*/4096);
//   int seq = kv.add_sequence();
//   Batch b;
//   b.add_chain(seq, 0, prompt_ids);
//   WEFT_ASSIGN_OR_RETURN(std::vector<float> logits, model->forward(b, kv));  // [1][vocab]
//   kv.commit(seq, prompt_ids.size());
//
// forward() writes the batch tokens' keys and values into the sequences' pending KV slots and
// commits nothing: the caller commits a chain, or keeps one branch of a tree (KvCache). The model
// is immutable after load. A forward pass runs its parallel loops on ModelOptions::parallel (under
// the runtime: a weft::ParallelTeam, the runtime's own workers), or on a thread team the model
// owns; concurrent forward passes need separate caches and take turns on the team.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_team.h"
#include "llm/batch.h"
#include "llm/gguf_file.h"
#include "llm/kv_cache.h"
#include "llm/lora_adapter.h"
#include "llm/model_config.h"
#include "llm/model_weights.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

class DeviceModel;

/// kFast: activations quantized to 8-bit blocks with integer dot products, fp16 KV cache and
/// attention — llama.cpp's arithmetic (kernels/cpu/fast_math.h). kReference: float32 activations,
/// double accumulation, float32 KV cache — the yardstick the fast path is measured against.
enum class ComputeMode { kFast, kReference };

/// How a model is loaded and computes.
struct WEFT_API ModelOptions {
  ComputeMode mode = ComputeMode::kFast;  ///< fast (llama.cpp's arithmetic) or reference
  /// Where a forward pass runs its data-parallel loops: a weft::ParallelTeam under the runtime, so
  /// the model computes on the runtime's workers. Null: a thread team of `threads` threads owned
  /// by the model (programs that do not start the runtime).
  std::shared_ptr<weft::ParallelFor> parallel;
  int threads = 0;  ///< threads of the model's own team, the caller's included; 0: one per hardware thread
  /// Instruction set of the fast kernels (capped by what the CPU has); results are identical for
  /// every choice, only speed differs.
  kernels::cpu::Isa isa = kernels::cpu::best_isa();
  /// Only the first `layers` decoder layers, then the final norm and output head: an early-exit
  /// copy of the model (a draft for self-speculation). 0: every layer.
  int layers = 0;
  /// Where the forward pass runs: the CPU (the kernels above), or a device backend
  /// (kernels/backend.h) holding the weights, activations and KV cache in its memory.
  kernels::Device device = kernels::Device::kCpu;
  /// On the CPU too, run the device-neutral forward pass (llm/device_model.h) on the CPU backend's
  /// reference operators: the yardstick device backends are compared with.
  bool device_forward = false;
  /// Ranks of tensor parallelism (llm/device_model.h): 0, none; N, the model split over N
  /// backends of `device` (CUDA: GPUs 0..N-1, NCCL; CPU: threads with a shared-memory
  /// all-reduce). 1 runs the all-reduces over one rank.
  int tensor_parallel = 0;
  /// Called during load with the fraction done (0..1), e.g. for a progress line; may be empty.
  std::function<void(double fraction)> on_progress;
};

/// A Llama-family decoder (see the top of this file). Immutable after load; forward passes on
/// different caches may run concurrently.
class WEFT_API LlamaModel {
 public:
  /// Opens and loads a GGUF file: kNotFound, kCorruption (naming what is wrong), or an error
  /// naming the architecture or setting weft does not run.
  static Result<std::unique_ptr<LlamaModel>> load(const std::string& path, const ModelOptions& options = {});
  /// The same from a file already open.
  static Result<std::unique_ptr<LlamaModel>> from_file(GgufFile file, const ModelOptions& options = {});

  ~LlamaModel();
  /// The architecture's hyperparameters.
  const ModelConfig& config() const { return config_; }
  /// The options it was loaded with.
  const ModelOptions& options() const { return options_; }
  /// The GGUF file (metadata for the tokenizer and chat template; the weights live in its mapping).
  const GgufFile& file() const { return file_; }

  /// Bytes of weight matrices one forward step reads (every layer's and the output matrix): with
  /// decode steps memory-bound, memory bandwidth over this bounds steps per second.
  size_t matrix_bytes_per_step() const;
  /// Multiply-adds of one token's matrix products (every layer's and the output matrix), and of
  /// the output matrix alone (which only tokens asking for logits pay).
  int64_t matrix_macs_per_token() const;
  int64_t output_macs_per_token() const;  ///< the output matrix's share

  /// A cache sized for `max_tokens` tokens in total across sequences, in the device's memory.
  /// kResourceExhausted when the device has no room.
  Result<KvCache> new_cache(int max_tokens, int block_tokens = 16) const;
  /// new_cache for the CPU, where it cannot fail (a device model that cannot allocate returns a
  /// cache with no room, whose first forward pass reports kResourceExhausted).
  KvCache make_cache(int max_tokens, int block_tokens = 16) const;
  /// The device backend's description, or "cpu".
  std::string device_description() const;

  /// Logits of the tokens that asked for them, in batch order: [count][vocab].
  /// kInvalidArgument for a malformed batch (bad token id, parent or sequence);
  /// kResourceExhausted when the cache cannot hold the batch (nothing is written then).
  Result<std::vector<float>> forward(const Batch& batch, KvCache& kv) const;
  /// forward() reduced to each logits token's argmax (greedy decoding): on a device only these
  /// integers leave it.
  Result<std::vector<int32_t>> forward_argmax(const Batch& batch, KvCache& kv) const;

 private:
  explicit LlamaModel(GgufFile file);
  Status validate(const Batch& batch, const KvCache& kv) const;
  Status run(const Batch& batch, KvCache& kv, std::vector<float>* logits, std::vector<int32_t>* argmax) const;
  /// Makes packed copies of the matrices the kernels read faster packed (packed_weights.h).
  void pack_weights();
  struct Pass;  ///< the buffers and per-token facts of one forward pass
  /// Attention of every batch token's query heads that share KV head `kh`, for layer `layer`.
  void attend(Pass& pass, KvCache& kv, int layer, int token, int kh, int thread) const;
  /// y[i] += scale · B (A x[i]) for every token whose adapter updates `target` in `layer`.
  void apply_lora(Pass& pass, int layer, LoraTarget target, const float* x, float* y) const;

  ModelOptions options_;
  std::shared_ptr<weft::ParallelFor> team_;
  kernels::cpu::MatmulContext mm_;
  std::vector<std::vector<uint8_t>> packed_;  ///< packed copies of weight matrices (WeightView::packed)
  /// Buffers of finished passes, reused by later ones (no page faults per decode step).
  mutable std::mutex spare_mu_;  ///< guards spare_
  mutable std::vector<std::unique_ptr<Pass>> spare_;
  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<DeviceModel> device_;  ///< set when the model runs on a device
};

}  // namespace weft::llm
