#include "kernels/cpu/cpu_features.h"

#include <cstdlib>

namespace weft::kernels::cpu {

bool isa_supported(Isa isa) {
#if defined(__x86_64__) && defined(WEFT_HAVE_X86_KERNELS)
  switch (isa) {
    case Isa::kPortable:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return isa_supported(Isa::kAvx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return isa == Isa::kPortable;
#endif
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable:
      return "portable";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (isa_name(isa) == name) return isa;
  }
  return std::nullopt;
}

Isa best_isa() {
  static const Isa best = [] {
    Isa cap = Isa::kAvx512;
    if (const char* env = std::getenv("WEFT_CPU_ISA")) {
      if (auto parsed = parse_isa(env)) cap = *parsed;
    }
    for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
      if (isa <= cap && isa_supported(isa)) return isa;
    }
    return Isa::kPortable;
  }();
  return best;
}

}  // namespace weft::kernels::cpu
