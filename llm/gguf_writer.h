// Builds GGUF (version 3) files: metadata of every type, and tensors with their data.
//
//   weft::llm::GgufWriter w;
//   w.add_string("general.architecture", "llama");
//   w.add_uint32("llama.block_count", 2);
//   w.add_tensor("token_embd.weight", TensorType::kF32, {64, 100}, bytes);
//   WEFT_RETURN_IF_ERROR(w.write("tiny.gguf"));
//
// Used by tests to make tiny models, and by tools that save weights. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/tensor_type.h"
#include "llm/gguf_file.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

class WEFT_API GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32) : alignment_(alignment) {}

  void add_uint8(std::string_view key, uint8_t v) { scalar(key, GgufType::kUint8, &v, 1); }
  void add_int8(std::string_view key, int8_t v) { scalar(key, GgufType::kInt8, &v, 1); }
  void add_uint16(std::string_view key, uint16_t v) { scalar(key, GgufType::kUint16, &v, 2); }
  void add_int16(std::string_view key, int16_t v) { scalar(key, GgufType::kInt16, &v, 2); }
  void add_uint32(std::string_view key, uint32_t v) { scalar(key, GgufType::kUint32, &v, 4); }
  void add_int32(std::string_view key, int32_t v) { scalar(key, GgufType::kInt32, &v, 4); }
  void add_uint64(std::string_view key, uint64_t v) { scalar(key, GgufType::kUint64, &v, 8); }
  void add_int64(std::string_view key, int64_t v) { scalar(key, GgufType::kInt64, &v, 8); }
  void add_float32(std::string_view key, float v) { scalar(key, GgufType::kFloat32, &v, 4); }
  void add_float64(std::string_view key, double v) { scalar(key, GgufType::kFloat64, &v, 8); }
  void add_bool(std::string_view key, bool v);
  void add_string(std::string_view key, std::string_view v);
  void add_string_array(std::string_view key, const std::vector<std::string>& v);
  void add_float32_array(std::string_view key, const std::vector<float>& v);
  void add_int32_array(std::string_view key, const std::vector<int32_t>& v);
  // Any value as a GgufFile read it (copying metadata from one file to another).
  void add_value(std::string_view key, const GgufValue& v);
  // Appends a key with an already-encoded value (type + payload), for malformed-file tests.
  void add_raw(std::string_view key, std::string_view encoded_type_and_value);

  // `ne`: elements per dimension, fastest-varying first. `data` must hold exactly the tensor.
  Status add_tensor(std::string_view name, kernels::TensorType type, const std::vector<int64_t>& ne,
                    std::string data);

  std::string bytes() const;
  Status write(const std::string& path) const;

  // Encoders for building values by hand.
  static void put_string(std::string& out, std::string_view s);
  // Type and payload of `v`.
  static void put_value(std::string& out, const GgufValue& v);
  template <class T>
  static void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }

 private:
  struct Tensor {
    std::string name;
    kernels::TensorType type;
    std::vector<int64_t> ne;
    std::string data;
  };
  void scalar(std::string_view key, GgufType t, const void* v, size_t n);
  // Key, array type, element type and count; the caller appends the elements and counts the key.
  void begin_array(std::string_view key, GgufType elem, uint64_t count);

  uint32_t alignment_;
  uint64_t n_kv_ = 0;
  std::string kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace weft::llm
