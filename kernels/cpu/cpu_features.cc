#include "kernels/cpu/cpu_features.h"

#include <cstdlib>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace weft::kernels::cpu {

#if defined(__x86_64__) && defined(WEFT_HAVE_X86_KERNELS)
namespace {
// Straight from CPUID where not every compiler's __builtin_cpu_supports knows the name (clang 14
// knows neither "f16c" nor "avx512vnni"). Whether the OS saves the vector state is checked by
// __builtin_cpu_supports("avx2") and ("avx512f").
bool cpuid_bit(unsigned leaf, unsigned subleaf, int reg, unsigned bit) {
  unsigned r[4] = {};
  if (__get_cpuid_count(leaf, subleaf, &r[0], &r[1], &r[2], &r[3]) == 0) return false;
  return (r[reg] & (1u << bit)) != 0;
}
bool has_f16c() { return cpuid_bit(1, 0, 2, 29); }          // leaf 1, ECX bit 29
bool has_avx512_vnni() { return cpuid_bit(7, 0, 2, 11); }   // leaf 7, ECX bit 11
}  // namespace
#endif

bool isa_supported(Isa isa) {
#if defined(__x86_64__) && defined(WEFT_HAVE_X86_KERNELS)
  switch (isa) {
    case Isa::kPortable:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::kAvx512:
      return isa_supported(Isa::kAvx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && has_avx512_vnni();
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
