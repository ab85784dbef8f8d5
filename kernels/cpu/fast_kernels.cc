#include "kernels/cpu/fast_kernels.h"

#include <vector>

#include "core/check.h"
#include "kernels/cpu/half.h"

namespace weft::kernels::cpu {
namespace detail {
namespace {

template <class Block, float (*Dot)(const uint8_t*, const Block*, int64_t)>
void dot_rows(const uint8_t* w, size_t row_bytes, int64_t rows, const Block* x, int64_t n, float* y) {
  for (int64_t r = 0; r < rows; ++r) y[r] = Dot(w + static_cast<size_t>(r) * row_bytes, x, n);
}

void weighted_sum_f16(const uint16_t* const* v, const uint16_t* p, int n, int dim, bool lanes8, float* out) {
  std::vector<uint16_t> column(static_cast<size_t>(n));
  for (int d = 0; d < dim; ++d) {
    for (int j = 0; j < n; ++j) column[j] = v[j][d];
    out[d] = lanes8 ? dot_f16_8lane(column.data(), p, n) : dot_f16(column.data(), p, n);
  }
}

void scores_f16(const uint16_t* const* keys, const uint16_t* q16, int h, int n, int dim, float scale, bool lanes8,
                float* out) {
  auto dot = lanes8 ? dot_f16_8lane : dot_f16;
  for (int k = 0; k < h; ++k) {
    for (int j = 0; j < n; ++j) out[k * n + j] = dot(keys[j], q16 + k * dim, dim) * scale;
  }
}

void scale_to_f16(const float* x, float s, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(x[i] * s);
}

void round_to_bf16(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}

template <float (*Dot)(const uint16_t*, const uint16_t*, int64_t)>
void matmul_rows_16bit(const uint8_t* w, size_t row_bytes, int64_t rows, const uint16_t* x, int64_t ldx, int64_t m,
                       int64_t n, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const auto* row = reinterpret_cast<const uint16_t*>(w + static_cast<size_t>(r) * row_bytes);
    for (int64_t t = 0; t < m; ++t) y[t * ldy + r] = Dot(row, x + t * ldx, n);
  }
}

int64_t int8_dot_probe(int64_t iterations, int32_t* sink) {
  uint8_t u[32];
  int8_t v[32];
  for (int i = 0; i < 32; ++i) u[i] = static_cast<uint8_t>(i * 7), v[i] = static_cast<int8_t>(i * 5 - 80);
  int32_t acc[8] = {};
  for (int64_t it = 0; it < iterations; ++it) {
    for (int l = 0; l < 8; ++l) {
      for (int k = 0; k < 4; ++k) acc[l] += u[4 * l + k] * v[4 * l + k];
    }
    u[it % 32] ^= 1;
  }
  for (int l = 0; l < 8; ++l) *sink += acc[l];
  return iterations * 32;
}

}  // namespace

const FastKernels kPortableKernels = {
    Isa::kPortable,
    quantize_q8_0,
    quantize_q8_1,
    dot_rows<BlockQ8_0, dot_q4_0_q8_0>,
    dot_rows<BlockQ8_1, dot_q4_1_q8_1>,
    dot_rows<BlockQ8_0, dot_q8_0_q8_0>,
    dot_f16,
    dot_f16_8lane,
    weighted_sum_f16,
    scores_f16,
    scale_to_f16,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    int8_dot_probe,
    softmax_exp,
    swiglu,
    round_to_bf16,
    matmul_rows_16bit<dot_f16>,
    matmul_rows_16bit<dot_bf16>,
    quantize_q8_k,
    dot_rows<BlockQ8_K, dot_q4_k_q8_k>,
    dot_rows<BlockQ8_K, dot_q5_k_q8_k>,
    dot_rows<BlockQ8_K, dot_q6_k_q8_k>,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace detail

void activation_scales(const BlockQ8_0* x, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b) out[b] = fp16_to_fp32(x[b].d);
}

void activation_scales(const BlockQ8_1* x, int64_t blocks, float* out) {
  for (int64_t b = 0; b < blocks; ++b) {
    out[2 * b] = fp16_to_fp32(x[b].d);
    out[2 * b + 1] = fp16_to_fp32(x[b].s);
  }
}

const FastKernels& fast_kernels(Isa isa) {
  WEFT_CHECK(isa_supported(isa));
  switch (isa) {
#if defined(WEFT_HAVE_X86_KERNELS)
    case Isa::kAvx512:
      return detail::kAvx512Kernels;
    case Isa::kAvx2:
      return detail::kAvx2Kernels;
#endif
    default:
      return detail::kPortableKernels;
  }
}

const FastKernels& fast_kernels() {
  static const FastKernels& best = fast_kernels(best_isa());
  return best;
}

}  // namespace weft::kernels::cpu
