// The CUDA backend (backend.h): kernels in this directory for decode-sized products, cuBLAS on
// fp16 copies for larger ones, CUDA graphs for recorded steps. One stream per backend.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "kernels/backend.h"
#include "kernels/communicator.h"

namespace weft::kernels::cuda {

/// Whether the CUDA backend is compiled in (WEFT_HAVE_CUDA).
bool compiled();
/// Number of CUDA devices the driver reports (0 without a driver or device).
int device_count();
/// A backend on GPU `index`.
Result<std::unique_ptr<Backend>> make(int index = 0);
/// NCCL communicators, rank i for backends[i] (CUDA backends, each on its own GPU).
Result<std::vector<std::unique_ptr<Communicator>>> make_communicators(std::span<Backend* const> backends);

}  // namespace weft::kernels::cuda
