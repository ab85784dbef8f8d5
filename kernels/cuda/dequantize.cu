// A weight matrix dequantized to IEEE halves once, at load: the dense copy cuBLAS multiplies
// many tokens with (prefill, large batches, tree verification).
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/quant.cuh"

namespace weft::kernels::cuda {
namespace {

template <TensorType T>
__global__ void dequantize_kernel(const uint8_t* w, size_t row_bytes, int64_t cols, __half* out) {
  wait_for_previous();
  const uint8_t* row = w + blockIdx.x * row_bytes;
  __half* y = out + blockIdx.x * cols;
  for (int u = threadIdx.x; u < cols / 8; u += blockDim.x) {
    float v[8];
    dequantize8<T>(row, u, v);
#pragma unroll
    for (int k = 0; k < 8; ++k) y[8 * u + k] = __float2half_rn(v[k]);
  }
}

}  // namespace

bool launch_dequantize_f16(TensorType type, const uint8_t* w, size_t row_bytes, int64_t rows, int64_t cols,
                           uint16_t* out, cudaStream_t stream) {
  if (cols % 8 != 0) return false;
  if (rows == 0) return true;
  return dispatch_type(type, [&](auto tag) {
    constexpr TensorType T = decltype(tag)::value;
    launch(dequantize_kernel<T>, static_cast<unsigned>(rows), 128, 0, stream, w, row_bytes, cols,
           reinterpret_cast<__half*>(out));
  });
}

}  // namespace weft::kernels::cuda
