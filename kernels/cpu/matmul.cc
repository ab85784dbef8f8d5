#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <mutex>
#include <span>
#include <type_traits>

#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/packed_weights.h"

namespace weft::kernels::cpu {
namespace {

template <class F>
void for_range(const MatmulContext& ctx, int64_t n, int64_t grain, F&& fn) {
  if (ctx.team != nullptr) {
    ctx.team->parallel_for(n, grain, fn);
  } else {
    fn(0, n, 0);
  }
}

// Rows per chunk: a multiple of 4 (the kernels' row interleave), about 8 chunks per thread.
int64_t row_grain(const MatmulContext& ctx, int64_t rows) {
  const int64_t threads = ctx.team != nullptr ? ctx.team->size() : 1;
  const int64_t g = rows / (threads * 8);
  return std::clamp<int64_t>(g / 4 * 4, 4, 64);
}

Status matmul_reference(const WeightView& w, const float* x, int64_t m, float* y, const MatmulContext& ctx) {
  Status status;
  std::mutex mu;
  for_range(ctx, w.rows, row_grain(ctx, w.rows), [&](int64_t r0, int64_t r1, int) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
      Status s = dequantize_row(w.type, w.row(r), row.data(), w.cols);
      if (!s.is_ok()) {
        std::lock_guard<std::mutex> lock(mu);
        status = std::move(s);
        return;
      }
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = x + i * w.cols;
        double acc = 0;
        for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(row[c]) * xi[c];
        y[i * w.rows + r] = static_cast<float>(acc);
      }
    }
  });
  return status;
}

// Tokens per pass of a multi-token kernel over a chunk of rows: their quantized activations
// (at most ~55 KB for this model's widest rows) stay in L2 while the chunk's weights stream by.
constexpr int64_t kTokenBlock = 32;

// Splits the rows of all `targets` (one row space, matrix after matrix) into chunks across the
// team and runs `rows(target, r0, r1)` on each piece of a chunk that falls in one matrix. Pieces
// start on whole groups of four rows of their matrix: the grain is a multiple of four, and so is
// every matrix's row count but the last's (packing and matmul_fused check that).
template <class Rows>
void for_target_rows(std::span<const MatmulTarget> targets, const MatmulContext& ctx, Rows&& rows) {
  int64_t total = 0;
  for (const MatmulTarget& t : targets) total += t.w->rows;
  for_range(ctx, total, row_grain(ctx, total), [&](int64_t r0, int64_t r1, int) {
    int64_t base = 0;
    for (const MatmulTarget& t : targets) {
      const int64_t a = std::max(r0, base), b = std::min(r1, base + t.w->rows);
      if (a < b) rows(t, a - base, b - base);
      base += t.w->rows;
    }
  });
}

template <class Block, class Dot, class DotPacked, class MatmulPacked, class MatmulRows>
void matmul_blocks(std::span<const MatmulTarget> targets, const Block* q, const float* scales, int64_t m,
                   const MatmulContext& ctx, Dot dot_rows, DotPacked dot_packed, MatmulPacked matmul_packed,
                   MatmulRows matmul_rows) {
  const int64_t scales_per_block = std::is_same_v<Block, BlockQ8_1> ? 2 : 1;
  for_target_rows(targets, ctx, [&](const MatmulTarget& t, int64_t r0, int64_t r1) {
    const WeightView& w = *t.w;
    float* y = t.y;
    const int64_t blocks = w.cols / tensor_type_info(w.type).block_elems;
    const bool packed = w.packed != nullptr && dot_packed != nullptr;
    const bool tiled = packed ? matmul_packed != nullptr && m > 1 : matmul_rows != nullptr && m > 1;
    const size_t group_bytes = packed_group_bytes(w);
    if (tiled) {
      for (int64_t i0 = 0; i0 < m; i0 += kTokenBlock) {
        const int64_t tokens = std::min(kTokenBlock, m - i0);
        if (packed) {
          matmul_packed(w.packed + static_cast<size_t>(r0 / 4) * group_bytes, (r1 - r0) / 4, q + i0 * blocks,
                        scales + i0 * blocks * scales_per_block, blocks, tokens, w.cols, y + i0 * w.rows + r0, w.rows);
        } else {
          matmul_rows(w.row(r0), w.row_bytes, r1 - r0, q + i0 * blocks, blocks, tokens, w.cols, y + i0 * w.rows + r0,
                      w.rows);
        }
      }
      return;
    }
    for (int64_t i = 0; i < m; ++i) {
      if (packed) {
        dot_packed(w.packed + static_cast<size_t>(r0 / 4) * group_bytes, (r1 - r0) / 4, q + i * blocks, w.cols,
                   y + i * w.rows + r0);
      } else {
        dot_rows(w.row(r0), w.row_bytes, r1 - r0, q + i * blocks, w.cols, y + i * w.rows + r0);
      }
    }
  });
}

// F16 and BF16 weights: chunks of rows, tokens in blocks of kTokenBlock.
template <class MatmulRows>
void matmul_float16(std::span<const MatmulTarget> targets, const uint16_t* x, int64_t m, const MatmulContext& ctx,
                    MatmulRows matmul_rows) {
  for_target_rows(targets, ctx, [&](const MatmulTarget& t, int64_t r0, int64_t r1) {
    const WeightView& w = *t.w;
    for (int64_t i0 = 0; i0 < m; i0 += kTokenBlock) {
      matmul_rows(w.row(r0), w.row_bytes, r1 - r0, x + i0 * w.cols, w.cols, std::min(kTokenBlock, m - i0), w.cols,
                  t.y + i0 * w.rows + r0, w.rows);
    }
  });
}

constexpr void (*kNoPackedQ8_0)(const uint8_t*, int64_t, const BlockQ8_0*, int64_t, float*) = nullptr;
template <class Block>
constexpr void (*kNoMatmulRows)(const uint8_t*, size_t, int64_t, const Block*, int64_t, int64_t, int64_t, float*,
                                int64_t) = nullptr;
template <class Block>
constexpr void (*kNoMatmulPacked)(const uint8_t*, int64_t, const Block*, const float*, int64_t, int64_t, int64_t,
                                  float*, int64_t) = nullptr;

}  // namespace

bool uses_packed_weights(const FastKernels& k, const WeightView& w) {
  if (!can_pack_rows4(w)) return false;
  return (w.type == TensorType::kQ4_1 && k.dot_packed4_q4_1 != nullptr) ||
         (w.type == TensorType::kQ8_0 && k.dot_packed4_q8_0 != nullptr);
}

bool has_fast_matmul(TensorType t) {
  switch (t) {
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ8_0:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
    case TensorType::kF16:
    case TensorType::kBF16:
      return true;
    default:
      return false;
  }
}

void QuantizedRows::set(const float* x, int64_t m, int64_t cols) {
  x_ = x;
  m_ = m;
  cols_ = cols;
  have_q8_0_ = have_q8_1_ = have_q8_k_ = have_f16_ = have_bf16_ = false;
}

template <class Block>
const Block* QuantizedRows::quantized(std::vector<Block>& out, bool& have, int64_t block_elems,
                                      void (*quantize)(const float*, int64_t, Block*), const MatmulContext& ctx) {
  if (!have) {
    const int64_t blocks = cols_ / block_elems;
    out.resize(static_cast<size_t>(blocks * m_));
    for_range(ctx, m_, 4, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) quantize(x_ + i * cols_, cols_, &out[i * blocks]);
    });
    have = true;
  }
  return out.data();
}

const BlockQ8_0* QuantizedRows::q8_0(const MatmulContext& ctx) {
  if (!have_q8_0_) {
    quantized(q8_0_, have_q8_0_, 32, ctx.kernels->quantize_q8_0, ctx);
    q8_0_scales_.resize(q8_0_.size());
    activation_scales(q8_0_.data(), static_cast<int64_t>(q8_0_.size()), q8_0_scales_.data());
  }
  return q8_0_.data();
}
const BlockQ8_1* QuantizedRows::q8_1(const MatmulContext& ctx) {
  if (!have_q8_1_) {
    quantized(q8_1_, have_q8_1_, 32, ctx.kernels->quantize_q8_1, ctx);
    q8_1_scales_.resize(2 * q8_1_.size());
    activation_scales(q8_1_.data(), static_cast<int64_t>(q8_1_.size()), q8_1_scales_.data());
  }
  return q8_1_.data();
}
const BlockQ8_K* QuantizedRows::q8_k(const MatmulContext& ctx) {
  return quantized(q8_k_, have_q8_k_, 256, ctx.kernels->quantize_q8_k, ctx);
}
const float* QuantizedRows::q8_0_scales(const MatmulContext& ctx) {
  q8_0(ctx);
  return q8_0_scales_.data();
}
const float* QuantizedRows::q8_1_scales(const MatmulContext& ctx) {
  q8_1(ctx);
  return q8_1_scales_.data();
}
const uint16_t* QuantizedRows::f16(const MatmulContext& ctx) {
  if (!have_f16_) {
    f16_.resize(static_cast<size_t>(m_ * cols_));
    ctx.kernels->scale_to_f16(x_, 1.0f, m_ * cols_, f16_.data());
    have_f16_ = true;
  }
  return f16_.data();
}
const uint16_t* QuantizedRows::bf16(const MatmulContext& ctx) {
  if (!have_bf16_) {
    bf16_.resize(static_cast<size_t>(m_ * cols_));
    ctx.kernels->round_to_bf16(x_, m_ * cols_, bf16_.data());
    have_bf16_ = true;
  }
  return bf16_.data();
}

namespace {

// Fast-mode products of targets that share a type, a width and whether they are packed.
Status matmul_fast(std::span<const MatmulTarget> targets, QuantizedRows& x, const MatmulContext& ctx) {
  const WeightView& w = *targets[0].w;
  const FastKernels& k = *ctx.kernels;
  if (w.type == TensorType::kF16 || w.type == TensorType::kBF16) {
    const bool bf16 = w.type == TensorType::kBF16;
    matmul_float16(targets, bf16 ? x.bf16(ctx) : x.f16(ctx), x.rows(), ctx,
                   bf16 ? k.matmul_rows_bf16 : k.matmul_rows_f16);
    return Status::ok();
  }
  const int64_t block = tensor_type_info(w.type).block_elems;
  if (w.cols % block != 0) return Status::invalid_argument("fast matmul needs rows of whole blocks");
  constexpr void (*kNoPackedQ8_K)(const uint8_t*, int64_t, const BlockQ8_K*, int64_t, float*) = nullptr;
  const int64_t m = x.rows();
  switch (w.type) {
    case TensorType::kQ4_K:
      matmul_blocks(targets, x.q8_k(ctx), nullptr, m, ctx, k.dot_rows_q4_k, kNoPackedQ8_K, kNoMatmulPacked<BlockQ8_K>,
                    k.matmul_rows_q4_k);
      break;
    case TensorType::kQ5_K:
      matmul_blocks(targets, x.q8_k(ctx), nullptr, m, ctx, k.dot_rows_q5_k, kNoPackedQ8_K, kNoMatmulPacked<BlockQ8_K>,
                    k.matmul_rows_q5_k);
      break;
    case TensorType::kQ6_K:
      matmul_blocks(targets, x.q8_k(ctx), nullptr, m, ctx, k.dot_rows_q6_k, kNoPackedQ8_K, kNoMatmulPacked<BlockQ8_K>,
                    k.matmul_rows_q6_k);
      break;
    case TensorType::kQ4_1:
      matmul_blocks(targets, x.q8_1(ctx), x.q8_1_scales(ctx), m, ctx, k.dot_rows_q4_1, k.dot_packed4_q4_1,
                    k.matmul_packed4_q4_1, kNoMatmulRows<BlockQ8_1>);
      break;
    case TensorType::kQ4_0:
      matmul_blocks(targets, x.q8_0(ctx), x.q8_0_scales(ctx), m, ctx, k.dot_rows_q4_0, kNoPackedQ8_0,
                    kNoMatmulPacked<BlockQ8_0>, kNoMatmulRows<BlockQ8_0>);
      break;
    default:
      matmul_blocks(targets, x.q8_0(ctx), x.q8_0_scales(ctx), m, ctx, k.dot_rows_q8_0, k.dot_packed4_q8_0,
                    k.matmul_packed4_q8_0, kNoMatmulRows<BlockQ8_0>);
      break;
  }
  return Status::ok();
}

Status check_width(const WeightView& w, const QuantizedRows& x) {
  if (x.cols() == w.cols) return Status::ok();
  return Status::invalid_argument("matmul: activation rows have " + std::to_string(x.cols()) +
                                  " values, the weight rows " + std::to_string(w.cols));
}

}  // namespace

Status matmul(const WeightView& w, QuantizedRows& x, float* y, const MatmulContext& ctx) {
  WEFT_RETURN_IF_ERROR(check_width(w, x));
  if (!ctx.fast || !has_fast_matmul(w.type)) return matmul_reference(w, x.data(), x.rows(), y, ctx);
  const MatmulTarget target{&w, y};
  return matmul_fast({&target, 1}, x, ctx);
}

Status matmul_fused(std::initializer_list<MatmulTarget> targets, QuantizedRows& x, const MatmulContext& ctx) {
  const std::span<const MatmulTarget> all(targets.begin(), targets.size());
  if (all.empty()) return Status::ok();
  const WeightView& first = *all[0].w;
  bool fusable = ctx.fast && has_fast_matmul(first.type);
  for (const MatmulTarget& t : all) {
    WEFT_RETURN_IF_ERROR(check_width(*t.w, x));
    fusable = fusable && t.w->type == first.type && t.w->rows % 4 == 0 &&
              (t.w->packed == nullptr) == (first.packed == nullptr);
  }
  if (!fusable) {
    for (const MatmulTarget& t : all) WEFT_RETURN_IF_ERROR(matmul(*t.w, x, t.y, ctx));
    return Status::ok();
  }
  return matmul_fast(all, x, ctx);
}

Status matmul(const WeightView& w, const float* x, int64_t m, float* y, const MatmulContext& ctx) {
  QuantizedRows rows;
  rows.set(x, m, w.cols);
  return matmul(w, rows, y, ctx);
}

}  // namespace weft::kernels::cpu
