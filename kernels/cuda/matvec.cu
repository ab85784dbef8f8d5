// Matrices times a few tokens (decode, small batches): each warp owns one weight row, dequantizes
// its blocks in registers and multiplies them with every token's activations (held in shared
// memory), so each weight byte is read from memory once per group of tokens — the memory-bound
// regime llama.cpp's mmvq kernels target. One launch serves up to three matrices that share the
// input (q, k and v), may normalise the input first (RMSNorm fused in: every block renormalises
// its copy, cheaper than a launch), and ends by storing, accumulating into y (the residual
// stream), or SwiGLU of two matrices read side by side.
#include <map>
#include <mutex>
#include <utility>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/quant.cuh"

namespace weft::kernels::cuda {
namespace {

constexpr int kWarps = 4;

// Dynamic shared memory a block may take on the current device (its opt-in limit, less room for
// the kernel's static share), raised once per device and kernel.
int max_shared(const void* kernel) {
  static std::mutex mu;
  static std::map<std::pair<int, const void*>, int> limit;
  int device = 0;
  cudaGetDevice(&device);
  std::lock_guard<std::mutex> lock(mu);
  auto [it, added] = limit.try_emplace({device, kernel}, 0);
  if (added) {
    int optin = 0;
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    const int bytes = std::max(48 * 1024, optin - 1024);
    it->second = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) == cudaSuccess
                     ? bytes
                     : 47 * 1024;
    cudaGetLastError();
  }
  return it->second;
}

struct Args {
  const uint8_t* w[kMatvecTargets];
  float* y[kMatvecTargets];
  int rows[kMatvecTargets];
  int first_block[kMatvecTargets + 1];  // blocks of target k: [first_block[k], first_block[k + 1])
  int count;
  const uint8_t* up;  // SwiGLU's second matrix (same shape as w[0])
  size_t row_bytes;
  int cols;
  const float* x;
  int n;
  int per_block;  // tokens per block (blockIdx.y picks the group)
  const float* norm;
  float eps;
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <TensorType T, int NT, MatvecOut OUT>
__global__ void __launch_bounds__(kWarps * 32) matvec_kernel(const Args a) {
  extern __shared__ float xs[];  // [nt][cols]
  __shared__ float scale[NT];
  const int t0 = blockIdx.y * a.per_block;
  const int nt = min(a.per_block, a.n - t0);
  const int cols = a.cols, units = cols / 8;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // Which matrix and row this warp serves (no run-time indexing of the argument arrays).
  const int b = blockIdx.x;
  const int k = a.count > 1 && b >= a.first_block[1] ? (a.count > 2 && b >= a.first_block[2] ? 2 : 1) : 0;
  const uint8_t* w = k == 0 ? a.w[0] : k == 1 ? a.w[1] : a.w[2];
  float* y = k == 0 ? a.y[0] : k == 1 ? a.y[1] : a.y[2];
  const int rows = k == 0 ? a.rows[0] : k == 1 ? a.rows[1] : a.rows[2];
  const int first = k == 0 ? a.first_block[0] : k == 1 ? a.first_block[1] : a.first_block[2];
  const int r = (b - first) * kWarps + warp;
  const bool active = r < rows;
  const uint8_t* row = w + static_cast<size_t>(active ? r : 0) * a.row_bytes;
  const uint8_t* row2 = OUT == MatvecOut::kSwiglu ? a.up + static_cast<size_t>(active ? r : 0) * a.row_bytes : nullptr;

  // No kernel writes weights, so the lane's first units are read before waiting for the kernel
  // before this one (whose output, the activations, is read after).
  constexpr int kPrefetch = NT == 1 ? 3 : 2;
  float pre[kPrefetch][8], pre2[kPrefetch][8];
#pragma unroll
  for (int i = 0; i < kPrefetch; ++i) {
    const int u = lane + 32 * i;
    if (active && u < units) {
      dequantize8<T>(row, u, pre[i]);
      if constexpr (OUT == MatvecOut::kSwiglu) dequantize8<T>(row2, u, pre2[i]);
    }
  }
  wait_for_previous();

  const float4* src = reinterpret_cast<const float4*>(a.x + static_cast<size_t>(t0) * cols);
  float4* dst = reinterpret_cast<float4*>(xs);
  for (int i = threadIdx.x; i < nt * cols / 4; i += blockDim.x) dst[i] = src[i];
  __syncthreads();
  if (a.norm != nullptr) {
    for (int t = warp; t < nt; t += kWarps) {
      float ss = 0;
      for (int j = lane; j < cols; j += 32) ss += xs[t * cols + j] * xs[t * cols + j];
      ss = warp_sum(ss);
      if (lane == 0) scale[t] = rsqrtf(ss / static_cast<float>(cols) + a.eps);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < nt * cols; i += blockDim.x) xs[i] = xs[i] * scale[i / cols] * a.norm[i % cols];
    __syncthreads();
  }
  if (!active) return;
  float acc[NT], acc2[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = acc2[t] = 0;
  auto multiply = [&](int u, const float* v, const float* v2) {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t < nt) {
        const float4 p = reinterpret_cast<const float4*>(xs + t * cols)[2 * u];
        const float4 q = reinterpret_cast<const float4*>(xs + t * cols)[2 * u + 1];
        acc[t] += v[0] * p.x + v[1] * p.y + v[2] * p.z + v[3] * p.w + v[4] * q.x + v[5] * q.y + v[6] * q.z + v[7] * q.w;
        if constexpr (OUT == MatvecOut::kSwiglu) {
          acc2[t] += v2[0] * p.x + v2[1] * p.y + v2[2] * p.z + v2[3] * p.w + v2[4] * q.x + v2[5] * q.y + v2[6] * q.z +
                     v2[7] * q.w;
        }
      }
    }
  };
#pragma unroll
  for (int i = 0; i < kPrefetch; ++i) {
    if (lane + 32 * i < units) multiply(lane + 32 * i, pre[i], pre2[i]);
  }
#pragma unroll 4
  for (int u = lane + 32 * kPrefetch; u < units; u += 32) {
    float v[8], v2[8];
    dequantize8<T>(row, u, v);
    if constexpr (OUT == MatvecOut::kSwiglu) dequantize8<T>(row2, u, v2);
    multiply(u, v, v2);
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    if (t >= nt) break;
    const float s = warp_sum(acc[t]);
    float* out = y + static_cast<size_t>(t0 + t) * rows + r;
    if constexpr (OUT == MatvecOut::kSwiglu) {
      const float s2 = warp_sum(acc2[t]);
      if (lane == 0) *out = s / (1.0f + __expf(-s)) * s2;
    } else if constexpr (OUT == MatvecOut::kAccumulate) {
      if (lane == 0) *out += s;
    } else {
      if (lane == 0) *out = s;
    }
  }
}

template <TensorType T, MatvecOut OUT>
bool launch_typed(Args a, int64_t cols, cudaStream_t stream) {
  // Tokens per block: up to kMatvecTokens, as many as the shared memory holds; one token alone
  // uses the one-token kernel (no wasted registers).
  const bool one = a.n == 1;
  const int64_t shared_max = one ? max_shared(reinterpret_cast<const void*>(matvec_kernel<T, 1, OUT>))
                                 : max_shared(reinterpret_cast<const void*>(matvec_kernel<T, kMatvecTokens, OUT>));
  const int64_t fit = shared_max / (cols * static_cast<int64_t>(sizeof(float)));
  if (fit < 1) return false;
  a.per_block = one ? 1 : static_cast<int>(std::min<int64_t>(kMatvecTokens, fit));
  const int groups = (a.n + a.per_block - 1) / a.per_block;
  const dim3 grid(static_cast<unsigned>(a.first_block[a.count]), static_cast<unsigned>(groups));
  const size_t shared = static_cast<size_t>(a.per_block) * a.cols * sizeof(float);
  if (one) {
    launch(matvec_kernel<T, 1, OUT>, grid, kWarps * 32, shared, stream, a);
  } else {
    launch(matvec_kernel<T, kMatvecTokens, OUT>, grid, kWarps * 32, shared, stream, a);
  }
  return true;
}

}  // namespace

bool launch_matvec(TensorType type, const MatvecTarget* targets, int count, const uint8_t* up, size_t row_bytes,
                   int64_t cols, const float* x, int n, const float* norm, float eps, MatvecOut out,
                   cudaStream_t stream) {
  if (cols % 8 != 0 || count < 1 || count > kMatvecTargets) return false;
  if (n == 0) return true;
  Args a{};
  a.count = count;
  for (int k = 0; k < count; ++k) {
    a.w[k] = targets[k].w;
    a.y[k] = targets[k].y;
    a.rows[k] = static_cast<int>(targets[k].rows);
    a.first_block[k + 1] = a.first_block[k] + static_cast<int>((targets[k].rows + kWarps - 1) / kWarps);
  }
  a.up = up;
  a.row_bytes = row_bytes;
  a.cols = static_cast<int>(cols);
  a.x = x;
  a.n = n;
  a.norm = norm;
  a.eps = eps;
  bool launched = false;
  const bool known = dispatch_type(type, [&](auto tag) {
    constexpr TensorType T = decltype(tag)::value;
    switch (out) {
      case MatvecOut::kStore:
        launched = launch_typed<T, MatvecOut::kStore>(a, cols, stream);
        break;
      case MatvecOut::kAccumulate:
        launched = launch_typed<T, MatvecOut::kAccumulate>(a, cols, stream);
        break;
      case MatvecOut::kSwiglu:
        launched = launch_typed<T, MatvecOut::kSwiglu>(a, cols, stream);
        break;
    }
  });
  return known && launched;
}

}  // namespace weft::kernels::cuda
