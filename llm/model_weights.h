// The tensors of a Llama-family model, bound to a GgufFile (views into its mapping).
#pragma once

#include <vector>

#include "kernels/weight_view.h"
#include "llm/gguf_file.h"
#include "llm/model_config.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

struct WEFT_API LayerWeights {
  const float* attn_norm = nullptr;  // [d_model]
  kernels::WeightView wq, wk, wv, wo;
  const float* bq = nullptr;  // qwen2 only
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* ffn_norm = nullptr;  // [d_model]
  kernels::WeightView w_gate, w_up, w_down;
};

struct WEFT_API ModelWeights {
  kernels::WeightView token_embd;  // rows = vocab, cols = d_model
  const float* output_norm = nullptr;
  kernels::WeightView output;  // tied to token_embd when the file has no output.weight
  const float* rope_freqs = nullptr;  // llama3 frequency factors [rope_dims / 2], or null
  std::vector<LayerWeights> layers;

  // Checks every tensor's presence, type and shape; errors name the tensor.
  static Result<ModelWeights> bind(const GgufFile& f, const ModelConfig& c);
};

}  // namespace weft::llm
