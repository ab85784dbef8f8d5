// Picks rows of a matrix (the tokens that asked for logits).
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

__global__ void gather_rows_kernel(const float* x, const int32_t* rows, int cols, float* y) {
  wait_for_previous();
  const float* src = x + static_cast<size_t>(rows[blockIdx.x]) * cols;
  float* dst = y + static_cast<size_t>(blockIdx.x) * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = src[i];
}

}  // namespace

void launch_gather_rows(const float* x, const int32_t* rows, int n, int cols, float* y, cudaStream_t stream) {
  if (n > 0) launch(gather_rows_kernel, n, 256, 0, stream, x, rows, cols, y);
}

}  // namespace weft::kernels::cuda
