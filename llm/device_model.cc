#include "llm/device_model.h"

#include <cmath>

#include <fmt/format.h>

namespace weft::llm {

namespace {

// The KV cache's keys and values in a backend's memory.
class DevicePool final : public KvStorage {
 public:
  DevicePool(const DeviceModel* model, kernels::Backend* be) : owner(model), backend(be) {}
  void copy_slot(int from, int to) override {
    const size_t row = static_cast<size_t>(pool.kv_dim) * 2;
    for (int l = 0; l < pool.n_layers; ++l) {
      const size_t base = static_cast<size_t>(l) * pool.slots;
      (void)backend->copy(pool.keys, (base + from) * row, pool.keys, (base + to) * row, row);
      (void)backend->copy(pool.values, (base + from) * row, pool.values, (base + to) * row, row);
    }
  }
  const DeviceModel* owner;
  kernels::Backend* backend;
  uint64_t id = 0;
  kernels::KvPool pool;
};

// Steps of at most this many tokens are recorded and replayed (decode and small batches); longer
// ones (prefill chunks) run directly, so varying prompt lengths leave no recordings behind.
constexpr int kRecordUpTo = 64;

}  // namespace

DeviceModel::DeviceModel(std::unique_ptr<kernels::Backend> backend, const ModelConfig& config)
    : backend_(std::move(backend)), config_(config) {}
DeviceModel::~DeviceModel() = default;

Result<std::unique_ptr<DeviceModel>> DeviceModel::create(std::unique_ptr<kernels::Backend> backend,
                                                         const ModelConfig& config, const ModelWeights& weights) {
  std::unique_ptr<DeviceModel> m(new DeviceModel(std::move(backend), config));
  kernels::Backend& be = *m->backend_;
  auto floats = [&](const float* host, int count, kernels::Buffer& out) -> Status {
    if (host == nullptr) return Status::ok();
    WEFT_ASSIGN_OR_RETURN(out, be.allocate(static_cast<size_t>(count) * 4));
    return be.upload(host, static_cast<size_t>(count) * 4, out, 0);
  };
  auto matrix = [&](const kernels::WeightView& w, kernels::Weight& out, bool dense) -> Status {
    Result<kernels::Weight> up = be.upload_weight(w, dense);
    if (!up.ok())
      return Status(up.status().code(), fmt::format("{} (a {}x{} matrix)", up.status().message(), w.rows, w.cols));
    out = std::move(up).value();
    return Status::ok();
  };
  const int d = config.d_model;
  WEFT_RETURN_IF_ERROR(matrix(weights.token_embd, m->token_embd_, false));
  WEFT_RETURN_IF_ERROR(matrix(weights.output, m->output_, true));
  WEFT_RETURN_IF_ERROR(floats(weights.output_norm, d, m->output_norm_));
  WEFT_RETURN_IF_ERROR(floats(weights.rope_freqs, config.rope_dims / 2, m->rope_freqs_));
  m->layers_.resize(weights.layers.size());
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    const LayerWeights& L = weights.layers[l];
    Layer& D = m->layers_[l];
    WEFT_RETURN_IF_ERROR(matrix(L.wq, D.wq, true));
    WEFT_RETURN_IF_ERROR(matrix(L.wk, D.wk, true));
    WEFT_RETURN_IF_ERROR(matrix(L.wv, D.wv, true));
    WEFT_RETURN_IF_ERROR(matrix(L.wo, D.wo, true));
    WEFT_RETURN_IF_ERROR(matrix(L.w_gate, D.gate, true));
    WEFT_RETURN_IF_ERROR(matrix(L.w_up, D.up, true));
    WEFT_RETURN_IF_ERROR(matrix(L.w_down, D.down, true));
    WEFT_RETURN_IF_ERROR(floats(L.attn_norm, d, D.attn_norm));
    WEFT_RETURN_IF_ERROR(floats(L.ffn_norm, d, D.ffn_norm));
    WEFT_RETURN_IF_ERROR(floats(L.bq, config.q_dim(), D.bq));
    WEFT_RETURN_IF_ERROR(floats(L.bk, config.kv_dim(), D.bk));
    WEFT_RETURN_IF_ERROR(floats(L.bv, config.kv_dim(), D.bv));
  }
  WEFT_RETURN_IF_ERROR(be.synchronize());
  WEFT_RETURN_IF_ERROR(m->reserve(kRecordUpTo, kRecordUpTo, 4096));
  return m;
}

Result<KvCache> DeviceModel::make_cache(int max_tokens, int block_tokens) {
  const int blocks = (max_tokens + block_tokens - 1) / block_tokens;
  auto storage = std::make_shared<DevicePool>(this, backend_.get());
  {
    std::lock_guard<std::mutex> lock(mu_);
    storage->id = next_cache_id_++;
  }
  kernels::KvPool& pool = storage->pool;
  pool.n_layers = config_.n_layers;
  pool.slots = blocks * block_tokens;
  pool.kv_dim = config_.kv_dim();
  const size_t bytes = static_cast<size_t>(pool.n_layers) * pool.slots * pool.kv_dim * 2;
  WEFT_ASSIGN_OR_RETURN(pool.keys, backend_->allocate(bytes));
  WEFT_ASSIGN_OR_RETURN(pool.values, backend_->allocate(bytes));
  return KvCache({config_.n_layers, config_.kv_dim(), block_tokens, blocks, KvCache::Type::kF16}, std::move(storage));
}

Status DeviceModel::reserve(int tokens, int logit_rows, size_t visible) {
  if (tokens <= token_cap_ && logit_rows <= logit_cap_ && visible <= visible_cap_) return Status::ok();
  backend_->drop_recordings();
  ++generation_;
  token_cap_ = std::max(token_cap_, tokens);
  logit_cap_ = std::max(logit_cap_, logit_rows);
  visible_cap_ = std::max(visible_cap_, visible);
  const ModelConfig& c = config_;
  const size_t t = static_cast<size_t>(token_cap_);
  auto alloc = [&](kernels::Buffer& b, size_t floats) -> Status {
    b = kernels::Buffer();
    WEFT_ASSIGN_OR_RETURN(b, backend_->allocate(floats * 4));
    return Status::ok();
  };
  WEFT_RETURN_IF_ERROR(alloc(h_, t * c.d_model));
  WEFT_RETURN_IF_ERROR(alloc(q_, t * c.q_dim()));
  WEFT_RETURN_IF_ERROR(alloc(attn_, t * c.q_dim()));
  WEFT_RETURN_IF_ERROR(alloc(k_, t * c.kv_dim()));
  WEFT_RETURN_IF_ERROR(alloc(v_, t * c.kv_dim()));
  WEFT_RETURN_IF_ERROR(alloc(act_, t * c.ffn_dim));
  WEFT_RETURN_IF_ERROR(alloc(hl_, static_cast<size_t>(logit_cap_) * c.d_model));
  WEFT_RETURN_IF_ERROR(alloc(logits_, static_cast<size_t>(logit_cap_) * c.vocab));
  WEFT_RETURN_IF_ERROR(alloc(argmax_, static_cast<size_t>(logit_cap_)));
  const size_t meta = 4 * t + 1 + static_cast<size_t>(logit_cap_) + visible_cap_;
  WEFT_RETURN_IF_ERROR(alloc(meta_, meta));
  host_meta_ = kernels::Buffer();
  WEFT_ASSIGN_OR_RETURN(host_meta_, backend_->allocate_host(meta * 4));
  host_out_ = kernels::Buffer();
  WEFT_ASSIGN_OR_RETURN(host_out_, backend_->allocate_host(static_cast<size_t>(logit_cap_) * 4));
  return Status::ok();
}

void DeviceModel::record(int n, int m, KvCache& kv) {
  kernels::Backend& be = *backend_;
  const ModelConfig& c = config_;
  const int d = c.d_model;
  kernels::KvPool& pool = static_cast<DevicePool*>(kv.storage())->pool;
  const size_t t = static_cast<size_t>(token_cap_);
  const int32_t* meta = meta_.as<int32_t>();
  const int32_t *ids = meta, *pos = meta + t, *slot = meta + 2 * t, *vstart = meta + 3 * t;
  const int32_t* logit_rows = vstart + t + 1;
  const int32_t* visible = logit_rows + logit_cap_;
  float *h = h_.as<float>(), *q = q_.as<float>(), *k = k_.as<float>(), *v = v_.as<float>();
  float *attn = attn_.as<float>(), *act = act_.as<float>();
  const kernels::Rope rope{c.head_dim,
                           c.rope_dims,
                           c.rope_base,
                           1.0f / c.rope_linear_scale,
                           rope_freqs_.empty() ? nullptr : rope_freqs_.as<float>(),
                           c.rope_style == RopeStyle::kNeox};
  const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim,
                                      1.0f / std::sqrt(static_cast<float>(c.head_dim))};

  be.embed(token_embd_, ids, n, h);
  for (int l = 0; l < c.n_layers; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    const kernels::MatmulTarget qkv[] = {{&L.wq, q}, {&L.wk, k}, {&L.wv, v}};
    be.matmul(qkv, h, n, L.attn_norm.as<float>(), c.rms_eps, false);
    if (!L.bq.empty()) {
      be.add_bias(q, L.bq.as<float>(), n, c.q_dim());
      be.add_bias(k, L.bk.as<float>(), n, c.kv_dim());
      be.add_bias(v, L.bv.as<float>(), n, c.kv_dim());
    }
    be.rope_store(q, k, v, n, pos, slot, rope, shape, pool, l);
    be.attention(q, n, vstart, visible, shape, pool, l, attn);
    be.matmul(L.wo, attn, n, h, true);
    be.matmul_swiglu(L.gate, L.up, h, n, L.ffn_norm.as<float>(), c.rms_eps, act);
    be.matmul(L.down, act, n, h, true);
  }
  if (m > 0) {
    be.gather_rows(h, logit_rows, m, d, hl_.as<float>());
    const kernels::MatmulTarget out[] = {{&output_, logits_.as<float>()}};
    be.matmul(out, hl_.as<float>(), m, output_norm_.as<float>(), c.rms_eps, false);
    be.argmax(logits_.as<float>(), m, c.vocab, argmax_.as<int32_t>());
  }
}

Status DeviceModel::forward(const Batch& batch, const std::vector<int>& slots,
                            const std::vector<std::vector<int>>& visible_slots, KvCache& kv, std::vector<float>* logits,
                            std::vector<int32_t>* argmax) {
  auto* storage = dynamic_cast<DevicePool*>(kv.storage());
  if (storage == nullptr || storage->owner != this) {
    return Status::invalid_argument("the KV cache was not made by this model (make_cache)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  const int n = static_cast<int>(batch.tokens.size());
  int m = 0;
  size_t visible = 0;
  for (int i = 0; i < n; ++i) {
    m += batch.tokens[i].logits ? 1 : 0;
    visible += visible_slots[static_cast<size_t>(i)].size();
  }
  WEFT_RETURN_IF_ERROR(reserve(n, m, visible));
  // The step's integers, at fixed places in one buffer (recordings read them from there).
  const size_t t = static_cast<size_t>(token_cap_);
  const size_t meta = 4 * t + 1 + static_cast<size_t>(logit_cap_) + visible;
  int32_t* ids = host_meta_.as<int32_t>();
  int32_t *pos = ids + t, *slot = ids + 2 * t, *vstart = ids + 3 * t;
  int32_t* logit_rows = vstart + t + 1;
  int32_t* vis = logit_rows + logit_cap_;
  int row = 0, at = 0;
  for (int i = 0; i < n; ++i) {
    const BatchToken& bt = batch.tokens[i];
    ids[i] = bt.token;
    pos[i] = bt.pos;
    slot[i] = kv.physical_slot(bt.seq, slots[static_cast<size_t>(i)]);
    vstart[i] = at;
    for (int s : visible_slots[static_cast<size_t>(i)]) vis[at++] = kv.physical_slot(bt.seq, s);
    if (bt.logits) logit_rows[row++] = i;
  }
  vstart[n] = at;
  WEFT_RETURN_IF_ERROR(backend_->upload(ids, meta * 4, meta_, 0));
  auto run = [&] { record(n, m, kv); };
  if (n <= kRecordUpTo) {
    const uint64_t key = keys_.try_emplace({generation_, storage->id, n, m}, keys_.size()).first->second;
    WEFT_RETURN_IF_ERROR(backend_->run_recorded(key, run));
  } else {
    run();
  }
  if (logits != nullptr) {
    logits->resize(static_cast<size_t>(m) * config_.vocab);
    WEFT_RETURN_IF_ERROR(backend_->download(logits_, 0, logits->size() * 4, logits->data()));
  }
  if (argmax != nullptr) {
    WEFT_RETURN_IF_ERROR(backend_->download(argmax_, 0, static_cast<size_t>(m) * 4, host_out_.as<int32_t>()));
    argmax->assign(host_out_.as<int32_t>(), host_out_.as<int32_t>() + m);
  }
  // download() waited for the step and reported its faults.
  return logits != nullptr || argmax != nullptr ? Status::ok() : backend_->synchronize();
}

}  // namespace weft::llm
