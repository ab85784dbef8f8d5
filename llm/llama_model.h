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
// is immutable after load; concurrent forward passes need separate caches.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "llm/batch.h"
#include "llm/gguf_file.h"
#include "llm/kv_cache.h"
#include "llm/model_config.h"
#include "llm/model_weights.h"
#include "weft/status.h"

namespace weft::llm {

// kFast: activations quantized to 8-bit blocks with integer dot products, fp16 KV cache and
// attention — llama.cpp's arithmetic (kernels/cpu/fast_math.h). kReference: float32 activations,
// double accumulation, float32 KV cache — the yardstick the fast path is measured against.
enum class ComputeMode { kFast, kReference };

struct ModelOptions {
  ComputeMode mode = ComputeMode::kFast;
};

class LlamaModel {
 public:
  static Result<std::unique_ptr<LlamaModel>> load(const std::string& path, const ModelOptions& options = {});
  static Result<std::unique_ptr<LlamaModel>> from_file(GgufFile file, const ModelOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  const GgufFile& file() const { return file_; }

  // A cache sized for `max_tokens` tokens in total across sequences.
  KvCache make_cache(int max_tokens, int block_tokens = 16) const;

  // Logits of the tokens that asked for them, in batch order: [count][vocab].
  // kInvalidArgument for a malformed batch (bad token id, parent or sequence);
  // kResourceExhausted when the cache cannot hold the batch (nothing is written then).
  Result<std::vector<float>> forward(const Batch& batch, KvCache& kv) const;

 private:
  explicit LlamaModel(GgufFile file) : file_(std::move(file)) {}
  Status validate(const Batch& batch, const KvCache& kv) const;
  Status matmul(const kernels::WeightView& w, const float* x, int64_t m, float* y) const;
  // One query head over `visible` slots of a sequence's cache (KV head `kh`). `batched`: the pass
  // evaluates several tokens, which changes how fast mode organises its sums (as llama.cpp does).
  struct AttendScratch;  // buffers reused across the heads, tokens and layers of one forward pass
  void attend(const float* q, KvCache& kv, int layer, int seq, const std::vector<int>& visible, int kh,
              bool batched, AttendScratch& scratch, float* out) const;

  ModelOptions options_;
  GgufFile file_;
  ModelConfig config_;
  ModelWeights weights_;
};

}  // namespace weft::llm
