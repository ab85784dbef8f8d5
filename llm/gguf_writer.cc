#include "llm/gguf_writer.h"

#include <fstream>

#include <fmt/format.h>

namespace weft::llm {

void GgufWriter::put_string(std::string& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.append(s);
}

void GgufWriter::scalar(std::string_view key, GgufType t, const void* v, size_t n) {
  put_string(kv_, key);
  put<uint32_t>(kv_, static_cast<uint32_t>(t));
  kv_.append(static_cast<const char*>(v), n);
  ++n_kv_;
}

void GgufWriter::add_bool(std::string_view key, bool v) {
  uint8_t b = v ? 1 : 0;
  scalar(key, GgufType::kBool, &b, 1);
}

void GgufWriter::add_string(std::string_view key, std::string_view v) {
  put_string(kv_, key);
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufType::kString));
  put_string(kv_, v);
  ++n_kv_;
}

void GgufWriter::begin_array(std::string_view key, GgufType elem, uint64_t count) {
  put_string(kv_, key);
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufType::kArray));
  put<uint32_t>(kv_, static_cast<uint32_t>(elem));
  put<uint64_t>(kv_, count);
}

void GgufWriter::add_string_array(std::string_view key, const std::vector<std::string>& v) {
  begin_array(key, GgufType::kString, v.size());
  for (const auto& s : v) put_string(kv_, s);
  ++n_kv_;
}

void GgufWriter::add_float32_array(std::string_view key, const std::vector<float>& v) {
  begin_array(key, GgufType::kFloat32, v.size());
  for (float x : v) put(kv_, x);
  ++n_kv_;
}

void GgufWriter::add_int32_array(std::string_view key, const std::vector<int32_t>& v) {
  begin_array(key, GgufType::kInt32, v.size());
  for (int32_t x : v) put(kv_, x);
  ++n_kv_;
}

namespace {

// The payload of one value of scalar type `t`, from the fields GgufValue widens it into.
void put_scalar(std::string& out, GgufType t, uint64_t u, int64_t i, double f) {
  switch (t) {
    case GgufType::kUint8:
      GgufWriter::put<uint8_t>(out, static_cast<uint8_t>(u));
      break;
    case GgufType::kInt8:
      GgufWriter::put<int8_t>(out, static_cast<int8_t>(i));
      break;
    case GgufType::kUint16:
      GgufWriter::put<uint16_t>(out, static_cast<uint16_t>(u));
      break;
    case GgufType::kInt16:
      GgufWriter::put<int16_t>(out, static_cast<int16_t>(i));
      break;
    case GgufType::kUint32:
      GgufWriter::put<uint32_t>(out, static_cast<uint32_t>(u));
      break;
    case GgufType::kInt32:
      GgufWriter::put<int32_t>(out, static_cast<int32_t>(i));
      break;
    case GgufType::kUint64:
      GgufWriter::put<uint64_t>(out, u);
      break;
    case GgufType::kInt64:
      GgufWriter::put<int64_t>(out, i);
      break;
    case GgufType::kFloat32:
      GgufWriter::put<float>(out, static_cast<float>(f));
      break;
    case GgufType::kFloat64:
      GgufWriter::put<double>(out, f);
      break;
    case GgufType::kBool:
      GgufWriter::put<uint8_t>(out, u != 0 ? 1 : 0);
      break;
    default:
      break;
  }
}

}  // namespace

void GgufWriter::put_value(std::string& out, const GgufValue& v) {
  put<uint32_t>(out, static_cast<uint32_t>(v.type));
  if (v.type == GgufType::kString) {
    put_string(out, v.str);
    return;
  }
  if (v.type != GgufType::kArray) {
    put_scalar(out, v.type, v.type == GgufType::kBool ? (v.b ? 1 : 0) : v.u, v.i, v.f);
    return;
  }
  put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
  put<uint64_t>(out, v.size());
  switch (v.elem_type) {
    case GgufType::kString:
      for (std::string_view s : v.strings) put_string(out, s);
      break;
    case GgufType::kArray:
      for (const GgufValue& a : v.arrays) {
        std::string inner;
        put_value(inner, a);
        out.append(inner, 4, std::string::npos);  // elements of an array carry no type of their own
      }
      break;
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      for (double x : v.numbers) put_scalar(out, v.elem_type, 0, 0, x);
      break;
    default:
      for (int64_t x : v.integers) put_scalar(out, v.elem_type, static_cast<uint64_t>(x), x, 0);
      break;
  }
}

void GgufWriter::add_value(std::string_view key, const GgufValue& v) {
  put_string(kv_, key);
  put_value(kv_, v);
  ++n_kv_;
}

void GgufWriter::add_raw(std::string_view key, std::string_view encoded) {
  put_string(kv_, key);
  kv_.append(encoded);
  ++n_kv_;
}

Status GgufWriter::add_tensor(std::string_view name, kernels::TensorType type, const std::vector<int64_t>& ne,
                              std::string data) {
  if (ne.empty() || ne.size() > 4) return Status::invalid_argument("a tensor has 1 to 4 dimensions");
  auto row = kernels::row_bytes(type, ne[0]);
  if (!row) return Status::invalid_argument(fmt::format("tensor '{}': rows are not whole blocks", name));
  size_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= static_cast<size_t>(ne[d]);
  if (data.size() != *row * rows) {
    return Status::invalid_argument(
        fmt::format("tensor '{}': {} bytes of data, the shape needs {}", name, data.size(), *row * rows));
  }
  tensors_.push_back(Tensor{std::string(name), type, ne, std::move(data)});
  return Status::ok();
}

std::string GgufWriter::bytes() const {
  std::string out;
  put<uint32_t>(out, 0x46554747);
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  const bool custom_alignment = alignment_ != 32;
  put<uint64_t>(out, n_kv_ + (custom_alignment ? 1 : 0));
  out += kv_;
  if (custom_alignment) {
    put_string(out, "general.alignment");
    put<uint32_t>(out, static_cast<uint32_t>(GgufType::kUint32));
    put<uint32_t>(out, alignment_);
  }
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const auto& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) put<uint64_t>(out, static_cast<uint64_t>(n));
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offsets.push_back(offset);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
  const size_t data_start = out.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    out.resize(data_start + offsets[i], '\0');
    out += tensors_[i].data;
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return Status::io_error("cannot create " + path);
  const std::string b = bytes();
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
  if (!f) return Status::io_error("cannot write " + path);
  return Status::ok();
}

}  // namespace weft::llm
