// Dequantization of GGUF tensor rows to float32, for every type weft supports.
//
// Block layouts follow ggml's (ggml-common.h): Q4_0, Q4_1 and Q8_0 hold 32 values with one or
// two fp16 scales; the K-quants hold 256 values in 8 or 16 sub-blocks with 6- or 8-bit sub-scales
// (Q4_K, Q5_K: 6-bit scales and mins packed in 12 bytes; Q6_K: int8 scales). These are the
// portable reference versions; SIMD matrix kernels are tested against them.
#pragma once

#include <cstdint>

#include "kernels/tensor_type.h"
#include "weft/status.h"

namespace weft::kernels::cpu {

// Dequantizes `n` values (a whole number of blocks of `type`) from `src` into `dst`.
// kInvalidArgument for an unsupported type or a partial block.
Status dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

}  // namespace weft::kernels::cpu
