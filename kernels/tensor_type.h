// Tensor element types as GGML/GGUF number them, with their block layouts.
//
// Quantized types store fixed-size blocks of `block_elems` values in `block_bytes` bytes; a row of
// a tensor is a whole number of blocks. Ids and layouts follow ggml's `ggml_type` (ggml.h), which
// GGUF files record per tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "weft/export.h"

namespace weft::kernels {

enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
};

struct WEFT_API TensorTypeInfo {
  TensorType type;
  std::string_view name;
  int64_t block_elems;  // values per block (1 for plain floats)
  int64_t block_bytes;  // bytes per block
  bool supported;       // weft has kernels for it
};

// Layout of a type id read from a file; nullopt for ids weft does not know.
WEFT_API std::optional<TensorTypeInfo> tensor_type_info(uint32_t id);
const TensorTypeInfo& tensor_type_info(TensorType t);

// Bytes of a row of `n` values, or nullopt when `n` is not a whole number of blocks or the size
// does not fit in size_t.
WEFT_API std::optional<size_t> row_bytes(TensorType t, int64_t n);

}  // namespace weft::kernels
