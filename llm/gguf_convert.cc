#include "llm/gguf_convert.h"

#include <vector>

#include <fmt/format.h>

#include "kernels/cpu/dequantize.h"
#include "kernels/cpu/quantize.h"
#include "llm/gguf_writer.h"
#include "llm/lora_adapter.h"

namespace weft::llm {
namespace {

using kernels::TensorType;

// llama.cpp's `general.file_type` (enum llama_ftype) for a file whose matrices are all `t`.
uint32_t file_type(TensorType t) {
  switch (t) {
    case TensorType::kF32:
      return 0;
    case TensorType::kF16:
      return 1;
    case TensorType::kQ8_0:
      return 7;
    case TensorType::kBF16:
      return 32;
    default:
      return 0;
  }
}

}  // namespace

Status convert_model(const GgufFile& in, TensorType to, const std::string& out_path) {
  if (to != TensorType::kQ8_0 && to != TensorType::kF16 && to != TensorType::kBF16 && to != TensorType::kF32) {
    return Status::invalid_argument(
        fmt::format("models convert to Q8_0, F16, BF16 or F32, not {}", kernels::tensor_type_info(to).name));
  }
  GgufWriter w(static_cast<uint32_t>(in.alignment()));
  for (const auto& [key, value] : in.metadata()) {
    if (key == "general.alignment" || key == "general.file_type") continue;  // the writer adds its own
    w.add_value(key, value);
  }
  w.add_uint32("general.file_type", file_type(to));
  std::vector<float> row;
  for (const GgufTensor& t : in.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    const auto new_row = kernels::row_bytes(to, t.ne[0]);
    if (t.n_dims != 2 || t.type == to || !new_row) {
      WEFT_RETURN_IF_ERROR(
          w.add_tensor(t.name, t.type, ne, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)));
      continue;
    }
    const size_t old_row = t.nbytes / static_cast<size_t>(t.rows());
    std::string data(*new_row * static_cast<size_t>(t.rows()), '\0');
    row.resize(static_cast<size_t>(t.ne[0]));
    for (int64_t r = 0; r < t.rows(); ++r) {
      if (Status s =
              kernels::cpu::dequantize_row(t.type, t.data + static_cast<size_t>(r) * old_row, row.data(), t.ne[0]);
          !s.is_ok()) {
        return Status::invalid_argument(fmt::format("tensor '{}': {}", t.name, s.message()));
      }
      WEFT_RETURN_IF_ERROR(
          kernels::cpu::quantize_row(to, row.data(), data.data() + static_cast<size_t>(r) * *new_row, t.ne[0]));
    }
    WEFT_RETURN_IF_ERROR(w.add_tensor(t.name, to, ne, std::move(data)));
  }
  return w.write(out_path);
}

Status merge_lora(const GgufFile& in, const ModelConfig& model, const LoraAdapter& adapter, TensorType to,
                  const std::string& out_path) {
  if (to != TensorType::kQ8_0 && to != TensorType::kF16 && to != TensorType::kBF16 && to != TensorType::kF32) {
    return Status::invalid_argument(
        fmt::format("merged matrices are Q8_0, F16, BF16 or F32, not {}", kernels::tensor_type_info(to).name));
  }
  WEFT_RETURN_IF_ERROR(adapter.check(model));
  static constexpr const char* kNames[kLoraTargets] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                       "ffn_gate", "ffn_up", "ffn_down"};
  GgufWriter w(static_cast<uint32_t>(in.alignment()));
  for (const auto& [key, value] : in.metadata()) {
    if (key != "general.alignment") w.add_value(key, value);
  }
  std::vector<float> row;
  for (const GgufTensor& t : in.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    const LoraMatrix* m = nullptr;
    for (size_t l = 0; l < adapter.layers.size() && m == nullptr; ++l) {
      for (int k = 0; k < kLoraTargets && m == nullptr; ++k) {
        if (t.name == fmt::format("blk.{}.{}.weight", l, kNames[k])) {
          m = adapter.find(static_cast<int>(l), static_cast<LoraTarget>(k));
        }
      }
    }
    if (m == nullptr) {
      WEFT_RETURN_IF_ERROR(
          w.add_tensor(t.name, t.type, ne, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)));
      continue;
    }
    const auto new_row = kernels::row_bytes(to, t.ne[0]);
    if (!new_row)
      return Status::invalid_argument(
          fmt::format("tensor '{}' does not fit {} blocks", t.name, kernels::tensor_type_info(to).name));
    const size_t old_row = t.nbytes / static_cast<size_t>(t.rows());
    std::string data(*new_row * static_cast<size_t>(t.rows()), '\0');
    row.resize(static_cast<size_t>(t.ne[0]));
    for (int64_t r = 0; r < t.rows(); ++r) {
      WEFT_RETURN_IF_ERROR(
          kernels::cpu::dequantize_row(t.type, t.data + static_cast<size_t>(r) * old_row, row.data(), t.ne[0]));
      for (int64_t c = 0; c < t.ne[0]; ++c) {
        double delta = 0;
        for (int k = 0; k < m->rank; ++k) {
          delta += static_cast<double>(m->b[static_cast<size_t>(r * m->rank + k)]) *
                   m->a[static_cast<size_t>(k * m->in + c)];
        }
        row[static_cast<size_t>(c)] += static_cast<float>(m->scale * delta);
      }
      WEFT_RETURN_IF_ERROR(
          kernels::cpu::quantize_row(to, row.data(), data.data() + static_cast<size_t>(r) * *new_row, t.ne[0]));
    }
    WEFT_RETURN_IF_ERROR(w.add_tensor(t.name, to, ne, std::move(data)));
  }
  return w.write(out_path);
}

}  // namespace weft::llm
