#include "finetune/float_kernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "kernels/cpu/dequantize.h"
#include "kernels/tensor_type.h"

// Each kernel is compiled twice, for AVX2+FMA (x86-64-v3) and for baseline x86-64, and the loader
// picks the one this CPU runs. The eight-lane vectors below are one register with AVX2 and two
// without; the sums are the same either way.
#if defined(__x86_64__) && !defined(__clang__)
#define WEFT_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define WEFT_MULTIVERSION
#endif
#define WEFT_INLINE inline __attribute__((always_inline))
// The vector helpers are always inlined, so no vector crosses a call: the ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace weft::finetune {
namespace {

typedef float v8 __attribute__((vector_size(32), aligned(4), may_alias));

WEFT_INLINE v8 load(const float* p) { return *reinterpret_cast<const v8*>(p); }
WEFT_INLINE void store(float* p, v8 v) { *reinterpret_cast<v8*>(p) = v; }
WEFT_INLINE v8 splat(float f) { return v8{f, f, f, f, f, f, f, f}; }
WEFT_INLINE float sum(v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// out[i][r] = dot(x[i], w[r]) for an NI x NR tile.
template <int NI, int NR>
WEFT_INLINE void dot_tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t cols, float* y, int64_t ldy,
                          bool accumulate) {
  v8 acc[NI][NR];
  for (int i = 0; i < NI; ++i) {
    for (int r = 0; r < NR; ++r) acc[i][r] = splat(0.0f);
  }
  int64_t k = 0;
  for (; k + 8 <= cols; k += 8) {
    v8 wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = load(w + r * ldw + k);
    for (int i = 0; i < NI; ++i) {
      const v8 xv = load(x + i * ldx + k);
      for (int r = 0; r < NR; ++r) acc[i][r] += xv * wv[r];
    }
  }
  for (int i = 0; i < NI; ++i) {
    for (int r = 0; r < NR; ++r) {
      float s = sum(acc[i][r]);
      for (int64_t t = k; t < cols; ++t) s += x[i * ldx + t] * w[r * ldw + t];
      float& out = y[i * ldy + r];
      out = accumulate ? out + s : s;
    }
  }
}

// y[i][r] (+)= dot(x[i], w[r]), i < n, r < rows.
WEFT_MULTIVERSION void dot_block(const float* x, int64_t ldx, int n, const float* w, int64_t ldw, int rows,
                                 int64_t cols, float* y, int64_t ldy, bool accumulate) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    int r = 0;
    for (; r + 2 <= rows; r += 2) {
      dot_tile<4, 2>(x + i * ldx, ldx, w + r * ldw, ldw, cols, y + i * ldy + r, ldy, accumulate);
    }
    for (; r < rows; ++r) dot_tile<4, 1>(x + i * ldx, ldx, w + r * ldw, ldw, cols, y + i * ldy + r, ldy, accumulate);
  }
  for (; i < n; ++i) {
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
      dot_tile<1, 4>(x + i * ldx, ldx, w + r * ldw, ldw, cols, y + i * ldy + r, ldy, accumulate);
    }
    for (; r < rows; ++r) dot_tile<1, 1>(x + i * ldx, ldx, w + r * ldw, ldw, cols, y + i * ldy + r, ldy, accumulate);
  }
}

// dx[i][0..cols) += sum_r g[i][r] w[r][0..cols), i < n, r < rows.
WEFT_MULTIVERSION void axpy_block(const float* g, int64_t ldg, int n, const float* w, int64_t ldw, int rows,
                                  int64_t cols, float* dx, int64_t lddx) {
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      v8 acc[4][2];
      for (int a = 0; a < 4; ++a) {
        acc[a][0] = load(dx + (i + a) * lddx + c);
        acc[a][1] = load(dx + (i + a) * lddx + c + 8);
      }
      for (int r = 0; r < rows; ++r) {
        const v8 w0 = load(w + r * ldw + c), w1 = load(w + r * ldw + c + 8);
        for (int a = 0; a < 4; ++a) {
          const v8 s = splat(g[(i + a) * ldg + r]);
          acc[a][0] += s * w0;
          acc[a][1] += s * w1;
        }
      }
      for (int a = 0; a < 4; ++a) {
        store(dx + (i + a) * lddx + c, acc[a][0]);
        store(dx + (i + a) * lddx + c + 8, acc[a][1]);
      }
    }
    for (; i < n; ++i) {
      v8 a0 = load(dx + i * lddx + c), a1 = load(dx + i * lddx + c + 8);
      for (int r = 0; r < rows; ++r) {
        const v8 s = splat(g[i * ldg + r]);
        a0 += s * load(w + r * ldw + c);
        a1 += s * load(w + r * ldw + c + 8);
      }
      store(dx + i * lddx + c, a0);
      store(dx + i * lddx + c + 8, a1);
    }
  }
  for (; c < cols; ++c) {
    for (int i = 0; i < n; ++i) {
      float s = dx[i * lddx + c];
      for (int r = 0; r < rows; ++r) s += g[i * ldg + r] * w[r * ldw + c];
      dx[i * lddx + c] = s;
    }
  }
}

// out[r][c] += scale * sum_i p[i][r] q[i][c].
WEFT_MULTIVERSION void outer_block(const float* p, int rows, const float* q, int64_t cols, int n, float scale,
                                   float* out) {
  for (int r = 0; r < rows; ++r) {
    float* o = out + r * cols;
    for (int i = 0; i < n; ++i) {
      const float s = scale * p[i * rows + r];
      if (s == 0.0f) continue;
      const float* qi = q + i * cols;
      for (int64_t c = 0; c < cols; ++c) o[c] += s * qi[c];
    }
  }
}

constexpr int kTileRows = 32;

// Rows [r0, r1) of w, columns [c0, c1), as float32 into `out` ([r1 - r0][c1 - c0]); c0 and c1 are
// whole blocks of w's type (or the row's end).
Status dequantize_tile(const kernels::WeightView& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* out) {
  const auto offset = kernels::row_bytes(w.type, c0);
  if (!offset) return Status::invalid_argument("a tile must start at a whole block");
  for (int64_t r = r0; r < r1; ++r) {
    WEFT_RETURN_IF_ERROR(kernels::cpu::dequantize_row(w.type, w.row(r) + *offset, out + (r - r0) * (c1 - c0), c1 - c0));
  }
  return Status::ok();
}

}  // namespace

Status matmul_nt(const kernels::WeightView& w, const float* x, int n, float* y, bool accumulate,
                 weft::ParallelFor& team) {
  const int64_t tiles = (w.rows + kTileRows - 1) / kTileRows;
  std::vector<std::vector<float>> scratch(static_cast<size_t>(team.size()));
  std::vector<Status> errors(static_cast<size_t>(team.size()));
  team.parallel_for(tiles, 1, [&](int64_t b, int64_t e, int slot) {
    std::vector<float>& tile = scratch[static_cast<size_t>(slot)];
    tile.resize(static_cast<size_t>(kTileRows * w.cols));
    for (int64_t t = b; t < e; ++t) {
      const int64_t r0 = t * kTileRows, r1 = std::min(w.rows, r0 + kTileRows);
      if (Status s = dequantize_tile(w, r0, r1, 0, w.cols, tile.data()); !s.is_ok()) {
        errors[static_cast<size_t>(slot)] = s;
        return;
      }
      dot_block(x, w.cols, n, tile.data(), w.cols, static_cast<int>(r1 - r0), w.cols, y + r0, w.rows, accumulate);
    }
  });
  for (const Status& s : errors) WEFT_RETURN_IF_ERROR(s);
  return Status::ok();
}

Status matmul_nn(const kernels::WeightView& w, const float* g, int n, float* dx, weft::ParallelFor& team) {
  // Threads split the columns (each owning its slice of dx) in whole blocks of the weight type.
  const int64_t block = kernels::tensor_type_info(w.type).block_elems;
  const int64_t per_chunk = std::max<int64_t>(block, (64 / block) * block);
  const int64_t chunks = (w.cols + per_chunk - 1) / per_chunk;
  std::vector<std::vector<float>> scratch(static_cast<size_t>(team.size()));
  std::vector<Status> errors(static_cast<size_t>(team.size()));
  team.parallel_for(chunks, 1, [&](int64_t b, int64_t e, int slot) {
    std::vector<float>& tile = scratch[static_cast<size_t>(slot)];
    const int64_t c0 = b * per_chunk, c1 = std::min(w.cols, e * per_chunk), width = c1 - c0;
    tile.resize(static_cast<size_t>(kTileRows * width));
    for (int64_t r0 = 0; r0 < w.rows; r0 += kTileRows) {
      const int64_t r1 = std::min(w.rows, r0 + kTileRows);
      if (Status s = dequantize_tile(w, r0, r1, c0, c1, tile.data()); !s.is_ok()) {
        errors[static_cast<size_t>(slot)] = s;
        return;
      }
      axpy_block(g + r0, w.rows, n, tile.data(), width, static_cast<int>(r1 - r0), width, dx + c0, w.cols);
    }
  });
  for (const Status& s : errors) WEFT_RETURN_IF_ERROR(s);
  return Status::ok();
}

void float_nt(const float* a, int rows, int cols, const float* x, int n, float* y, bool accumulate) {
  dot_block(x, cols, n, a, cols, rows, cols, y, rows, accumulate);
}

void float_nn(const float* a, int rows, int cols, const float* g, int n, float* dx) {
  axpy_block(g, rows, n, a, cols, rows, cols, dx, cols);
}

void float_tn(const float* p, int rows, const float* q, int cols, int n, float scale, float* out) {
  outer_block(p, rows, q, cols, n, scale, out);
}

}  // namespace weft::finetune
