#include "llm/device_model.h"

#include <climits>
#include <cmath>
#include <deque>
#include <thread>

#include <fmt/format.h>

namespace weft::llm {

namespace {

// Steps of at most this many tokens are recorded and replayed (decode and small batches); longer
// ones (prefill chunks) run directly, so varying prompt lengths leave no recordings behind.
constexpr int kRecordUpTo = 64;

// Rows [r0, r1) of a matrix: contiguous in the file, viewed in place.
kernels::WeightView row_slice(const kernels::WeightView& w, int64_t r0, int64_t r1) {
  kernels::WeightView v = w;
  v.rows = r1 - r0;
  v.data = w.row(r0);
  v.packed = nullptr;
  return v;
}

// Columns [c0, c1) of every row, copied (a row-parallel matrix's share); whole blocks only.
Result<std::string> column_slice(const kernels::WeightView& w, int64_t c0, int64_t c1) {
  const kernels::TensorTypeInfo& info = kernels::tensor_type_info(w.type);
  if (c0 % info.block_elems != 0 || c1 % info.block_elems != 0) {
    return Status::invalid_argument(fmt::format("cannot split {} columns at {}..{}: {} blocks hold {} values", w.cols,
                                                c0, c1, info.name, info.block_elems));
  }
  const size_t b0 = static_cast<size_t>(c0 / info.block_elems * info.block_bytes);
  const size_t b1 = static_cast<size_t>(c1 / info.block_elems * info.block_bytes);
  std::string out;
  out.reserve(static_cast<size_t>(w.rows) * (b1 - b0));
  for (int64_t r = 0; r < w.rows; ++r) out.append(reinterpret_cast<const char*>(w.row(r)) + b0, b1 - b0);
  return out;
}

// The step's integers, computed once and staged by every rank at its own offsets.
struct StepInts {
  std::vector<int32_t> ids, pos, slot, vstart, logit_rows, visible;
};

}  // namespace

struct DeviceModel::Rank {
  struct Layer {
    kernels::Weight wq, wk, wv, wo, gate, up, down;
    kernels::Buffer attn_norm, ffn_norm, bq, bk, bv;
  };

  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<kernels::Communicator> comm;  ///< null: one rank, no all-reduce
  int index = 0, heads = 0, kv_heads = 0, ffn = 0;
  kernels::Weight token_embd, output;
  kernels::Buffer output_norm, rope_freqs;
  std::vector<Layer> layers;
  std::deque<std::string> host_copies;  ///< column slices (the CPU backend reads them in place)

  int token_cap = 0, logit_cap = 0;
  size_t visible_cap = 0;
  uint64_t generation = 0;  ///< bumped whenever buffers move (recordings hold their addresses)
  kernels::Buffer h, q, k, v, attn, act, part, hl, logits, argmax;
  kernels::Buffer meta;       ///< ids, positions, physical slots, visible starts, logit rows, visible slots
  kernels::Buffer host_meta;  ///< the step's integers staged in fast host memory
  kernels::Buffer host_out;   ///< argmax results staged likewise
  /// Recording keys by (buffer generation, cache id, tokens, logit rows).
  std::map<std::tuple<uint64_t, uint64_t, int, int>, uint64_t> keys;
  Status comm_error;  ///< the first failed all-reduce of the step being run

  Status upload(const ModelConfig& c, const ModelWeights& w, int size);
  Status reserve(const ModelConfig& c, int tokens, int logit_rows, size_t visible);
  void record(const ModelConfig& c, int n, int m, kernels::KvPool& pool);
  /// Sizes the buffers and stages the step's integers (nothing runs yet).
  Status prepare(const ModelConfig& c, const StepInts& s, int n, int m);
  /// Runs the prepared step (recorded or replayed) and fetches its outputs.
  Status run(const ModelConfig& c, int n, int m, kernels::KvPool& pool, uint64_t cache_id,
             std::vector<float>* logits_out, std::vector<int32_t>* argmax_out);
};

// The KV cache's keys and values in the ranks' memory: one pool per rank.
class DeviceModel::Storage final : public KvStorage {
 public:
  explicit Storage(const DeviceModel* model) : owner_(model) {}
  const void* owner() const override { return owner_; }
  Status copy_slot(int from, int to) override {
    for (size_t r = 0; r < pools.size(); ++r) {
      kernels::KvPool& pool = pools[r];
      backends[r]->bind_thread();
      const size_t row = static_cast<size_t>(pool.kv_dim) * 2;
      for (int l = 0; l < pool.n_layers; ++l) {
        const size_t base = static_cast<size_t>(l) * pool.slots;
        WEFT_RETURN_IF_ERROR(backends[r]->copy(pool.keys, (base + from) * row, pool.keys, (base + to) * row, row));
        WEFT_RETURN_IF_ERROR(backends[r]->copy(pool.values, (base + from) * row, pool.values, (base + to) * row, row));
      }
    }
    return Status::ok();
  }
  uint64_t id = 0;
  std::vector<kernels::KvPool> pools;
  std::vector<kernels::Backend*> backends;

 private:
  const DeviceModel* owner_;
};

Status DeviceModel::Rank::upload(const ModelConfig& c, const ModelWeights& weights, int size) {
  kernels::Backend& be = *backend;
  be.bind_thread();
  const int hd = c.head_dim;
  heads = c.n_heads / size;
  kv_heads = c.n_kv_heads / size;
  ffn = c.ffn_dim / size;
  auto floats = [&](const float* host, int count, kernels::Buffer& out) -> Status {
    if (host == nullptr) return Status::ok();
    WEFT_ASSIGN_OR_RETURN(out, be.allocate(static_cast<size_t>(count) * 4));
    return be.upload(host, static_cast<size_t>(count) * 4, out, 0);
  };
  auto matrix = [&](const kernels::WeightView& w, kernels::Weight& out, bool dense) -> Status {
    Result<kernels::Weight> up = be.upload_weight(w, dense);
    if (!up.ok()) {
      return Status(up.status().code(), fmt::format("{} (a {}x{} matrix)", up.status().message(), w.rows, w.cols));
    }
    out = std::move(up).value();
    return Status::ok();
  };
  auto columns = [&](const kernels::WeightView& w, int64_t c0, int64_t c1, kernels::Weight& out) -> Status {
    if (c0 == 0 && c1 == w.cols) return matrix(w, out, true);
    WEFT_ASSIGN_OR_RETURN(std::string bytes, column_slice(w, c0, c1));
    host_copies.push_back(std::move(bytes));
    kernels::WeightView view = w;
    view.cols = c1 - c0;
    view.row_bytes = host_copies.back().size() / static_cast<size_t>(w.rows);
    view.data = reinterpret_cast<const uint8_t*>(host_copies.back().data());
    view.packed = nullptr;
    return matrix(view, out, true);
  };
  const int d = c.d_model;
  const int64_t q0 = static_cast<int64_t>(index) * heads * hd, q1 = q0 + static_cast<int64_t>(heads) * hd;
  const int64_t k0 = static_cast<int64_t>(index) * kv_heads * hd, k1 = k0 + static_cast<int64_t>(kv_heads) * hd;
  const int64_t f0 = static_cast<int64_t>(index) * ffn, f1 = f0 + ffn;
  WEFT_RETURN_IF_ERROR(matrix(weights.token_embd, token_embd, false));
  WEFT_RETURN_IF_ERROR(matrix(weights.output, output, true));
  WEFT_RETURN_IF_ERROR(floats(weights.output_norm, d, output_norm));
  WEFT_RETURN_IF_ERROR(floats(weights.rope_freqs, c.rope_dims / 2, rope_freqs));
  layers.resize(weights.layers.size());
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    const LayerWeights& L = weights.layers[l];
    Layer& D = layers[l];
    WEFT_RETURN_IF_ERROR(matrix(row_slice(L.wq, q0, q1), D.wq, true));
    WEFT_RETURN_IF_ERROR(matrix(row_slice(L.wk, k0, k1), D.wk, true));
    WEFT_RETURN_IF_ERROR(matrix(row_slice(L.wv, k0, k1), D.wv, true));
    WEFT_RETURN_IF_ERROR(columns(L.wo, q0, q1, D.wo));
    WEFT_RETURN_IF_ERROR(matrix(row_slice(L.w_gate, f0, f1), D.gate, true));
    WEFT_RETURN_IF_ERROR(matrix(row_slice(L.w_up, f0, f1), D.up, true));
    WEFT_RETURN_IF_ERROR(columns(L.w_down, f0, f1, D.down));
    WEFT_RETURN_IF_ERROR(floats(L.attn_norm, d, D.attn_norm));
    WEFT_RETURN_IF_ERROR(floats(L.ffn_norm, d, D.ffn_norm));
    WEFT_RETURN_IF_ERROR(floats(L.bq == nullptr ? nullptr : L.bq + q0, static_cast<int>(q1 - q0), D.bq));
    WEFT_RETURN_IF_ERROR(floats(L.bk == nullptr ? nullptr : L.bk + k0, static_cast<int>(k1 - k0), D.bk));
    WEFT_RETURN_IF_ERROR(floats(L.bv == nullptr ? nullptr : L.bv + k0, static_cast<int>(k1 - k0), D.bv));
  }
  WEFT_RETURN_IF_ERROR(be.synchronize());
  return reserve(c, kRecordUpTo, kRecordUpTo, 4096);
}

Status DeviceModel::Rank::reserve(const ModelConfig& c, int tokens, int logit_rows, size_t visible) {
  if (tokens <= token_cap && logit_rows <= logit_cap && visible <= visible_cap) return Status::ok();
  // Grown geometrically, so a context that keeps growing reallocates (and re-records) rarely.
  const int new_tokens = tokens <= token_cap ? token_cap : std::max(tokens, 2 * token_cap);
  const int new_logits = logit_rows <= logit_cap ? logit_cap : std::max(logit_rows, 2 * logit_cap);
  const size_t new_visible = visible <= visible_cap ? visible_cap : std::max(visible, 2 * visible_cap);
  const size_t t = static_cast<size_t>(new_tokens), lr = static_cast<size_t>(new_logits);
  const size_t q_dim = static_cast<size_t>(heads) * c.head_dim, kv_dim = static_cast<size_t>(kv_heads) * c.head_dim;
  const size_t ints = 4 * t + 1 + lr + new_visible;
  // The new buffers first: a failed allocation leaves the old ones (and capacities) in place.
  kernels::Buffer nh, nq, nk, nv, nattn, nact, npart, nhl, nlogits, nargmax, nmeta, nhost_meta, nhost_out;
  auto alloc = [&](kernels::Buffer& b, size_t floats) -> Status {
    WEFT_ASSIGN_OR_RETURN(b, backend->allocate(floats * 4));
    return Status::ok();
  };
  WEFT_RETURN_IF_ERROR(alloc(nh, t * c.d_model));
  WEFT_RETURN_IF_ERROR(alloc(npart, comm ? t * c.d_model : 1));
  WEFT_RETURN_IF_ERROR(alloc(nq, t * q_dim));
  WEFT_RETURN_IF_ERROR(alloc(nattn, t * q_dim));
  WEFT_RETURN_IF_ERROR(alloc(nk, t * kv_dim));
  WEFT_RETURN_IF_ERROR(alloc(nv, t * kv_dim));
  WEFT_RETURN_IF_ERROR(alloc(nact, t * ffn));
  WEFT_RETURN_IF_ERROR(alloc(nhl, lr * c.d_model));
  WEFT_RETURN_IF_ERROR(alloc(nlogits, lr * c.vocab));
  WEFT_RETURN_IF_ERROR(alloc(nargmax, lr));
  WEFT_RETURN_IF_ERROR(alloc(nmeta, ints));
  WEFT_ASSIGN_OR_RETURN(nhost_meta, backend->allocate_host(ints * 4));
  WEFT_ASSIGN_OR_RETURN(nhost_out, backend->allocate_host(lr * 4));
  // Nothing queued may still use the old buffers, and no recording may replay with them.
  (void)backend->synchronize();
  backend->drop_recordings();
  keys.clear();
  ++generation;
  h = std::move(nh), q = std::move(nq), k = std::move(nk), v = std::move(nv), attn = std::move(nattn);
  act = std::move(nact), part = std::move(npart), hl = std::move(nhl), logits = std::move(nlogits);
  argmax = std::move(nargmax), meta = std::move(nmeta), host_meta = std::move(nhost_meta);
  host_out = std::move(nhost_out);
  token_cap = new_tokens;
  logit_cap = new_logits;
  visible_cap = new_visible;
  return Status::ok();
}

void DeviceModel::Rank::record(const ModelConfig& c, int n, int m, kernels::KvPool& pool) {
  kernels::Backend& be = *backend;
  const int d = c.d_model;
  const size_t t = static_cast<size_t>(token_cap);
  const int32_t* ints = meta.as<int32_t>();
  const int32_t *ids = ints, *pos = ints + t, *slot = ints + 2 * t, *vstart = ints + 3 * t;
  const int32_t* logit_rows = vstart + t + 1;
  const int32_t* visible = logit_rows + logit_cap;
  float *hp = h.as<float>(), *qp = q.as<float>(), *kp = k.as<float>(), *vp = v.as<float>();
  float *ap = attn.as<float>(), *fp = act.as<float>(), *pp = part.as<float>();
  const kernels::Rope rope{c.head_dim,
                           c.rope_dims,
                           c.rope_base,
                           1.0f / c.rope_linear_scale,
                           rope_freqs.empty() ? nullptr : rope_freqs.as<float>(),
                           c.rope_style == RopeStyle::kNeox};
  const kernels::AttentionShape shape{heads, kv_heads, c.head_dim, 1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  const int q_dim = heads * c.head_dim, kv_dim = kv_heads * c.head_dim;
  // A row-parallel product: partial sums, summed over the ranks, added to the residual stream.
  auto project = [&](const kernels::Weight& w, const float* x) {
    if (!comm) {
      be.matmul(w, x, n, hp, true);
      return;
    }
    be.matmul(w, x, n, pp, false);
    Status s = comm->all_reduce_sum(pp, static_cast<size_t>(n) * d);
    if (!s.is_ok() && comm_error.is_ok()) comm_error = std::move(s);
    be.add(hp, pp, static_cast<int64_t>(n) * d);
  };

  be.embed(token_embd, ids, n, hp);
  for (int l = 0; l < c.n_layers; ++l) {
    const Layer& L = layers[static_cast<size_t>(l)];
    const kernels::MatmulTarget qkv[] = {{&L.wq, qp}, {&L.wk, kp}, {&L.wv, vp}};
    be.matmul(qkv, hp, n, L.attn_norm.as<float>(), c.rms_eps, false);
    if (!L.bq.empty()) {
      be.add_bias(qp, L.bq.as<float>(), n, q_dim);
      be.add_bias(kp, L.bk.as<float>(), n, kv_dim);
      be.add_bias(vp, L.bv.as<float>(), n, kv_dim);
    }
    be.rope_store(qp, kp, vp, n, pos, slot, rope, shape, pool, l);
    be.attention(qp, n, vstart, visible, shape, pool, l, ap);
    project(L.wo, ap);
    be.matmul_swiglu(L.gate, L.up, hp, n, L.ffn_norm.as<float>(), c.rms_eps, fp);
    project(L.down, fp);
  }
  if (m > 0) {
    be.gather_rows(hp, logit_rows, m, d, hl.as<float>());
    const kernels::MatmulTarget out[] = {{&output, logits.as<float>()}};
    be.matmul(out, hl.as<float>(), m, output_norm.as<float>(), c.rms_eps, false);
    be.argmax(logits.as<float>(), m, c.vocab, argmax.as<int32_t>());
  }
}

Status DeviceModel::Rank::prepare(const ModelConfig& c, const StepInts& s, int n, int m) {
  backend->bind_thread();
  WEFT_RETURN_IF_ERROR(reserve(c, n, std::max(m, 1), s.visible.size()));
  // The step's integers, at fixed places in one buffer (recordings read them from there).
  const size_t t = static_cast<size_t>(token_cap);
  int32_t* ints = host_meta.as<int32_t>();
  std::copy(s.ids.begin(), s.ids.end(), ints);
  std::copy(s.pos.begin(), s.pos.end(), ints + t);
  std::copy(s.slot.begin(), s.slot.end(), ints + 2 * t);
  std::copy(s.vstart.begin(), s.vstart.end(), ints + 3 * t);
  std::copy_n(s.logit_rows.begin(), m, ints + 4 * t + 1);
  std::copy(s.visible.begin(), s.visible.end(), ints + 4 * t + 1 + logit_cap);
  const size_t count = 4 * t + 1 + static_cast<size_t>(logit_cap) + s.visible.size();
  return backend->upload(ints, count * 4, meta, 0);
}

Status DeviceModel::Rank::run(const ModelConfig& c, int n, int m, kernels::KvPool& pool, uint64_t cache_id,
                              std::vector<float>* logits_out, std::vector<int32_t>* argmax_out) {
  backend->bind_thread();
  comm_error = Status::ok();
  auto record_step = [&] { record(c, n, m, pool); };
  Status s;
  if (n <= kRecordUpTo) {
    const uint64_t key = keys.try_emplace({generation, cache_id, n, m}, keys.size()).first->second;
    s = backend->run_recorded(key, record_step);
  } else {
    record_step();
  }
  if (s.is_ok()) s = comm_error;
  if (s.is_ok() && logits_out != nullptr) {
    logits_out->resize(static_cast<size_t>(m) * c.vocab);
    s = backend->download(logits, 0, logits_out->size() * 4, logits_out->data());
  }
  if (s.is_ok() && argmax_out != nullptr) {
    s = backend->download(argmax, 0, static_cast<size_t>(m) * 4, host_out.as<int32_t>());
    if (s.is_ok()) argmax_out->assign(host_out.as<int32_t>(), host_out.as<int32_t>() + m);
  }
  // Every step ends with the queue drained (download() waits too), so the staging buffers and
  // the activations are free for the next one, whatever failed.
  Status drained = backend->synchronize();
  return s.is_ok() ? drained : s;
}

DeviceModel::DeviceModel(const ModelConfig& config) : config_(config) {}
DeviceModel::~DeviceModel() = default;

Result<std::unique_ptr<DeviceModel>> DeviceModel::create(std::unique_ptr<kernels::Backend> backend,
                                                         const ModelConfig& config, const ModelWeights& weights) {
  std::vector<std::unique_ptr<kernels::Backend>> backends;
  backends.push_back(std::move(backend));
  return create(std::move(backends), {}, config, weights);
}

Result<std::unique_ptr<DeviceModel>> DeviceModel::create(
    std::vector<std::unique_ptr<kernels::Backend>> backends,
    std::vector<std::unique_ptr<kernels::Communicator>> communicators, const ModelConfig& config,
    const ModelWeights& weights) {
  const int size = static_cast<int>(backends.size());
  if (size < 1 || (!communicators.empty() && communicators.size() != backends.size()) ||
      (communicators.empty() && size > 1)) {
    return Status::invalid_argument("a device model needs one backend, or one backend and one communicator per rank");
  }
  if (config.n_heads % size != 0 || config.n_kv_heads % size != 0 || config.ffn_dim % size != 0) {
    return Status::invalid_argument(
        fmt::format("cannot split {} heads, {} KV heads and a feed-forward width of {} over {} ranks", config.n_heads,
                    config.n_kv_heads, config.ffn_dim, size));
  }
  std::unique_ptr<DeviceModel> m(new DeviceModel(config));
  for (int r = 0; r < size; ++r) {
    auto rank = std::make_unique<Rank>();
    rank->backend = std::move(backends[static_cast<size_t>(r)]);
    if (!communicators.empty()) rank->comm = std::move(communicators[static_cast<size_t>(r)]);
    rank->index = r;
    WEFT_RETURN_IF_ERROR(rank->upload(config, weights, size));
    m->ranks_.push_back(std::move(rank));
  }
  return m;
}

std::string DeviceModel::describe() const {
  std::string d = ranks_[0]->backend->describe();
  if (ranks_.size() > 1 || ranks_[0]->comm) d += fmt::format(", tensor-parallel over {} ranks", ranks_.size());
  return d;
}

Result<KvCache> DeviceModel::make_cache(int max_tokens, int block_tokens) {
  if (max_tokens < 0 || block_tokens < 1) return Status::invalid_argument("a cache needs tokens >= 0 and blocks >= 1");
  const int64_t blocks64 = (static_cast<int64_t>(max_tokens) + block_tokens - 1) / block_tokens;
  if (blocks64 * block_tokens > INT32_MAX) {
    return Status::resource_exhausted(fmt::format("a cache of {} tokens is too large", max_tokens));
  }
  const int blocks = static_cast<int>(blocks64);
  auto storage = std::make_shared<Storage>(this);
  {
    std::lock_guard<std::mutex> lock(mu_);
    storage->id = next_cache_id_++;
  }
  for (const auto& rank : ranks_) {
    rank->backend->bind_thread();
    kernels::KvPool pool;
    pool.n_layers = config_.n_layers;
    pool.slots = blocks * block_tokens;
    pool.kv_dim = rank->kv_heads * config_.head_dim;
    const size_t bytes = static_cast<size_t>(pool.n_layers) * pool.slots * pool.kv_dim * 2;
    WEFT_ASSIGN_OR_RETURN(pool.keys, rank->backend->allocate(bytes));
    WEFT_ASSIGN_OR_RETURN(pool.values, rank->backend->allocate(bytes));
    storage->pools.push_back(std::move(pool));
    storage->backends.push_back(rank->backend.get());
  }
  return KvCache({config_.n_layers, config_.kv_dim(), block_tokens, blocks, KvCache::Type::kF16}, std::move(storage));
}

KvCache DeviceModel::empty_cache(int block_tokens) {
  auto storage = std::make_shared<Storage>(this);
  return KvCache({config_.n_layers, config_.kv_dim(), block_tokens, 0, KvCache::Type::kF16}, std::move(storage));
}

Status DeviceModel::forward(const Batch& batch, const std::vector<int>& slots,
                            const std::vector<std::vector<int>>& visible_slots, KvCache& kv, std::vector<float>* logits,
                            std::vector<int32_t>* argmax) {
  if (kv.storage() == nullptr || kv.storage()->owner() != this) {
    return Status::invalid_argument("the KV cache was not made by this model (make_cache)");
  }
  auto& storage = static_cast<Storage&>(*kv.storage());  // checked: this model made it
  std::lock_guard<std::mutex> lock(mu_);
  const int n = static_cast<int>(batch.tokens.size());
  StepInts s;
  s.vstart.reserve(static_cast<size_t>(n) + 1);
  for (int i = 0; i < n; ++i) {
    const BatchToken& bt = batch.tokens[i];
    s.ids.push_back(bt.token);
    s.pos.push_back(bt.pos);
    s.slot.push_back(kv.physical_slot(bt.seq, slots[static_cast<size_t>(i)]));
    s.vstart.push_back(static_cast<int32_t>(s.visible.size()));
    for (int v : visible_slots[static_cast<size_t>(i)]) s.visible.push_back(kv.physical_slot(bt.seq, v));
    if (bt.logits) s.logit_rows.push_back(i);
  }
  s.vstart.push_back(static_cast<int32_t>(s.visible.size()));
  const int m = static_cast<int>(s.logit_rows.size());
  if (storage.pools.size() != ranks_.size()) {
    return Status::resource_exhausted("the KV cache has no room (its device memory could not be allocated)");
  }
  // Every rank prepares first, so none starts a step (and waits in an all-reduce) that another
  // cannot run; only the first rank computes the logits.
  for (size_t r = 0; r < ranks_.size(); ++r) WEFT_RETURN_IF_ERROR(ranks_[r]->prepare(config_, s, n, r == 0 ? m : 0));
  if (ranks_.size() == 1) return ranks_[0]->run(config_, n, m, storage.pools[0], storage.id, logits, argmax);
  std::vector<Status> status(ranks_.size());
  std::vector<std::thread> threads;
  for (size_t r = 1; r < ranks_.size(); ++r) {
    threads.emplace_back(
        [&, r] { status[r] = ranks_[r]->run(config_, n, 0, storage.pools[r], storage.id, nullptr, nullptr); });
  }
  status[0] = ranks_[0]->run(config_, n, m, storage.pools[0], storage.id, logits, argmax);
  for (auto& t : threads) t.join();
  for (Status& st : status) WEFT_RETURN_IF_ERROR(st);
  return Status::ok();
}

}  // namespace weft::llm
