// The CUDA backend's entry points where weft is built without the CUDA toolkit.
#include "kernels/cuda/cuda_backend.h"

namespace weft::kernels::cuda {

bool compiled() { return false; }
int device_count() { return 0; }
Result<std::unique_ptr<Backend>> make(int /*index*/) {
  return Status::unavailable("this build of weft has no CUDA backend (the CUDA toolkit was not found at build time)");
}

Result<std::vector<std::unique_ptr<Communicator>>> make_communicators(std::span<Backend* const> /*backends*/) {
  return Status::unavailable("this build of weft has no CUDA backend");
}

}  // namespace weft::kernels::cuda
