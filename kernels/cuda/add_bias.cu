// Adds a bias row to every token (qwen2's q, k and v projections).
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

__global__ void add_bias_kernel(float* x, const float* bias, int cols) {
  wait_for_previous();
  float* row = x + static_cast<size_t>(blockIdx.x) * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) row[i] += bias[i];
}

}  // namespace

void launch_add_bias(float* x, const float* bias, int n, int cols, cudaStream_t stream) {
  if (n > 0) launch(add_bias_kernel, n, 256, 0, stream, x, bias, cols);
}

}  // namespace weft::kernels::cuda
