// Quantization of float32 rows into GGUF tensor types, the inverse of dequantize.h, for tools that
// write weights (a model rewritten at another precision). Block layouts are ggml's.
//
//   Q8_0: per 32 values, d = max|x| / 127 stored as fp16, q = round(x / d) (half away from zero).
//   F16, BF16: each value rounded to nearest even; F32: copied.
#pragma once

#include <cstdint>

#include "kernels/tensor_type.h"
#include "weft/status.h"

namespace weft::kernels::cpu {

// Quantizes `n` values (a whole number of blocks of `type`) from `src` into `dst`, which must hold
// row_bytes(type, n). kInvalidArgument for a type it cannot write or a partial block.
Status quantize_row(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace weft::kernels::cpu
