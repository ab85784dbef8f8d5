// The fast kernels for AVX-512 (F, BW, VL) with VNNI: one dpbusd sums four u8 x s8 products
// into each int32 lane, exactly, where AVX2 needs two instructions and an int16 step.
#include <immintrin.h>

namespace weft::kernels::cpu {
namespace {
inline __m256i isum_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
}  // namespace
}  // namespace weft::kernels::cpu

#include "kernels/cpu/fast_kernels_x86.h"

namespace weft::kernels::cpu::detail {
const FastKernels kAvx512Kernels = WEFT_X86_KERNEL_TABLE(Isa::kAvx512);
}  // namespace weft::kernels::cpu::detail
