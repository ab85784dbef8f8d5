// The device-neutral operator interface: memory that lives on a device, and the operators a
// Llama-family forward pass and greedy sampling need, each one virtual call. A backend runs its
// operators in order on one queue (a CUDA stream; the calling thread on the CPU); pointers passed
// to an operator are the backend's own memory (Buffer::as), and results are visible to the next
// operator. download() waits for everything before it.
//
//   std::unique_ptr<Backend> be = make_backend(Device::kCuda).value();
//   Weight w = be->upload_weight(view, /*dense=*/true).value();
//   Buffer x = be->allocate(n * cols * 4).value(), y = be->allocate(n * rows * 4).value();
//   be->matmul(w, x.as<float>(), n, y.as<float>(), /*accumulate=*/false);
//
// Adding an operator: a method here, its CPU version in cpu/cpu_backend.cc, and for CUDA one
// kernel file in cuda/ with its launcher in cuda/launch.h; backend_test.cc checks every backend's
// every operator against the CPU reference operators (cpu/ops.h) on random inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/op_params.h"
#include "kernels/weight_view.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::kernels {

/// Where a backend computes.
enum class Device { kCpu, kCuda };
/// "cpu" or "cuda".
WEFT_API std::string_view device_name(Device d);
/// Parses "cpu" / "cuda"; kInvalidArgument otherwise.
WEFT_API Result<Device> parse_device(std::string_view name);

/// Memory on a backend's device, freed by the function it was made with. Move-only.
class Buffer {
 public:
  Buffer() = default;
  Buffer(void* data, size_t bytes, std::function<void(void*)> free)
      : data_(data), bytes_(bytes), free_(std::move(free)) {}
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = o.data_;
      bytes_ = o.bytes_;
      free_ = std::move(o.free_);
      o.data_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }

 private:
  void reset() {
    if (data_ != nullptr && free_) free_(data_);
    data_ = nullptr;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::function<void(void*)> free_;
};

/// A weight matrix uploaded to a backend: the rows as stored in the file (WeightView's layout),
/// and optionally a dense copy the backend multiplies many tokens with (fp16 on CUDA).
struct Weight {
  TensorType type = TensorType::kF32;
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;
  Buffer data;
  Buffer dense;
  /// The host view it came from (the CPU backend computes on it in place).
  WeightView host;
};

/// The paged KV cache's storage on a backend: per layer, `slots` slots of `kv_dim` fp16 keys and
/// as many values; a slot is `block * block_tokens + offset` (KvCache::physical_slot).
struct KvPool {
  int n_layers = 0, slots = 0, kv_dim = 0;
  Buffer keys, values;  ///< [layer][slot][kv_dim] IEEE halves
};

/// One matrix of a product and where its outputs go ([tokens][w->rows]).
struct MatmulTarget {
  const Weight* w;
  float* y;
};

/// The operators (see the top of this file). All sizes are in elements; "rows" of activations
/// are tokens, each `cols` floats.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  /// A one-line description (device name, memory).
  virtual std::string describe() const = 0;

  // --- memory ---------------------------------------------------------------------------------
  /// `bytes` of device memory (uninitialised); kResourceExhausted when the device has no room.
  virtual Result<Buffer> allocate(size_t bytes) = 0;
  /// `bytes` of host memory the device copies to and from fastest (page-locked on CUDA): staging
  /// for the small per-step uploads and downloads.
  virtual Result<Buffer> allocate_host(size_t bytes) = 0;
  /// Copies host memory into `dst` at `offset`; the host memory may be reused on return, except
  /// memory from allocate_host, which must stay unchanged until the next download or synchronize.
  virtual Status upload(const void* src, size_t bytes, Buffer& dst, size_t offset = 0) = 0;
  /// Waits for queued operators, then copies `bytes` from `src` at `offset` to host memory.
  virtual Status download(const Buffer& src, size_t offset, size_t bytes, void* dst) = 0;
  /// Copies `bytes` between (or within) buffers on the device, in queue order.
  virtual Status copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset, size_t bytes) = 0;
  /// Uploads a weight matrix (and a dense copy when `dense` and the backend keeps one).
  virtual Result<Weight> upload_weight(const WeightView& w, bool dense) = 0;
  /// Makes the calling thread use this backend's device (each thread that calls a backend on a
  /// machine with several GPUs does so first).
  virtual void bind_thread() = 0;
  /// Waits for every queued operator; reports an asynchronous device fault.
  virtual Status synchronize() = 0;
  /// Runs `record` — a fixed sequence of operators whose arguments live in backend memory —
  /// replaying a recording made the first time under the same `key` where the backend can (CUDA
  /// graphs), else calling it. Operators inside must not depend on host values that change
  /// between calls with the same key.
  virtual Status run_recorded(uint64_t key, const std::function<void()>& record) = 0;
  /// Forgets every recording (call before freeing memory that recorded operators use).
  virtual void drop_recordings() = 0;

  // --- operators ------------------------------------------------------------------------------
  /// out[i] = row ids[i] of `table` as floats (i < n).
  virtual void embed(const Weight& table, const int32_t* ids, int n, float* out) = 0;
  /// y[i] = rms_norm(x[i]) * weight over `cols` values (cpu::rms_norm), i < n.
  virtual void rms_norm(const float* x, const float* weight, int n, int cols, float eps, float* y) = 0;
  /// For every target: y[i][r] (+)= dot(w row r, x'[i]) for n rows of x (w.cols each), where x' is
  /// x, or rms_norm(x) * norm (as rms_norm above) when `norm` is given — the products that share
  /// one input (q, k and v) as one step, the normalisation fused in where the backend can.
  virtual void matmul(std::span<const MatmulTarget> targets, const float* x, int n, const float* norm, float eps,
                      bool accumulate) = 0;
  /// One matrix, no normalisation.
  void matmul(const Weight& w, const float* x, int n, float* y, bool accumulate) {
    const MatmulTarget t{&w, y};
    matmul(std::span<const MatmulTarget>(&t, 1), x, n, nullptr, 0.0f, accumulate);
  }
  /// y[i][r] = silu(dot(gate row r, x'[i])) * dot(up row r, x'[i]), x' as for matmul.
  virtual void matmul_swiglu(const Weight& gate, const Weight& up, const float* x, int n, const float* norm, float eps,
                             float* y) = 0;
  /// y[i] += x[i] for i < count.
  virtual void add(float* y, const float* x, int64_t count) = 0;
  /// Adds `bias` ([cols]) to each of n rows of x (qwen2's q/k/v biases).
  virtual void add_bias(float* x, const float* bias, int n, int cols) = 0;
  /// Rotates q ([n][n_heads][head_dim]) and k ([n][n_kv_heads][head_dim]) for positions pos[i],
  /// then stores k and v ([n][kv_dim]) as halves into `layer`'s slots slot[i] of the pool.
  virtual void rope_store(float* q, float* k, const float* v, int n, const int32_t* pos, const int32_t* slot,
                          const Rope& rope, const AttentionShape& shape, KvPool& kv, int layer) = 0;
  /// For each token i < n: out[i][h] = softmax(q[i][h] . key_j * scale) . value_j over the slots
  /// j in visible[visible_start[i] .. visible_start[i + 1]) of `layer` (grouped-query heads).
  virtual void attention(const float* q, int n, const int32_t* visible_start, const int32_t* visible,
                         const AttentionShape& shape, const KvPool& kv, int layer, float* out) = 0;
  /// y[i] = x[rows[i]], i < n, rows of `cols` floats.
  virtual void gather_rows(const float* x, const int32_t* rows, int n, int cols, float* y) = 0;
  /// out[i] = the index of the largest of row i's `cols` values (the first on ties).
  virtual void argmax(const float* x, int n, int cols, int32_t* out) = 0;
};

/// Whether a backend for `d` is compiled in and finds a device.
WEFT_API bool backend_available(Device d);
/// A backend on device `d` (CUDA: GPU `index`; CPU backends all compute on the host, whatever the
/// index). kUnavailable says why not.
WEFT_API Result<std::unique_ptr<Backend>> make_backend(Device d, int index = 0);

}  // namespace weft::kernels
