// Attention over the paged KV cache with tree masks: each (token, query head) pair is one block
// whose threads take the token's visible slots in turn (the committed prefix, then its ancestors
// in the batch — the tree mask as a list of slots, PagedAttention's block tables resolved to
// slots), each keeping an online softmax (running max, sum and weighted values, as
// FlashAttention does) that the block merges at the end. Keys and values are fp16, as llama.cpp
// and the CPU fast path store them; sums are float.
#include <cuda_fp16.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;

template <int HD>
__global__ void __launch_bounds__(kThreads)
    attention_kernel(const float* q, const int32_t* visible_start, const int32_t* visible, int n_heads, int n_kv_heads,
                     float scale, const __half* keys, const __half* values, float* out) {
  wait_for_previous();
  const int i = blockIdx.x, h = blockIdx.y, kvh = h / (n_heads / n_kv_heads), kv_dim = n_kv_heads * HD;
  __shared__ float qs[HD];
  __shared__ float part_m[kWarps], part_l[kWarps];
  __shared__ float part_acc[kWarps][HD];
  const float* qi = q + (static_cast<size_t>(i) * n_heads + h) * HD;
  for (int d = threadIdx.x; d < HD; d += kThreads) qs[d] = qi[d] * scale;
  __syncthreads();

  float m = -INFINITY, l = 0, acc[HD];
#pragma unroll
  for (int d = 0; d < HD; ++d) acc[d] = 0;
  const int begin = visible_start[i], end = visible_start[i + 1];
  for (int j = begin + threadIdx.x; j < end; j += kThreads) {
    const size_t at = static_cast<size_t>(visible[j]) * kv_dim + static_cast<size_t>(kvh) * HD;
    const uint4* kr = reinterpret_cast<const uint4*>(keys + at);
    float s = 0;
#pragma unroll
    for (int c = 0; c < HD / 8; ++c) {
      const uint4 raw = kr[c];
      const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(h2[e]);
        s += qs[8 * c + 2 * e] * f.x + qs[8 * c + 2 * e + 1] * f.y;
      }
    }
    const float m_new = fmaxf(m, s);
    const float correction = __expf(m - m_new);
    const float p = __expf(s - m_new);
    l = l * correction + p;
    const uint4* vr = reinterpret_cast<const uint4*>(values + at);
#pragma unroll
    for (int c = 0; c < HD / 8; ++c) {
      const uint4 raw = vr[c];
      const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(h2[e]);
        acc[8 * c + 2 * e] = acc[8 * c + 2 * e] * correction + p * f.x;
        acc[8 * c + 2 * e + 1] = acc[8 * c + 2 * e + 1] * correction + p * f.y;
      }
    }
    m = m_new;
  }

  // Merge: the warp's running maxima, then the block's.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float wm = m;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) wm = fmaxf(wm, __shfl_xor_sync(0xffffffffu, wm, o));
  const float f = m == -INFINITY ? 0.0f : __expf(m - wm);
  float wl = l * f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) wl += __shfl_xor_sync(0xffffffffu, wl, o);
#pragma unroll
  for (int d = 0; d < HD; ++d) {
    float a = acc[d] * f;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
    if (lane == 0) part_acc[warp][d] = a;
  }
  if (lane == 0) {
    part_m[warp] = wm;
    part_l[warp] = wl;
  }
  __syncthreads();
  float bm = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) bm = fmaxf(bm, part_m[w]);
  float total = 0, factor[kWarps];
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    factor[w] = part_m[w] == -INFINITY ? 0.0f : __expf(part_m[w] - bm);
    total += part_l[w] * factor[w];
  }
  float* o = out + (static_cast<size_t>(i) * n_heads + h) * HD;
  for (int d = threadIdx.x; d < HD; d += kThreads) {
    float a = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) a += part_acc[w][d] * factor[w];
    o[d] = total > 0 ? a / total : 0.0f;
  }
}

}  // namespace

bool launch_attention(const float* q, int n, const int32_t* visible_start, const int32_t* visible,
                      const AttentionShape& shape, const uint16_t* keys, const uint16_t* values, float* out,
                      cudaStream_t stream) {
  if (shape.n_kv_heads <= 0 || shape.n_heads % shape.n_kv_heads != 0) return false;
  if (n == 0) return true;
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(shape.n_heads));
  const auto* k = reinterpret_cast<const __half*>(keys);
  const auto* v = reinterpret_cast<const __half*>(values);
  switch (shape.head_dim) {
    case 64:
      launch(attention_kernel<64>, grid, kThreads, 0, stream, q, visible_start, visible, shape.n_heads,
             shape.n_kv_heads, shape.scale, k, v, out);
      return true;
    case 128:
      launch(attention_kernel<128>, grid, kThreads, 0, stream, q, visible_start, visible, shape.n_heads,
             shape.n_kv_heads, shape.scale, k, v, out);
      return true;
    case 16:
      launch(attention_kernel<16>, grid, kThreads, 0, stream, q, visible_start, visible, shape.n_heads,
             shape.n_kv_heads, shape.scale, k, v, out);
      return true;
    case 32:
      launch(attention_kernel<32>, grid, kThreads, 0, stream, q, visible_start, visible, shape.n_heads,
             shape.n_kv_heads, shape.scale, k, v, out);
      return true;
    default:
      return false;
  }
}

}  // namespace weft::kernels::cuda
