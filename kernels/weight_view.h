// A read-only view of a 2-D weight matrix stored row by row in any supported tensor type.
//
// Row r holds `cols` values (ggml's ne[0], the input dimension); there are `rows` rows (ne[1],
// the output dimension), so y = W x has y[r] = dot(row r, x). The bytes belong to the model file.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/tensor_type.h"

namespace weft::kernels {

struct WeightView {
  TensorType type = TensorType::kF32;
  int64_t cols = 0;
  int64_t rows = 0;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;
  // The same rows in the four-row layout of packed_weights.h, or null; owned by whoever packed.
  const uint8_t* packed = nullptr;

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
  bool empty() const { return data == nullptr; }
};

}  // namespace weft::kernels
