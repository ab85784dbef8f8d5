#include "objectstore/protocol.h"

#include <fmt/format.h>

namespace weft::objectstore {
namespace {

Result<wire::Envelope> open(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) {
    return wire::malformed(kStoreProtocol, fmt::format("{} bytes, more than {}", bytes.size(), kMaxMessageBytes));
  }
  return wire::open(kStoreProtocol, bytes);
}

}  // namespace

uint64_t request_id(const Request& q) {
  return std::visit(
      [](const auto& m) -> uint64_t {
        if constexpr (requires { m.request_id; }) {
          return m.request_id;
        } else {
          return 0;
        }
      },
      q);
}

void set_request_id(Request& q, uint64_t id) {
  std::visit(
      [id](auto& m) {
        if constexpr (requires { m.request_id; }) m.request_id = id;
      },
      q);
}

std::string encode(const Request& q) {
  return std::visit([](const auto& m) { return wire::encode(kStoreProtocol, m); }, q);
}

std::string encode(const Reply& r) { return wire::encode(kStoreProtocol, r); }

Result<Request> decode_request(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(wire::Envelope e, open(bytes));
  if (e.type == Reply::kType) return wire::malformed(kStoreProtocol, "a reply is not a request");
  return wire::body_of<Request>(kStoreProtocol, e);
}

Result<Reply> decode_reply(std::string_view bytes) {
  WEFT_ASSIGN_OR_RETURN(wire::Envelope e, open(bytes));
  if (e.type != Reply::kType) return wire::malformed(kStoreProtocol, fmt::format("type {} is not a reply", e.type));
  WEFT_ASSIGN_OR_RETURN(Reply r, wire::body<Reply>(kStoreProtocol, e));
  if (r.code > static_cast<uint8_t>(kLastStatusCode)) {
    return wire::malformed(kStoreProtocol, fmt::format("unknown status code {}", r.code));
  }
  return r;
}

}  // namespace weft::objectstore
