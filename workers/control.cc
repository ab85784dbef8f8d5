#include "workers/control.h"

#include <msgpack.hpp>

#include <fmt/format.h>

#include "weft/serialization.h"

namespace weft::workers {
namespace {

constexpr uint32_t kFields = 12;

Status bad(const std::string& what) { return Status::invalid_argument("malformed control message: " + what); }

Status expect(const msgpack::object& o, msgpack::type::object_type t, uint32_t i, const char* name) {
  if (o.type != t) return bad(fmt::format("field {} ({}) has the wrong type", i, name));
  return Status::ok();
}

}  // namespace

std::string encode(const ControlMessage& m) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(kFields);
  p.pack(kControlVersion);
  p.pack(static_cast<uint32_t>(m.type));
  p.pack(m.seq);
  p.pack(m.function);
  p.pack_bin(static_cast<uint32_t>(m.payload.size()));
  p.pack_bin_body(m.payload.data(), static_cast<uint32_t>(m.payload.size()));
  p.pack(m.ok);
  p.pack(m.error_type);
  p.pack(m.error_message);
  p.pack(m.count);
  p.pack(m.pid);
  p.pack(m.seqs);
  p.pack(m.actor);
  return std::string(buf.data(), buf.size());
}

Result<ControlMessage> decode_control(std::string_view bytes) {
  auto parsed = unpack_message(bytes);
  if (!parsed.ok()) return bad(parsed.status().message());
  const msgpack::object_handle h = std::move(*parsed);
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != kFields) return bad("not an array of 12 fields");
  const msgpack::object* f = o.via.array.ptr;
  using T = msgpack::type::object_type;
  WEFT_RETURN_IF_ERROR(expect(f[0], T::POSITIVE_INTEGER, 0, "version"));
  if (f[0].via.u64 != kControlVersion) return bad(fmt::format("version {}, expected {}", f[0].via.u64, kControlVersion));
  WEFT_RETURN_IF_ERROR(expect(f[1], T::POSITIVE_INTEGER, 1, "type"));
  if (f[1].via.u64 < 1 || f[1].via.u64 > static_cast<uint64_t>(ControlType::kActorDrop)) {
    return bad(fmt::format("unknown type {}", f[1].via.u64));
  }
  WEFT_RETURN_IF_ERROR(expect(f[2], T::POSITIVE_INTEGER, 2, "seq"));
  WEFT_RETURN_IF_ERROR(expect(f[3], T::STR, 3, "function"));
  WEFT_RETURN_IF_ERROR(expect(f[4], T::BIN, 4, "payload"));
  WEFT_RETURN_IF_ERROR(expect(f[5], T::BOOLEAN, 5, "ok"));
  WEFT_RETURN_IF_ERROR(expect(f[6], T::STR, 6, "error type"));
  WEFT_RETURN_IF_ERROR(expect(f[7], T::STR, 7, "error message"));
  WEFT_RETURN_IF_ERROR(expect(f[8], T::POSITIVE_INTEGER, 8, "count"));
  if (f[8].via.u64 > UINT32_MAX) return bad("count out of range");
  if (f[9].type != T::POSITIVE_INTEGER && f[9].type != T::NEGATIVE_INTEGER) return bad("field 9 (pid) is not an integer");
  WEFT_RETURN_IF_ERROR(expect(f[10], T::ARRAY, 10, "seqs"));
  WEFT_RETURN_IF_ERROR(expect(f[11], T::POSITIVE_INTEGER, 11, "actor"));
  ControlMessage m;
  m.type = static_cast<ControlType>(f[1].via.u64);
  m.seq = f[2].via.u64;
  m.function.assign(f[3].via.str.ptr, f[3].via.str.size);
  m.payload.assign(f[4].via.bin.ptr, f[4].via.bin.size);
  m.ok = f[5].via.boolean;
  m.error_type.assign(f[6].via.str.ptr, f[6].via.str.size);
  m.error_message.assign(f[7].via.str.ptr, f[7].via.str.size);
  m.count = static_cast<uint32_t>(f[8].via.u64);
  m.pid = f[9].via.i64;
  m.actor = f[11].via.u64;
  const msgpack::object_array& seqs = f[10].via.array;
  for (uint32_t i = 0; i < seqs.size; ++i) {
    if (seqs.ptr[i].type != T::POSITIVE_INTEGER) return bad("field 10 (seqs) holds a non-integer");
    m.seqs.push_back(seqs.ptr[i].via.u64);
  }
  return m;
}

}  // namespace weft::workers
