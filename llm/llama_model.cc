#include "llm/llama_model.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/ops.h"

namespace weft::llm {

namespace cpu = kernels::cpu;

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const std::string& path, const ModelOptions& options) {
  WEFT_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  return from_file(std::move(f), options);
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::from_file(GgufFile file, const ModelOptions& options) {
  std::unique_ptr<LlamaModel> m(new LlamaModel(std::move(file)));
  m->options_ = options;
  WEFT_ASSIGN_OR_RETURN(m->config_, ModelConfig::from_gguf(m->file_));
  WEFT_ASSIGN_OR_RETURN(m->weights_, ModelWeights::bind(m->file_, m->config_));
  return m;
}

KvCache LlamaModel::make_cache(int max_tokens, int block_tokens) const {
  return KvCache({config_.n_layers, config_.kv_dim(), block_tokens, (max_tokens + block_tokens - 1) / block_tokens,
                  options_.mode == ComputeMode::kFast ? KvCache::Type::kF16 : KvCache::Type::kF32});
}

Status LlamaModel::matmul(const kernels::WeightView& w, const float* x, int64_t m, float* y) const {
  return options_.mode == ComputeMode::kFast ? cpu::matmul_fast(w, x, m, y) : cpu::matmul(w, x, m, y);
}

struct LlamaModel::AttendScratch {
  std::vector<const float*> keys, values;
  std::vector<uint16_t> q16, p16, column;
  std::vector<float> score, prob;
};

void LlamaModel::attend(const float* q, KvCache& kv, int layer, int seq, const std::vector<int>& visible, int kh,
                        bool batched, AttendScratch& sc, float* out) const {
  const int hd = config_.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int n = static_cast<int>(visible.size());
  if (kv.type() == KvCache::Type::kF32) {
    sc.keys.resize(static_cast<size_t>(n));
    sc.values.resize(static_cast<size_t>(n));
    for (int j = 0; j < n; ++j) {
      sc.keys[j] = kv.key(layer, seq, visible[j]) + kh * hd;
      sc.values[j] = kv.value(layer, seq, visible[j]) + kh * hd;
    }
    cpu::attention(q, sc.keys.data(), sc.values.data(), n, hd, scale, out);
    return;
  }
  // fp16 path: scores from fp16 dots, softmax with the exp approximation, probabilities rounded
  // to fp16, then per output dimension an fp16 dot over the cells in order.
  auto dot = batched ? cpu::dot_f16_8lane : cpu::dot_f16;
  sc.q16.resize(static_cast<size_t>(hd));
  sc.p16.resize(static_cast<size_t>(n));
  sc.column.resize(static_cast<size_t>(n));
  sc.score.resize(static_cast<size_t>(n));
  sc.prob.resize(static_cast<size_t>(n));
  uint16_t* q16 = sc.q16.data();
  uint16_t* p16 = sc.p16.data();
  uint16_t* column = sc.column.data();
  float* score = sc.score.data();
  float* prob = sc.prob.data();
  for (int d = 0; d < hd; ++d) q16[d] = cpu::fp32_to_fp16(q[d]);
  float max = -INFINITY;
  for (int j = 0; j < n; ++j) {
    score[j] = dot(kv.key_f16(layer, seq, visible[j]) + kh * hd, q16, hd) * scale;
    max = std::max(max, score[j]);
  }
  const double sum = cpu::softmax_exp(score, max, prob, n);
  const float inv = static_cast<float>(1.0 / sum);
  for (int j = 0; j < n; ++j) p16[j] = cpu::fp32_to_fp16(prob[j] * inv);
  for (int d = 0; d < hd; ++d) {
    for (int j = 0; j < n; ++j) column[j] = kv.value_f16(layer, seq, visible[j])[kh * hd + d];
    out[d] = dot(column, p16, n);
  }
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
  const int group = c.n_heads / c.n_kv_heads;
  AttendScratch scratch;

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
    for (int i = 0; i < n; ++i) cpu::rms_norm(&h[i * d], L.attn_norm, d, c.rms_eps, &xn[i * d]);
    WEFT_RETURN_IF_ERROR(matmul(L.wq, xn.data(), n, q.data()));
    WEFT_RETURN_IF_ERROR(matmul(L.wk, xn.data(), n, k.data()));
    WEFT_RETURN_IF_ERROR(matmul(L.wv, xn.data(), n, v.data()));
    for (int i = 0; i < n; ++i) {
      if (L.bq != nullptr) {
        for (int j = 0; j < qd; ++j) q[i * qd + j] += L.bq[j];
        for (int j = 0; j < kvd; ++j) k[i * kvd + j] += L.bk[j];
        for (int j = 0; j < kvd; ++j) v[i * kvd + j] += L.bv[j];
      }
      cpu::rope(&q[i * qd], c.n_heads, batch.tokens[i].pos, rope);
      cpu::rope(&k[i * kvd], c.n_kv_heads, batch.tokens[i].pos, rope);
      const int seq = batch.tokens[i].seq;
      if (kv.type() == KvCache::Type::kF16) {
        uint16_t* kd = kv.key_f16(l, seq, slot[i]);
        uint16_t* vd = kv.value_f16(l, seq, slot[i]);
        for (int j = 0; j < kvd; ++j) {
          kd[j] = cpu::fp32_to_fp16(k[i * kvd + j]);
          vd[j] = cpu::fp32_to_fp16(v[i * kvd + j]);
        }
      } else {
        std::copy_n(&k[i * kvd], kvd, kv.key(l, seq, slot[i]));
        std::copy_n(&v[i * kvd], kvd, kv.value(l, seq, slot[i]));
      }
    }
    for (int i = 0; i < n; ++i) {
      const int seq = batch.tokens[i].seq;
      // Visible slots: the committed prefix, then the ancestor chain from the root down to i.
      std::vector<int> visible;
      for (int s = 0; s < kv.committed(seq); ++s) visible.push_back(s);
      const size_t prefix = visible.size();
      for (int a = i; a >= 0; a = batch.tokens[a].parent) visible.push_back(slot[a]);
      std::reverse(visible.begin() + static_cast<std::ptrdiff_t>(prefix), visible.end());
      for (int head = 0; head < c.n_heads; ++head) {
        attend(&q[i * qd + head * hd], kv, l, seq, visible, head / group, n > 1, scratch, &attn[i * qd + head * hd]);
      }
    }
    WEFT_RETURN_IF_ERROR(matmul(L.wo, attn.data(), n, proj.data()));
    for (size_t j = 0; j < h.size(); ++j) h[j] += proj[j];

    for (int i = 0; i < n; ++i) cpu::rms_norm(&h[i * d], L.ffn_norm, d, c.rms_eps, &xn[i * d]);
    WEFT_RETURN_IF_ERROR(matmul(L.w_gate, xn.data(), n, gate.data()));
    WEFT_RETURN_IF_ERROR(matmul(L.w_up, xn.data(), n, up.data()));
    if (options_.mode == ComputeMode::kFast) {
      cpu::swiglu(gate.data(), up.data(), act.data(), static_cast<int64_t>(act.size()));
    } else {
      cpu::silu_mul(gate.data(), up.data(), act.data(), static_cast<int64_t>(act.size()));
    }
    WEFT_RETURN_IF_ERROR(matmul(L.w_down, act.data(), n, proj.data()));
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
  if (m > 0) WEFT_RETURN_IF_ERROR(matmul(weights_.output, out_in.data(), m, logits.data()));
  return logits;
}

}  // namespace weft::llm
