#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <cublas_v2.h>
#ifdef WEFT_HAVE_NCCL
#include <nccl.h>
#endif
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "kernels/cuda/launch.h"

namespace weft::kernels::cuda {
namespace {

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::ok();
  return Status::internal(fmt::format("CUDA: {}: {}", what, cudaGetErrorString(e)));
}

// Products of more tokens than this go to cuBLAS on the dense copy.
constexpr int kDenseFrom = 17;

class CudaBackend final : public Backend {
 public:
  CudaBackend() = default;
  ~CudaBackend() override {
    if (profile_ > 0) {
      if (replays_ > 0) {
        std::fprintf(stderr, "cuda backend: %ld recorded-step replays, %.1f us each on the device\n", replays_,
                     1000.0 * replay_ms_ / static_cast<double>(replays_));
      }
      for (const auto& [op, t] : op_time_) {
        std::fprintf(stderr, "cuda backend: %-24s %8ld calls %10.1f us total %8.2f us each\n", op.c_str(), t.first,
                     1000.0 * t.second, 1000.0 * t.second / static_cast<double>(t.first));
      }
      cudaEventDestroy(start_);
      cudaEventDestroy(stop_);
    }
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    if (blas_ != nullptr) cublasDestroy(blas_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status init() {
    WEFT_RETURN_IF_ERROR(cuda_status(cudaGetDevice(&device_), "cudaGetDevice"));
    WEFT_RETURN_IF_ERROR(cuda_status(cudaGetDeviceProperties(&props_, device_), "cudaGetDeviceProperties"));
    WEFT_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
    if (cublasCreate(&blas_) != CUBLAS_STATUS_SUCCESS) return Status::internal("cuBLAS: cannot create a handle");
    cublasSetStream(blas_, stream_);
    // A fixed workspace, so cuBLAS allocates nothing while a graph is being recorded.
    WEFT_ASSIGN_OR_RETURN(blas_workspace_, allocate(32u << 20));
    cublasSetWorkspace(blas_, blas_workspace_.as<void>(), blas_workspace_.bytes());
    // WEFT_CUDA_PROFILE=1: time every replayed step on the device; =2: record nothing and time
    // every operator instead (each waits for the one before). Printed when the backend ends.
    if (const char* p = std::getenv("WEFT_CUDA_PROFILE"); p != nullptr && (*p == '1' || *p == '2')) {
      profile_ = *p - '0';
      cudaEventCreate(&start_);
      cudaEventCreate(&stop_);
    }
    return Status::ok();
  }

  Device device() const override { return Device::kCuda; }
  int device_id() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  std::string describe() const override {
    return fmt::format("cuda:{} {} ({} SMs, {:.0f} GiB)", device_, props_.name, props_.multiProcessorCount,
                       static_cast<double>(props_.totalGlobalMem) / (1u << 30));
  }

  Result<Buffer> allocate(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    if (e != cudaSuccess) {
      cudaGetLastError();
      return Status::resource_exhausted(
          fmt::format("CUDA: cannot allocate {} bytes: {}", bytes, cudaGetErrorString(e)));
    }
    return Buffer(p, bytes, [](void* q) { cudaFree(q); });
  }

  Result<Buffer> allocate_host(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaMallocHost(&p, std::max<size_t>(bytes, 1));
    if (e != cudaSuccess) {
      cudaGetLastError();
      return Status::resource_exhausted(
          fmt::format("CUDA: cannot allocate {} bytes of page-locked memory: {}", bytes, cudaGetErrorString(e)));
    }
    return Buffer(p, bytes, [](void* q) { cudaFreeHost(q); });
  }

  Status upload(const void* src, size_t bytes, Buffer& dst, size_t offset) override {
    if (offset + bytes > dst.bytes()) return Status::invalid_argument("upload past the end of a buffer");
    return cuda_status(cudaMemcpyAsync(dst.as<uint8_t>() + offset, src, bytes, cudaMemcpyHostToDevice, stream_),
                       "upload");
  }

  Status download(const Buffer& src, size_t offset, size_t bytes, void* dst) override {
    if (offset + bytes > src.bytes()) return Status::invalid_argument("download past the end of a buffer");
    WEFT_RETURN_IF_ERROR(cuda_status(
        cudaMemcpyAsync(dst, src.as<uint8_t>() + offset, bytes, cudaMemcpyDeviceToHost, stream_), "download"));
    return synchronize();
  }

  Status copy(const Buffer& src, size_t src_offset, Buffer& dst, size_t dst_offset, size_t bytes) override {
    if (src_offset + bytes > src.bytes() || dst_offset + bytes > dst.bytes()) {
      return Status::invalid_argument("copy past the end of a buffer");
    }
    return cuda_status(cudaMemcpyAsync(dst.as<uint8_t>() + dst_offset, src.as<uint8_t>() + src_offset, bytes,
                                       cudaMemcpyDeviceToDevice, stream_),
                       "device copy");
  }

  Result<Weight> upload_weight(const WeightView& w, bool dense) override {
    Weight out;
    out.type = w.type;
    out.rows = w.rows;
    out.cols = w.cols;
    out.row_bytes = w.row_bytes;
    out.host = w;
    out.host.packed = nullptr;
    const size_t bytes = w.row_bytes * static_cast<size_t>(w.rows);
    WEFT_ASSIGN_OR_RETURN(out.data, allocate(bytes));
    WEFT_RETURN_IF_ERROR(upload(w.data, bytes, out.data, 0));
    if (dense) {
      WEFT_ASSIGN_OR_RETURN(out.dense, allocate(static_cast<size_t>(w.rows) * w.cols * 2));
      if (!launch_dequantize_f16(w.type, out.data.as<uint8_t>(), w.row_bytes, w.rows, w.cols, out.dense.as<uint16_t>(),
                                 stream_)) {
        return Status::invalid_argument(
            fmt::format("CUDA: no kernels for {} weights of {} columns", tensor_type_info(w.type).name, w.cols));
      }
    }
    WEFT_RETURN_IF_ERROR(synchronize());
    if (!has_kernels(w)) {
      return Status::invalid_argument(
          fmt::format("CUDA: no kernels for {} weights of {} columns", tensor_type_info(w.type).name, w.cols));
    }
    return out;
  }

  void bind_thread() override { cudaSetDevice(device_); }

  Status synchronize() override {
    WEFT_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream_), "synchronize"));
    WEFT_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "kernel launch"));
    return take_error();
  }

  Status run_recorded(uint64_t key, const std::function<void()>& record) override {
    auto it = graphs_.find(key);
    if (it != graphs_.end()) {
      if (profile_ == 1) cudaEventRecord(start_, stream_);
      Status s = cuda_status(cudaGraphLaunch(it->second, stream_), "cudaGraphLaunch");
      if (profile_ == 1) {
        cudaEventRecord(stop_, stream_);
        cudaEventSynchronize(stop_);
        float ms = 0;
        cudaEventElapsedTime(&ms, start_, stop_);
        replay_ms_ += ms;
        ++replays_;
      }
      return s;
    }
    // The first time runs eagerly (sizing scratch memory); the second records and keeps a graph.
    if (seen_.insert(key).second || profile_ == 2) {
      record();
      return take_error();
    }
    WEFT_RETURN_IF_ERROR(cuda_status(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "capture"));
    recording_ = true;
    record();
    recording_ = false;
    cudaGraph_t graph = nullptr;
    WEFT_RETURN_IF_ERROR(cuda_status(cudaStreamEndCapture(stream_, &graph), "end capture"));
    if (Status s = take_error(); !s.is_ok()) {
      cudaGraphDestroy(graph);
      return s;
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    WEFT_RETURN_IF_ERROR(cuda_status(e, "cudaGraphInstantiate"));
    graphs_.emplace(key, exec);
    return cuda_status(cudaGraphLaunch(exec, stream_), "cudaGraphLaunch");
  }

  void drop_recordings() override {
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
    seen_.clear();
  }

  void embed(const Weight& table, const int32_t* ids, int n, float* out) override {
    OpTimer timer(this, "embed", n);
    check(launch_embed(table.type, table.data.as<uint8_t>(), table.row_bytes, table.cols, ids, n, out, stream_),
          "embedding", table);
  }

  void rms_norm(const float* x, const float* weight, int n, int cols, float eps, float* y) override {
    OpTimer timer(this, "rms_norm", n);
    launch_rms_norm(x, weight, n, cols, eps, y, stream_);
  }

  using Backend::matmul;
  void matmul(std::span<const MatmulTarget> targets, const float* x, int n, const float* norm, float eps,
              bool accumulate) override {
    if (targets.empty()) return;
    OpTimer timer(this, targets.size() > 1 ? "matmul_qkv" : targets[0].w->rows > 8192 ? "matmul_logits" : "matmul", n);
    const Weight& first = *targets[0].w;
    bool dense = n >= kDenseFrom, shared = targets.size() <= static_cast<size_t>(kMatvecTargets);
    for (const MatmulTarget& t : targets) {
      dense = dense && !t.w->dense.empty();
      shared = shared && t.w->type == first.type && t.w->cols == first.cols && t.w->row_bytes == first.row_bytes;
    }
    if (dense || !shared) {
      // The normalised input once, then one product per matrix.
      if (norm != nullptr) {
        float* xn = scratch_floats(3, static_cast<size_t>(n) * first.cols);
        if (xn == nullptr) return;
        launch_rms_norm(x, norm, n, static_cast<int>(first.cols), eps, xn, stream_);
        x = xn;
      }
      for (const MatmulTarget& t : targets) {
        if (dense) {
          dense_matmul(*t.w, x, n, t.y, accumulate ? 1.0f : 0.0f);
        } else {
          const MatvecTarget one{t.w->data.as<uint8_t>(), t.w->rows, t.y};
          check(launch_matvec(t.w->type, &one, 1, nullptr, t.w->row_bytes, t.w->cols, x, n, nullptr, 0.0f,
                              accumulate ? MatvecOut::kAccumulate : MatvecOut::kStore, stream_),
                "matrix product", *t.w);
        }
      }
      return;
    }
    MatvecTarget m[kMatvecTargets];
    for (size_t k = 0; k < targets.size(); ++k) {
      m[k] = {targets[k].w->data.as<uint8_t>(), targets[k].w->rows, targets[k].y};
    }
    check(launch_matvec(first.type, m, static_cast<int>(targets.size()), nullptr, first.row_bytes, first.cols, x, n,
                        norm, eps, accumulate ? MatvecOut::kAccumulate : MatvecOut::kStore, stream_),
          "matrix product", first);
  }

  void matmul_swiglu(const Weight& gate, const Weight& up, const float* x, int n, const float* norm, float eps,
                     float* y) override {
    OpTimer timer(this, "matmul_swiglu", n);
    if (n >= kDenseFrom && !gate.dense.empty() && !up.dense.empty()) {
      if (norm != nullptr) {
        float* xn = scratch_floats(3, static_cast<size_t>(n) * gate.cols);
        if (xn == nullptr) return;
        launch_rms_norm(x, norm, n, static_cast<int>(gate.cols), eps, xn, stream_);
        x = xn;
      }
      const size_t count = static_cast<size_t>(n) * gate.rows;
      float* g = scratch_floats(0, count);
      float* u = scratch_floats(1, count);
      if (g == nullptr || u == nullptr) return;
      dense_matmul(gate, x, n, g, 0.0f);
      dense_matmul(up, x, n, u, 0.0f);
      launch_swiglu(g, u, static_cast<int64_t>(count), y, stream_);
      return;
    }
    if (gate.type != up.type || gate.rows != up.rows || gate.cols != up.cols) {
      fail("SwiGLU needs gate and up matrices of one type and shape");
      return;
    }
    const MatvecTarget t{gate.data.as<uint8_t>(), gate.rows, y};
    check(launch_matvec(gate.type, &t, 1, up.data.as<uint8_t>(), gate.row_bytes, gate.cols, x, n, norm, eps,
                        MatvecOut::kSwiglu, stream_),
          "SwiGLU product", gate);
  }

  void add(float* y, const float* x, int64_t count) override {
    OpTimer timer(this, "add", 1);
    launch_add(y, x, count, stream_);
  }

  void add_bias(float* x, const float* bias, int n, int cols) override { launch_add_bias(x, bias, n, cols, stream_); }

  void rope_store(float* q, float* k, const float* v, int n, const int32_t* pos, const int32_t* slot, const Rope& rope,
                  const AttentionShape& shape, KvPool& kv, int layer) override {
    OpTimer timer(this, "rope_store", n);
    const size_t layer_offset = static_cast<size_t>(layer) * kv.slots * kv.kv_dim;
    if (!launch_rope_store(q, k, v, n, pos, slot, rope, shape, kv.keys.as<uint16_t>() + layer_offset,
                           kv.values.as<uint16_t>() + layer_offset, stream_)) {
      fail("CUDA: rotary settings without a kernel");
    }
  }

  void attention(const float* q, int n, const int32_t* visible_start, const int32_t* visible,
                 const AttentionShape& shape, const KvPool& kv, int layer, float* out) override {
    OpTimer timer(this, "attention", n);
    const size_t layer_offset = static_cast<size_t>(layer) * kv.slots * kv.kv_dim;
    if (!launch_attention(q, n, visible_start, visible, shape, kv.keys.as<uint16_t>() + layer_offset,
                          kv.values.as<uint16_t>() + layer_offset, out, stream_)) {
      fail(fmt::format("CUDA: no attention kernel for head dimension {} ({} query heads, {} KV heads)", shape.head_dim,
                       shape.n_heads, shape.n_kv_heads));
    }
  }

  void gather_rows(const float* x, const int32_t* rows, int n, int cols, float* y) override {
    OpTimer timer(this, "gather_rows", n);
    launch_gather_rows(x, rows, n, cols, y, stream_);
  }

  void argmax(const float* x, int n, int cols, int32_t* out) override {
    OpTimer timer(this, "argmax", n);
    launch_argmax(x, n, cols, out, stream_);
  }

 private:
  static bool has_kernels(const WeightView& w) {
    switch (w.type) {
      case TensorType::kF32:
      case TensorType::kF16:
      case TensorType::kBF16:
      case TensorType::kQ4_0:
      case TensorType::kQ4_1:
      case TensorType::kQ8_0:
      case TensorType::kQ4_K:
      case TensorType::kQ5_K:
      case TensorType::kQ6_K:
        return w.cols % 8 == 0;
      default:
        return false;
    }
  }

  // y[n][rows] = x[n][cols] . W^T on the fp16 copy: cuBLAS is column-major, so this is
  // Y^T (rows x n) = W (rows x cols, stored as the column-major cols x rows) ^T . X^T.
  void dense_matmul(const Weight& w, const float* x, int n, float* y, float beta) {
    uint16_t* x16 = static_cast<uint16_t*>(scratch(2, static_cast<size_t>(n) * w.cols * 2));
    if (x16 == nullptr) return;
    launch_to_f16(x, static_cast<int64_t>(n) * w.cols, x16, stream_);
    const float alpha = 1.0f;
    const cublasStatus_t s = cublasGemmEx(
        blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), n, static_cast<int>(w.cols), &alpha,
        w.dense.as<void>(), CUDA_R_16F, static_cast<int>(w.cols), x16, CUDA_R_16F, static_cast<int>(w.cols), &beta, y,
        CUDA_R_32F, static_cast<int>(w.rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) fail(fmt::format("cuBLAS: matrix product failed ({})", static_cast<int>(s)));
  }

  // Scratch buffer `which`, grown to at least `bytes`. Growing drops recorded graphs (they hold
  // the old addresses); while recording it cannot grow, and fails the step instead.
  void* scratch(int which, size_t bytes) {
    Buffer& b = scratch_[which];
    if (b.bytes() >= bytes) return b.as<void>();
    if (recording_) {
      fail("CUDA: a recorded step needs more scratch memory than its first run");
      return nullptr;
    }
    cudaStreamSynchronize(stream_);
    Result<Buffer> grown = allocate(bytes * 2);
    if (!grown.ok()) {
      fail(grown.status().message());
      return nullptr;
    }
    b = std::move(grown).value();
    drop_recordings();
    return b.as<void>();
  }
  float* scratch_floats(int which, size_t count) { return static_cast<float*>(scratch(which, count * 4)); }

  void check(bool launched, const char* what, const Weight& w) {
    if (!launched) {
      fail(fmt::format("CUDA: no {} kernel for {} weights of {} columns", what, tensor_type_info(w.type).name, w.cols));
    }
  }
  void fail(std::string message) {
    if (error_.is_ok()) error_ = Status::internal(std::move(message));
  }
  Status take_error() {
    Status s = std::move(error_);
    error_ = Status::ok();
    return s;
  }

  int device_ = 0;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  Buffer blas_workspace_;
  Buffer scratch_[4];  ///< gate, up, fp16 activations, normalised activations
  std::unordered_map<uint64_t, cudaGraphExec_t> graphs_;
  std::unordered_set<uint64_t> seen_;
  bool recording_ = false;
  int profile_ = 0;
  std::map<std::string, std::pair<long, double>> op_time_;  ///< calls and milliseconds per operator

  // Times one operator call when profiling operators (WEFT_CUDA_PROFILE=2).
  class OpTimer {
   public:
    OpTimer(CudaBackend* b, const char* op, int n) : b_(b) {
      if (b_->profile_ != 2) return;
      name_ = fmt::format("{} n={}", op, n == 1 ? "1" : n <= 8 ? "2-8" : n <= 64 ? "9-64" : ">64");
      cudaEventRecord(b_->start_, b_->stream_);
    }
    ~OpTimer() {
      if (b_->profile_ != 2) return;
      cudaEventRecord(b_->stop_, b_->stream_);
      cudaEventSynchronize(b_->stop_);
      float ms = 0;
      cudaEventElapsedTime(&ms, b_->start_, b_->stop_);
      auto& t = b_->op_time_[name_];
      ++t.first;
      t.second += ms;
    }
    OpTimer(const OpTimer&) = delete;
    OpTimer& operator=(const OpTimer&) = delete;

   private:
    CudaBackend* b_;
    std::string name_;
  };
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  double replay_ms_ = 0;
  long replays_ = 0;
  Status error_;  ///< the first operator that could not run since the last synchronize
};

#ifdef WEFT_HAVE_NCCL
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, int rank, int size)
      : comm_(comm), stream_(stream), rank_(rank), size_(size) {}
  ~NcclCommunicator() override { ncclCommDestroy(comm_); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Status all_reduce_sum(float* data, size_t count) override {
    const ncclResult_t r = ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_);
    if (r != ncclSuccess) return Status::internal(fmt::format("NCCL: all-reduce failed: {}", ncclGetErrorString(r)));
    return Status::ok();
  }

 private:
  ncclComm_t comm_;
  cudaStream_t stream_;
  int rank_, size_;
};
#endif

}  // namespace

Result<std::vector<std::unique_ptr<Communicator>>> make_communicators(std::span<Backend* const> backends) {
#ifdef WEFT_HAVE_NCCL
  const int n = static_cast<int>(backends.size());
  std::vector<int> devices;
  for (Backend* b : backends) {
    if (b->device() != Device::kCuda) return Status::invalid_argument("NCCL communicators need CUDA backends");
    devices.push_back(static_cast<CudaBackend*>(b)->device_id());  // checked above: a CudaBackend
  }
  std::vector<ncclComm_t> comms(static_cast<size_t>(n));
  const ncclResult_t r = ncclCommInitAll(comms.data(), n, devices.data());
  if (r != ncclSuccess) {
    return Status::unavailable(
        fmt::format("NCCL: cannot make a group of {} ranks (one GPU each): {}", n, ncclGetErrorString(r)));
  }
  std::vector<std::unique_ptr<Communicator>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<NcclCommunicator>(
        comms[static_cast<size_t>(i)], static_cast<CudaBackend*>(backends[static_cast<size_t>(i)])->stream(), i, n));
  }
  return out;
#else
  (void)backends;
  return Status::unavailable("this build of weft has no NCCL (it was not found at build time)");
#endif
}

bool compiled() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

Result<std::unique_ptr<Backend>> make(int index) {
  const int devices = device_count();
  if (devices == 0) return Status::unavailable("CUDA: no device (or no driver) found");
  if (index < 0 || index >= devices) {
    return Status::unavailable(fmt::format("CUDA: no GPU {} (this machine has {})", index, devices));
  }
  WEFT_RETURN_IF_ERROR(cuda_status(cudaSetDevice(index), "cudaSetDevice"));
  auto b = std::make_unique<CudaBackend>();
  WEFT_RETURN_IF_ERROR(b->init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace weft::kernels::cuda
