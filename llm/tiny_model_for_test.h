// Writes a small random F32 Llama model (2 layers, d=64, 4 heads / 2 KV heads) for tests; qwen2
// adds its q/k/v biases.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "llm/gguf_writer.h"

namespace weft::llm::testing {

struct TinyModelSpec {
  std::string arch = "llama";
  int layers = 2, d_model = 64, heads = 4, kv_heads = 2, ffn = 128, vocab = 50;
  unsigned seed = 11;
};

// The hyperparameters a Llama-family GGUF file carries (RMSNorm epsilon 1e-5).
inline void add_decoder_metadata(GgufWriter& w, const std::string& arch, int layers, int d_model, int ffn, int heads,
                                 int kv_heads, int context) {
  const std::string p = arch + ".";
  w.add_string("general.architecture", arch);
  w.add_uint32(p + "block_count", static_cast<uint32_t>(layers));
  w.add_uint32(p + "embedding_length", static_cast<uint32_t>(d_model));
  w.add_uint32(p + "feed_forward_length", static_cast<uint32_t>(ffn));
  w.add_uint32(p + "attention.head_count", static_cast<uint32_t>(heads));
  w.add_uint32(p + "attention.head_count_kv", static_cast<uint32_t>(kv_heads));
  w.add_float32(p + "attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_uint32(p + "context_length", static_cast<uint32_t>(context));
}

inline std::string tiny_model_bytes(const TinyModelSpec& s = {}) {
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 0.15f);
  GgufWriter w;
  add_decoder_metadata(w, s.arch, s.layers, s.d_model, s.ffn, s.heads, s.kv_heads, 256);
  auto tensor = [&](const std::string& name, std::vector<int64_t> ne, float mean = 0.0f) {
    int64_t n = 1;
    for (int64_t x : ne) n *= x;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = mean + normal(rng);
    (void)w.add_tensor(name, kernels::TensorType::kF32, ne,
                       std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  };
  const int hd = s.d_model / s.heads;
  tensor("token_embd.weight", {s.d_model, s.vocab});
  tensor("output_norm.weight", {s.d_model}, 1.0f);
  for (int l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    tensor(b + "attn_norm.weight", {s.d_model}, 1.0f);
    tensor(b + "attn_q.weight", {s.d_model, s.heads * hd});
    tensor(b + "attn_k.weight", {s.d_model, s.kv_heads * hd});
    tensor(b + "attn_v.weight", {s.d_model, s.kv_heads * hd});
    if (s.arch == "qwen2") {  // q, k and v biases
      tensor(b + "attn_q.bias", {s.heads * hd});
      tensor(b + "attn_k.bias", {s.kv_heads * hd});
      tensor(b + "attn_v.bias", {s.kv_heads * hd});
    }
    tensor(b + "attn_output.weight", {s.heads * hd, s.d_model});
    tensor(b + "ffn_norm.weight", {s.d_model}, 1.0f);
    tensor(b + "ffn_gate.weight", {s.d_model, s.ffn});
    tensor(b + "ffn_up.weight", {s.d_model, s.ffn});
    tensor(b + "ffn_down.weight", {s.ffn, s.d_model});
  }
  return w.bytes();
}

}  // namespace weft::llm::testing
