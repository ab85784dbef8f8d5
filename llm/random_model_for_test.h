// Writes a Llama-family GGUF model of any shape with random weights of any tensor types: SmolLM2-
// 135M's shape by default (30 layers, d=576, 9 heads / 3 KV heads, ffn 1536, vocab 49152), for
// comparing backends and for benchmarks where speed does not depend on the weights' values.
#pragma once

#include <cstring>
#include <random>
#include <string>

#include "kernels/random_weights_for_test.h"
#include "llm/gguf_writer.h"
#include "llm/tiny_model_for_test.h"
#include "weft/status.h"

namespace weft::llm::testing {

struct RandomModelSpec {
  std::string arch = "llama";
  int layers = 30, d_model = 576, heads = 9, kv_heads = 3, ffn = 1536, vocab = 49152;
  kernels::TensorType matrices = kernels::TensorType::kQ4_1;   ///< every layer's matrices
  kernels::TensorType embedding = kernels::TensorType::kQ8_0;  ///< token_embd, tied to the output
  float rope_base = 100000.0f;
  unsigned seed = 5;
};

inline Status write_random_model(const std::string& path, const RandomModelSpec& s = {}) {
  std::mt19937 rng(s.seed);
  GgufWriter w;
  add_decoder_metadata(w, s.arch, s.layers, s.d_model, s.ffn, s.heads, s.kv_heads, 8192);
  w.add_float32(s.arch + ".rope.freq_base", s.rope_base);
  auto matrix = [&](const std::string& name, kernels::TensorType t, int64_t cols, int64_t rows) {
    return w.add_tensor(name, t, {cols, rows}, kernels::testing::random_rows(t, rows, cols, rng));
  };
  auto norm = [&](const std::string& name) {
    std::normal_distribution<float> normal(1.0f, 0.1f);
    std::string bytes(static_cast<size_t>(s.d_model) * 4, '\0');
    for (int i = 0; i < s.d_model; ++i) {
      const float v = normal(rng);
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    }
    return w.add_tensor(name, kernels::TensorType::kF32, {s.d_model}, std::move(bytes));
  };
  const int hd = s.d_model / s.heads;
  WEFT_RETURN_IF_ERROR(matrix("token_embd.weight", s.embedding, s.d_model, s.vocab));
  WEFT_RETURN_IF_ERROR(norm("output_norm.weight"));
  for (int l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    WEFT_RETURN_IF_ERROR(norm(b + "attn_norm.weight"));
    WEFT_RETURN_IF_ERROR(matrix(b + "attn_q.weight", s.matrices, s.d_model, s.heads * hd));
    WEFT_RETURN_IF_ERROR(matrix(b + "attn_k.weight", s.matrices, s.d_model, s.kv_heads * hd));
    WEFT_RETURN_IF_ERROR(matrix(b + "attn_v.weight", s.matrices, s.d_model, s.kv_heads * hd));
    if (s.arch == "qwen2") {  // qwen2 has biases on q, k and v
      for (auto [name, n] : {std::pair{"attn_q.bias", s.heads * hd},
                             {"attn_k.bias", s.kv_heads * hd},
                             {"attn_v.bias", s.kv_heads * hd}}) {
        std::normal_distribution<float> normal(0.0f, 0.5f);
        std::string bytes(static_cast<size_t>(n) * 4, '\0');
        for (int i = 0; i < n; ++i) {
          const float v = normal(rng);
          std::memcpy(bytes.data() + 4 * i, &v, 4);
        }
        WEFT_RETURN_IF_ERROR(w.add_tensor(b + name, kernels::TensorType::kF32, {n}, std::move(bytes)));
      }
    }
    WEFT_RETURN_IF_ERROR(matrix(b + "attn_output.weight", s.matrices, s.heads * hd, s.d_model));
    WEFT_RETURN_IF_ERROR(norm(b + "ffn_norm.weight"));
    WEFT_RETURN_IF_ERROR(matrix(b + "ffn_gate.weight", s.matrices, s.d_model, s.ffn));
    WEFT_RETURN_IF_ERROR(matrix(b + "ffn_up.weight", s.matrices, s.d_model, s.ffn));
    WEFT_RETURN_IF_ERROR(matrix(b + "ffn_down.weight", s.matrices, s.ffn, s.d_model));
  }
  return w.write(path);
}

}  // namespace weft::llm::testing
