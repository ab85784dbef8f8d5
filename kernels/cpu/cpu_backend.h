// The CPU backend (backend.h): host memory, and operators made of the reference operators
// (ops.h) and the reference-mode matrix products (matmul.h) — the yardstick every other backend's
// operators are tested against, and a device-neutral forward pass that runs anywhere.
#pragma once

#include "kernels/backend.h"

namespace weft::kernels::cpu {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::kCpu; }
  std::string describe() const override { return "cpu (reference operators)"; }

  Result<Buffer> allocate(size_t bytes) override;
  Result<Buffer> allocate_host(size_t bytes) override { return allocate(bytes); }
  Status upload(const void* src, size_t bytes, Buffer& dst, size_t offset) override;
  Status download(const Buffer& src, size_t offset, size_t bytes, void* dst) override;
  Status copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset, size_t bytes) override;
  Result<Weight> upload_weight(const WeightView& w, bool dense) override;
  void bind_thread() override {}
  Status synchronize() override;
  Status run_recorded(uint64_t key, const std::function<void()>& record) override;
  void drop_recordings() override {}

  void embed(const Weight& table, const int32_t* ids, int n, float* out) override;
  void rms_norm(const float* x, const float* weight, int n, int cols, float eps, float* y) override;
  using Backend::matmul;
  void matmul(std::span<const kernels::MatmulTarget> targets, const float* x, int n, const float* norm, float eps,
              bool accumulate) override;
  void matmul_swiglu(const Weight& gate, const Weight& up, const float* x, int n, const float* norm, float eps,
                     float* y) override;
  void add(float* y, const float* x, int64_t count) override {
    for (int64_t i = 0; i < count; ++i) y[i] += x[i];
  }
  void add_bias(float* x, const float* bias, int n, int cols) override;
  void rope_store(float* q, float* k, const float* v, int n, const int32_t* pos, const int32_t* slot, const Rope& rope,
                  const AttentionShape& shape, KvPool& kv, int layer) override;
  void attention(const float* q, int n, const int32_t* visible_start, const int32_t* visible,
                 const AttentionShape& shape, const KvPool& kv, int layer, float* out) override;
  void gather_rows(const float* x, const int32_t* rows, int n, int cols, float* y) override;
  void argmax(const float* x, int n, int cols, int32_t* out) override;

 private:
  // x, or x RMS-normalised into norm_ when `norm` is given.
  const float* normalised(const float* x, int n, int cols, const float* norm, float eps);
  void fail(Status s) {
    if (error_.is_ok()) error_ = std::move(s);
  }
  Status error_;
  std::vector<float> norm_;
};

}  // namespace weft::kernels::cpu
