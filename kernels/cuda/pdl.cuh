// Launches with programmatic dependent launch (Hopper and later): each kernel, once all its blocks
// run, lets the next one in the stream be launched (its blocks scheduled) while it computes; the
// next one waits (wait_for_previous()) for it to finish before touching memory. So the launch
// latency of a decode step's ~200 small kernels overlaps their work. Every kernel launched
// through launch() must call wait_for_previous() before its first memory access. On older GPUs
// the attribute is ignored and the wait is a no-op.
#pragma once

#include <utility>

#include <cuda_runtime.h>

namespace weft::kernels::cuda {

__device__ __forceinline__ void wait_for_previous() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  // The next kernel may be scheduled now; it waits in its own wait_for_previous() for this grid
  // to complete (and its writes to be visible).
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace weft::kernels::cuda
