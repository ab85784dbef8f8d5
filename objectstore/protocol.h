// The store's wire protocol over a Unix SOCK_SEQPACKET socket (message boundaries kept by the
// kernel; the arena's descriptor travels once, with the reply to Connect, as SCM_RIGHTS). Each
// request type has its own schema in the wire codec's envelope [version, type, body]
// (core/wire.h); every request but Seal and Release gets exactly one Reply.
//
//   Connect   -> Reply{size = the arena's size} and the arena's descriptor
//   Create    object, size, primary/transient, task -> Reply{offset, size}
//   Seal      object (no reply)
//   Abort     object
//   Get       object, hold (nonzero: take that hold over), timeout_ms (-1: as long as it takes)
//             -> Reply{offset, size}
//   Release   object (no reply)
//   Delete    object
//   Stats     -> Reply{stats}
//   Hold      object: keep it pinned for a reader that will Get it with the hold -> Reply{hold}
//   Unhold    object, hold: the sender drops a hold its reader never took over (no reply)
//
// Seal, Release and Unhold get no reply: the client never waits on them (the store processes a
// connection's messages in order, so a later request sees them done), and the store logs their
// errors, which only a buggy client can cause. Decoding never trusts its input: a message that
// is not exactly one of these (bad MessagePack, another version, unknown type, a body of the wrong
// shape, more than kMaxMessageBytes) is kInvalidArgument naming what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/wire.h"
#include "objectstore/store.h"
#include "weft/ids.h"
#include "weft/status.h"

namespace weft::objectstore {

inline constexpr wire::Protocol kStoreProtocol{"store", 3};
inline constexpr size_t kMaxMessageBytes = 4096;

struct Connect {
  static constexpr uint8_t kType = 1;
  static constexpr const char* kName = "connect";
  uint64_t request_id = 0;
  MSGPACK_DEFINE_ARRAY(request_id)
};

struct Create {
  static constexpr uint8_t kType = 2;
  static constexpr const char* kName = "create";
  uint64_t request_id = 0;
  ObjectId object;
  uint64_t size = 0;
  bool primary = true;
  bool transient = false;
  uint64_t task = 0;
  MSGPACK_DEFINE_ARRAY(request_id, object, size, primary, transient, task)
};

struct Seal {
  static constexpr uint8_t kType = 3;
  static constexpr const char* kName = "seal";
  ObjectId object;
  MSGPACK_DEFINE_ARRAY(object)
};

struct Abort {
  static constexpr uint8_t kType = 4;
  static constexpr const char* kName = "abort";
  uint64_t request_id = 0;
  ObjectId object;
  MSGPACK_DEFINE_ARRAY(request_id, object)
};

struct Get {
  static constexpr uint8_t kType = 5;
  static constexpr const char* kName = "get";
  uint64_t request_id = 0;
  ObjectId object;
  uint64_t hold = 0;
  int64_t timeout_ms = -1;
  MSGPACK_DEFINE_ARRAY(request_id, object, hold, timeout_ms)
};

struct Release {
  static constexpr uint8_t kType = 6;
  static constexpr const char* kName = "release";
  ObjectId object;
  MSGPACK_DEFINE_ARRAY(object)
};

struct Delete {
  static constexpr uint8_t kType = 7;
  static constexpr const char* kName = "delete";
  uint64_t request_id = 0;
  ObjectId object;
  MSGPACK_DEFINE_ARRAY(request_id, object)
};

struct Stats {
  static constexpr uint8_t kType = 8;
  static constexpr const char* kName = "stats";
  uint64_t request_id = 0;
  MSGPACK_DEFINE_ARRAY(request_id)
};

struct Hold {
  static constexpr uint8_t kType = 9;
  static constexpr const char* kName = "hold";
  uint64_t request_id = 0;
  ObjectId object;
  MSGPACK_DEFINE_ARRAY(request_id, object)
};

struct Unhold {
  static constexpr uint8_t kType = 10;
  static constexpr const char* kName = "unhold";
  ObjectId object;
  uint64_t hold = 0;
  MSGPACK_DEFINE_ARRAY(object, hold)
};

using Request = std::variant<Connect, Create, Seal, Abort, Get, Release, Delete, Stats, Hold, Unhold>;

struct Reply {
  static constexpr uint8_t kType = 100;
  static constexpr const char* kName = "reply";
  uint64_t request_id = 0;
  uint8_t code = 0;  // weft::StatusCode
  std::string message;
  uint64_t offset = 0, size = 0;  // Connect: size is the arena's size
  StoreStats stats;               // Stats
  uint64_t hold = 0;              // Hold: the hold's token
  MSGPACK_DEFINE_ARRAY(request_id, code, message, offset, size, stats, hold)

  Status status() const { return code == 0 ? Status::ok() : Status(static_cast<StatusCode>(code), message); }
  void set_status(const Status& s) {
    code = static_cast<uint8_t>(s.code());
    message = s.message();
  }
};

// The request's id; 0 for the requests without a reply (Seal, Release, Unhold).
uint64_t request_id(const Request& q);
void set_request_id(Request& q, uint64_t id);

std::string encode(const Request& q);
std::string encode(const Reply& r);
Result<Request> decode_request(std::string_view bytes);
Result<Reply> decode_reply(std::string_view bytes);

}  // namespace weft::objectstore

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  // The store's counters on the wire, in declaration order.
  template <>
  struct pack<weft::objectstore::StoreStats> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const weft::objectstore::StoreStats& s) const {
      pk.pack_array(10);
      for (uint64_t v : {s.capacity, s.used, s.pinned_bytes, s.objects, s.sealed, s.spilled, s.pins, s.evictions,
                         s.spills, s.restores}) {
        pk.pack(v);
      }
      return pk;
    }
  };
  template <>
  struct convert<weft::objectstore::StoreStats> {
    const msgpack::object& operator()(const msgpack::object& o, weft::objectstore::StoreStats& s) const {
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 10) throw msgpack::type_error();
      uint64_t* fields[] = {&s.capacity, &s.used, &s.pinned_bytes, &s.objects, &s.sealed,
                            &s.spilled,  &s.pins, &s.evictions,    &s.spills,  &s.restores};
      for (uint32_t i = 0; i < 10; ++i) *fields[i] = o.via.array.ptr[i].as<uint64_t>();
      return o;
    }
  };
  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack
