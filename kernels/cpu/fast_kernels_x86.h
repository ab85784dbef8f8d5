// x86 implementations of the FastKernels table, written once and compiled once per instruction
// set (fast_kernels_avx2.cc, fast_kernels_avx512.cc). The including file defines
//
//   __m256i isum_u8s8(__m256i u, __m256i s);  // lane l: sum of u[4l+k] * s[4l+k], k < 4, exact
//
// before including this header. Everything here has internal linkage, so each instruction set's
// copy stays in its own object file and is only reached through that file's table.
//
// Each function keeps the sum structure documented in fast_math.h; comments name the step of the
// portable code that an instruction sequence reproduces.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/fast_kernels.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/kquant_layout.h"

namespace weft::kernels::cpu {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline float h2f(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
inline __m256 load_f16x8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)): fast_math.cc's hsum8.
inline float hsum8(__m256 v) {
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  t = _mm_add_ps(t, _mm_movehl_ps(t, t));
  t = _mm_add_ss(t, _mm_movehdup_ps(t));
  return _mm_cvtss_f32(t);
}

// The final reduction of eight vectors at once, lane k of the result for a[k], in the order of
// the one-vector code. With t = lo128 + hi128 = (a, b, c, d) = (l0+l4, l1+l5, l2+l6, l3+l7):
//   kHsum8 true:  (a + c) + (b + d), fast_math.cc's hsum8
//   kHsum8 false: (a + b) + (c + d), dot_f16's two _mm_hadd_ps
template <bool kHsum8>
inline __m256 reduce8_x8(const __m256* a) {
  constexpr int kFirst = kHsum8 ? _MM_SHUFFLE(1, 0, 1, 0) : _MM_SHUFFLE(2, 0, 2, 0);
  constexpr int kSecond = kHsum8 ? _MM_SHUFFLE(3, 2, 3, 2) : _MM_SHUFFLE(3, 1, 3, 1);
  __m256 t[4];  // t[i] = (a, b, c, d) of a[2i] | the same of a[2i+1]
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x20),
                         _mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x31));
  }
  // the two inner sums of vectors (0, 2 | 1, 3) and (4, 6 | 5, 7)
  const __m256 u0 = _mm256_add_ps(_mm256_shuffle_ps(t[0], t[1], kFirst), _mm256_shuffle_ps(t[0], t[1], kSecond));
  const __m256 u1 = _mm256_add_ps(_mm256_shuffle_ps(t[2], t[3], kFirst), _mm256_shuffle_ps(t[2], t[3], kSecond));
  const __m256 s = _mm256_hadd_ps(u0, u1);  // vectors 0, 2, 4, 6 | 1, 3, 5, 7
  return _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Signed x signed through the unsigned x signed primitive: |x| times y with x's sign.
inline __m256i isum_s8s8(__m256i x, __m256i y) { return isum_u8s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)); }

// 16 bytes of packed 4-bit values -> 32 bytes: low nibbles (elements 0..15), then high (16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), mask), _mm_and_si128(v, mask));
}

// ---- activation quantization -------------------------------------------------------------

// One block of 32: int8 values in qs, returns d = max|x| / 127 and (optionally) sum(qs).
inline float quantize_block(const float* x, int8_t* qs, int* sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 m = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float max = _mm_cvtss_f32(m4);
  const __m256 id = _mm256_set1_ps(max != 0.0f ? 127.0f / max : 0.0f);
  __m256i i[4];
  for (int k = 0; k < 4; ++k) {
    i[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  if (sum != nullptr) {
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_hadd_epi32(s4, s4);
    s4 = _mm_hadd_epi32(s4, s4);
    *sum = _mm_cvtsi128_si32(s4);
  }
  // Pack 32 x int32 -> int8 in order (packs interleave 128-bit lanes; the permute undoes it).
  const __m256i a = _mm256_packs_epi32(i[0], i[1]);
  const __m256i b = _mm256_packs_epi32(i[2], i[3]);
  const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), p);
  return max / 127.0f;
}

void quantize_q8_0_x86(const float* x, int64_t n, BlockQ8_0* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32) out[b].d = _cvtss_sh(quantize_block(x, out[b].qs, nullptr), 0);
}

void quantize_q8_1_x86(const float* x, int64_t n, BlockQ8_1* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    int sum = 0;
    const float d = quantize_block(x, out[b].qs, &sum);
    out[b].d = _cvtss_sh(d, 0);
    out[b].s = _cvtss_sh(d * static_cast<float>(sum), 0);
  }
}

// ---- quantized dot products, R weight rows against one activation row --------------------
// Rows are independent sum chains interleaved for instruction-level parallelism; each chain is
// exactly the portable one (lane = fma(d_w * d_x, lane_sum, lane) block by block).

template <int R>
void q4_0_rows(const uint8_t* w, size_t rb, const BlockQ8_0* x, int64_t nb, float* y) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i eight = _mm256_set1_epi8(8);
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const float xd = h2f(x[b].d);
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = w + r * rb + b * 18;
      const __m256i s = isum_s8s8(_mm256_sub_epi8(unpack_nibbles(blk + 2), eight), xq);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(blk) * xd), _mm256_cvtepi32_ps(s), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = hsum8(acc[r]);
}

template <int R>
void q4_1_rows(const uint8_t* w, size_t rb, const BlockQ8_1* x, int64_t nb, float* y) {
  __m256 acc[R];
  float summs[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps(), summs[r] = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const float xd = h2f(x[b].d), xs = h2f(x[b].s);
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = w + r * rb + b * 20;
      summs[r] = std::fma(h2f(blk + 2), xs, summs[r]);
      const __m256i s = isum_u8s8(unpack_nibbles(blk + 4), xq);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(blk) * xd), _mm256_cvtepi32_ps(s), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = hsum8(acc[r]) + summs[r];
}

template <int R>
void q8_0_rows(const uint8_t* w, size_t rb, const BlockQ8_0* x, int64_t nb, float* y) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const float xd = h2f(x[b].d);
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = w + r * rb + b * 34;
      const __m256i s = isum_s8s8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)), xq);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(h2f(blk) * xd), _mm256_cvtepi32_ps(s), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = hsum8(acc[r]);
}

template <class Block, void (*Four)(const uint8_t*, size_t, const Block*, int64_t, float*),
          void (*One)(const uint8_t*, size_t, const Block*, int64_t, float*)>
void dot_rows_x86(const uint8_t* w, size_t rb, int64_t rows, const Block* x, int64_t n, float* y) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) Four(w + static_cast<size_t>(r) * rb, rb, x, n / 32, y + r);
  for (; r < rows; ++r) One(w + static_cast<size_t>(r) * rb, rb, x, n / 32, y + r);
}

// ---- fp16 dot products and attention's weighted sum ---------------------------------------

float dot_f16_x86(const uint16_t* a, const uint16_t* b, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load_f16x8(a + i + 8 * k), load_f16x8(b + i + 8 * k), acc[k]);
  }
  if (i < n) {  // a zero-padded last step adds +0 to lanes the portable code leaves alone
    uint16_t ta[32] = {}, tb[32] = {};
    std::memcpy(ta, a + i, static_cast<size_t>(n - i) * 2);
    std::memcpy(tb, b + i, static_cast<size_t>(n - i) * 2);
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load_f16x8(ta + 8 * k), load_f16x8(tb + 8 * k), acc[k]);
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  t = _mm_hadd_ps(t, t);
  t = _mm_hadd_ps(t, t);
  return _mm_cvtss_f32(t);
}

float dot_f16_8lane_x86(const uint16_t* a, const uint16_t* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(load_f16x8(a + i), load_f16x8(b + i), acc);
  if (i < n) {
    uint16_t ta[8] = {}, tb[8] = {};
    std::memcpy(ta, a + i, static_cast<size_t>(n - i) * 2);
    std::memcpy(tb, b + i, static_cast<size_t>(n - i) * 2);
    acc = _mm256_fmadd_ps(load_f16x8(ta), load_f16x8(tb), acc);
  }
  return hsum8(acc);
}

// Column d's sum has 32 (or 8) partial sums indexed by j % 32 (j % 8); here they are kept for all
// d at once, vectorised over d, then reduced in the portable order.
constexpr int kMaxWeightedDim = 256;

// With lanes8, eight columns at a time keep their eight partial sums in registers: value rows
// j..j+7 go to partials 0..7, so nothing is stored until the column is done.
void weighted_sum_f16_lanes8(const uint16_t* const* v, const uint16_t* p, int n, int dim, float* out) {
  thread_local std::vector<float> pf;
  pf.resize(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) pf[j] = h2f(p[j]);
  for (int k = 0; k < dim / 8; ++k) {
    __m256 acc[8];
    for (int l = 0; l < 8; ++l) acc[l] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) {
        acc[l] = _mm256_fmadd_ps(load_f16x8(v[j + l] + 8 * k), _mm256_broadcast_ss(&pf[j + l]), acc[l]);
      }
    }
    for (int l = 0; j < n; ++j, ++l)
      acc[l] = _mm256_fmadd_ps(load_f16x8(v[j] + 8 * k), _mm256_broadcast_ss(&pf[j]), acc[l]);
    const __m256 r = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                                   _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])));
    _mm256_storeu_ps(out + 8 * k, r);
  }
}

void weighted_sum_f16_x86(const uint16_t* const* v, const uint16_t* p, int n, int dim, bool lanes8, float* out) {
  if (dim % 8 != 0 || dim > kMaxWeightedDim) {
    detail::kPortableKernels.weighted_sum_f16(v, p, n, dim, lanes8, out);
    return;
  }
  if (lanes8) {
    weighted_sum_f16_lanes8(v, p, n, dim, out);
    return;
  }
  // 32 partial sums per column (j % 32), eight at a time in registers: pass q takes the rows with
  // j % 32 in [8q, 8q + 8), each partial still summed in increasing j.
  thread_local std::vector<float> pf;
  pf.resize(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) pf[j] = h2f(p[j]);
  for (int k = 0; k < dim / 8; ++k) {
    __m256 P[32];
    for (int q = 0; q < 4; ++q) {
      __m256 acc[8];
      for (int l = 0; l < 8; ++l) acc[l] = _mm256_setzero_ps();
      int j0 = 8 * q;
      for (; j0 + 8 <= n; j0 += 32) {
#pragma GCC unroll 8
        for (int l = 0; l < 8; ++l) {
          acc[l] = _mm256_fmadd_ps(load_f16x8(v[j0 + l] + 8 * k), _mm256_broadcast_ss(&pf[j0 + l]), acc[l]);
        }
      }
      for (int l = 0; j0 + l < n && l < 8; ++l) {
        acc[l] = _mm256_fmadd_ps(load_f16x8(v[j0 + l] + 8 * k), _mm256_broadcast_ss(&pf[j0 + l]), acc[l]);
      }
      for (int l = 0; l < 8; ++l) P[8 * q + l] = acc[l];
    }
    __m256 a[8];
    for (int l = 0; l < 8; ++l)
      a[l] = _mm256_add_ps(_mm256_add_ps(P[l], P[16 + l]), _mm256_add_ps(P[8 + l], P[24 + l]));
    __m256 t[4];
    for (int l = 0; l < 4; ++l) t[l] = _mm256_add_ps(a[l], a[l + 4]);
    _mm256_storeu_ps(out + 8 * k, _mm256_add_ps(_mm256_add_ps(t[0], t[1]), _mm256_add_ps(t[2], t[3])));
  }
}

// Scores of up to kMaxScoreHeads heads: each key row is converted to fp32 once, then every head's
// dot product runs over it with the lane structure of dot_f16_x86 or dot_f16_8lane_x86.
constexpr int kMaxScoreHeads = 8;
constexpr int kMaxScoreDim = 256;

void scores_f16_x86(const uint16_t* const* keys, const uint16_t* q16, int h, int n, int dim, float scale, bool lanes8,
                    float* out) {
  if (dim % 8 != 0 || dim > kMaxScoreDim || h > kMaxScoreHeads) {
    for (int k = 0; k < h; ++k) {
      for (int j = 0; j < n; ++j) {
        out[k * n + j] = (lanes8 ? dot_f16_8lane_x86 : dot_f16_x86)(keys[j], q16 + k * dim, dim) * scale;
      }
    }
    return;
  }
  const int chunks = dim / 8;
  alignas(32) float q[kMaxScoreHeads][kMaxScoreDim];
  for (int k = 0; k < h; ++k) {
    for (int c = 0; c < chunks; ++c) _mm256_store_ps(q[k] + 8 * c, load_f16x8(q16 + k * dim + 8 * c));
  }
  const int padded = (chunks + 3) / 4 * 4;  // dot_f16 pads to whole 32-value rounds with zeros
  // Eight keys at a time, widened once into L1 for all heads, and their eight final reductions
  // (hsum8, or dot_f16's (a0 + a2) + (a1 + a3) then two hadds) done together.
  int j = 0;
  alignas(32) float wide[8][kMaxScoreDim];
  const __m256 sv = _mm256_set1_ps(scale);
  for (; j + 8 <= n; j += 8) {
    for (int kk = 0; kk < 8; ++kk) {
      for (int c = 0; c < chunks; ++c) _mm256_store_ps(wide[kk] + 8 * c, load_f16x8(keys[j + kk] + 8 * c));
    }
    for (int k = 0; k < h; ++k) {
      __m256 sum[8];
      if (lanes8) {
        for (int kk = 0; kk < 8; ++kk) sum[kk] = _mm256_setzero_ps();
        for (int c = 0; c < chunks; ++c) {
          const __m256 qc = _mm256_load_ps(q[k] + 8 * c);
#pragma GCC unroll 8
          for (int kk = 0; kk < 8; ++kk) sum[kk] = _mm256_fmadd_ps(_mm256_load_ps(wide[kk] + 8 * c), qc, sum[kk]);
        }
      } else {
        for (int kk = 0; kk < 8; ++kk) {
          __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
          for (int c = 0; c < chunks; ++c) {
            acc[c % 4] = _mm256_fmadd_ps(_mm256_load_ps(wide[kk] + 8 * c), _mm256_load_ps(q[k] + 8 * c), acc[c % 4]);
          }
          for (int c = chunks; c < padded; ++c) acc[c % 4] = _mm256_add_ps(acc[c % 4], _mm256_setzero_ps());
          sum[kk] = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
        }
      }
      const __m256 dots = lanes8 ? reduce8_x8<true>(sum) : reduce8_x8<false>(sum);
      _mm256_storeu_ps(out + k * n + j, _mm256_mul_ps(dots, sv));
    }
  }
  for (; j < n; ++j) {
    __m256 key[kMaxScoreDim / 8];
    for (int c = 0; c < chunks; ++c) key[c] = load_f16x8(keys[j] + 8 * c);
    for (int k = 0; k < h; ++k) {
      float dot;
      if (lanes8) {
        __m256 acc = _mm256_setzero_ps();
        for (int c = 0; c < chunks; ++c) acc = _mm256_fmadd_ps(key[c], _mm256_load_ps(q[k] + 8 * c), acc);
        dot = hsum8(acc);
      } else {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int c = 0; c < chunks; ++c) acc[c % 4] = _mm256_fmadd_ps(key[c], _mm256_load_ps(q[k] + 8 * c), acc[c % 4]);
        for (int c = chunks; c < padded; ++c) acc[c % 4] = _mm256_add_ps(acc[c % 4], _mm256_setzero_ps());
        const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
        __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        t = _mm_hadd_ps(t, t);
        t = _mm_hadd_ps(t, t);
        dot = _mm_cvtss_f32(t);
      }
      out[k * n + j] = dot * scale;
    }
  }
}

// F16C rounds to nearest even as fp32_to_fp16 does; only NaN payloads differ, so NaN lanes take
// that function's quiet NaN (sign | 0x7E00).
void scale_to_f16_x86(const float* x, float s, int64_t n, uint16_t* out) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    if (_mm256_movemask_ps(nan) != 0) {
      const __m128i nan16 = _mm_packs_epi32(_mm256_castsi256_si128(_mm256_castps_si256(nan)),
                                            _mm256_extractf128_si256(_mm256_castps_si256(nan), 1));
      const __m128i canonical =
          _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(static_cast<short>(0x8000))), _mm_set1_epi16(0x7E00));
      h = _mm_blendv_epi8(h, canonical, nan16);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = fp32_to_fp16(x[i] * s);
}

// ---- exp approximation and softmax --------------------------------------------------------

// fast_math.cc's exp_approx on 8 lanes; lanes outside its fast range take the scalar code.
inline __m256 exp_approx8(__m256 x) {
  const __m256 r = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                      _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  const __m256 fast = _mm256_fmadd_ps(j, k, k);
  const __m256 big = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), n), _mm256_set1_ps(126.0f), _CMP_GT_OQ);
  if (_mm256_movemask_ps(big) == 0) return fast;
  alignas(32) float in[8], outv[8];
  _mm256_store_ps(in, x);
  for (int l = 0; l < 8; ++l) outv[l] = exp_approx(in[l]);
  return _mm256_load_ps(outv);
}

double softmax_exp_x86(const float* x, float max, float* y, int64_t n) {
  const __m256 m = _mm256_set1_ps(max);
  double sum = 0.0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_approx8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    _mm256_storeu_ps(y + i, e);
    sum += static_cast<double>(hsum8(e));
  }
  if (i < n) {
    float chunk[8] = {};
    for (int64_t k = 0; i + k < n; ++k) y[i + k] = chunk[k] = exp_approx(x[i + k] - max);
    sum += static_cast<double>(hsum8(_mm256_loadu_ps(chunk)));
  }
  return sum;
}

void swiglu_x86(const float* g, const float* u, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 e = exp_approx8(_mm256_sub_ps(_mm256_setzero_ps(), gi));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(gi, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) out[i] = g[i] / (1.0f + exp_approx(0.0f - g[i])) * u[i];
}

// ---- K-quants (kquant_math.h): integer sums with maddubs/madd, the float chain as specified ----

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_hadd_epi32(s, s);
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(s);
}
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
// Products of 32 unsigned values (< 64) and 32 activations, pairs summed to int16 (no overflow:
// 2 * 63 * 127 < 32768), weighted per pair by `scales` (int16) and summed to int32.
inline __m256i scaled_isum(__m256i q, const int8_t* y, __m256i scales) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, load256(y)), scales);
}

// One weight row and up to four tokens: each 64-value group is unpacked, and each block's
// scales and mins decoded, once for all the tokens; each token's integer sums are exact and its
// float chains are the specification's, block by block. One token is the tile of one.

template <int kBlockBytes, bool kFifthBit>
struct Q45KTile {
  template <int T>
  static void run(const uint8_t* w, const BlockQ8_K* x, int64_t ldx, int64_t nb, float* y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    float sum[T], mins[T];
    for (int t = 0; t < T; ++t) sum[t] = mins[t] = 0.0f;
    for (int64_t b = 0; b < nb; ++b, w += kBlockBytes) {
      const uint8_t* scales = w + 4;
      const uint8_t* q = w + (kFifthBit ? 48 : 16);
      const __m256i hbits = kFifthBit ? load256(w + 16) : _mm256_setzero_si256();
      uint8_t sc[8], mn[8];
      for (int j = 0; j < 8; ++j) scale_min_k4(j, scales, &sc[j], &mn[j]);
      __m256i acc[T];
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
      for (int g = 0; g < 4; ++g, q += 32) {
        const __m256i qv = load256(q);
        __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
        if (kFifthBit) {
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * g), one), 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * g + 1), one), 4));
        }
        const __m256i slo = _mm256_set1_epi16(sc[2 * g]), shi = _mm256_set1_epi16(sc[2 * g + 1]);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          const int8_t* yq = x[t * ldx + b].qs + 64 * g;
          acc[t] = _mm256_add_epi32(acc[t], _mm256_add_epi32(scaled_isum(lo, yq, slo), scaled_isum(hi, yq + 32, shi)));
        }
      }
      const float dw = h2f(w), dmin = h2f(w + 2);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const BlockQ8_K& xb = x[t * ldx + b];
        int msum = 0;
        for (int j = 0; j < 8; ++j) msum += mn[j] * (xb.bsums[2 * j] + xb.bsums[2 * j + 1]);
        sum[t] = std::fma(dw * xb.d, static_cast<float>(hsum_i32(acc[t])), sum[t]);
        mins[t] = std::fma(dmin * xb.d, static_cast<float>(msum), mins[t]);
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy] = sum[t] - mins[t];
  }
};

struct Q6KTile {
  template <int T>
  static void run(const uint8_t* w, const BlockQ8_K* x, int64_t ldx, int64_t nb, float* y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    float sum[T];
    for (int t = 0; t < T; ++t) sum[t] = 0.0f;
    for (int64_t b = 0; b < nb; ++b, w += kQ6KBytes) {
      const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
      __m256i acc[T];
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i ql0 = load256(w + 64 * h), ql1 = load256(w + 64 * h + 32), qh = load256(w + 128 + 32 * h);
        const __m256i nibbles[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
        for (int k = 0; k < 4; ++k) {
          const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2), 4);
          const __m256i q = _mm256_or_si256(nibbles[k], high);
          const __m256i scales =
              _mm256_set_m128i(_mm_set1_epi16(sc[8 * h + 2 * k + 1]), _mm_set1_epi16(sc[8 * h + 2 * k]));
#pragma GCC unroll 4
          for (int t = 0; t < T; ++t) {
            acc[t] = _mm256_add_epi32(acc[t], scaled_isum(q, x[t * ldx + b].qs + 128 * h + 32 * k, scales));
          }
        }
      }
      const float dw = h2f(w + 208);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const BlockQ8_K& xb = x[t * ldx + b];
        int offset = 0;
        for (int j = 0; j < 16; ++j) offset += sc[j] * xb.bsums[j];
        sum[t] = std::fma(dw * xb.d, static_cast<float>(hsum_i32(acc[t]) - 32 * offset), sum[t]);
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy] = sum[t];
  }
};

// One token: the tile of one token, row by row.
template <class Tile>
void dot_rows_k_x86(const uint8_t* w, size_t rb, int64_t rows, const BlockQ8_K* x, int64_t n, float* y) {
  for (int64_t r = 0; r < rows; ++r) Tile::template run<1>(w + static_cast<size_t>(r) * rb, x, 0, n / 256, y + r, 0);
}

// Rows outermost, so a row's blocks stay in L1 while every token passes over them.
template <class Tile>
void matmul_rows_k_x86(const uint8_t* w, size_t rb, int64_t rows, const BlockQ8_K* x, int64_t ldx, int64_t m, int64_t n,
                       float* y, int64_t ldy) {
  const int64_t nb = n / 256;
  for (int64_t r = 0; r < rows; ++r, w += rb) {
    int64_t t = 0;
    for (; t + 4 <= m; t += 4) Tile::template run<4>(w, x + t * ldx, ldx, nb, y + t * ldy + r, ldy);
    switch (m - t) {
      case 3:
        Tile::template run<3>(w, x + t * ldx, ldx, nb, y + t * ldy + r, ldy);
        break;
      case 2:
        Tile::template run<2>(w, x + t * ldx, ldx, nb, y + t * ldy + r, ldy);
        break;
      case 1:
        Tile::template run<1>(w, x + t * ldx, ldx, nb, y + t * ldy + r, ldy);
        break;
      default:
        break;
    }
  }
}

// ---- float weights (F16, BF16) ---------------------------------------------------------------

// fp32_to_bf16 on eight lanes: round to nearest even, NaNs made quiet.
void round_to_bf16_x86(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), odd), 16);
    const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(64)), nan);
    // 32-bit lanes to 16 bits in order (packus works within 128-bit halves; the permute joins them).
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}

template <bool kBf16>
inline __m256 widen8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (kBf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

// One weight row and T tokens (activations already widened to fp32, exactly): each weight chunk
// is widened once for all of them; every (row, token) sum is dot_f16's: element i in accumulator
// (i % 32) / 8, lane i % 8, by fma in index order (no padding past n), then its final combination.
template <bool kBf16>
struct Float16Tile {
  template <int T>
  static void run(const uint16_t* w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy) {
    __m256 acc[T][4];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      for (int k = 0; k < 4; ++k) acc[t][k] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256 wv = widen8<kBf16>(w + i + 8 * k);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t)
          acc[t][k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + i + 8 * k), acc[t][k]);
      }
    }
    for (int k = 0; i < n; i += 8, ++k) {
      const __m256 wv = widen8<kBf16>(w + i);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) acc[t][k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + i), acc[t][k]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][2]), _mm256_add_ps(acc[t][1], acc[t][3]));
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
      h = _mm_hadd_ps(h, h);
      h = _mm_hadd_ps(h, h);
      y[t * ldy] = _mm_cvtss_f32(h);
    }
  }
};

// Rows outermost (a row stays in L1 while the tokens pass), three tokens per tile (12
// accumulators). Rows of values that are not whole 8-value chunks take the portable sums.
template <bool kBf16>
void matmul_rows_16bit_x86(const uint8_t* w, size_t rb, int64_t rows, const uint16_t* x, int64_t ldx, int64_t m,
                           int64_t n, float* y, int64_t ldy) {
  if (n % 8 != 0) {
    auto dot = kBf16 ? dot_bf16 : dot_f16;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t t = 0; t < m; ++t)
        y[t * ldy + r] = dot(reinterpret_cast<const uint16_t*>(w + r * rb), x + t * ldx, n);
    }
    return;
  }
  thread_local std::vector<float> wide;
  wide.resize(static_cast<size_t>(m * n));
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(&wide[t * n + i], widen8<kBf16>(x + t * ldx + i));
  }
  using Tile = Float16Tile<kBf16>;
  for (int64_t r = 0; r < rows; ++r, w += rb) {
    const auto* row = reinterpret_cast<const uint16_t*>(w);
    int64_t t = 0;
    for (; t + 3 <= m; t += 3) Tile::template run<3>(row, &wide[t * n], n, n, y + t * ldy + r, ldy);
    if (m - t == 2) Tile::template run<2>(row, &wide[t * n], n, n, y + t * ldy + r, ldy);
    if (m - t == 1) Tile::template run<1>(row, &wide[t * n], n, n, y + t * ldy + r, ldy);
  }
}

// 8 independent accumulators, so the primitive's throughput, not its latency, is measured.
int64_t int8_dot_probe_x86(int64_t iterations, int32_t* sink) {
  __m256i acc[8], u[4];
  __m256i s = _mm256_set1_epi8(-5);
  for (int k = 0; k < 8; ++k) acc[k] = _mm256_setzero_si256();
  for (int k = 0; k < 4; ++k) u[k] = _mm256_set1_epi8(static_cast<char>(3 + k));
  for (int64_t it = 0; it < iterations; ++it) {
    // Opaque inputs, so no product is hoisted or shared: every round computes all eight.
    __asm__ volatile("" : "+x"(u[0]), "+x"(u[1]), "+x"(u[2]), "+x"(u[3]), "+x"(s));
    for (int k = 0; k < 4; ++k) {
      acc[2 * k] = _mm256_add_epi32(acc[2 * k], isum_u8s8(u[k], s));
      acc[2 * k + 1] = _mm256_add_epi32(acc[2 * k + 1], isum_u8s8(s, u[k]));
    }
  }
  __m256i total = acc[0];
  for (int k = 1; k < 8; ++k) total = _mm256_add_epi32(total, acc[k]);
  *sink += _mm256_extract_epi32(total, 0);
  return iterations * 8 * 32;
}

#define WEFT_X86_KERNEL_TABLE(isa_value, packed_q4_1, packed_q8_0, mm_packed_q4_1, mm_packed_q8_0)                \
  FastKernels {                                                                                                   \
    isa_value, quantize_q8_0_x86, quantize_q8_1_x86, dot_rows_x86<BlockQ8_0, q4_0_rows<4>, q4_0_rows<1>>,         \
        dot_rows_x86<BlockQ8_1, q4_1_rows<4>, q4_1_rows<1>>, dot_rows_x86<BlockQ8_0, q8_0_rows<4>, q8_0_rows<1>>, \
        dot_f16_x86, dot_f16_8lane_x86, weighted_sum_f16_x86, scores_f16_x86, scale_to_f16_x86, packed_q4_1,      \
        packed_q8_0, mm_packed_q4_1, mm_packed_q8_0, int8_dot_probe_x86, softmax_exp_x86, swiglu_x86,             \
        round_to_bf16_x86, matmul_rows_16bit_x86<false>, matmul_rows_16bit_x86<true>, quantize_q8_k,              \
        dot_rows_k_x86<Q45KTile<kQ4KBytes, false>>, dot_rows_k_x86<Q45KTile<kQ5KBytes, true>>,                    \
        dot_rows_k_x86<Q6KTile>, matmul_rows_k_x86<Q45KTile<kQ4KBytes, false>>,                                   \
        matmul_rows_k_x86<Q45KTile<kQ5KBytes, true>>, matmul_rows_k_x86<Q6KTile>                                  \
  }

}  // namespace
}  // namespace weft::kernels::cpu
