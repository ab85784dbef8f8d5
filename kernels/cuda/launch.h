// Launchers of the CUDA kernels, one per kernel file, callable from plain C++ (cuda_backend.cc).
// Each enqueues its kernel on `stream` and returns false for shapes or types it has no kernel for.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/op_params.h"
#include "kernels/tensor_type.h"

namespace weft::kernels::cuda {

// embed.cu: out[i] = row ids[i] of the table, as floats.
bool launch_embed(TensorType type, const uint8_t* table, size_t row_bytes, int64_t cols, const int32_t* ids, int n,
                  float* out, cudaStream_t stream);
// rms_norm.cu
void launch_rms_norm(const float* x, const float* weight, int n, int cols, float eps, float* y, cudaStream_t stream);
// matvec.cu: a few tokens times up to kMatvecTargets matrices of one type and width sharing the
// input, each weight read once and dequantized in registers; the input RMS-normalised first when
// `norm` is given. kSwiglu: one target, y = silu(W x) * (up x).
enum class MatvecOut { kStore, kAccumulate, kSwiglu };
constexpr int kMatvecTargets = 3;
struct MatvecTarget {
  const uint8_t* w;
  int64_t rows;
  float* y;
};
bool launch_matvec(TensorType type, const MatvecTarget* targets, int count, const uint8_t* up, size_t row_bytes,
                   int64_t cols, const float* x, int n, const float* norm, float eps, MatvecOut out,
                   cudaStream_t stream);
// Tokens launch_matvec takes at once (more are split into groups of this many).
constexpr int kMatvecTokens = 8;
// dequantize.cu: the whole matrix as IEEE halves, [rows][cols].
bool launch_dequantize_f16(TensorType type, const uint8_t* w, size_t row_bytes, int64_t rows, int64_t cols,
                           uint16_t* out, cudaStream_t stream);
// convert.cu: x (n floats) rounded to halves.
void launch_to_f16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream);
// swiglu.cu: y[i] = silu(gate[i]) * up[i].
void launch_swiglu(const float* gate, const float* up, int64_t n, float* y, cudaStream_t stream);
// add.cu: y += x.
void launch_add(float* y, const float* x, int64_t n, cudaStream_t stream);
// add_bias.cu
void launch_add_bias(float* x, const float* bias, int n, int cols, cudaStream_t stream);
// rope_store.cu
bool launch_rope_store(float* q, float* k, const float* v, int n, const int32_t* pos, const int32_t* slot,
                       const Rope& rope, const AttentionShape& shape, uint16_t* keys, uint16_t* values,
                       cudaStream_t stream);
// attention.cu: keys/values point at the layer's [slots][kv_dim] halves.
bool launch_attention(const float* q, int n, const int32_t* visible_start, const int32_t* visible,
                      const AttentionShape& shape, const uint16_t* keys, const uint16_t* values, float* out,
                      cudaStream_t stream);
// gather_rows.cu
void launch_gather_rows(const float* x, const int32_t* rows, int n, int cols, float* y, cudaStream_t stream);
// argmax.cu
void launch_argmax(const float* x, int n, int cols, int32_t* out, cudaStream_t stream);

}  // namespace weft::kernels::cuda
