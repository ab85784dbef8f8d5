// The CUDA backend (backend.h): kernels in this directory for decode-sized products, cuBLAS on
// fp16 copies for larger ones, CUDA graphs for recorded steps. One stream per backend.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace weft::kernels::cuda {

/// Whether the CUDA backend is compiled in (WEFT_HAVE_CUDA).
bool compiled();
/// Number of CUDA devices the driver reports (0 without a driver or device).
int device_count();
/// A backend on the current device.
Result<std::unique_ptr<Backend>> make();

}  // namespace weft::kernels::cuda
