// Greedy sampling on the device: the index of each row's largest value (the first on ties), so a
// decode step returns one integer per sequence instead of a row of logits.
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace weft::kernels::cuda {
namespace {

constexpr int kThreads = 512;

struct Best {
  float value;
  int index;
};
struct BetterOf {
  __device__ Best operator()(const Best& a, const Best& b) const {
    if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
    return a;
  }
};

__global__ void argmax_kernel(const float* x, int cols, int32_t* out) {
  wait_for_previous();
  using Reduce = cub::BlockReduce<Best, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const float* row = x + static_cast<size_t>(blockIdx.x) * cols;
  Best best{-INFINITY, cols};
  for (int i = threadIdx.x; i < cols; i += kThreads) {
    if (row[i] > best.value) best = {row[i], i};
  }
  best = Reduce(tmp).Reduce(best, BetterOf{});
  if (threadIdx.x == 0) out[blockIdx.x] = best.index < cols ? best.index : 0;
}

}  // namespace

void launch_argmax(const float* x, int n, int cols, int32_t* out, cudaStream_t stream) {
  if (n > 0) launch(argmax_kernel, n, kThreads, 0, stream, x, cols, out);
}

}  // namespace weft::kernels::cuda
