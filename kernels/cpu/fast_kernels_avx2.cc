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

// ---- the same products for several activation rows (tokens) at once ----------------------
// A tile is two rows of a packed group and up to four tokens: each weight block is loaded and
// unpacked once for all of them, and their 2 x T accumulators stay in registers (16 ymm
// registers hold that and the temporaries; four rows at once would spill). Each (row, token)
// chain is the one dot_packed4_* above computes, so the bits are the same; only the loop order
// differs. Activation scales are converted to float once per call, not once per row.

constexpr int kMaxTileTokens = 4;

inline __m256i broadcast16(const int8_t* p) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Lanes 0..3 of `d4` spread over eight lanes as (d4[k] x 4, d4[k + 1] x 4).
inline __m256 spread_pair(__m128 d4, int k) {
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d4),
                                  _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1));
}

// Rows 2k and 2k+1 of a Q4_1 group (k = pair), T tokens: writes hsum8 of each row's lanes to
// y[t * ldy + 2k + {0, 1}] (the m_w * s_x term is added after both pairs). `sc` holds the
// tokens' (d, s) per block as floats, token t's at sc + t * 2 * ldx.
template <int T>
void q4_1_pair_tile(const uint8_t* p, int64_t nb, int pair, const BlockQ8_1* x, const float* sc, int64_t ldx, float* y,
                    int64_t ldy) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  __m256 lo[T], hi[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) lo[t] = hi[t] = _mm256_setzero_ps();
  const uint8_t* blk = p;
  for (int64_t b = 0; b < nb; ++b, blk += 80) {
    const __m256 dw = spread_pair(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk))), 2 * pair);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * pair));
    const __m256i wlo = _mm256_and_si256(q, mask), whi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const BlockQ8_1& xb = x[t * ldx + b];
      const __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(sc + 2 * (t * ldx + b)));
      lo[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum_u8s8(wlo, broadcast16(xb.qs))), lo[t]);
      hi[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum_u8s8(whi, broadcast16(xb.qs + 16))), hi[t]);
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t)
    _mm_storel_pi(reinterpret_cast<__m64*>(y + t * ldy + 2 * pair), finish_pair(lo[t], hi[t]));
}

// y[t * ldy + 4g + 0..3] += the m_w * s_x chains of G consecutive Q4_1 groups (G x T chains
// interleaved, so their fma latencies overlap).
template <int G, int T>
void q4_1_add_mins(const uint8_t* p, int64_t nb, const float* sc, int64_t ldx, float* y, int64_t ldy) {
  __m128 summs[G][T];
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) summs[g][t] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
      const __m128 mw = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + (g * nb + b) * 80 + 8)));
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        summs[g][t] = _mm_fmadd_ps(mw, _mm_broadcast_ss(sc + 2 * (t * ldx + b) + 1), summs[g][t]);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      float* out = y + t * ldy + 4 * g;
      _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), summs[g][t]));
    }
  }
}

// Rows 2k and 2k+1 of a Q8_0 group, one accumulator per row and token (the portable layout);
// `sc` holds the tokens' d per block as floats, token t's at sc + t * ldx.
template <int T>
void q8_0_pair_tile(const uint8_t* p, int64_t nb, int pair, const BlockQ8_0* x, const float* sc, int64_t ldx, float* y,
                    int64_t ldy) {
  __m256 acc[T][2];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  const uint8_t* blk = p;
  for (int64_t b = 0; b < nb; ++b, blk += 136) {
    const __m128 dw4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk)));
    const __m256 dw = spread_pair(dw4, 2 * pair);  // (d_2k x 4, d_2k+1 x 4)
    const __m256 dw0 = _mm256_permute2f128_ps(dw, dw, 0x00), dw1 = _mm256_permute2f128_ps(dw, dw, 0x11);
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 8 + 64 * pair));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 40 + 64 * pair));
    const __m256i a0 = _mm256_sign_epi8(w0, w0), a1 = _mm256_sign_epi8(w1, w1);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t * ldx + b].qs));
      const __m256 xdt = _mm256_broadcast_ss(sc + t * ldx + b);
      // isum_s8s8(w, xq), with |w| computed once per block
      const __m256i s0 = isum_u8s8(a0, _mm256_sign_epi8(xq, w0)), s1 = isum_u8s8(a1, _mm256_sign_epi8(xq, w1));
      acc[t][0] = _mm256_fmadd_ps(_mm256_mul_ps(dw0, xdt), _mm256_cvtepi32_ps(s0), acc[t][0]);
      acc[t][1] = _mm256_fmadd_ps(_mm256_mul_ps(dw1, xdt), _mm256_cvtepi32_ps(s1), acc[t][1]);
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) {
    y[t * ldy + 2 * pair] = hsum8(acc[t][0]);
    y[t * ldy + 2 * pair + 1] = hsum8(acc[t][1]);
  }
}

// What the tile of each packed type does: its pair kernel, and what follows both pairs.
struct Q4_1Kind {
  using Block = BlockQ8_1;
  static constexpr size_t kGroupBlockBytes = 80;
  static constexpr int kScalesPerBlock = 2;
  template <int T>
  static void pair(const uint8_t* p, int64_t nb, int k, const Block* x, const float* sc, int64_t ldx, float* y,
                   int64_t ldy) {
    q4_1_pair_tile<T>(p, nb, k, x, sc, ldx, y, ldy);
  }
  template <int G, int T>
  static void finish(const uint8_t* p, int64_t nb, const float* sc, int64_t ldx, float* y, int64_t ldy) {
    q4_1_add_mins<G, T>(p, nb, sc, ldx, y, ldy);
  }
};
struct Q8_0Kind {
  using Block = BlockQ8_0;
  static constexpr size_t kGroupBlockBytes = 136;
  static constexpr int kScalesPerBlock = 1;
  template <int T>
  static void pair(const uint8_t* p, int64_t nb, int k, const Block* x, const float* sc, int64_t ldx, float* y,
                   int64_t ldy) {
    q8_0_pair_tile<T>(p, nb, k, x, sc, ldx, y, ldy);
  }
  template <int G, int T>
  static void finish(const uint8_t*, int64_t, const float*, int64_t, float*, int64_t) {}
};

// G groups (one or two) and T tokens: both pairs of rows of each group, then the type's finish.
template <class Kind, int G>
struct PackedTile {
  template <int T>
  static void run(const uint8_t* p, int64_t nb, const typename Kind::Block* x, const float* sc, int64_t ldx, float* y,
                  int64_t ldy) {
    for (int g = 0; g < G; ++g) {
      const uint8_t* pg = p + g * nb * static_cast<int64_t>(Kind::kGroupBlockBytes);
      Kind::template pair<T>(pg, nb, 0, x, sc, ldx, y + 4 * g, ldy);
      Kind::template pair<T>(pg, nb, 1, x, sc, ldx, y + 4 * g, ldy);
    }
    Kind::template finish<G, T>(p, nb, sc, ldx, y, ldy);
  }
};

// Groups outermost (two at a time), so their weights stay in L1 while every token passes.
template <class Kind>
void matmul_packed4_avx2(const uint8_t* p, int64_t groups, const typename Kind::Block* x, const float* scales,
                         int64_t ldx, int64_t m, int64_t n, float* y, int64_t ldy) {
  const int64_t nb = n / 32;
  constexpr int S = Kind::kScalesPerBlock;
  auto tiles = [&](auto tile, const uint8_t* pg, float* yg) {
    using Tile = decltype(tile);
    int64_t t = 0;
    for (; t + kMaxTileTokens <= m; t += kMaxTileTokens) {
      Tile::template run<kMaxTileTokens>(pg, nb, x + t * ldx, scales + t * ldx * S, ldx, yg + t * ldy, ldy);
    }
    switch (m - t) {
      case 3:
        Tile::template run<3>(pg, nb, x + t * ldx, scales + t * ldx * S, ldx, yg + t * ldy, ldy);
        break;
      case 2:
        Tile::template run<2>(pg, nb, x + t * ldx, scales + t * ldx * S, ldx, yg + t * ldy, ldy);
        break;
      case 1:
        Tile::template run<1>(pg, nb, x + t * ldx, scales + t * ldx * S, ldx, yg + t * ldy, ldy);
        break;
      default:
        break;
    }
  };
  const size_t group_bytes = static_cast<size_t>(nb) * Kind::kGroupBlockBytes;
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2) tiles(PackedTile<Kind, 2>{}, p + g * group_bytes, y + 4 * g);
  if (g < groups) tiles(PackedTile<Kind, 1>{}, p + g * group_bytes, y + 4 * g);
}

}  // namespace
}  // namespace weft::kernels::cpu

namespace weft::kernels::cpu::detail {
const FastKernels kAvx2Kernels =
    WEFT_X86_KERNEL_TABLE(Isa::kAvx2, dot_packed4_q4_1_avx2, dot_packed4_q8_0_avx2, (matmul_packed4_avx2<Q4_1Kind>),
                          (matmul_packed4_avx2<Q8_0Kind>));
}  // namespace weft::kernels::cpu::detail
