#include "llm/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/cpu/half.h"

namespace weft::llm {
namespace {

// Bytes per element of the dtypes safetensors names; 0 for names it does not have.
size_t dtype_size(std::string_view d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

// The format's own cap on the header (safetensors rejects larger ones).
constexpr uint64_t kMaxHeader = 100u << 20;

}  // namespace

int64_t SafetensorsFile::Tensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

Result<SafetensorsFile> SafetensorsFile::read(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found(fmt::format("{}: no such file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(fmt::format("{}: cannot open", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::io_error(fmt::format("{}: read failed", path));
  Result<SafetensorsFile> f = from_bytes(std::move(bytes));
  if (!f.ok()) return Status(f.status().code(), fmt::format("{}: {}", path, f.status().message()));
  return f;
}

Result<SafetensorsFile> SafetensorsFile::from_bytes(std::string bytes) {
  SafetensorsFile f;
  f.data_ = std::move(bytes);
  WEFT_RETURN_IF_ERROR(f.parse());
  return f;
}

Status SafetensorsFile::parse() {
  if (data_.size() < 8) return Status::corruption("not a safetensors file: shorter than its 8-byte header length");
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | static_cast<uint8_t>(data_[static_cast<size_t>(i)]);
  if (header > kMaxHeader || header > data_.size() - 8) {
    return Status::corruption(fmt::format("header length {} does not fit the file ({} bytes)", header, data_.size()));
  }
  nlohmann::json j = nlohmann::json::parse(data_.begin() + 8, data_.begin() + 8 + static_cast<std::ptrdiff_t>(header),
                                           nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::corruption("the header is not a JSON object");
  const std::string_view body = std::string_view(data_).substr(8 + header);
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) return Status::corruption("__metadata__ is not an object");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string()) return Status::corruption(fmt::format("__metadata__ value '{}' is not a string", k));
        metadata_[k] = s.get<std::string>();
      }
      continue;
    }
    const auto bad = [&](std::string_view what) {
      return Status::corruption(fmt::format("tensor '{}': {}", name, what));
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
      return bad("needs dtype, shape and data_offsets");
    }
    const nlohmann::json &dtype = v["dtype"], &shape = v["shape"], &off = v["data_offsets"];
    if (!dtype.is_string() || dtype_size(dtype.get<std::string>()) == 0) return bad("unknown dtype");
    if (!shape.is_array() || !off.is_array() || off.size() != 2) return bad("malformed shape or data_offsets");
    Tensor t{name, dtype.get<std::string>(), {}, {}};
    int64_t elements = 1;
    for (const nlohmann::json& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) return bad("malformed shape");
      t.shape.push_back(d.get<int64_t>());
      if (t.shape.back() != 0 && elements > (int64_t{1} << 40) / t.shape.back()) return bad("too many elements");
      elements *= t.shape.back();
    }
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) return bad("malformed data_offsets");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > body.size()) {
      return bad(fmt::format("bytes {}..{} lie outside the data ({} bytes)", begin, end, body.size()));
    }
    if (end - begin != static_cast<uint64_t>(elements) * dtype_size(t.dtype)) {
      return bad(fmt::format("{} bytes for {} elements of {}", end - begin, elements, t.dtype));
    }
    t.bytes = body.substr(begin, end - begin);
    tensors_.push_back(std::move(t));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const Tensor& a, const Tensor& b) { return a.name < b.name; });
  return Status::ok();
}

const SafetensorsFile::Tensor* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const Tensor& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

Result<std::vector<float>> SafetensorsFile::floats(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.elements()));
  const char* p = t.bytes.data();
  if (t.dtype == "F32") {
    std::memcpy(out.data(), p, out.size() * 4);
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    const bool half = t.dtype == "F16";
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = half ? kernels::cpu::fp16_to_fp32(h) : kernels::cpu::bf16_to_fp32(h);
    }
  } else if (t.dtype == "F64") {
    for (size_t i = 0; i < out.size(); ++i) {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      out[i] = static_cast<float>(d);
    }
  } else {
    return Status::invalid_argument(fmt::format("tensor '{}' holds {}, not floating point", t.name, t.dtype));
  }
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<SafetensorsOut>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<const SafetensorsOut*> sorted;
  for (const SafetensorsOut& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsOut* t : sorted) {
    int64_t n = 1;
    for (int64_t d : t->shape) n *= d;
    if (n != static_cast<int64_t>(t->values.size())) {
      return Status::invalid_argument(
          fmt::format("tensor '{}': {} values for a shape of {} elements", t->name, t->values.size(), n));
    }
    const uint64_t bytes = static_cast<uint64_t>(n) * 4;
    header[t->name] = {{"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  out += h;
  for (const SafetensorsOut* t : sorted) {
    out.append(reinterpret_cast<const char*>(t->values.data()), t->values.size() * 4);
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return Status::io_error(fmt::format("{}: cannot create", path));
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  f.close();
  if (!f) return Status::io_error(fmt::format("{}: write failed", path));
  return Status::ok();
}

}  // namespace weft::llm
