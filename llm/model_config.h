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

/// How rotary embeddings pair a head's dimensions.
enum class RopeStyle {
  kNormal,  ///< rotate adjacent pairs (2i, 2i+1): llama-converted weights
  kNeox,    ///< rotate (i, i + d/2): qwen2
};

/// A decoder's hyper-parameters (see the top of this file).
struct WEFT_API ModelConfig {
  std::string arch;                           ///< general.architecture: llama, mistral or qwen2
  int n_layers = 0;                           ///< decoder layers
  int d_model = 0;                            ///< hidden size
  int n_heads = 0;                            ///< query heads
  int n_kv_heads = 0;                         ///< key/value heads (fewer than n_heads: grouped-query attention)
  int head_dim = 0;                           ///< dimensions per head
  int ffn_dim = 0;                            ///< feed-forward hidden size
  int vocab = 0;                              ///< vocabulary size (rows of the output matrix)
  int context_length = 0;                     ///< positions the model was trained for
  float rms_eps = 1e-5f;                      ///< RMSNorm epsilon
  float rope_base = 10000.0f;                 ///< rotary frequency base
  int rope_dims = 0;                          ///< leading dims of each head that rotate
  float rope_linear_scale = 1;                ///< position interpolation: positions are divided by this
  RopeStyle rope_style = RopeStyle::kNormal;  ///< how heads rotate
  bool qkv_bias = false;                      ///< q/k/v projections have biases (qwen2)

  /// Values of all query heads of a token.
  int q_dim() const { return n_heads * head_dim; }
  /// Values of all key (or value) heads of a token.
  int kv_dim() const { return n_kv_heads * head_dim; }

  /// Reads the metadata; kInvalidArgument names an unsupported architecture or setting,
  /// kNotFound or kCorruption a missing or malformed key.
  static Result<ModelConfig> from_gguf(const GgufFile& f);
};

}  // namespace weft::llm
