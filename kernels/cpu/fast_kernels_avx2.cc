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

namespace weft::kernels::cpu {
namespace {

// Rows k and k+1 of a packed group, one per 128-bit half: lane l of half h holds row (k+h)'s
// sums of elements 4l..4l+3 (low nibbles, accumulator `lo`) and 16+4l.. (high nibbles, `hi`),
// so each accumulator lane is exactly one of the portable kernel's lanes.
// Finishes hsum8 for the two rows of a pair of accumulators: returns row k in element 0 and row
// k+1 in element 1.
inline __m128 finish_pair(__m256 lo, __m256 hi) {
  const __m256 t = _mm256_add_ps(lo, hi);  // (l0+l4, l1+l5, l2+l6, l3+l7) per row
  const __m256 u = _mm256_add_ps(t, _mm256_permute_ps(t, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m256 v = _mm256_add_ps(u, _mm256_permute_ps(u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_unpacklo_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
}

void dot_packed4_q4_1_avx2(const uint8_t* p, int64_t groups, const BlockQ8_1* x, int64_t n, float* y) {
  const int64_t nb = n / 32;
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (int64_t g = 0; g < groups; ++g) {
    __m256 lo01 = _mm256_setzero_ps(), hi01 = lo01, lo23 = lo01, hi23 = lo01;
    __m128 summs = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, p += 80) {
      const __m128 xd = _mm_set1_ps(h2f(x[b].d)), xs = _mm_set1_ps(h2f(x[b].s));
      summs = _mm_fmadd_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8))), xs, summs);
      const __m128 d = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))), xd);
      const __m256 d01 = _mm256_set_m128(_mm_shuffle_ps(d, d, 0x55), _mm_shuffle_ps(d, d, 0x00));
      const __m256 d23 = _mm256_set_m128(_mm_shuffle_ps(d, d, 0xFF), _mm_shuffle_ps(d, d, 0xAA));
      const __m256i ylo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs)));
      const __m256i yhi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16)));
      const __m256i q01 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16));
      const __m256i q23 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 48));
      lo01 = _mm256_fmadd_ps(d01, _mm256_cvtepi32_ps(isum_u8s8(_mm256_and_si256(q01, mask), ylo)), lo01);
      hi01 = _mm256_fmadd_ps(d01, _mm256_cvtepi32_ps(isum_u8s8(_mm256_and_si256(_mm256_srli_epi16(q01, 4), mask), yhi)), hi01);
      lo23 = _mm256_fmadd_ps(d23, _mm256_cvtepi32_ps(isum_u8s8(_mm256_and_si256(q23, mask), ylo)), lo23);
      hi23 = _mm256_fmadd_ps(d23, _mm256_cvtepi32_ps(isum_u8s8(_mm256_and_si256(_mm256_srli_epi16(q23, 4), mask), yhi)), hi23);
    }
    const __m128 rows = _mm_movelh_ps(finish_pair(lo01, hi01), finish_pair(lo23, hi23));
    _mm_storeu_ps(y + 4 * g, _mm_add_ps(rows, summs));
  }
}

// Q8_0: one row per register, the portable lane layout as is.
void dot_packed4_q8_0_avx2(const uint8_t* p, int64_t groups, const BlockQ8_0* x, int64_t n, float* y) {
  const int64_t nb = n / 32;
  for (int64_t g = 0; g < groups; ++g) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; ++b, p += 136) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      alignas(16) float d[4];
      _mm_store_ps(d, _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))), _mm_set1_ps(h2f(x[b].d))));
      for (int r = 0; r < 4; ++r) {
        const __m256i s = isum_s8s8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 8 + 32 * r)), xq);
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d[r]), _mm256_cvtepi32_ps(s), acc[r]);
      }
    }
    for (int r = 0; r < 4; ++r) y[4 * g + r] = hsum8(acc[r]);
  }
}

}  // namespace
}  // namespace weft::kernels::cpu

namespace weft::kernels::cpu::detail {
const FastKernels kAvx2Kernels = WEFT_X86_KERNEL_TABLE(Isa::kAvx2, dot_packed4_q4_1_avx2, dot_packed4_q8_0_avx2);
}  // namespace weft::kernels::cpu::detail
