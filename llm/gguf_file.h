// A GGUF model file (versions 2 and 3), memory-mapped and fully validated on open.
//
//   WEFT_ASSIGN_OR_RETURN(weft::llm::GgufFile f, weft::llm::GgufFile::open("model.gguf"));
//   WEFT_ASSIGN_OR_RETURN(uint64_t layers, f.get_uint("llama.block_count"));
//   const weft::llm::GgufTensor* emb = f.tensor("token_embd.weight");
//
// Format: the GGUF specification (ggml's docs/gguf.md): magic "GGUF", version, tensor and
// metadata counts, typed key/value metadata, tensor infos, then tensor data at `general.alignment`
// (default 32). Every length, count, offset and size is checked against the file before use, so a
// truncated or corrupt file yields a kCorruption Status naming what is wrong and at which byte
// offset — never a crash or an unbounded allocation. Strings and tensor data are views into the
// mapping, valid while the GgufFile lives. A GgufFile is immutable after open: safe to read from
// many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/tensor_type.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

/// The type's name, e.g. "uint32".
WEFT_API std::string_view to_string(GgufType t);

/// One metadata value: a scalar, a string, or an array of either (arrays may nest).
struct WEFT_API GgufValue {
  GgufType type = GgufType::kUint8;  ///< the value's type (kArray for arrays)
  ///@{
  /// Scalars: integers widen into u/i, floats into f, bools into b; strings view the file.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view str;
  ///@}
  /// Arrays: the element type, and the elements in the one vector that fits it.
  GgufType elem_type = GgufType::kUint8;
  std::vector<int64_t> integers;          ///< integer and bool arrays (uint64 values above 2^63 wrap)
  std::vector<double> numbers;            ///< float32 and float64 arrays
  std::vector<std::string_view> strings;  ///< string arrays (viewing the file)
  std::vector<GgufValue> arrays;          ///< arrays of arrays

  /// True for arrays.
  bool is_array() const { return type == GgufType::kArray; }
  /// The number of elements of an array (0 for a scalar).
  size_t size() const;
};

/// One tensor of the file, mapped in place.
struct WEFT_API GgufTensor {
  std::string_view name;          ///< e.g. "blk.0.attn_q.weight"
  kernels::TensorType type;       ///< its element (or block) type
  int n_dims = 0;                 ///< dimensions used in ne
  int64_t ne[4] = {1, 1, 1, 1};   ///< elements per dimension, fastest-varying first (ggml order)
  uint64_t offset = 0;            ///< from the start of the data section
  size_t nbytes = 0;              ///< its size in the file
  const uint8_t* data = nullptr;  ///< its bytes, in the mapping

  /// All elements.
  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  /// Rows of ne[0] elements.
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
};

/// A GGUF file, memory-mapped and validated (see the top of this file).
class WEFT_API GgufFile {
 public:
  /// kNotFound, kIoError, or kCorruption naming what is wrong with the file.
  static Result<GgufFile> open(const std::string& path);
  /// Parses bytes held in memory (copied); for tests and fuzzing.
  static Result<GgufFile> from_bytes(std::string bytes);

  /// Moves the mapping.
  GgufFile(GgufFile&&) noexcept;
  /// Moves the mapping.
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  /// The GGUF version (2 or 3).
  uint32_t version() const { return version_; }
  /// The data section's alignment.
  uint64_t alignment() const { return alignment_; }
  /// Bytes in the file.
  size_t file_size() const { return size_; }

  /// Metadata in file order.
  const std::vector<std::pair<std::string_view, GgufValue>>& metadata() const { return kv_; }
  /// Null when absent.
  const GgufValue* find(std::string_view key) const;
  /// Typed lookups: kNotFound if missing, kCorruption if present with another type.
  Result<uint64_t> get_uint(std::string_view key) const;            ///< any integer type, >= 0
  Result<double> get_float(std::string_view key) const;             ///< float32/float64 (or integer)
  Result<bool> get_bool(std::string_view key) const;                ///< a bool
  Result<std::string_view> get_string(std::string_view key) const;  ///< a string, viewing the file
  /// An array whose elements have type `elem`.
  Result<const GgufValue*> get_array(std::string_view key, GgufType elem) const;

  /// Tensors in file order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  /// Null when absent.
  const GgufTensor* tensor(std::string_view name) const;

 private:
  struct Mapping;
  GgufFile() = default;
  Status parse();

  std::unique_ptr<Mapping> mapping_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string_view, GgufValue>> kv_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace weft::llm
