// Activations rounded to IEEE halves for cuBLAS's half-precision products.
#include <cuda_fp16.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

__global__ void to_f16_kernel(const float* x, int64_t n, __half* out) {
  wait_for_previous();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2half_rn(x[i]);
  }
}

}  // namespace

void launch_to_f16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 4096);
  launch(to_f16_kernel, static_cast<unsigned>(blocks), 256, 0, stream, x, n, reinterpret_cast<__half*>(out));
}

}  // namespace weft::kernels::cuda
