// A client of the head (the `weft` command's cluster subcommands): one request, one reply, over a
// CURVE connection made for it.
//
//   HeadClient head("127.0.0.1:7380", credential);
//   WEFT_ASSIGN_OR_RETURN(StatusReply s, head.call<StatusReply>(StatusRequest{}));
//
// Errors: kUnauthenticated when the head refuses the credential (or is not the cluster's head),
// kUnavailable when nothing answers within the timeout, the head's own error otherwise.
//
// Not thread-safe: one caller at a time.
#pragma once

#include <chrono>
#include <string>

#include "cluster/credential.h"
#include "cluster/protocol.h"
#include "weft/status.h"

namespace weft::cluster {

class HeadClient {
 public:
  HeadClient(std::string address, Credential credential,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(10000))
      : address_(std::move(address)), credential_(std::move(credential)), timeout_(timeout) {}

  // Sends `request` and decodes the answer as R (a Reply with ok=false becomes its Status).
  template <class R, class M>
  Result<R> call(const M& request) {
    WEFT_ASSIGN_OR_RETURN(ToClient answer, exchange(encode(request)));
    if (auto* r = std::get_if<Reply>(&answer); r != nullptr && !r->ok) return r->status();
    if (auto* r = std::get_if<R>(&answer)) return std::move(*r);
    return Status::internal("the head answered " + std::string(wire::name_of(answer)) + " to " + M::kName);
  }

  const std::string& address() const { return address_; }

  // Sends already-encoded bytes (any bytes: tests send garbage) and decodes the answer.
  Result<ToClient> exchange(const std::string& bytes);

 private:
  std::string address_;
  Credential credential_;
  std::chrono::milliseconds timeout_;
};

}  // namespace weft::cluster
