// A process's connection to its node's store: objects are written and read in place in the
// shared arena, which the client maps once when it connects.
//
//   WEFT_ASSIGN_OR_RETURN(auto client, StoreClient::connect("/run/weft/store.sock"));
//   WEFT_ASSIGN_OR_RETURN(uint8_t* buf, client->create(id, bytes));   // write into buf
//   WEFT_RETURN_IF_ERROR(client->seal(id));
//   // another process:
//   WEFT_ASSIGN_OR_RETURN(auto view, client->get(id));  // a view into shared memory, no copy
//   use(view.data(), view.size());
//   WEFT_RETURN_IF_ERROR(client->release(id));             // the store may move it again
//
// Thread-safe: requests from several threads are serialised on the one connection. If the
// process dies, the store releases its pins and discards its unsealed objects.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "objectstore/arena.h"
#include "objectstore/protocol.h"
#include "weft/ids.h"
#include "weft/status.h"

namespace weft::objectstore {

class StoreClient {
 public:
  // kUnavailable when no store listens at `path`.
  static Result<std::unique_ptr<StoreClient>> connect(const std::string& path);
  ~StoreClient();

  // A writable buffer of `size` bytes for a new object (kAlreadyExists, kResourceExhausted
  // "store full: ...").
  Result<uint8_t*> create(const ObjectId& id, uint64_t size, const CreateOptions& options = {});
  // Returns once the request is sent: seal errors (not the creator, sealed already) are the
  // caller's bugs and are logged by the store.
  Status seal(const ObjectId& id);
  Status abort(const ObjectId& id);
  // create + copy + seal.
  Status put(const ObjectId& id, const void* data, uint64_t size, const CreateOptions& options = {});
  // The sealed object's bytes, pinned until release(). Waits up to `timeout_ms` (-1: forever)
  // for an object that does not exist or is not sealed yet; kDeadlineExceeded after that.
  // `hold`: take over that hold of the sender's (see hold()).
  Result<std::span<const uint8_t>> get(const ObjectId& id, int64_t timeout_ms = -1, uint64_t hold = 0);
  // Keeps the object alive for a reader in another process that will get(..., hold) it (see
  // Store::hold); returns the hold's token. Returns once the store holds it, so a message sent
  // afterwards cannot reach its reader before the hold is in place.
  Result<uint64_t> hold(const ObjectId& id);
  // Drops a hold of this client's that its reader never took over (sent without waiting).
  Status unhold(const ObjectId& id, uint64_t hold);
  Status release(const ObjectId& id);  // sent without waiting, like seal

  Status remove(const ObjectId& id);
  Result<StoreStats> stats();

  const SharedArena& arena() const { return arena_; }

 private:
  StoreClient() = default;
  Result<Reply> call(Request r, int* received_fd = nullptr);
  Status send_only(Request r);  // for requests without a reply

  std::mutex mu_;  // one request at a time on sock_
  int sock_ = -1;
  uint64_t next_request_ = 1;
  SharedArena arena_;
};

}  // namespace weft::objectstore
