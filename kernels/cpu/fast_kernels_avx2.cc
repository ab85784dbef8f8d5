// The fast kernels for AVX2 + FMA + F16C (compiled with those flags only; see CMakeLists.txt).
#include <immintrin.h>

namespace weft::kernels::cpu {
namespace {
// Pairs of u8 x s8 products to int16 (cannot saturate here: |u| <= 128, |s| <= 127, and
// 2 * 128 * 127 < 32768), then pairs of int16 to int32.
inline __m256i isum_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
}  // namespace
}  // namespace weft::kernels::cpu

#include "kernels/cpu/fast_kernels_x86.h"

namespace weft::kernels::cpu::detail {
const FastKernels kAvx2Kernels = WEFT_X86_KERNEL_TABLE(Isa::kAvx2, nullptr, nullptr);
}  // namespace weft::kernels::cpu::detail
