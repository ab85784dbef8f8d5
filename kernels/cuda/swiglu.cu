// SwiGLU after the two matrix products of the dense path: y = silu(gate) * up.
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

__global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, float* y) {
  wait_for_previous();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    y[i] = g / (1.0f + __expf(-g)) * up[i];
  }
}

}  // namespace

void launch_swiglu(const float* gate, const float* up, int64_t n, float* y, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 4096);
  launch(swiglu_kernel, static_cast<unsigned>(blocks), 256, 0, stream, gate, up, n, y);
}

}  // namespace weft::kernels::cuda
