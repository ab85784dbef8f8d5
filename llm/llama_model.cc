#include "llm/llama_model.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/packed_weights.h"
#include "llm/device_model.h"
#include "llm/lora_adapter.h"

namespace weft::llm {

namespace cpu = kernels::cpu;

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const std::string& path, const ModelOptions& options) {
  WEFT_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  return from_file(std::move(f), options);
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::from_file(GgufFile file, const ModelOptions& options) {
  std::unique_ptr<LlamaModel> m(new LlamaModel(std::move(file)));
  m->options_ = options;
  if (!cpu::isa_supported(options.isa)) {
    return Status::invalid_argument(fmt::format("this CPU cannot run {} kernels", cpu::isa_name(options.isa)));
  }
  WEFT_ASSIGN_OR_RETURN(m->config_, ModelConfig::from_gguf(m->file_));
  if (options.layers < 0 || options.layers > m->config_.n_layers) {
    return Status::invalid_argument(
        fmt::format("cannot keep {} layers of a model with {}", options.layers, m->config_.n_layers));
  }
  if (options.layers > 0) m->config_.n_layers = options.layers;
  WEFT_ASSIGN_OR_RETURN(m->weights_, ModelWeights::bind(m->file_, m->config_));
  if (options.device != kernels::Device::kCpu || options.device_forward || options.tensor_parallel > 0) {
    if (options.tensor_parallel < 0) return Status::invalid_argument("tensor_parallel must be >= 0");
    std::vector<std::unique_ptr<kernels::Backend>> backends;
    std::vector<kernels::Backend*> ranks;
    for (int r = 0; r < std::max(1, options.tensor_parallel); ++r) {
      WEFT_ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend, kernels::make_backend(options.device, r));
      ranks.push_back(backend.get());
      backends.push_back(std::move(backend));
    }
    std::vector<std::unique_ptr<kernels::Communicator>> comms;
    if (options.tensor_parallel > 0) {
      WEFT_ASSIGN_OR_RETURN(comms, kernels::make_communicators(ranks));
    }
    WEFT_ASSIGN_OR_RETURN(m->device_,
                          DeviceModel::create(std::move(backends), std::move(comms), m->config_, m->weights_));
    m->team_ = std::make_shared<cpu::ThreadTeam>(1);  // the batch planning's loops
    if (options.on_progress) options.on_progress(1.0);
    return m;
  }
  m->team_ = options.parallel;
  if (!m->team_) m->team_ = std::make_shared<cpu::ThreadTeam>(options.threads);
  m->mm_ = {m->team_.get(), &cpu::fast_kernels(options.isa), options.mode == ComputeMode::kFast};
  if (m->mm_.fast) {
    m->pack_weights();
  } else if (options.on_progress) {
    options.on_progress(1.0);
  }
  return m;
}

Result<KvCache> LlamaModel::new_cache(int max_tokens, int block_tokens) const {
  if (device_) return device_->make_cache(max_tokens, block_tokens);
  return make_cache(max_tokens, block_tokens);
}

std::string LlamaModel::device_description() const { return device_ ? device_->describe() : std::string("cpu"); }

KvCache LlamaModel::make_cache(int max_tokens, int block_tokens) const {
  if (device_) {
    Result<KvCache> kv = device_->make_cache(max_tokens, block_tokens);
    if (kv.ok()) return std::move(kv).value();
    return device_->empty_cache(block_tokens);
  }
  return KvCache({config_.n_layers, config_.kv_dim(), block_tokens, (max_tokens + block_tokens - 1) / block_tokens,
                  options_.mode == ComputeMode::kFast ? KvCache::Type::kF16 : KvCache::Type::kF32});
}

void LlamaModel::pack_weights() {
  const double steps = static_cast<double>(weights_.layers.size() + 1);
  auto progress = [&](size_t done) {
    if (options_.on_progress) options_.on_progress(static_cast<double>(done) / steps);
  };
  auto pack = [&](kernels::WeightView& w) {
    if (!cpu::uses_packed_weights(*mm_.kernels, w)) return;
    packed_.push_back(cpu::pack_rows4(w));
    w.packed = packed_.back().data();
  };
  pack(weights_.output);
  progress(1);
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    LayerWeights& L = weights_.layers[l];
    for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) pack(*w);
    progress(l + 2);
  }
}

size_t LlamaModel::matrix_bytes_per_step() const {
  auto bytes = [](const kernels::WeightView& w) { return w.row_bytes * static_cast<size_t>(w.rows); };
  size_t total = bytes(weights_.output);
  for (const LayerWeights& L : weights_.layers) {
    for (const auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) total += bytes(*w);
  }
  return total;
}

int64_t LlamaModel::output_macs_per_token() const { return weights_.output.rows * weights_.output.cols; }

int64_t LlamaModel::matrix_macs_per_token() const {
  int64_t total = output_macs_per_token();
  for (const LayerWeights& L : weights_.layers) {
    for (const auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) total += w->rows * w->cols;
  }
  return total;
}

struct LlamaModel::Pass {
  const Batch* batch = nullptr;
  int n = 0;
  std::vector<int> slot;                  // pending KV slot of each token
  std::vector<std::vector<int>> visible;  // KV slots each token attends to, in order
  std::vector<float> h, xn, q, k, v, attn, proj, gate, up, act;
  cpu::QuantizedRows in;
  // Per token: its sequence has several tokens in this pass, so fast-mode attention organises its
  // sums as llama.cpp's matrix-matrix kernel does. Decided per sequence, never by the rest of the
  // batch, so a sequence computes the same bits batched with others as alone.
  std::vector<char> lanes8;
  std::vector<float> rope_cos, rope_sin;  // [token][rope_dims / 2], the same for every layer
  struct PerThread {
    cpu::AttentionScratch attention;
    std::vector<const float*> keys, values;
    std::vector<const uint16_t*> keys16, values16;
    std::vector<float> lora;  // a token's low-rank activations A x
  };
  bool lora = false;  // some token goes through an adapter
  weft::ParallelFor* team = nullptr;
  std::vector<PerThread> threads;
};

LlamaModel::LlamaModel(GgufFile file) : file_(std::move(file)) {}
LlamaModel::~LlamaModel() = default;

void LlamaModel::attend(Pass& p, KvCache& kv, int layer, int i, int kh, int thread) const {
  const ModelConfig& c = config_;
  const int hd = c.head_dim, qd = c.q_dim(), group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int seq = p.batch->tokens[static_cast<size_t>(i)].seq;
  const std::vector<int>& visible = p.visible[static_cast<size_t>(i)];
  const int n = static_cast<int>(visible.size());
  Pass::PerThread& t = p.threads[static_cast<size_t>(thread)];
  if (kv.type() == KvCache::Type::kF32) {
    t.keys.resize(static_cast<size_t>(n));
    t.values.resize(static_cast<size_t>(n));
    for (int j = 0; j < n; ++j) {
      t.keys[j] = kv.key(layer, seq, visible[j]) + kh * hd;
      t.values[j] = kv.value(layer, seq, visible[j]) + kh * hd;
    }
    for (int head = kh * group; head < (kh + 1) * group; ++head) {
      cpu::attention(&p.q[i * qd + head * hd], t.keys.data(), t.values.data(), n, hd, scale, &p.attn[i * qd + head * hd]);
    }
    return;
  }
  t.keys16.resize(static_cast<size_t>(n));
  t.values16.resize(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) {
    t.keys16[j] = kv.key_f16(layer, seq, visible[j]) + kh * hd;
    t.values16[j] = kv.value_f16(layer, seq, visible[j]) + kh * hd;
  }
  const size_t first = static_cast<size_t>(i) * qd + static_cast<size_t>(kh) * group * hd;
  cpu::attention_f16(*mm_.kernels, &p.q[first], group, t.keys16.data(), t.values16.data(), n, hd, scale,
                     p.lanes8[static_cast<size_t>(i)] != 0, t.attention, &p.attn[first]);
}

Status LlamaModel::validate(const Batch& batch, const KvCache& kv) const {
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
    if (t.seq < 0 || !kv.live(t.seq))
      return Status::invalid_argument(fmt::format("batch token {}: no sequence {}", i, t.seq));
    if (t.adapter < -1 || t.adapter >= static_cast<int>(batch.adapters.size()) ||
        (t.adapter >= 0 && batch.adapters[static_cast<size_t>(t.adapter)] == nullptr)) {
      return Status::invalid_argument(fmt::format("batch token {}: no adapter {}", i, t.adapter));
    }
    if (t.pending_parent < -1 || t.pending_parent >= kv.pending(t.seq) || (t.pending_parent >= 0 && t.parent >= 0)) {
      return Status::invalid_argument(fmt::format(
          "batch token {}: pending parent {} must be -1 or, for a token without a batch parent, a pending slot (0..{})",
          i, t.pending_parent, kv.pending(t.seq) - 1));
    }
  }
  for (size_t k = 0; k < batch.adapters.size(); ++k) {
    const LoraAdapter* a = batch.adapters[k];
    if (a == nullptr) continue;
    for (int l = 0; l < config_.n_layers; ++l) {
      for (int t = 0; t < kLoraTargets; ++t) {
        const LoraMatrix* m = a->find(l, static_cast<LoraTarget>(t));
        if (m != nullptr && std::make_pair(m->out, m->in) != lora_target_shape(config_, static_cast<LoraTarget>(t))) {
          return Status::invalid_argument(fmt::format("adapter {} does not fit this model (layer {} {})", k, l,
                                                      lora_target_name(static_cast<LoraTarget>(t))));
        }
      }
    }
  }
  return Status::ok();
}

namespace {

// Sum of a[k] * b[k] in eight lanes (vectorised), then the lanes in order.
float lora_dot(const float* a, const float* b, int n) {
  float lane[8] = {};
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int j = 0; j < 8; ++j) lane[j] += a[k + j] * b[k + j];
  }
  for (; k < n; ++k) lane[0] += a[k] * b[k];
  float s = 0;
  for (float v : lane) s += v;
  return s;
}

}  // namespace

void LlamaModel::apply_lora(Pass& p, int layer, LoraTarget target, const float* x, float* y) const {
  if (!p.lora) return;
  const auto [out, in] = lora_target_shape(config_, target);
  p.team->parallel_for(p.n, 4, [&](int64_t b, int64_t e, int thread) {
    std::vector<float>& u = p.threads[static_cast<size_t>(thread)].lora;
    for (int64_t i = b; i < e; ++i) {
      const int16_t a = p.batch->tokens[static_cast<size_t>(i)].adapter;
      const LoraMatrix* m = a < 0 ? nullptr : p.batch->adapters[static_cast<size_t>(a)]->find(layer, target);
      if (m == nullptr) continue;
      u.resize(static_cast<size_t>(m->rank));
      const float* xi = x + i * in;
      for (int r = 0; r < m->rank; ++r)
        u[static_cast<size_t>(r)] = lora_dot(&m->a[static_cast<size_t>(r) * in], xi, in);
      float* yi = y + i * out;
      for (int o = 0; o < out; ++o)
        yi[o] += m->scale * lora_dot(&m->b[static_cast<size_t>(o) * m->rank], u.data(), m->rank);
    }
  });
}

Result<std::vector<float>> LlamaModel::forward(const Batch& batch, KvCache& kv) const {
  std::vector<float> logits;
  WEFT_RETURN_IF_ERROR(run(batch, kv, &logits, nullptr));
  return logits;
}

Result<std::vector<int32_t>> LlamaModel::forward_argmax(const Batch& batch, KvCache& kv) const {
  std::vector<int32_t> ids;
  if (device_) {
    WEFT_RETURN_IF_ERROR(run(batch, kv, nullptr, &ids));
    return ids;
  }
  WEFT_ASSIGN_OR_RETURN(std::vector<float> logits, forward(batch, kv));
  const size_t vocab = static_cast<size_t>(config_.vocab);
  for (size_t r = 0; r < logits.size() / vocab; ++r) {
    const float* row = &logits[r * vocab];
    ids.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
  }
  return ids;
}

Status LlamaModel::run(const Batch& batch, KvCache& kv, std::vector<float>* logits_out,
                       std::vector<int32_t>* argmax_out) const {
  WEFT_RETURN_IF_ERROR(validate(batch, kv));
  if ((device_ != nullptr) != (kv.storage() != nullptr)) {
    return Status::invalid_argument("the KV cache was not made by this model (new_cache/make_cache)");
  }
  const ModelConfig& c = config_;
  const int n = static_cast<int>(batch.tokens.size());
  const int d = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
  weft::ParallelFor& team = *team_;

  std::unique_ptr<Pass> pass;
  {
    std::lock_guard<std::mutex> lock(spare_mu_);
    if (!spare_.empty()) {
      pass = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  if (!pass) pass = std::make_unique<Pass>();
  struct GiveBack {
    const LlamaModel* m;
    std::unique_ptr<Pass>& p;
    ~GiveBack() {
      std::lock_guard<std::mutex> lock(m->spare_mu_);
      m->spare_.push_back(std::move(p));
    }
  } give_back{this, pass};
  Pass& p = *pass;
  p.batch = &batch;
  p.n = n;
  // KV slot of every batch token: the next pending slot of its sequence, in order of appearance.
  std::unordered_map<int32_t, int> per_seq;
  for (int i = 0; i < n; ++i) per_seq[batch.tokens[i].seq]++;
  for (const auto& [seq, count] : per_seq) WEFT_RETURN_IF_ERROR(kv.reserve(seq, count));
  // A pass that fails leaves no pending slots behind.
  struct Undo {
    KvCache& kv;
    std::unordered_map<int32_t, int> pending;
    bool done = false;
    ~Undo() {
      if (!done) {
        for (const auto& [seq, count] : pending) kv.drop_pending(seq, count);
      }
    }
  } undo{kv, {}};
  for (const auto& [seq, count] : per_seq) undo.pending[seq] = kv.pending(seq);
  p.slot.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const BatchToken& t = batch.tokens[i];
    const int32_t parent = t.parent >= 0 ? p.slot[t.parent] - kv.committed(t.seq) : t.pending_parent;
    p.slot[i] = kv.committed(t.seq) + kv.add_pending(t.seq, parent);
  }
  p.lanes8.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const SumLayout layout = batch.tokens[i].layout;
    p.lanes8[i] = layout == SumLayout::kAuto ? per_seq[batch.tokens[i].seq] > 1 : layout == SumLayout::kMatrix;
  }
  // Visible slots: the committed prefix, then the ancestor chain from the root down to i.
  p.visible.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::vector<int>& vis = p.visible[static_cast<size_t>(i)];
    vis.clear();
    const int seq = batch.tokens[i].seq;
    const int committed = kv.committed(seq);
    for (int s = 0; s < committed; ++s) vis.push_back(s);
    for (int32_t k = p.slot[i] - committed; k >= 0; k = kv.pending_parent(seq, k)) vis.push_back(committed + k);
    std::reverse(vis.begin() + committed, vis.end());
  }
  p.lora = std::any_of(batch.tokens.begin(), batch.tokens.end(), [](const BatchToken& t) { return t.adapter >= 0; });
  p.team = &team;
  if (device_) {
    if (p.lora) {
      return Status::invalid_argument(
          fmt::format("LoRA adapters run on the CPU forward pass; this model computes on {}", device_->describe()));
    }
    WEFT_RETURN_IF_ERROR(device_->forward(batch, p.slot, p.visible, kv, logits_out, argmax_out));
    undo.done = true;
    return Status::ok();
  }
  p.threads.resize(static_cast<size_t>(team.size()));

  auto sized = [](std::vector<float>& buf, size_t count) { buf.resize(count); };
  sized(p.h, static_cast<size_t>(n) * d);
  sized(p.xn, p.h.size());
  sized(p.proj, p.h.size());
  sized(p.q, static_cast<size_t>(n) * qd);
  sized(p.attn, p.q.size());
  sized(p.k, static_cast<size_t>(n) * kvd);
  sized(p.v, p.k.size());
  sized(p.gate, static_cast<size_t>(n) * c.ffn_dim);
  sized(p.up, p.gate.size());
  sized(p.act, p.gate.size());
  for (int i = 0; i < n; ++i) WEFT_RETURN_IF_ERROR(cpu::weight_row(weights_.token_embd, batch.tokens[i].token, &p.h[i * d]));

  const cpu::RopeParams rope{hd, c.rope_dims, c.rope_base, 1.0f / c.rope_linear_scale, weights_.rope_freqs,
                             c.rope_style == RopeStyle::kNeox};
  const bool fast = options_.mode == ComputeMode::kFast;
  const int half = c.rope_dims / 2;
  p.rope_cos.resize(static_cast<size_t>(n) * half);
  p.rope_sin.resize(p.rope_cos.size());
  team.parallel_for(n, 16, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) cpu::rope_angles(batch.tokens[i].pos, rope, &p.rope_cos[i * half], &p.rope_sin[i * half]);
  });
  auto norm_rows = [&](const float* weight) {
    team.parallel_for(n, 16, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) cpu::rms_norm(&p.h[i * d], weight, d, c.rms_eps, &p.xn[i * d]);
    });
    p.in.set(p.xn.data(), n, d);
  };

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
    norm_rows(L.attn_norm);
    WEFT_RETURN_IF_ERROR(cpu::matmul_fused({{&L.wq, p.q.data()}, {&L.wk, p.k.data()}, {&L.wv, p.v.data()}}, p.in, mm_));
    apply_lora(p, l, LoraTarget::kQ, p.xn.data(), p.q.data());
    apply_lora(p, l, LoraTarget::kK, p.xn.data(), p.k.data());
    apply_lora(p, l, LoraTarget::kV, p.xn.data(), p.v.data());
    team.parallel_for(n, 4, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        float *qi = &p.q[i * qd], *ki = &p.k[i * kvd], *vi = &p.v[i * kvd];
        if (L.bq != nullptr) {
          for (int j = 0; j < qd; ++j) qi[j] += L.bq[j];
          for (int j = 0; j < kvd; ++j) ki[j] += L.bk[j];
          for (int j = 0; j < kvd; ++j) vi[j] += L.bv[j];
        }
        const float* cs = &p.rope_cos[i * (c.rope_dims / 2)];
        const float* sn = &p.rope_sin[i * (c.rope_dims / 2)];
        cpu::rope_apply(qi, c.n_heads, cs, sn, rope);
        cpu::rope_apply(ki, c.n_kv_heads, cs, sn, rope);
        const int seq = batch.tokens[i].seq;
        if (kv.type() == KvCache::Type::kF16) {
          uint16_t* kd = kv.key_f16(l, seq, p.slot[i]);
          uint16_t* vd = kv.value_f16(l, seq, p.slot[i]);
          for (int j = 0; j < kvd; ++j) {
            kd[j] = cpu::fp32_to_fp16(ki[j]);
            vd[j] = cpu::fp32_to_fp16(vi[j]);
          }
        } else {
          std::copy_n(ki, kvd, kv.key(l, seq, p.slot[i]));
          std::copy_n(vi, kvd, kv.value(l, seq, p.slot[i]));
        }
      }
    });
    team.parallel_for(static_cast<int64_t>(n) * c.n_kv_heads, 1, [&](int64_t b, int64_t e, int thread) {
      for (int64_t w = b; w < e; ++w) attend(p, kv, l, static_cast<int>(w / c.n_kv_heads), static_cast<int>(w % c.n_kv_heads), thread);
    });
    p.in.set(p.attn.data(), n, qd);
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.wo, p.in, p.proj.data(), mm_));
    apply_lora(p, l, LoraTarget::kO, p.attn.data(), p.proj.data());
    for (size_t j = 0; j < p.h.size(); ++j) p.h[j] += p.proj[j];

    norm_rows(L.ffn_norm);
    WEFT_RETURN_IF_ERROR(cpu::matmul_fused({{&L.w_gate, p.gate.data()}, {&L.w_up, p.up.data()}}, p.in, mm_));
    apply_lora(p, l, LoraTarget::kGate, p.xn.data(), p.gate.data());
    apply_lora(p, l, LoraTarget::kUp, p.xn.data(), p.up.data());
    const int64_t ffn = c.ffn_dim;
    team.parallel_for(n, 4, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        if (fast) {
          mm_.kernels->swiglu(&p.gate[i * ffn], &p.up[i * ffn], &p.act[i * ffn], ffn);
        } else {
          cpu::silu_mul(&p.gate[i * ffn], &p.up[i * ffn], &p.act[i * ffn], ffn);
        }
      }
    });
    p.in.set(p.act.data(), n, ffn);
    WEFT_RETURN_IF_ERROR(cpu::matmul(L.w_down, p.in, p.proj.data(), mm_));
    apply_lora(p, l, LoraTarget::kDown, p.act.data(), p.proj.data());
    for (size_t j = 0; j < p.h.size(); ++j) p.h[j] += p.proj[j];
  }

  std::vector<float> out_in;
  for (int i = 0; i < n; ++i) {
    if (!batch.tokens[i].logits) continue;
    out_in.resize(out_in.size() + static_cast<size_t>(d));
    cpu::rms_norm(&p.h[i * d], weights_.output_norm, d, c.rms_eps, &out_in[out_in.size() - d]);
  }
  const int64_t m = static_cast<int64_t>(out_in.size()) / d;
  std::vector<float> logits(static_cast<size_t>(m) * c.vocab);
  if (m > 0) WEFT_RETURN_IF_ERROR(cpu::matmul(weights_.output, out_in.data(), m, logits.data(), mm_));
  undo.done = true;
  if (logits_out != nullptr) *logits_out = std::move(logits);
  return Status::ok();
}

}  // namespace weft::llm
