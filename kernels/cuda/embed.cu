// Embedding lookup: one block per token, each thread dequantizing 8-value units of its row.
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/quant.cuh"

namespace weft::kernels::cuda {
namespace {

template <TensorType T>
__global__ void embed_kernel(const uint8_t* table, size_t row_bytes, int64_t cols, const int32_t* ids, float* out) {
  wait_for_previous();
  const uint8_t* row = table + static_cast<size_t>(ids[blockIdx.x]) * row_bytes;
  float* y = out + blockIdx.x * cols;
  for (int u = threadIdx.x; u < cols / 8; u += blockDim.x) dequantize8<T>(row, u, y + 8 * u);
}

}  // namespace

bool launch_embed(TensorType type, const uint8_t* table, size_t row_bytes, int64_t cols, const int32_t* ids, int n,
                  float* out, cudaStream_t stream) {
  if (cols % 8 != 0 || n == 0) return cols % 8 == 0;
  return dispatch_type(type, [&](auto tag) {
    constexpr TensorType T = decltype(tag)::value;
    launch(embed_kernel<T>, n, 128, 0, stream, table, row_bytes, cols, ids, out);
  });
}

}  // namespace weft::kernels::cuda
