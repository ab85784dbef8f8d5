#include "llm/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace weft::llm {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 8;
constexpr int kMaxDims = 4;

bool is_integer(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

// Smallest encoding of one element of type t, to bound counts before allocating.
size_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    case GgufType::kString: return 8;   // the length prefix
    case GgufType::kArray: return 12;   // element type + count
  }
  return 1;
}

// Reads little-endian values with bounds checks; every error names the item and the offset.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size) : base_(base), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  Status need(size_t n, std::string_view what) const {
    if (n <= remaining()) return Status::ok();
    return Status::corruption(fmt::format("GGUF truncated: {} at byte {} needs {} bytes, {} remain", what, pos_, n,
                                          remaining()));
  }
  template <class T>
  Result<T> read(std::string_view what) {
    WEFT_RETURN_IF_ERROR(need(sizeof(T), what));
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string_view> read_string(std::string_view what) {
    const size_t start = pos_;
    WEFT_ASSIGN_OR_RETURN(uint64_t len, read<uint64_t>(what));
    if (len > remaining()) {
      return Status::corruption(fmt::format("GGUF truncated: {} at byte {} needs {} bytes, {} remain", what, start,
                                            len + 8, size_ - start));
    }
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }
  Status align(uint64_t alignment) {
    size_t padded = (pos_ + alignment - 1) / alignment * alignment;
    if (padded > size_) padded = size_;  // a file with no tensor data may end unpadded
    pos_ = padded;
    return Status::ok();
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

Status read_value(Cursor& c, GgufType type, GgufValue& out, int depth, std::string_view key);

Result<GgufType> read_type(Cursor& c, std::string_view key) {
  const size_t at = c.pos();
  WEFT_ASSIGN_OR_RETURN(uint32_t t, c.read<uint32_t>(fmt::format("type of '{}'", key)));
  if (t > static_cast<uint32_t>(GgufType::kFloat64)) {
    return Status::corruption(fmt::format("GGUF metadata '{}' has unknown value type {} at byte {}", key, t, at));
  }
  return static_cast<GgufType>(t);
}

Status read_array(Cursor& c, GgufValue& out, int depth, std::string_view key) {
  if (depth >= kMaxArrayDepth) {
    return Status::corruption(fmt::format("GGUF metadata '{}' nests arrays deeper than {} at byte {}", key,
                                          kMaxArrayDepth, c.pos()));
  }
  WEFT_ASSIGN_OR_RETURN(out.elem_type, read_type(c, key));
  const size_t at = c.pos();
  WEFT_ASSIGN_OR_RETURN(uint64_t count, c.read<uint64_t>(fmt::format("length of array '{}'", key)));
  const size_t min = min_encoded_size(out.elem_type);
  if (count > c.remaining() / min) {
    return Status::corruption(fmt::format("GGUF metadata '{}' at byte {} claims {} elements but only {} bytes remain",
                                          key, at, count, c.remaining()));
  }
  for (uint64_t k = 0; k < count; ++k) {
    GgufValue v;
    WEFT_RETURN_IF_ERROR(read_value(c, out.elem_type, v, depth + 1, key));
    switch (out.elem_type) {
      case GgufType::kString: out.strings.push_back(v.str); break;
      case GgufType::kArray: out.arrays.push_back(std::move(v)); break;
      case GgufType::kFloat32: case GgufType::kFloat64: out.numbers.push_back(v.f); break;
      case GgufType::kBool: out.integers.push_back(v.b ? 1 : 0); break;
      default: out.integers.push_back(v.i); break;
    }
  }
  return Status::ok();
}

Status read_value(Cursor& c, GgufType type, GgufValue& out, int depth, std::string_view key) {
  out.type = type;
  const std::string what = fmt::format("value of '{}'", key);
  auto set_int = [&](auto v) {
    out.i = static_cast<int64_t>(v);
    out.u = static_cast<uint64_t>(v);
    out.f = static_cast<double>(v);
  };
  switch (type) {
    case GgufType::kUint8: { WEFT_ASSIGN_OR_RETURN(uint8_t v, c.read<uint8_t>(what)); set_int(v); break; }
    case GgufType::kInt8: { WEFT_ASSIGN_OR_RETURN(int8_t v, c.read<int8_t>(what)); set_int(v); break; }
    case GgufType::kUint16: { WEFT_ASSIGN_OR_RETURN(uint16_t v, c.read<uint16_t>(what)); set_int(v); break; }
    case GgufType::kInt16: { WEFT_ASSIGN_OR_RETURN(int16_t v, c.read<int16_t>(what)); set_int(v); break; }
    case GgufType::kUint32: { WEFT_ASSIGN_OR_RETURN(uint32_t v, c.read<uint32_t>(what)); set_int(v); break; }
    case GgufType::kInt32: { WEFT_ASSIGN_OR_RETURN(int32_t v, c.read<int32_t>(what)); set_int(v); break; }
    case GgufType::kUint64: { WEFT_ASSIGN_OR_RETURN(uint64_t v, c.read<uint64_t>(what)); set_int(v); break; }
    case GgufType::kInt64: { WEFT_ASSIGN_OR_RETURN(int64_t v, c.read<int64_t>(what)); set_int(v); break; }
    case GgufType::kFloat32: { WEFT_ASSIGN_OR_RETURN(float v, c.read<float>(what)); out.f = v; break; }
    case GgufType::kFloat64: { WEFT_ASSIGN_OR_RETURN(double v, c.read<double>(what)); out.f = v; break; }
    case GgufType::kBool: {
      const size_t at = c.pos();
      WEFT_ASSIGN_OR_RETURN(uint8_t v, c.read<uint8_t>(what));
      if (v > 1) return Status::corruption(fmt::format("GGUF metadata '{}' has bool value {} at byte {}", key, v, at));
      out.b = v == 1;
      out.i = out.u = v;
      break;
    }
    case GgufType::kString: { WEFT_ASSIGN_OR_RETURN(out.str, c.read_string(what)); break; }
    case GgufType::kArray: return read_array(c, out, depth, key);
  }
  return Status::ok();
}

}  // namespace

std::string_view to_string(GgufType t) {
  static constexpr std::string_view kNames[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                                "bool", "string", "array", "uint64", "int64", "float64"};
  auto i = static_cast<size_t>(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

size_t GgufValue::size() const {
  switch (elem_type) {
    case GgufType::kString: return strings.size();
    case GgufType::kArray: return arrays.size();
    case GgufType::kFloat32: case GgufType::kFloat64: return numbers.size();
    default: return integers.size();
  }
}

struct GgufFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  std::string owned;  // from_bytes
  ~Mapping() {
    if (addr != nullptr) munmap(addr, size);
  }
};

GgufFile::~GgufFile() = default;
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;

Result<GgufFile> GgufFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::io_error(fmt::format("cannot stat '{}': {}", path, std::strerror(e)));
  }
  GgufFile f;
  f.mapping_ = std::make_unique<Mapping>();
  if (st.st_size > 0) {
    void* addr = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::io_error(fmt::format("cannot map '{}': {}", path, std::strerror(e)));
    }
    f.mapping_->addr = addr;
    f.mapping_->size = static_cast<size_t>(st.st_size);
  }
  ::close(fd);
  f.base_ = static_cast<const uint8_t*>(f.mapping_->addr);
  f.size_ = f.mapping_->size;
  Status s = f.parse();
  if (!s.is_ok()) return Status(s.code(), path + ": " + s.message());
  return f;
}

Result<GgufFile> GgufFile::from_bytes(std::string bytes) {
  GgufFile f;
  f.mapping_ = std::make_unique<Mapping>();
  f.mapping_->owned = std::move(bytes);
  f.base_ = reinterpret_cast<const uint8_t*>(f.mapping_->owned.data());
  f.size_ = f.mapping_->owned.size();
  WEFT_RETURN_IF_ERROR(f.parse());
  return f;
}

Status GgufFile::parse() {
  Cursor c(base_, size_);
  WEFT_ASSIGN_OR_RETURN(uint32_t magic, c.read<uint32_t>("magic"));
  if (magic != kMagic) return Status::corruption("not a GGUF file (bad magic at byte 0)");
  WEFT_ASSIGN_OR_RETURN(version_, c.read<uint32_t>("version"));
  if (version_ != 2 && version_ != 3) {
    return Status::corruption(fmt::format("unsupported GGUF version {} (weft reads versions 2 and 3)", version_));
  }
  WEFT_ASSIGN_OR_RETURN(uint64_t n_tensors, c.read<uint64_t>("tensor count"));
  WEFT_ASSIGN_OR_RETURN(uint64_t n_kv, c.read<uint64_t>("metadata count"));
  if (n_kv > c.remaining() / 13) {  // key length (8) + type (4) + at least one byte
    return Status::corruption(fmt::format("GGUF header claims {} metadata entries; the file is too small", n_kv));
  }

  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t at = c.pos();
    WEFT_ASSIGN_OR_RETURN(std::string_view key, c.read_string(fmt::format("key of metadata entry {}", k)));
    WEFT_ASSIGN_OR_RETURN(GgufType type, read_type(c, key));
    GgufValue v;
    WEFT_RETURN_IF_ERROR(read_value(c, type, v, 0, key));
    if (!kv_index_.emplace(key, kv_.size()).second) {
      return Status::corruption(fmt::format("GGUF metadata key '{}' appears twice (second at byte {})", key, at));
    }
    kv_.emplace_back(key, std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!is_integer(a->type) || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > 1u << 20) {
      return Status::corruption("GGUF 'general.alignment' must be a power of two up to 1 MiB");
    }
    alignment_ = a->u;
  }

  // Each tensor info takes at least: name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
  if (n_tensors > c.remaining() / 32) {
    return Status::corruption(fmt::format("GGUF header claims {} tensors; the file is too small", n_tensors));
  }
  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    const size_t at = c.pos();
    WEFT_ASSIGN_OR_RETURN(t.name, c.read_string(fmt::format("name of tensor {}", k)));
    WEFT_ASSIGN_OR_RETURN(uint32_t n_dims, c.read<uint32_t>(fmt::format("dimensions of tensor '{}'", t.name)));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return Status::corruption(fmt::format("tensor '{}' (info at byte {}) has {} dimensions; 1 to {} allowed", t.name,
                                            at, n_dims, kMaxDims));
    }
    t.n_dims = static_cast<int>(n_dims);
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      WEFT_ASSIGN_OR_RETURN(uint64_t ne, c.read<uint64_t>(fmt::format("shape of tensor '{}'", t.name)));
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          static_cast<int64_t>(ne) > std::numeric_limits<int64_t>::max() / elements) {
        return Status::corruption(fmt::format("tensor '{}' has an invalid dimension {} = {}", t.name, d, ne));
      }
      t.ne[d] = static_cast<int64_t>(ne);
      elements *= t.ne[d];
    }
    WEFT_ASSIGN_OR_RETURN(uint32_t type_id, c.read<uint32_t>(fmt::format("type of tensor '{}'", t.name)));
    auto info = kernels::tensor_type_info(type_id);
    if (!info) return Status::corruption(fmt::format("tensor '{}' has unknown type id {}", t.name, type_id));
    t.type = info->type;
    WEFT_ASSIGN_OR_RETURN(t.offset, c.read<uint64_t>(fmt::format("offset of tensor '{}'", t.name)));
    if (t.offset % alignment_ != 0) {
      return Status::corruption(fmt::format("tensor '{}' data offset {} is not a multiple of the alignment {}", t.name,
                                            t.offset, alignment_));
    }
    if (t.ne[0] % info->block_elems != 0) {
      return Status::corruption(fmt::format("tensor '{}' rows of {} values are not whole {} blocks of {}", t.name,
                                            t.ne[0], info->name, info->block_elems));
    }
    auto row = kernels::row_bytes(t.type, t.ne[0]);
    if (!row) return Status::corruption(fmt::format("tensor '{}' is too large", t.name));
    const int64_t rows = elements / t.ne[0];
    if (*row != 0 && static_cast<uint64_t>(rows) > std::numeric_limits<size_t>::max() / *row) {
      return Status::corruption(fmt::format("tensor '{}' is too large", t.name));
    }
    t.nbytes = *row * static_cast<size_t>(rows);
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) {
      return Status::corruption(fmt::format("tensor name '{}' appears twice", t.name));
    }
    tensors_.push_back(t);
  }

  WEFT_RETURN_IF_ERROR(c.align(alignment_));
  const size_t data_start = c.pos();
  const size_t data_size = size_ - data_start;
  for (GgufTensor& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return Status::corruption(fmt::format(
          "tensor '{}' data [{}, {}) lies beyond the end of the file (data section is {} bytes from byte {})", t.name,
          t.offset, t.offset + t.nbytes, data_size, data_start));
    }
    t.data = base_ + data_start + t.offset;
  }
  return Status::ok();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {
Status wrong_type(std::string_view key, const GgufValue& v, std::string_view want) {
  return Status::corruption(fmt::format("GGUF metadata '{}' has type {}, expected {}", key, to_string(v.type), want));
}
Status missing(std::string_view key) { return Status::not_found(fmt::format("GGUF metadata '{}' is missing", key)); }
}  // namespace

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (!is_integer(v->type)) return wrong_type(key, *v, "an integer");
  if (v->type != GgufType::kUint64 && v->i < 0) {
    return Status::corruption(fmt::format("GGUF metadata '{}' is negative ({})", key, v->i));
  }
  return v->u;
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufType::kFloat32 && v->type != GgufType::kFloat64 && !is_integer(v->type)) {
    return wrong_type(key, *v, "a number");
  }
  return v->f;
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufType::kBool) return wrong_type(key, *v, "bool");
  return v->b;
}

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufType::kString) return wrong_type(key, *v, "string");
  return v->str;
}

Result<const GgufValue*> GgufFile::get_array(std::string_view key, GgufType elem) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != GgufType::kArray) return wrong_type(key, *v, "array");
  if (v->elem_type != elem) {
    return Status::corruption(fmt::format("GGUF metadata '{}' is an array of {}, expected {}", key,
                                          to_string(v->elem_type), to_string(elem)));
  }
  return v;
}

const GgufTensor* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace weft::llm
