// The fast kernels for AVX-512 (F, BW, VL) with VNNI: one dpbusd sums four u8 x s8 products
// into each int32 lane, exactly, where AVX2 needs two instructions and an int16 step; and
// kernels over packed weights (packed_weights.h) that take four rows per 512-bit register.
#include <immintrin.h>

namespace weft::kernels::cpu {
namespace {
inline __m256i isum_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
}  // namespace
}  // namespace weft::kernels::cpu

#include "kernels/cpu/fast_kernels_x86.h"

namespace weft::kernels::cpu {
namespace {

inline __m128 load_f16x4(const uint8_t* p) {
  return _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Each 128-bit lane k of t holds row k's (l0+l4, l1+l5, l2+l6, l3+l7); returns the four rows'
// (t0+t2) + (t1+t3), which completes hsum8.
inline __m128 finish_hsum8_x4(__m512 t) {
  const __m512 u = _mm512_add_ps(t, _mm512_permute_ps(t, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 v = _mm512_add_ps(u, _mm512_permute_ps(u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v));
}

// Four Q4_1 rows per register: lane k (128 bits) of the low-nibble products holds row k's sums
// l0..l3, of the high-nibble products its l4..l7, so each accumulator lane is exactly one of the
// portable kernel's lanes, advanced by the same fma block after block.
void dot_packed4_q4_1(const uint8_t* p, int64_t groups, const BlockQ8_1* x, int64_t n, float* y) {
  const int64_t nb = n / 32;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (int64_t g = 0; g < groups; ++g) {
    __m512 lo_acc = _mm512_setzero_ps(), hi_acc = _mm512_setzero_ps();
    __m128 summs = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, p += 80) {
      const __m128 xd = _mm_set1_ps(h2f(x[b].d)), xs = _mm_set1_ps(h2f(x[b].s));
      summs = _mm_fmadd_ps(load_f16x4(p + 8), xs, summs);
      const __m512 d = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(load_f16x4(p), xd)));
      const __m512i q = _mm512_loadu_si512(p + 16);
      const __m512i ylo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs)));
      const __m512i yhi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].qs + 16)));
      const __m512i lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(q, mask), ylo);
      const __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(q, 4), mask), yhi);
      lo_acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lo), lo_acc);
      hi_acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(hi), hi_acc);
    }
    _mm_storeu_ps(y + 4 * g, _mm_add_ps(finish_hsum8_x4(_mm512_add_ps(lo_acc, hi_acc)), summs));
  }
}

// Two Q8_0 rows per register (256 bits each, lanes as the portable kernel's). Signed weights go
// through dpbusd as w + 128, and 128 * sum(y) is taken back out: exact integers either way.
void dot_packed4_q8_0(const uint8_t* p, int64_t groups, const BlockQ8_0* x, int64_t n, float* y) {
  const int64_t nb = n / 32;
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i spread01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i spread23 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  for (int64_t g = 0; g < groups; ++g) {
    __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, p += 136) {
      const __m128 xd = _mm_set1_ps(h2f(x[b].d));
      const __m512 d4 = _mm512_castps128_ps512(_mm_mul_ps(load_f16x4(p), xd));
      const __m512i yy = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)));
      const __m512i correction = _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, yy);
      const __m512i w01 = _mm512_xor_si512(_mm512_loadu_si512(p + 8), bias);
      const __m512i w23 = _mm512_xor_si512(_mm512_loadu_si512(p + 72), bias);
      const __m512i s01 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w01, yy), correction);
      const __m512i s23 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w23, yy), correction);
      acc01 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread01, d4), _mm512_cvtepi32_ps(s01), acc01);
      acc23 = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread23, d4), _mm512_cvtepi32_ps(s23), acc23);
    }
    // (l0..l3) + (l4..l7) of each row, into 128-bit lanes 0..3 as rows 0..3.
    const __m512 a = _mm512_shuffle_f32x4(acc01, acc23, _MM_SHUFFLE(2, 0, 2, 0));  // row0 lo, row1 lo, row2 lo, row3 lo
    const __m512 c = _mm512_shuffle_f32x4(acc01, acc23, _MM_SHUFFLE(3, 1, 3, 1));  // the high halves
    _mm_storeu_ps(y + 4 * g, finish_hsum8_x4(_mm512_add_ps(a, c)));
  }
}

}  // namespace
}  // namespace weft::kernels::cpu

namespace weft::kernels::cpu::detail {
const FastKernels kAvx512Kernels =
    WEFT_X86_KERNEL_TABLE(Isa::kAvx512, dot_packed4_q4_1, dot_packed4_q8_0, nullptr, nullptr);
}  // namespace weft::kernels::cpu::detail
