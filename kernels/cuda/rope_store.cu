// Rotary embeddings of a token's query and key heads, then its keys and values written into the
// paged cache as halves: one block per token.
#include <cuda_fp16.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

__global__ void rope_store_kernel(float* q, float* k, const float* v, const int32_t* pos, const int32_t* slot,
                                  Rope rope, int n_heads, int n_kv_heads, __half* keys, __half* values) {
  wait_for_previous();
  const int i = blockIdx.x, half = rope.rope_dims / 2, hd = rope.head_dim, kv_dim = n_kv_heads * hd;
  float* qi = q + static_cast<size_t>(i) * n_heads * hd;
  float* ki = k + static_cast<size_t>(i) * kv_dim;
  const float p = static_cast<float>(pos[i]);
  const int pairs = (n_heads + n_kv_heads) * half;
  for (int w = threadIdx.x; w < pairs; w += blockDim.x) {
    const int head = w / half, f = w % half;
    float* x = head < n_heads ? qi + head * hd : ki + (head - n_heads) * hd;
    float theta =
        rope.freq_scale * p * powf(rope.base, -2.0f * static_cast<float>(f) / static_cast<float>(rope.rope_dims));
    if (rope.freq_factors != nullptr) theta /= rope.freq_factors[f];
    float s, c;
    sincosf(theta, &s, &c);
    const int a = rope.neox ? f : 2 * f, b = rope.neox ? f + half : 2 * f + 1;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
  }
  __syncthreads();
  const size_t at = static_cast<size_t>(slot[i]) * kv_dim;
  const float* vi = v + static_cast<size_t>(i) * kv_dim;
  for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) {
    keys[at + j] = __float2half_rn(ki[j]);
    values[at + j] = __float2half_rn(vi[j]);
  }
}

}  // namespace

bool launch_rope_store(float* q, float* k, const float* v, int n, const int32_t* pos, const int32_t* slot,
                       const Rope& rope, const AttentionShape& shape, uint16_t* keys, uint16_t* values,
                       cudaStream_t stream) {
  if (rope.rope_dims % 2 != 0 || rope.rope_dims > rope.head_dim) return false;
  if (n > 0) {
    launch(rope_store_kernel, n, 256, 0, stream, q, k, v, pos, slot, rope, shape.n_heads, shape.n_kv_heads,
           reinterpret_cast<__half*>(keys), reinterpret_cast<__half*>(values));
  }
  return true;
}

}  // namespace weft::kernels::cuda
