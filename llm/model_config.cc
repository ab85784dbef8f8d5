#include "llm/model_config.h"

#include <optional>

#include <fmt/format.h>

namespace weft::llm {
namespace {

Result<int> get_int(const GgufFile& f, const std::string& key, std::optional<int> fallback = std::nullopt) {
  Result<uint64_t> v = f.get_uint(key);
  if (!v.ok()) {
    if (v.status().code() == StatusCode::kNotFound && fallback) return *fallback;
    return v.status();
  }
  if (*v == 0 || *v > (1u << 30)) return Status::corruption(fmt::format("GGUF metadata '{}' = {} is out of range", key, *v));
  return static_cast<int>(*v);
}

Result<float> get_float(const GgufFile& f, const std::string& key, float fallback) {
  Result<double> v = f.get_float(key);
  if (!v.ok()) {
    if (v.status().code() == StatusCode::kNotFound) return fallback;
    return v.status();
  }
  return static_cast<float>(*v);
}

}  // namespace

Result<ModelConfig> ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  WEFT_ASSIGN_OR_RETURN(std::string_view arch, f.get_string("general.architecture"));
  c.arch = std::string(arch);
  if (c.arch != "llama" && c.arch != "mistral" && c.arch != "qwen2") {
    return Status::invalid_argument(
        fmt::format("unsupported model architecture '{}' (weft runs llama, mistral and qwen2)", c.arch));
  }
  const std::string p = c.arch + ".";
  WEFT_ASSIGN_OR_RETURN(c.n_layers, get_int(f, p + "block_count"));
  WEFT_ASSIGN_OR_RETURN(c.d_model, get_int(f, p + "embedding_length"));
  WEFT_ASSIGN_OR_RETURN(c.ffn_dim, get_int(f, p + "feed_forward_length"));
  WEFT_ASSIGN_OR_RETURN(c.n_heads, get_int(f, p + "attention.head_count"));
  WEFT_ASSIGN_OR_RETURN(c.n_kv_heads, get_int(f, p + "attention.head_count_kv", c.n_heads));
  WEFT_ASSIGN_OR_RETURN(c.head_dim, get_int(f, p + "attention.key_length", c.d_model / c.n_heads));
  WEFT_ASSIGN_OR_RETURN(c.context_length, get_int(f, p + "context_length", 4096));
  WEFT_ASSIGN_OR_RETURN(c.rope_dims, get_int(f, p + "rope.dimension_count", c.head_dim));
  WEFT_ASSIGN_OR_RETURN(c.rms_eps, get_float(f, p + "attention.layer_norm_rms_epsilon", 1e-5f));
  WEFT_ASSIGN_OR_RETURN(c.rope_base, get_float(f, p + "rope.freq_base", 10000.0f));

  if (c.n_heads % c.n_kv_heads != 0) {
    return Status::corruption(fmt::format("{} attention heads are not a multiple of {} KV heads", c.n_heads, c.n_kv_heads));
  }
  if (c.rope_dims > c.head_dim || c.rope_dims % 2 != 0) {
    return Status::corruption(fmt::format("rope.dimension_count {} does not fit head size {}", c.rope_dims, c.head_dim));
  }
  if (const GgufValue* t = f.find(p + "rope.scaling.type")) {
    std::string_view type = t->str;
    if (type == "linear") {
      WEFT_ASSIGN_OR_RETURN(c.rope_linear_scale, get_float(f, p + "rope.scaling.factor", 1.0f));
      if (!(c.rope_linear_scale > 0)) return Status::corruption("rope.scaling.factor must be positive");
    } else if (type != "none" && !type.empty()) {
      return Status::invalid_argument(fmt::format("unsupported rope scaling '{}' (weft supports linear, and llama3 "
                                                  "frequency factors via rope_freqs.weight)", type));
    }
  }
  c.rope_style = c.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kNormal;
  c.qkv_bias = c.arch == "qwen2";

  const GgufTensor* emb = f.tensor("token_embd.weight");
  if (emb == nullptr) return Status::corruption("model has no tensor 'token_embd.weight'");
  c.vocab = static_cast<int>(emb->ne[1]);
  return c;
}

}  // namespace weft::llm
