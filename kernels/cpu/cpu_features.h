// Which x86 vector extensions the fast kernels may use on this machine.
//
// Chosen once at run time from CPUID (through the compiler's __builtin_cpu_supports), so one
// binary runs everywhere: AVX-512 (F, BW, VL, VNNI) where present, else AVX2 (with FMA and F16C),
// else the portable C++ kernels. The environment variable WEFT_CPU_ISA=portable|avx2|avx512 caps
// the choice (never raises it above what the CPU has), for tests and for comparing paths.
#pragma once

#include <optional>
#include <string_view>

#include "weft/export.h"

namespace weft::kernels::cpu {

enum class Isa { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

// Whether this CPU (and this build) can run kernels for `isa`.
WEFT_API bool isa_supported(Isa isa);
// The best supported ISA, capped by WEFT_CPU_ISA when set. Thread-safe; computed once.
WEFT_API Isa best_isa();
WEFT_API std::string_view isa_name(Isa isa);
WEFT_API std::optional<Isa> parse_isa(std::string_view name);

}  // namespace weft::kernels::cpu
