// One codec for weft's wire protocols. Every message is a MessagePack array
//
//   [version, type, body]
//
// where `body` is the message's own schema: a struct with MSGPACK_DEFINE_ARRAY(...) and a
// `static constexpr uint8_t kType` (and `kName`, for errors), so each message type carries exactly
// its own fields and no others.
//
//   struct Steal {
//     static constexpr uint8_t kType = 4;
//     static constexpr const char* kName = "steal";
//     uint32_t count = 0;
//     MSGPACK_DEFINE_ARRAY(count);
//   };
//   std::string bytes = wire::encode(kControl, Steal{.count = 2});
//   WEFT_ASSIGN_OR_RETURN(wire::Envelope e, wire::open(kControl, bytes));
//   if (e.type == Steal::kType) WEFT_ASSIGN_OR_RETURN(Steal s, wire::body<Steal>(kControl, e));
//
// Decoding never trusts its input: bytes that are not one MessagePack value (bounded by
// unpack_limits_for), another protocol version, or a body whose field count or field types differ
// from the schema, are kInvalidArgument naming the protocol and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <msgpack.hpp>

#include "weft/ids.h"
#include "weft/serialization.h"
#include "weft/status.h"

namespace weft::wire {

// A protocol: its name (for errors) and the version every message carries.
struct Protocol {
  const char* name;
  uint32_t version;
};

// Opaque bytes (an already-encoded payload), carried as MessagePack bin.
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};

// A message whose envelope checked out: its type, and its body still to decode with body<M>.
struct Envelope {
  uint8_t type = 0;
  msgpack::object_handle handle;  // owns the parsed message
  const msgpack::object* body = nullptr;
};

// kInvalidArgument: "malformed <protocol> message: <what>".
Status malformed(const Protocol& p, std::string_view what);

template <class M>
std::string encode(const Protocol& p, const M& m) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(p.version);
  pk.pack(M::kType);
  pk.pack(m);
  return std::string(buf.data(), buf.size());
}

// Parses and checks the envelope; the body is checked by body<M>.
Result<Envelope> open(const Protocol& p, std::string_view bytes);

namespace detail {
// Fields of a schema: the length of the array a default-constructed M encodes to.
template <class M>
uint32_t field_count() {
  static const uint32_t n = [] {
    msgpack::sbuffer buf;
    msgpack::pack(buf, M{});
    return msgpack::unpack(buf.data(), buf.size()).get().via.array.size;
  }();
  return n;
}
}  // namespace detail

// Decodes the body of an envelope of type M::kType.
template <class M>
Result<M> body(const Protocol& p, const Envelope& e) {
  const msgpack::object& o = *e.body;
  const uint32_t n = detail::field_count<M>();
  if (o.via.array.size != n) {
    return malformed(p, std::string(M::kName) + " has " + std::to_string(o.via.array.size) + " fields, expected " +
                            std::to_string(n));
  }
  try {
    M m;
    o.convert(m);
    return m;
  } catch (const std::exception&) {
    return malformed(p, std::string(M::kName) + " has a field of the wrong type");
  }
}

// Decodes the body of whichever alternative of `Variant` (a std::variant of message types) has
// the envelope's type; another type is "unknown type N".
template <class Variant, size_t I = 0>
Result<Variant> body_of(const Protocol& p, const Envelope& e) {
  if constexpr (I == std::variant_size_v<Variant>) {
    return malformed(p, "unknown type " + std::to_string(e.type));
  } else {
    using M = std::variant_alternative_t<I, Variant>;
    if (e.type != M::kType) return body_of<Variant, I + 1>(p, e);
    auto m = body<M>(p, e);
    if (!m.ok()) return m.status();
    return Variant(std::move(*m));
  }
}

// The message type's name, for logs.
template <class Variant>
const char* name_of(const Variant& v) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kName; }, v);
}

}  // namespace weft::wire

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <>
  struct pack<weft::wire::Bytes> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const weft::wire::Bytes& b) const {
      pk.pack_bin(static_cast<uint32_t>(b.data.size()));
      pk.pack_bin_body(b.data.data(), static_cast<uint32_t>(b.data.size()));
      return pk;
    }
  };
  template <>
  struct convert<weft::wire::Bytes> {
    const msgpack::object& operator()(const msgpack::object& o, weft::wire::Bytes& b) const {
      if (o.type != msgpack::type::BIN) throw msgpack::type_error();
      b.data.assign(o.via.bin.ptr, o.via.bin.size);
      return o;
    }
  };
  // An ObjectId on the wire: [hi, lo].
  template <>
  struct pack<weft::ObjectId> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const weft::ObjectId& id) const {
      pk.pack_array(2);
      pk.pack(id.hi);
      pk.pack(id.lo);
      return pk;
    }
  };
  template <>
  struct convert<weft::ObjectId> {
    const msgpack::object& operator()(const msgpack::object& o, weft::ObjectId& id) const {
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) throw msgpack::type_error();
      id.hi = o.via.array.ptr[0].as<uint64_t>();
      id.lo = o.via.array.ptr[1].as<uint64_t>();
      return o;
    }
  };
  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack
