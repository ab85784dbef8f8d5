// y += x, elementwise (a residual add after an all-reduce).
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  wait_for_previous();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] += x[i];
  }
}

}  // namespace

void launch_add(float* y, const float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 4096);
  launch(add_kernel, static_cast<unsigned>(blocks), 256, 0, stream, y, x, n);
}

}  // namespace weft::kernels::cuda
