// The safetensors format (Hugging Face's weight files, PEFT's adapter_model.safetensors): an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range, then
// the tensors' bytes, row-major.
//
//   WEFT_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::read("adapter_model.safetensors"));
//   for (const SafetensorsFile::Tensor& t : f.tensors()) {
//     WEFT_ASSIGN_OR_RETURN(std::vector<float> v, f.floats(t));  // F32, F16 and BF16
//   }
//   WEFT_RETURN_IF_ERROR(write_safetensors("out.safetensors", {{"w", {2, 3}, values}}, {}));
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

/// A safetensors file read into memory and validated.
class WEFT_API SafetensorsFile {
 public:
  struct Tensor {
    std::string name;
    std::string dtype;           ///< "F32", "F16", "BF16", "I64", ...
    std::vector<int64_t> shape;  ///< outermost first
    std::string_view bytes;      ///< its data, viewing the file's bytes
    int64_t elements() const;
  };

  /// kNotFound, kIoError, or kCorruption naming what is wrong (header length, JSON, a tensor's
  /// range or size).
  static Result<SafetensorsFile> read(const std::string& path);
  /// Parses bytes held in memory (copied).
  static Result<SafetensorsFile> from_bytes(std::string bytes);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  /// Tensors sorted by name.
  const std::vector<Tensor>& tensors() const { return tensors_; }
  /// Null when absent.
  const Tensor* find(std::string_view name) const;
  /// The header's "__metadata__" (string values).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// A floating-point tensor's values as float32; kInvalidArgument for other dtypes.
  static Result<std::vector<float>> floats(const Tensor& t);

 private:
  SafetensorsFile() = default;
  Status parse();

  std::string data_;
  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// One float32 tensor to write.
struct SafetensorsOut {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  ///< row-major, shape's product of them
};

/// Writes float32 tensors (sorted by name, as Hugging Face's writer does) and string metadata.
/// kInvalidArgument when a tensor's values do not fill its shape; kIoError when the file cannot be
/// written.
WEFT_API Status write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors,
                                  const std::map<std::string, std::string>& metadata);

}  // namespace weft::llm
