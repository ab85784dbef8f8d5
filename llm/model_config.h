// Hyper-parameters of a Llama-family decoder, read from GGUF metadata.
//
// Supported: llama (Llama 2/3, SmolLM2, Mistral converted as llama), mistral, qwen2 (Qwen2 and
// Qwen2.5: biases on q/k/v, NeoX-style rotary). Anything else is refused by name.
#pragma once

#include <cstdint>
#include <string>

#include "llm/gguf_file.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

enum class RopeStyle {
  kNormal,  // rotate adjacent pairs (2i, 2i+1): llama-converted weights
  kNeox,    // rotate (i, i + d/2): qwen2
};

struct WEFT_API ModelConfig {
  std::string arch;
  int n_layers = 0;
  int d_model = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int ffn_dim = 0;
  int vocab = 0;
  int context_length = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  int rope_dims = 0;           // leading dims of each head that rotate
  float rope_linear_scale = 1;  // position interpolation: positions are divided by this
  RopeStyle rope_style = RopeStyle::kNormal;
  bool qkv_bias = false;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }

  static Result<ModelConfig> from_gguf(const GgufFile& f);
};

}  // namespace weft::llm
