#include "llm/llama_model.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "kernels/cpu/ops.h"

namespace weft::llm {

namespace cpu = kernels::cpu;

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const std::string& path) {
  WEFT_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  return from_file(std::move(f));
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::from_file(GgufFile file) {
  std::unique_ptr<LlamaModel> m(new LlamaModel(std::move(file)));
  WEFT_ASSIGN_OR_RETURN(m->config_, ModelConfig::from_gguf(m->file_));
  WEFT_ASSIGN_OR_RETURN(m->weights_, ModelWeights::bind(m->file_, m->config_));
  return m;
}

KvCache LlamaModel::make_cache(int max_tokens, int block_tokens) const {
  return KvCache({config_.n_layers, config_.kv_dim(), block_tokens, (max_tokens + block_tokens - 1) / block_tokens});
}

Status LlamaModel::validate(const Batch& batch, const KvCache& kv) const {
  (void)kv;
  for (size_t i = 0; i < batch.tokens.size(); ++i) {
    const BatchToken& t = batch.tokens[i];
    if (t.token < 0 || t.token >= config_.vocab) {
      return Status::invalid_argument(fmt::format("batch token {}: id {} is outside the vocabulary (0..{})", i, t.token,
                                                  config_.vocab - 1));
    }
    if (t.pos < 0) return Status::invalid_argument(fmt::format("batch token {}: negative position", i));
    if (t.parent >= static_cast<int32_t>(i) || t.parent < -1 ||
        (t.parent >= 0 && batch.tokens[static_cast<size_t>(t.parent)].seq != t.seq)) {
      return Status::invalid_argument(
          fmt::format("batch token {}: parent {} must be an earlier token of the same sequence, or -1", i, t.parent));
    }
  }
  return Status::ok();
}

Result<std::vector<float>> LlamaModel::forward(const Batch& batch, KvCache& kv) const {
  WEFT_RETURN_IF_ERROR(validate(batch, kv));
  const ModelConfig& c = config_;
  const int n = static_cast<int>(batch.tokens.size());
  const int d = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;

  // Pending KV slot of every batch token: its sequence's committed count plus its rank there.
  std::unordered_map<int32_t, int> per_seq;
  std::vector<int> slot(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) slot[i] = per_seq[batch.tokens[i].seq]++;
  for (const auto& [seq, count] : per_seq) WEFT_RETURN_IF_ERROR(kv.reserve(seq, count));
  for (int i = 0; i < n; ++i) slot[i] += kv.committed(batch.tokens[i].seq);

  std::vector<float> h(static_cast<size_t>(n) * d), xn(h.size()), q(static_cast<size_t>(n) * qd),
      k(static_cast<size_t>(n) * kvd), v(k.size()), attn(q.size()), proj(h.size()),
      gate(static_cast<size_t>(n) * c.ffn_dim), up(gate.size()), act(gate.size());
  for (int i = 0; i < n; ++i) WEFT_RETURN_IF_ERROR(cpu::weight_row(weights_.token_embd, batch.tokens[i].token, &h[i * d]));

  cpu::RopeParams rope{hd, c.rope_dims, c.rope_base, 1.0f / c.rope_linear_scale, weights_.rope_freqs,
                       c.rope_style == RopeStyle::kNeox};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int group = c.n_heads / c.n_kv_heads;
  std::vector<const float*> keys, values;

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
    for (int i = 0; i < n; ++i) cpu::rms_norm(&h[i * d], L.attn_norm, d, c.rms_eps, &xn[i * d]);
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.wq, xn.data(), n, q.data()));
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.wk, xn.data(), n, k.data()));
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.wv, xn.data(), n, v.data()));
    for (int i = 0; i < n; ++i) {
      if (L.bq != nullptr) {
        for (int j = 0; j < qd; ++j) q[i * qd + j] += L.bq[j];
        for (int j = 0; j < kvd; ++j) k[i * kvd + j] += L.bk[j];
        for (int j = 0; j < kvd; ++j) v[i * kvd + j] += L.bv[j];
      }
      cpu::rope(&q[i * qd], c.n_heads, batch.tokens[i].pos, rope);
      cpu::rope(&k[i * kvd], c.n_kv_heads, batch.tokens[i].pos, rope);
      const int seq = batch.tokens[i].seq;
      std::copy_n(&k[i * kvd], kvd, kv.key(l, seq, slot[i]));
      std::copy_n(&v[i * kvd], kvd, kv.value(l, seq, slot[i]));
    }
    for (int i = 0; i < n; ++i) {
      const int seq = batch.tokens[i].seq;
      // Visible slots: the committed prefix, then the ancestor chain from the root down to i.
      std::vector<int> visible;
      for (int s = 0; s < kv.committed(seq); ++s) visible.push_back(s);
      const size_t prefix = visible.size();
      for (int a = i; a >= 0; a = batch.tokens[a].parent) visible.push_back(slot[a]);
      std::reverse(visible.begin() + static_cast<std::ptrdiff_t>(prefix), visible.end());
      for (int kh = 0; kh < c.n_kv_heads; ++kh) {
        keys.clear();
        values.clear();
        for (int s : visible) {
          keys.push_back(kv.key(l, seq, s) + kh * hd);
          values.push_back(kv.value(l, seq, s) + kh * hd);
        }
        for (int g = 0; g < group; ++g) {
          const int head = kh * group + g;
          cpu::attention(&q[i * qd + head * hd], keys.data(), values.data(), static_cast<int>(keys.size()), hd, scale,
                         &attn[i * qd + head * hd]);
        }
      }
    }
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.wo, attn.data(), n, proj.data()));
    for (size_t j = 0; j < h.size(); ++j) h[j] += proj[j];

    for (int i = 0; i < n; ++i) cpu::rms_norm(&h[i * d], L.ffn_norm, d, c.rms_eps, &xn[i * d]);
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.w_gate, xn.data(), n, gate.data()));
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.w_up, xn.data(), n, up.data()));
    cpu::silu_mul(gate.data(), up.data(), act.data(), static_cast<int64_t>(act.size()));
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.w_down, act.data(), n, proj.data()));
    for (size_t j = 0; j < h.size(); ++j) h[j] += proj[j];
  }

  std::vector<float> out_in;
  for (int i = 0; i < n; ++i) {
    if (!batch.tokens[i].logits) continue;
    out_in.resize(out_in.size() + static_cast<size_t>(d));
    cpu::rms_norm(&h[i * d], weights_.output_norm, d, c.rms_eps, &out_in[out_in.size() - d]);
  }
  const int64_t m = static_cast<int64_t>(out_in.size()) / d;
  std::vector<float> logits(static_cast<size_t>(m) * c.vocab);
  if (m > 0) WEFT_RETURN_IF_ERROR(cpu::matmul(weights_.output, out_in.data(), m, logits.data()));
  return logits;
}

}  // namespace weft::llm
