#include "kernels/cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu/half.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"

namespace weft::kernels::cpu {
namespace {

const MatmulContext kReference{nullptr, &fast_kernels(), false};

}  // namespace

Result<Buffer> CpuBackend::allocate(size_t bytes) {
  void* p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
  if (p == nullptr) return Status::resource_exhausted("cannot allocate " + std::to_string(bytes) + " bytes");
  return Buffer(p, bytes, [](void* q) { std::free(q); });
}

Status CpuBackend::upload(const void* src, size_t bytes, Buffer& dst, size_t offset) {
  if (offset + bytes > dst.bytes()) return Status::invalid_argument("upload past the end of a buffer");
  std::memcpy(dst.as<uint8_t>() + offset, src, bytes);
  return Status::ok();
}

Status CpuBackend::download(const Buffer& src, size_t offset, size_t bytes, void* dst) {
  if (offset + bytes > src.bytes()) return Status::invalid_argument("download past the end of a buffer");
  std::memcpy(dst, src.as<uint8_t>() + offset, bytes);
  return synchronize();
}

Status CpuBackend::copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset, size_t bytes) {
  if (src_offset + bytes > src.bytes() || dst_offset + bytes > dst.bytes()) {
    return Status::invalid_argument("copy past the end of a buffer");
  }
  std::memmove(dst.as<uint8_t>() + dst_offset, src.as<uint8_t>() + src_offset, bytes);
  return Status::ok();
}

Result<Weight> CpuBackend::upload_weight(const WeightView& w, bool /*dense*/) {
  Weight out;
  out.type = w.type;
  out.rows = w.rows;
  out.cols = w.cols;
  out.row_bytes = w.row_bytes;
  out.host = w;  // the file's mapping is host memory already
  out.host.packed = nullptr;
  return out;
}

Status CpuBackend::synchronize() {
  Status s = std::move(error_);
  error_ = Status::ok();
  return s;
}

Status CpuBackend::run_recorded(uint64_t /*key*/, const std::function<void()>& record) {
  record();
  return synchronize();
}

void CpuBackend::embed(const Weight& table, const int32_t* ids, int n, float* out) {
  for (int i = 0; i < n; ++i) {
    Status s = weight_row(table.host, ids[i], out + static_cast<size_t>(i) * table.cols);
    if (!s.is_ok()) fail(std::move(s));
  }
}

void CpuBackend::rms_norm(const float* x, const float* weight, int n, int cols, float eps, float* y) {
  for (int i = 0; i < n; ++i) {
    cpu::rms_norm(x + static_cast<size_t>(i) * cols, weight, cols, eps, y + static_cast<size_t>(i) * cols);
  }
}

const float* CpuBackend::normalised(const float* x, int n, int cols, const float* norm, float eps) {
  if (norm == nullptr) return x;
  norm_.resize(static_cast<size_t>(n) * cols);
  rms_norm(x, norm, n, cols, eps, norm_.data());
  return norm_.data();
}

void CpuBackend::matmul(std::span<const kernels::MatmulTarget> targets, const float* x, int n, const float* norm,
                        float eps, bool accumulate) {
  if (targets.empty()) return;
  x = normalised(x, n, static_cast<int>(targets[0].w->cols), norm, eps);
  for (const kernels::MatmulTarget& t : targets) {
    const Weight& w = *t.w;
    if (!accumulate) {
      if (Status s = cpu::matmul(w.host, x, n, t.y, kReference); !s.is_ok()) fail(std::move(s));
      continue;
    }
    std::vector<float> tmp(static_cast<size_t>(n) * w.rows);
    if (Status s = cpu::matmul(w.host, x, n, tmp.data(), kReference); !s.is_ok()) fail(std::move(s));
    for (size_t j = 0; j < tmp.size(); ++j) t.y[j] += tmp[j];
  }
}

void CpuBackend::matmul_swiglu(const Weight& gate, const Weight& up, const float* x, int n, const float* norm,
                               float eps, float* y) {
  x = normalised(x, n, static_cast<int>(gate.cols), norm, eps);
  std::vector<float> g(static_cast<size_t>(n) * gate.rows), u(g.size());
  if (Status s = cpu::matmul(gate.host, x, n, g.data(), kReference); !s.is_ok()) fail(std::move(s));
  if (Status s = cpu::matmul(up.host, x, n, u.data(), kReference); !s.is_ok()) fail(std::move(s));
  silu_mul(g.data(), u.data(), y, static_cast<int64_t>(g.size()));
}

void CpuBackend::add_bias(float* x, const float* bias, int n, int cols) {
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < cols; ++j) x[static_cast<size_t>(i) * cols + j] += bias[j];
  }
}

void CpuBackend::rope_store(float* q, float* k, const float* v, int n, const int32_t* pos, const int32_t* slot,
                            const Rope& rope, const AttentionShape& shape, KvPool& kv, int layer) {
  const RopeParams p{rope.head_dim, rope.rope_dims, rope.base, rope.freq_scale, rope.freq_factors, rope.neox};
  std::vector<float> cs(static_cast<size_t>(rope.rope_dims / 2)), sn(cs.size());
  const int qd = shape.n_heads * shape.head_dim, kvd = kv.kv_dim;
  for (int i = 0; i < n; ++i) {
    rope_angles(pos[i], p, cs.data(), sn.data());
    rope_apply(q + static_cast<size_t>(i) * qd, shape.n_heads, cs.data(), sn.data(), p);
    float* ki = k + static_cast<size_t>(i) * kvd;
    rope_apply(ki, shape.n_kv_heads, cs.data(), sn.data(), p);
    const size_t at = (static_cast<size_t>(layer) * kv.slots + slot[i]) * kvd;
    const float* vi = v + static_cast<size_t>(i) * kvd;
    for (int j = 0; j < kvd; ++j) {
      kv.keys.as<uint16_t>()[at + j] = fp32_to_fp16(ki[j]);
      kv.values.as<uint16_t>()[at + j] = fp32_to_fp16(vi[j]);
    }
  }
}

void CpuBackend::attention(const float* q, int n, const int32_t* visible_start, const int32_t* visible,
                           const AttentionShape& shape, const KvPool& kv, int layer, float* out) {
  const int hd = shape.head_dim, group = shape.n_heads / shape.n_kv_heads;
  std::vector<float> keys, values;
  std::vector<const float*> kp, vp;
  for (int i = 0; i < n; ++i) {
    const int count = visible_start[i + 1] - visible_start[i];
    keys.resize(static_cast<size_t>(count) * kv.kv_dim);
    values.resize(keys.size());
    for (int j = 0; j < count; ++j) {
      const size_t at = (static_cast<size_t>(layer) * kv.slots + visible[visible_start[i] + j]) * kv.kv_dim;
      for (int e = 0; e < kv.kv_dim; ++e) {
        keys[static_cast<size_t>(j) * kv.kv_dim + e] = fp16_to_fp32(kv.keys.as<uint16_t>()[at + e]);
        values[static_cast<size_t>(j) * kv.kv_dim + e] = fp16_to_fp32(kv.values.as<uint16_t>()[at + e]);
      }
    }
    kp.resize(static_cast<size_t>(count));
    vp.resize(kp.size());
    for (int h = 0; h < shape.n_heads; ++h) {
      const int kvh = h / group;
      for (int j = 0; j < count; ++j) {
        kp[j] = &keys[static_cast<size_t>(j) * kv.kv_dim + kvh * hd];
        vp[j] = &values[static_cast<size_t>(j) * kv.kv_dim + kvh * hd];
      }
      const size_t at = (static_cast<size_t>(i) * shape.n_heads + h) * hd;
      cpu::attention(q + at, kp.data(), vp.data(), count, hd, shape.scale, out + at);
    }
  }
}

void CpuBackend::gather_rows(const float* x, const int32_t* rows, int n, int cols, float* y) {
  for (int i = 0; i < n; ++i) {
    std::memcpy(y + static_cast<size_t>(i) * cols, x + static_cast<size_t>(rows[i]) * cols, sizeof(float) * cols);
  }
}

void CpuBackend::argmax(const float* x, int n, int cols, int32_t* out) {
  for (int i = 0; i < n; ++i) {
    const float* row = x + static_cast<size_t>(i) * cols;
    int best = 0;
    for (int j = 1; j < cols; ++j) {
      if (row[j] > row[best]) best = j;
    }
    out[i] = best;
  }
}

}  // namespace weft::kernels::cpu
