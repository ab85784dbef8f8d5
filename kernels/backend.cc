#include "kernels/backend.h"

#include <fmt/format.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"

namespace weft::kernels {

std::string_view device_name(Device d) { return d == Device::kCuda ? "cuda" : "cpu"; }

Result<Device> parse_device(std::string_view name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  return Status::invalid_argument(fmt::format("unknown device '{}' (cpu or cuda)", name));
}

bool backend_available(Device d) { return d == Device::kCpu || (cuda::compiled() && cuda::device_count() > 0); }

Result<std::unique_ptr<Backend>> make_backend(Device d) {
  if (d == Device::kCuda) return cuda::make();
  return std::unique_ptr<Backend>(std::make_unique<cpu::CpuBackend>());
}

}  // namespace weft::kernels
