#include "llm/model_weights.h"

#include <fmt/format.h>

namespace weft::llm {
namespace {

Result<const GgufTensor*> find(const GgufFile& f, const std::string& name) {
  const GgufTensor* t = f.tensor(name);
  if (t == nullptr) return Status::corruption(fmt::format("model is missing tensor '{}'", name));
  return t;
}

Result<kernels::WeightView> matrix(const GgufFile& f, const std::string& name, int64_t cols, int64_t rows) {
  WEFT_ASSIGN_OR_RETURN(const GgufTensor* t, find(f, name));
  const auto& info = kernels::tensor_type_info(t->type);
  if (!info.supported) {
    return Status::invalid_argument(fmt::format("tensor '{}' has type {}, which weft cannot compute with yet", name,
                                                info.name));
  }
  if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows) {
    return Status::corruption(fmt::format("tensor '{}' has shape [{}, {}], expected [{}, {}]", name, t->ne[0], t->ne[1],
                                          cols, rows));
  }
  return kernels::WeightView{t->type, cols, rows, t->nbytes / static_cast<size_t>(rows), t->data};
}

Result<const float*> vector_f32(const GgufFile& f, const std::string& name, int64_t n) {
  WEFT_ASSIGN_OR_RETURN(const GgufTensor* t, find(f, name));
  if (t->type != kernels::TensorType::kF32 || t->elements() != n) {
    return Status::corruption(fmt::format("tensor '{}' must be {} F32 values, found {} of type {}", name, n,
                                          t->elements(), kernels::tensor_type_info(t->type).name));
  }
  if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) {
    return Status::corruption(fmt::format("tensor '{}' is not aligned for float access", name));
  }
  return reinterpret_cast<const float*>(t->data);
}

}  // namespace

Result<ModelWeights> ModelWeights::bind(const GgufFile& f, const ModelConfig& c) {
  ModelWeights w;
  WEFT_ASSIGN_OR_RETURN(w.token_embd, matrix(f, "token_embd.weight", c.d_model, c.vocab));
  WEFT_ASSIGN_OR_RETURN(w.output_norm, vector_f32(f, "output_norm.weight", c.d_model));
  if (f.tensor("output.weight") != nullptr) {
    WEFT_ASSIGN_OR_RETURN(w.output, matrix(f, "output.weight", c.d_model, c.vocab));
  } else {
    w.output = w.token_embd;
  }
  if (f.tensor("rope_freqs.weight") != nullptr) {
    WEFT_ASSIGN_OR_RETURN(w.rope_freqs, vector_f32(f, "rope_freqs.weight", c.rope_dims / 2));
  }
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    WEFT_ASSIGN_OR_RETURN(L.attn_norm, vector_f32(f, p + "attn_norm.weight", c.d_model));
    WEFT_ASSIGN_OR_RETURN(L.wq, matrix(f, p + "attn_q.weight", c.d_model, c.q_dim()));
    WEFT_ASSIGN_OR_RETURN(L.wk, matrix(f, p + "attn_k.weight", c.d_model, c.kv_dim()));
    WEFT_ASSIGN_OR_RETURN(L.wv, matrix(f, p + "attn_v.weight", c.d_model, c.kv_dim()));
    WEFT_ASSIGN_OR_RETURN(L.wo, matrix(f, p + "attn_output.weight", c.q_dim(), c.d_model));
    if (c.qkv_bias) {
      WEFT_ASSIGN_OR_RETURN(L.bq, vector_f32(f, p + "attn_q.bias", c.q_dim()));
      WEFT_ASSIGN_OR_RETURN(L.bk, vector_f32(f, p + "attn_k.bias", c.kv_dim()));
      WEFT_ASSIGN_OR_RETURN(L.bv, vector_f32(f, p + "attn_v.bias", c.kv_dim()));
    }
    WEFT_ASSIGN_OR_RETURN(L.ffn_norm, vector_f32(f, p + "ffn_norm.weight", c.d_model));
    WEFT_ASSIGN_OR_RETURN(L.w_gate, matrix(f, p + "ffn_gate.weight", c.d_model, c.ffn_dim));
    WEFT_ASSIGN_OR_RETURN(L.w_up, matrix(f, p + "ffn_up.weight", c.d_model, c.ffn_dim));
    WEFT_ASSIGN_OR_RETURN(L.w_down, matrix(f, p + "ffn_down.weight", c.ffn_dim, c.d_model));
  }
  return w;
}

}  // namespace weft::llm
