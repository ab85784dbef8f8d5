#include "objectstore/protocol.h"

#include <msgpack.hpp>

#include "weft/serialization.h"

#include <fmt/format.h>

namespace weft::objectstore {
namespace {

constexpr uint32_t kRequestFields = 9;
constexpr uint32_t kReplyFields = 8;
constexpr uint32_t kStatsFields = 10;

Status bad(const std::string& what) { return Status::invalid_argument("malformed store message: " + what); }

Result<msgpack::object_handle> parse(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return bad(fmt::format("{} bytes, more than {}", bytes.size(), kMaxMessageBytes));
  // Bounded by the input's size: a short header claiming a huge array allocates nothing.
  auto h = unpack_message(bytes);
  if (!h.ok()) return bad(h.status().message());
  return h;
}

Result<uint64_t> uint_at(const msgpack::object& arr, uint32_t i, const char* name) {
  const msgpack::object& o = arr.via.array.ptr[i];
  if (o.type != msgpack::type::POSITIVE_INTEGER) return bad(fmt::format("field {} ({}) is not an unsigned integer", i, name));
  return o.via.u64;
}

Result<int64_t> int_at(const msgpack::object& arr, uint32_t i, const char* name) {
  const msgpack::object& o = arr.via.array.ptr[i];
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(o.via.u64);
  }
  return bad(fmt::format("field {} ({}) is not an integer", i, name));
}

Status check_header(const msgpack::object& o, uint32_t fields) {
  if (o.type != msgpack::type::ARRAY) return bad("not an array");
  if (o.via.array.size != fields) return bad(fmt::format("{} fields, expected {}", o.via.array.size, fields));
  WEFT_ASSIGN_OR_RETURN(uint64_t version, uint_at(o, 0, "version"));
  if (version != kProtocolVersion) return bad(fmt::format("protocol version {}, this store speaks {}", version, kProtocolVersion));
  return Status::ok();
}

}  // namespace

std::string encode(const Request& r) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(kRequestFields);
  p.pack(kProtocolVersion);
  p.pack(static_cast<uint32_t>(r.type));
  p.pack(r.request_id);
  p.pack(r.object.hi);
  p.pack(r.object.lo);
  p.pack(r.size);
  p.pack(static_cast<uint32_t>((r.primary ? 1u : 0u) | (r.transient ? 2u : 0u) | (r.adopt ? 4u : 0u)));
  p.pack(r.task);
  p.pack(r.timeout_ms);
  return std::string(buf.data(), buf.size());
}

std::string encode(const Reply& r) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(kReplyFields);
  p.pack(kProtocolVersion);
  p.pack(static_cast<uint32_t>(MsgType::kReply));
  p.pack(r.request_id);
  p.pack(static_cast<uint32_t>(r.code));
  p.pack(r.message);
  p.pack(r.offset);
  p.pack(r.size);
  const StoreStats& s = r.stats;
  p.pack_array(kStatsFields);
  for (uint64_t v : {s.capacity, s.used, s.pinned_bytes, s.objects, s.sealed, s.spilled, s.pins, s.evictions, s.spills,
                     s.restores}) {
    p.pack(v);
  }
  return std::string(buf.data(), buf.size());
}

Result<Request> decode_request(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(msgpack::object_handle h, parse(bytes));
  const msgpack::object& o = h.get();
  WEFT_RETURN_IF_ERROR(check_header(o, kRequestFields));
  Request r;
  WEFT_ASSIGN_OR_RETURN(uint64_t type, uint_at(o, 1, "type"));
  if (type < static_cast<uint64_t>(MsgType::kConnect) || type > static_cast<uint64_t>(MsgType::kHold)) {
    return bad(fmt::format("unknown request type {}", type));
  }
  r.type = static_cast<MsgType>(type);
  WEFT_ASSIGN_OR_RETURN(r.request_id, uint_at(o, 2, "request id"));
  WEFT_ASSIGN_OR_RETURN(r.object.hi, uint_at(o, 3, "object id"));
  WEFT_ASSIGN_OR_RETURN(r.object.lo, uint_at(o, 4, "object id"));
  WEFT_ASSIGN_OR_RETURN(r.size, uint_at(o, 5, "size"));
  WEFT_ASSIGN_OR_RETURN(uint64_t flags, uint_at(o, 6, "flags"));
  if (flags > 7) return bad(fmt::format("unknown flags {:#x}", flags));
  r.adopt = (flags & 4) != 0;
  r.primary = (flags & 1) != 0;
  r.transient = (flags & 2) != 0;
  WEFT_ASSIGN_OR_RETURN(r.task, uint_at(o, 7, "task"));
  WEFT_ASSIGN_OR_RETURN(r.timeout_ms, int_at(o, 8, "timeout"));
  return r;
}

Result<Reply> decode_reply(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(msgpack::object_handle h, parse(bytes));
  const msgpack::object& o = h.get();
  WEFT_RETURN_IF_ERROR(check_header(o, kReplyFields));
  WEFT_ASSIGN_OR_RETURN(uint64_t type, uint_at(o, 1, "type"));
  if (type != static_cast<uint64_t>(MsgType::kReply)) return bad("not a reply");
  Reply r;
  WEFT_ASSIGN_OR_RETURN(r.request_id, uint_at(o, 2, "request id"));
  WEFT_ASSIGN_OR_RETURN(uint64_t code, uint_at(o, 3, "status"));
  if (code > static_cast<uint64_t>(StatusCode::kCorruption)) return bad("unknown status code");
  r.code = static_cast<StatusCode>(code);
  const msgpack::object& msg = o.via.array.ptr[4];
  if (msg.type != msgpack::type::STR) return bad("field 4 (message) is not a string");
  r.message.assign(msg.via.str.ptr, msg.via.str.size);
  WEFT_ASSIGN_OR_RETURN(r.offset, uint_at(o, 5, "offset"));
  WEFT_ASSIGN_OR_RETURN(r.size, uint_at(o, 6, "size"));
  const msgpack::object& st = o.via.array.ptr[7];
  if (st.type != msgpack::type::ARRAY || st.via.array.size != kStatsFields) return bad("field 7 (stats) is malformed");
  uint64_t v[kStatsFields];
  for (uint32_t i = 0; i < kStatsFields; ++i) {
    WEFT_ASSIGN_OR_RETURN(v[i], uint_at(st, i, "stats"));
  }
  r.stats = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
  return r;
}

}  // namespace weft::objectstore
