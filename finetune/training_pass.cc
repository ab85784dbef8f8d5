#include "finetune/training_pass.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "finetune/float_kernels.h"
#include "kernels/cpu/ops.h"

namespace weft::finetune {
namespace {

using llm::LoraAdapter;
using llm::LoraMatrix;
using llm::LoraTarget;
namespace cpu = kernels::cpu;

float silu(float x) { return x / (1.0f + std::exp(-x)); }

// y = rms_norm(x) * w over d values; returns 1 / rms.
float norm_row(const float* x, const float* w, int d, float eps, float* y) {
  double ss = 0;
  for (int j = 0; j < d; ++j) ss += static_cast<double>(x[j]) * x[j];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
  for (int j = 0; j < d; ++j) y[j] = x[j] * r * w[j];
  return r;
}

// gx += d/dx of (rms_norm(x) * w) applied to gy, given r = 1 / rms(x).
void norm_backward(const float* x, const float* w, float r, const float* gy, int d, float* gx) {
  double dot = 0;
  for (int j = 0; j < d; ++j) dot += static_cast<double>(x[j]) * w[j] * gy[j];
  const float k = static_cast<float>(dot) * r * r * r / static_cast<float>(d);
  for (int j = 0; j < d; ++j) gx[j] += r * w[j] * gy[j] - x[j] * k;
}

// p[j] = softmax over j <= t of (q . k_j) * scale, k_j the keys of KV head `kh` in `keys`
// ([token][kv_dim]): query t's causal attention row.
void causal_softmax(const float* q, const std::vector<float>& keys, int kv_dim, int kh, int hd, int t, float scale,
                    std::vector<double>& p) {
  p.resize(static_cast<size_t>(t) + 1);
  double mx = -INFINITY;
  for (int j = 0; j <= t; ++j) {
    const float* kj = &keys[static_cast<size_t>(j) * kv_dim + kh * hd];
    float s = 0;
    for (int x = 0; x < hd; ++x) s += q[x] * kj[x];
    p[j] = s * scale;
    mx = std::max(mx, p[j]);
  }
  double z = 0;
  for (int j = 0; j <= t; ++j) z += p[j] = std::exp(p[j] - mx);
  for (int j = 0; j <= t; ++j) p[j] /= z;
}

}  // namespace

int TrainingExample::trained_tokens() const {
  int n = 0;
  for (size_t t = 1; t < tokens.size() && t < trained.size(); ++t) n += trained[t] != 0;
  return n;
}

LoraAdapter zero_gradients(const LoraAdapter& like) {
  LoraAdapter g = like;
  for (auto& layer : g.layers) {
    for (LoraMatrix& m : layer) {
      std::fill(m.a.begin(), m.a.end(), 0.0f);
      std::fill(m.b.begin(), m.b.end(), 0.0f);
    }
  }
  return g;
}

struct TrainingPass::Layer {
  std::vector<float> h, h2;                 // [T][d] the layer's input and its residual after attention
  std::vector<float> r1, r2;                // [T] 1 / rms of h and h2
  std::vector<float> q, attn;               // [T][q_dim] q after rotation; the attention output
  std::vector<float> k, v;                  // [T][kv_dim] k after rotation; v
  std::vector<float> gate, up;              // [T][ffn]
  std::vector<float> u[llm::kLoraTargets];  // [T][rank] A x of each LoRA
};

TrainingPass::TrainingPass(const llm::LlamaModel& model, const LoraAdapter& adapter, weft::ParallelFor& team)
    : model_(&model), adapter_(&adapter), team_(&team), config_(model.config()) {}
TrainingPass::TrainingPass(TrainingPass&&) noexcept = default;
TrainingPass& TrainingPass::operator=(TrainingPass&&) noexcept = default;
TrainingPass::~TrainingPass() = default;

Result<TrainingPass> TrainingPass::start(const llm::LlamaModel& model, const LoraAdapter& adapter,
                                         TrainingExample example, weft::ParallelFor& team) {
  TrainingPass p(model, adapter, team);
  const llm::ModelConfig& c = p.config_;
  if (example.tokens.size() < 2) return Status::invalid_argument("a training sequence needs at least two tokens");
  if (example.trained.size() != example.tokens.size()) {
    return Status::invalid_argument("a training sequence needs one trained flag per token");
  }
  for (int32_t t : example.tokens) {
    if (t < 0 || t >= c.vocab) return Status::invalid_argument(fmt::format("token id {} is outside the vocabulary", t));
  }
  if (example.trained_tokens() == 0) return Status::invalid_argument("the sequence has no tokens to train on");
  for (int l = 0; l < c.n_layers; ++l) {
    for (int t = 0; t < llm::kLoraTargets; ++t) {
      const LoraMatrix* m = adapter.find(l, static_cast<LoraTarget>(t));
      if (m != nullptr && std::make_pair(m->out, m->in) != llm::lora_target_shape(c, static_cast<LoraTarget>(t))) {
        return Status::invalid_argument("the adapter does not fit the model");
      }
    }
  }
  WEFT_ASSIGN_OR_RETURN(p.weights_, llm::ModelWeights::bind(model.file(), c));
  p.rope_ = {c.head_dim,
             c.rope_dims,
             c.rope_base,
             1.0f / c.rope_linear_scale,
             p.weights_.rope_freqs,
             c.rope_style == llm::RopeStyle::kNeox};
  const size_t T = example.tokens.size();
  p.example_ = std::move(example);
  p.saved_.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    Layer& L = p.saved_[static_cast<size_t>(l)];
    L.h.resize(T * c.d_model);
    L.h2.resize(T * c.d_model);
    L.r1.resize(T);
    L.r2.resize(T);
    L.q.resize(T * c.q_dim());
    L.attn.resize(T * c.q_dim());
    L.k.resize(T * c.kv_dim());
    L.v.resize(T * c.kv_dim());
    L.gate.resize(T * c.ffn_dim);
    L.up.resize(T * c.ffn_dim);
    for (int t = 0; t < llm::kLoraTargets; ++t) {
      if (const LoraMatrix* m = adapter.find(l, static_cast<LoraTarget>(t))) L.u[t].resize(T * m->rank);
    }
  }
  p.h_final_.resize(T * c.d_model);
  for (size_t t = 0; t + 1 < T; ++t) {
    if (p.example_.trained[t + 1] != 0) p.at_.push_back(static_cast<int>(t));
  }
  p.grad_.assign(T * c.d_model, 0.0f);
  return p;
}

size_t TrainingPass::saved_bytes() const {
  size_t n = h_final_.size();
  for (const Layer& L : saved_) {
    n += L.h.size() + L.h2.size() + L.r1.size() + L.r2.size() + L.q.size() + L.attn.size() + L.k.size() + L.v.size() +
         L.gate.size() + L.up.size();
    for (const auto& u : L.u) n += u.size();
  }
  return n * sizeof(float);
}

size_t TrainingPass::all_activation_bytes() const {
  // Every intermediate a framework's autograd keeps: per layer the input, its norm, q, k, v before
  // and after rotation, attention probabilities (heads x keys per token, causal: on average half
  // the sequence), the attention output, its projection, the residual, its norm, gate, up, the
  // SwiGLU product, the down projection, and each LoRA's A x.
  const size_t T = example_.tokens.size();
  const llm::ModelConfig& c = config_;
  size_t per_token = 2 * c.d_model + 2 * c.q_dim() + 4 * c.kv_dim() + static_cast<size_t>(c.n_heads) * (T + 1) / 2 +
                     c.q_dim() + 3 * static_cast<size_t>(c.d_model) + 3 * static_cast<size_t>(c.ffn_dim) + c.d_model;
  size_t lora = 0;
  for (const auto& L : saved_) {
    for (const auto& u : L.u) lora += u.size();
  }
  return (per_token * c.n_layers * T + lora + h_final_.size()) * sizeof(float);
}

namespace {

// y[t] += scale * B (A x[t]) for `n` rows, saving A x into u.
void lora_forward(const LoraMatrix* m, const float* x, int n, float* u, float* y, std::vector<float>& scratch) {
  if (m == nullptr) return;
  float_nt(m->a.data(), m->rank, m->in, x, n, u, false);
  scratch.assign(static_cast<size_t>(n) * m->out, 0.0f);
  float_nt(m->b.data(), m->out, m->rank, u, n, scratch.data(), false);
  for (size_t j = 0; j < scratch.size(); ++j) y[j] += m->scale * scratch[j];
}

// The gradients of A and B from gy ([n][out]), and gx ([n][in]) += the input's gradient through
// the LoRA path.
void lora_backward(const LoraMatrix* m, LoraMatrix* g, const float* x, const float* u, const float* gy, int n,
                   float* gx, std::vector<float>& z) {
  if (m == nullptr) return;
  float_tn(gy, m->out, u, m->rank, n, m->scale, g->b.data());  // dB = s gy^T u
  z.assign(static_cast<size_t>(n) * m->rank, 0.0f);
  float_nn(m->b.data(), m->out, m->rank, gy, n, z.data());  // z = gy B
  for (float& v : z) v *= m->scale;
  float_tn(z.data(), m->rank, x, m->in, n, 1.0f, g->a.data());  // dA = z^T x
  float_nn(m->a.data(), m->rank, m->in, z.data(), n, gx);       // gx += z A
}

}  // namespace

Status TrainingPass::forward(int count, int layers) {
  if (count < 1 || layers < 1) return Status::invalid_argument("forward takes at least one token and one layer");
  if (forward_done()) return Status::failed_precondition("the forward pass is done");
  const llm::ModelConfig& c = config_;
  const int d = c.d_model;
  if (chunk_end_ == forwarded_) {  // a new chunk: its embeddings and rotary angles
    chunk_end_ = std::min(tokens(), forwarded_ + count);
    chunk_layer_ = 0;
    const int n = chunk_end_ - forwarded_;
    cur_.resize(static_cast<size_t>(n) * d);
    for (int i = 0; i < n; ++i) {
      WEFT_RETURN_IF_ERROR(cpu::weight_row(weights_.token_embd, example_.tokens[forwarded_ + i], &cur_[i * d]));
    }
    const cpu::RopeParams& rope = rope_;
    const int half = c.rope_dims / 2;
    rope_cos_.resize(static_cast<size_t>(n) * half);
    rope_sin_.resize(rope_cos_.size());
    for (int i = 0; i < n; ++i) cpu::rope_angles(forwarded_ + i, rope, &rope_cos_[i * half], &rope_sin_[i * half]);
  }
  for (int k = 0; k < layers && chunk_layer_ < c.n_layers; ++k) {
    WEFT_RETURN_IF_ERROR(layer_forward(chunk_layer_));
    ++chunk_layer_;
  }
  if (chunk_layer_ == c.n_layers) {
    std::copy(cur_.begin(), cur_.end(), h_final_.begin() + static_cast<ptrdiff_t>(forwarded_) * d);
    forwarded_ = chunk_end_;
  }
  return Status::ok();
}

Status TrainingPass::layer_forward(int l) {
  const llm::ModelConfig& c = config_;
  const int t0 = forwarded_, n = chunk_end_ - forwarded_;
  const int d = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim, ffn = c.ffn_dim;
  const int group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  weft::ParallelFor& team = *team_;
  const cpu::RopeParams& rope = rope_;
  const int half = c.rope_dims / 2;
  const float* cos = rope_cos_.data();
  const float* sin = rope_sin_.data();
  std::vector<float>& cur = cur_;
  std::vector<float> xn(cur.size()), proj(cur.size()), act(static_cast<size_t>(n) * ffn), scratch;
  {
    const llm::LayerWeights& W = weights_.layers[static_cast<size_t>(l)];
    Layer& L = saved_[static_cast<size_t>(l)];
    auto lora = [&](LoraTarget t) { return adapter_->find(l, t); };
    auto u = [&](LoraTarget t) {
      return L.u[static_cast<int>(t)].data() + static_cast<size_t>(t0) * (lora(t) ? lora(t)->rank : 0);
    };
    std::copy(cur.begin(), cur.end(), L.h.begin() + static_cast<ptrdiff_t>(t0) * d);
    for (int i = 0; i < n; ++i) L.r1[t0 + i] = norm_row(&cur[i * d], W.attn_norm, d, c.rms_eps, &xn[i * d]);
    float* q = &L.q[static_cast<size_t>(t0) * qd];
    float* k = &L.k[static_cast<size_t>(t0) * kvd];
    float* v = &L.v[static_cast<size_t>(t0) * kvd];
    WEFT_RETURN_IF_ERROR(matmul_nt(W.wq, xn.data(), n, q, false, team));
    WEFT_RETURN_IF_ERROR(matmul_nt(W.wk, xn.data(), n, k, false, team));
    WEFT_RETURN_IF_ERROR(matmul_nt(W.wv, xn.data(), n, v, false, team));
    lora_forward(lora(LoraTarget::kQ), xn.data(), n, u(LoraTarget::kQ), q, scratch);
    lora_forward(lora(LoraTarget::kK), xn.data(), n, u(LoraTarget::kK), k, scratch);
    lora_forward(lora(LoraTarget::kV), xn.data(), n, u(LoraTarget::kV), v, scratch);
    for (int i = 0; i < n; ++i) {
      if (W.bq != nullptr) {
        for (int j = 0; j < qd; ++j) q[i * qd + j] += W.bq[j];
        for (int j = 0; j < kvd; ++j) k[i * kvd + j] += W.bk[j];
        for (int j = 0; j < kvd; ++j) v[i * kvd + j] += W.bv[j];
      }
      cpu::rope_apply(&q[i * qd], c.n_heads, &cos[i * half], &sin[i * half], rope);
      cpu::rope_apply(&k[i * kvd], c.n_kv_heads, &cos[i * half], &sin[i * half], rope);
    }
    // Causal attention of the chunk's queries over every key so far.
    float* attn = &L.attn[static_cast<size_t>(t0) * qd];
    team.parallel_for(static_cast<int64_t>(n) * c.n_heads, 1, [&](int64_t b, int64_t e, int) {
      std::vector<double> p;
      for (int64_t w = b; w < e; ++w) {
        const int i = static_cast<int>(w / c.n_heads), h = static_cast<int>(w % c.n_heads), t = t0 + i;
        const int kh = h / group;
        causal_softmax(&q[static_cast<size_t>(i) * qd + h * hd], L.k, kvd, kh, hd, t, scale, p);
        float* o = &attn[static_cast<size_t>(i) * qd + h * hd];
        std::fill(o, o + hd, 0.0f);
        for (int j = 0; j <= t; ++j) {
          const float pj = static_cast<float>(p[j]);
          const float* vj = &L.v[static_cast<size_t>(j) * kvd + kh * hd];
          for (int x = 0; x < hd; ++x) o[x] += pj * vj[x];
        }
      }
    });
    WEFT_RETURN_IF_ERROR(matmul_nt(W.wo, attn, n, proj.data(), false, team));
    lora_forward(lora(LoraTarget::kO), attn, n, u(LoraTarget::kO), proj.data(), scratch);
    for (size_t j = 0; j < cur.size(); ++j) cur[j] += proj[j];
    std::copy(cur.begin(), cur.end(), L.h2.begin() + static_cast<ptrdiff_t>(t0) * d);
    for (int i = 0; i < n; ++i) L.r2[t0 + i] = norm_row(&cur[i * d], W.ffn_norm, d, c.rms_eps, &xn[i * d]);
    float* gate = &L.gate[static_cast<size_t>(t0) * ffn];
    float* up = &L.up[static_cast<size_t>(t0) * ffn];
    WEFT_RETURN_IF_ERROR(matmul_nt(W.w_gate, xn.data(), n, gate, false, team));
    WEFT_RETURN_IF_ERROR(matmul_nt(W.w_up, xn.data(), n, up, false, team));
    lora_forward(lora(LoraTarget::kGate), xn.data(), n, u(LoraTarget::kGate), gate, scratch);
    lora_forward(lora(LoraTarget::kUp), xn.data(), n, u(LoraTarget::kUp), up, scratch);
    for (size_t j = 0; j < act.size(); ++j) act[j] = silu(gate[j]) * up[j];
    WEFT_RETURN_IF_ERROR(matmul_nt(W.w_down, act.data(), n, proj.data(), false, team));
    lora_forward(lora(LoraTarget::kDown), act.data(), n, u(LoraTarget::kDown), proj.data(), scratch);
    for (size_t j = 0; j < cur.size(); ++j) cur[j] += proj[j];
  }
  return Status::ok();
}

Status TrainingPass::output(int count) {
  if (count < 1) return Status::invalid_argument("output takes at least one token");
  if (!forward_done()) return Status::failed_precondition("the forward pass is not done");
  if (output_left() == 0) return Status::failed_precondition("the output is done");
  const llm::ModelConfig& c = config_;
  const int d = c.d_model;
  const int first = output_done_, m = std::min(count, output_left());
  std::vector<float> xf(static_cast<size_t>(m) * d), rf(static_cast<size_t>(m));
  for (int i = 0; i < m; ++i) {
    rf[i] =
        norm_row(&h_final_[static_cast<size_t>(at_[first + i]) * d], weights_.output_norm, d, c.rms_eps, &xf[i * d]);
  }
  const size_t vocab = static_cast<size_t>(c.vocab);
  std::vector<float> logits(static_cast<size_t>(m) * vocab);
  WEFT_RETURN_IF_ERROR(matmul_nt(weights_.output, xf.data(), m, logits.data(), false, *team_));
  for (int i = 0; i < m; ++i) {
    float* row = &logits[i * vocab];
    const float mx = *std::max_element(row, row + vocab);
    double z = 0;
    for (size_t j = 0; j < vocab; ++j) z += std::exp(static_cast<double>(row[j] - mx));
    const int32_t target = example_.tokens[static_cast<size_t>(at_[first + i]) + 1];
    loss_sum_ += std::log(z) + mx - row[target];
    // d loss / d logits = softmax - onehot
    for (size_t j = 0; j < vocab; ++j) row[j] = static_cast<float>(std::exp(static_cast<double>(row[j] - mx)) / z);
    row[target] -= 1.0f;
  }
  std::vector<float> gxf(static_cast<size_t>(m) * d, 0.0f);
  WEFT_RETURN_IF_ERROR(matmul_nn(weights_.output, logits.data(), m, gxf.data(), *team_));
  for (int i = 0; i < m; ++i) {
    const size_t t = static_cast<size_t>(at_[first + i]);
    norm_backward(&h_final_[t * d], weights_.output_norm, rf[i], &gxf[i * d], d, &grad_[t * d]);
  }
  output_done_ += m;
  return Status::ok();
}

Status TrainingPass::layer_backward(int l, LoraAdapter& grads) {
  const llm::ModelConfig& c = config_;
  const int T = tokens();
  const int d = c.d_model, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim, ffn = c.ffn_dim;
  const int group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  weft::ParallelFor& team = *team_;
  const llm::LayerWeights& W = weights_.layers[static_cast<size_t>(l)];
  Layer& L = saved_[static_cast<size_t>(l)];
  auto lora = [&](LoraTarget t) { return adapter_->find(l, t); };
  auto grad = [&](LoraTarget t) {
    return lora(t) ? &grads.layers[static_cast<size_t>(l)][static_cast<size_t>(t)] : nullptr;
  };
  auto u = [&](LoraTarget t) { return L.u[static_cast<int>(t)].data(); };
  std::vector<float> z;

  // The feed-forward block: out = h2 + down(silu(gate) * up).
  std::vector<float> act(static_cast<size_t>(T) * ffn), g_act(act.size(), 0.0f);
  for (size_t j = 0; j < act.size(); ++j) act[j] = silu(L.gate[j]) * L.up[j];
  WEFT_RETURN_IF_ERROR(matmul_nn(W.w_down, grad_.data(), T, g_act.data(), team));
  lora_backward(lora(LoraTarget::kDown), grad(LoraTarget::kDown), act.data(), u(LoraTarget::kDown), grad_.data(), T,
                g_act.data(), z);
  std::vector<float>& g_gate = act;  // reused: act is not needed any more
  std::vector<float> g_up(act.size());
  for (size_t j = 0; j < act.size(); ++j) {
    const float sg = 1.0f / (1.0f + std::exp(-L.gate[j]));
    g_up[j] = g_act[j] * L.gate[j] * sg;
    g_gate[j] = g_act[j] * L.up[j] * sg * (1.0f + L.gate[j] * (1.0f - sg));
  }
  std::vector<float> xn(static_cast<size_t>(T) * d), g_xn(xn.size(), 0.0f);
  for (int t = 0; t < T; ++t) {
    const float r = L.r2[t];
    for (int j = 0; j < d; ++j) xn[t * d + j] = L.h2[t * d + j] * r * W.ffn_norm[j];
  }
  WEFT_RETURN_IF_ERROR(matmul_nn(W.w_gate, g_gate.data(), T, g_xn.data(), team));
  WEFT_RETURN_IF_ERROR(matmul_nn(W.w_up, g_up.data(), T, g_xn.data(), team));
  lora_backward(lora(LoraTarget::kGate), grad(LoraTarget::kGate), xn.data(), u(LoraTarget::kGate), g_gate.data(), T,
                g_xn.data(), z);
  lora_backward(lora(LoraTarget::kUp), grad(LoraTarget::kUp), xn.data(), u(LoraTarget::kUp), g_up.data(), T,
                g_xn.data(), z);
  for (int t = 0; t < T; ++t) norm_backward(&L.h2[t * d], W.ffn_norm, L.r2[t], &g_xn[t * d], d, &grad_[t * d]);

  // The attention block: h2 = h + o(attention(rope(q), rope(k), v)).
  std::vector<float> g_attn(static_cast<size_t>(T) * qd, 0.0f);
  WEFT_RETURN_IF_ERROR(matmul_nn(W.wo, grad_.data(), T, g_attn.data(), team));
  lora_backward(lora(LoraTarget::kO), grad(LoraTarget::kO), L.attn.data(), u(LoraTarget::kO), grad_.data(), T,
                g_attn.data(), z);
  std::vector<float> g_q(static_cast<size_t>(T) * qd, 0.0f), g_k(static_cast<size_t>(T) * kvd, 0.0f),
      g_v(g_k.size(), 0.0f);
  team.parallel_for(c.n_kv_heads, 1, [&](int64_t b, int64_t e, int) {
    std::vector<double> p;
    std::vector<float> gp;
    for (int64_t kh = b; kh < e; ++kh) {
      for (int h = static_cast<int>(kh) * group; h < (static_cast<int>(kh) + 1) * group; ++h) {
        for (int t = 0; t < T; ++t) {
          const float* qh = &L.q[static_cast<size_t>(t) * qd + h * hd];
          const float* go = &g_attn[static_cast<size_t>(t) * qd + h * hd];
          causal_softmax(qh, L.k, kvd, static_cast<int>(kh), hd, t, scale, p);
          gp.resize(p.size());
          double pg = 0;
          for (int j = 0; j <= t; ++j) {
            const float* vj = &L.v[static_cast<size_t>(j) * kvd + kh * hd];
            float s = 0;
            for (int x = 0; x < hd; ++x) s += go[x] * vj[x];
            gp[j] = s;
            pg += p[j] * s;
          }
          float* gq = &g_q[static_cast<size_t>(t) * qd + h * hd];
          for (int j = 0; j <= t; ++j) {
            const float pj = static_cast<float>(p[j]);
            const float ds = static_cast<float>(p[j] * (gp[j] - pg)) * scale;
            const float* kj = &L.k[static_cast<size_t>(j) * kvd + kh * hd];
            float* gk = &g_k[static_cast<size_t>(j) * kvd + kh * hd];
            float* gv = &g_v[static_cast<size_t>(j) * kvd + kh * hd];
            for (int x = 0; x < hd; ++x) {
              gq[x] += ds * kj[x];
              gk[x] += ds * qh[x];
              gv[x] += pj * go[x];
            }
          }
        }
      }
    }
  });
  // Rotation is orthogonal: its gradient rotates back by the opposite angle.
  const cpu::RopeParams& rope = rope_;
  const int half = c.rope_dims / 2;
  std::vector<float> cs(static_cast<size_t>(half)), sn(cs.size());
  for (int t = 0; t < T; ++t) {
    cpu::rope_angles(t, rope, cs.data(), sn.data());
    for (float& s : sn) s = -s;
    cpu::rope_apply(&g_q[static_cast<size_t>(t) * qd], c.n_heads, cs.data(), sn.data(), rope);
    cpu::rope_apply(&g_k[static_cast<size_t>(t) * kvd], c.n_kv_heads, cs.data(), sn.data(), rope);
  }
  std::fill(g_xn.begin(), g_xn.end(), 0.0f);
  for (int t = 0; t < T; ++t) {
    const float r = L.r1[t];
    for (int j = 0; j < d; ++j) xn[t * d + j] = L.h[t * d + j] * r * W.attn_norm[j];
  }
  WEFT_RETURN_IF_ERROR(matmul_nn(W.wq, g_q.data(), T, g_xn.data(), team));
  WEFT_RETURN_IF_ERROR(matmul_nn(W.wk, g_k.data(), T, g_xn.data(), team));
  WEFT_RETURN_IF_ERROR(matmul_nn(W.wv, g_v.data(), T, g_xn.data(), team));
  lora_backward(lora(LoraTarget::kQ), grad(LoraTarget::kQ), xn.data(), u(LoraTarget::kQ), g_q.data(), T, g_xn.data(),
                z);
  lora_backward(lora(LoraTarget::kK), grad(LoraTarget::kK), xn.data(), u(LoraTarget::kK), g_k.data(), T, g_xn.data(),
                z);
  lora_backward(lora(LoraTarget::kV), grad(LoraTarget::kV), xn.data(), u(LoraTarget::kV), g_v.data(), T, g_xn.data(),
                z);
  for (int t = 0; t < T; ++t) norm_backward(&L.h[t * d], W.attn_norm, L.r1[t], &g_xn[t * d], d, &grad_[t * d]);
  return Status::ok();
}

Status TrainingPass::backward(int count, LoraAdapter& grads) {
  if (count < 1) return Status::invalid_argument("backward takes at least one layer");
  if (!forward_done()) return Status::failed_precondition("the forward pass is not done");
  if (done()) return Status::failed_precondition("the backward pass is done");
  if (grads.layers.size() != adapter_->layers.size()) {
    return Status::invalid_argument("the gradients do not have the adapter's shape");
  }
  if (output_left() > 0) WEFT_RETURN_IF_ERROR(output(output_left()));
  for (int k = 0; k < count && !done(); ++k) {
    const int l = layers() - 1 - backwarded_;
    WEFT_RETURN_IF_ERROR(layer_backward(l, grads));
    saved_[static_cast<size_t>(l)] = Layer();  // this layer's activations are no longer needed
    ++backwarded_;
  }
  return Status::ok();
}

}  // namespace weft::finetune
