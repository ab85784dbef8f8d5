// RMSNorm: one block per row; the sum of squares reduced across the block.
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rms_norm_kernel(const float* x, const float* weight, int cols, float eps, float* y) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float scale;
  wait_for_previous();
  const float* row = x + static_cast<size_t>(blockIdx.x) * cols;
  float sum = 0;
  for (int i = threadIdx.x; i < cols; i += kThreads) sum += row[i] * row[i];
  sum = Reduce(tmp).Sum(sum);
  if (threadIdx.x == 0) scale = rsqrtf(sum / static_cast<float>(cols) + eps);
  __syncthreads();
  float* out = y + static_cast<size_t>(blockIdx.x) * cols;
  for (int i = threadIdx.x; i < cols; i += kThreads) out[i] = row[i] * scale * weight[i];
}

}  // namespace

void launch_rms_norm(const float* x, const float* weight, int n, int cols, float eps, float* y, cudaStream_t stream) {
  if (n > 0) launch(rms_norm_kernel, n, kThreads, 0, stream, x, weight, cols, eps, y);
}

}  // namespace weft::kernels::cuda
