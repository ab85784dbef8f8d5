// The store's wire protocol: one MessagePack array per message over a Unix SOCK_SEQPACKET
// socket (message boundaries kept by the kernel; the arena's descriptor travels once, with the
// reply to kConnect, as SCM_RIGHTS).
//
//   request: [version, type, request_id, object_hi, object_lo, size, flags, task, timeout_ms]
//            flags: bit 0 primary, bit 1 transient (CreateOptions), bit 2 adopt (kGet)
//   reply:   [version, kReply, request_id, status_code, message, offset, size, [stats...]]
//
// kSeal and kRelease get no reply: the client never waits on them (the store processes a
// connection's messages in order, so a later request sees them done), and the store logs their
// errors, which only a buggy client can cause. Every other request gets exactly one reply.
// Every request has all nine fields (unused ones 0), so validation is one shape check. Decoding
// never trusts its input: a message that is not exactly this shape (bad MessagePack, wrong
// version, unknown type, wrong field types, too long) is an error naming what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "objectstore/store.h"
#include "weft/ids.h"
#include "weft/status.h"

namespace weft::objectstore {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kMaxMessageBytes = 4096;

enum class MsgType : uint8_t {
  kConnect = 1,
  kCreate = 2,
  kSeal = 3,
  kAbort = 4,
  kGet = 5,
  kRelease = 6,
  kDelete = 7,
  kStats = 8,
  kHold = 9,
  kReply = 100,
};

struct Request {
  MsgType type = MsgType::kConnect;
  uint64_t request_id = 0;
  ObjectId object;
  uint64_t size = 0;
  bool primary = true;
  bool transient = false;
  bool adopt = false;  // kGet: take over a hold
  uint64_t task = 0;
  int64_t timeout_ms = -1;  // kGet: -1 waits for the object as long as it takes
};

struct Reply {
  uint64_t request_id = 0;
  StatusCode code = StatusCode::kOk;
  std::string message;
  uint64_t offset = 0, size = 0;  // kConnect: size is the arena's size
  StoreStats stats;               // kStats
  Status status() const { return code == StatusCode::kOk ? Status::ok() : Status(code, message); }
};

std::string encode(const Request& r);
std::string encode(const Reply& r);
// kInvalidArgument naming the problem.
Result<Request> decode_request(std::string_view bytes);
Result<Reply> decode_reply(std::string_view bytes);

}  // namespace weft::objectstore
