#include "kernels/tensor_type.h"

#include <array>

namespace weft::kernels {
namespace {

constexpr std::array<TensorTypeInfo, 15> kTypes{{
    {TensorType::kF32, "F32", 1, 4, true},
    {TensorType::kF16, "F16", 1, 2, true},
    {TensorType::kQ4_0, "Q4_0", 32, 18, true},
    {TensorType::kQ4_1, "Q4_1", 32, 20, true},
    {TensorType::kQ5_0, "Q5_0", 32, 22, false},
    {TensorType::kQ5_1, "Q5_1", 32, 24, false},
    {TensorType::kQ8_0, "Q8_0", 32, 34, true},
    {TensorType::kQ8_1, "Q8_1", 32, 36, false},
    {TensorType::kQ2_K, "Q2_K", 256, 84, false},
    {TensorType::kQ3_K, "Q3_K", 256, 110, false},
    {TensorType::kQ4_K, "Q4_K", 256, 144, true},
    {TensorType::kQ5_K, "Q5_K", 256, 176, true},
    {TensorType::kQ6_K, "Q6_K", 256, 210, true},
    {TensorType::kQ8_K, "Q8_K", 256, 292, false},
    {TensorType::kBF16, "BF16", 1, 2, true},
}};

}  // namespace

std::optional<TensorTypeInfo> tensor_type_info(uint32_t id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

const TensorTypeInfo& tensor_type_info(TensorType t) {
  for (const auto& info : kTypes) {
    if (info.type == t) return info;
  }
  return kTypes[0];  // unreachable for valid enumerators
}

std::optional<size_t> row_bytes(TensorType t, int64_t n) {
  const TensorTypeInfo& info = tensor_type_info(t);
  if (n < 0 || n % info.block_elems != 0) return std::nullopt;
  size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(n / info.block_elems), static_cast<size_t>(info.block_bytes), &bytes)) {
    return std::nullopt;
  }
  return bytes;
}

}  // namespace weft::kernels
