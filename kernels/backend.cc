#include "kernels/backend.h"

#include <fmt/format.h>

#include "kernels/communicator.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_communicator.h"
#include "kernels/cuda/cuda_backend.h"

namespace weft::kernels {

std::string_view device_name(Device d) { return d == Device::kCuda ? "cuda" : "cpu"; }

Result<Device> parse_device(std::string_view name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  return Status::invalid_argument(fmt::format("unknown device '{}' (cpu or cuda)", name));
}

bool backend_available(Device d) { return d == Device::kCpu || (cuda::compiled() && cuda::device_count() > 0); }

Result<std::unique_ptr<Backend>> make_backend(Device d, int index) {
  if (d == Device::kCuda) return cuda::make(index);
  (void)index;  // every CPU backend computes on the host
  return std::unique_ptr<Backend>(std::make_unique<cpu::CpuBackend>());
}

Result<std::vector<std::unique_ptr<Communicator>>> make_communicators(std::span<Backend* const> backends) {
  if (backends.empty()) return Status::invalid_argument("a communicator group needs at least one backend");
  for (const Backend* b : backends) {
    if (b->device() != backends[0]->device()) {
      return Status::invalid_argument("a communicator group's backends must be of one device kind");
    }
  }
  if (backends[0]->device() == Device::kCuda) return cuda::make_communicators(backends);
  return cpu::make_thread_communicators(static_cast<int>(backends.size()));
}

}  // namespace weft::kernels
