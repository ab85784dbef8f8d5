// The object table of one node's store: objects in the shared arena, their lifecycle, readers'
// pins, eviction and spilling. No sockets here: StoreServer drives it for clients in other
// processes, and tests drive it directly.
//
//   create (writable bytes, visible to no one) -> seal (immutable, readable) -> get (pins) ->
//   release (unpins) ... remove (freed once no pin is left)
//
// Memory pressure, when a create or a restore does not fit: first unpinned *secondary* copies
// (copies of objects whose primary lives elsewhere) are evicted, least recently used first; then
// unpinned primary copies are spilled to disk (SpillStorage), least recently used first, and
// restored transparently by the next get. An object a reader has pinned never moves. When an
// object cannot fit even so, create fails with kResourceExhausted ("store full: ..."), saying
// how much is pinned. A client that goes away (disconnect) drops its pins and holds, and every
// object it created (those that other readers pin stay until they release them), so a process
// that dies leaks nothing into a node shared by many. Not thread-safe: one thread (the server's) owns a Store.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "objectstore/allocator.h"
#include "objectstore/arena.h"
#include "objectstore/spill.h"
#include "weft/ids.h"
#include "weft/status.h"

namespace weft::objectstore {

using ClientId = uint64_t;

struct StoreOptions {
  size_t capacity = 0;     // bytes; 0: SharedArena::default_size()
  std::string spill_dir;   // parent of the spill directory; empty: $TMPDIR or /tmp
};

struct CreateOptions {
  bool primary = true;     // the object's only copy: spilled under pressure, never evicted
  bool transient = false;  // handed to one reader: deleted when its last pin drops, or with its
                           // creator's connection if nobody ever pinned it
  uint64_t task = 0;       // the task that creates it (for the record)
};

struct ObjectLocation {
  uint64_t offset = 0;  // in the arena
  uint64_t size = 0;
};

struct StoreStats {
  uint64_t capacity = 0, used = 0, pinned_bytes = 0;
  uint64_t objects = 0, sealed = 0, spilled = 0, pins = 0;
  uint64_t evictions = 0, spills = 0, restores = 0;
};

class Store {
 public:
  // Makes the arena and the spill directory.
  static Result<std::unique_ptr<Store>> create(const StoreOptions& options);
  // For tests: any arena size, any spill storage.
  Store(SharedArena arena, std::unique_ptr<SpillStorage> spill);

  const SharedArena& arena() const { return arena_; }

  // Space for a new object of `size` bytes, writable by `owner` until it seals.
  // kAlreadyExists; kInvalidArgument for size 0; kResourceExhausted when it cannot fit.
  Result<ObjectLocation> create(ClientId owner, const ObjectId& id, uint64_t size, const CreateOptions& options = {});
  // kNotFound; kFailedPrecondition when `client` is not the creator or it is sealed already.
  Status seal(ClientId client, const ObjectId& id);
  // Discards an unsealed object of `client`.
  Status abort(ClientId client, const ObjectId& id);
  // Pins a sealed object for `client` (restoring it from disk if it was spilled) and says where
  // it is. kNotFound when absent; kUnavailable when it exists but is not sealed yet. `hold`
  // (nonzero): take over that hold (see hold()) as this pin, when it is still there.
  Result<ObjectLocation> get(ClientId client, const ObjectId& id, uint64_t hold = 0);
  // A pin on behalf of a message in flight: `client` is handing the object's id to another
  // process, whose get(hold) takes the hold over, so the object cannot vanish in between even if
  // the sender lets go first. Returns the hold's token (unique in this store). A hold ends when
  // its reader takes it over, when its sender drops it (unhold: the message was lost with its
  // reader, or answered), or when its sender goes away.
  Result<uint64_t> hold(ClientId client, const ObjectId& id);
  // Drops `client`'s hold `token` on the object if it is still there (taken over or gone: OK).
  // kFailedPrecondition when the hold is another client's.
  Status unhold(ClientId client, const ObjectId& id, uint64_t token);
  // Drops one of `client`'s pins on the object.
  Status release(ClientId client, const ObjectId& id);
  // Deletes the object now, or as soon as its last pin drops.
  Status remove(const ObjectId& id);
  // `client` is gone: its pins drop and its unsealed objects are discarded.
  void disconnect(ClientId client);

  bool contains(const ObjectId& id) const { return objects_.count(id) > 0; }
  bool is_sealed(const ObjectId& id) const;
  StoreStats stats() const;

 private:
  enum class State { kCreated, kSealed, kSpilled };
  struct Entry {
    State state = State::kCreated;
    uint64_t offset = 0, size = 0;
    ClientId owner = 0;
    uint64_t task = 0;
    bool primary = true;
    bool transient = false;
    bool ever_pinned = false;
    bool doomed = false;  // remove() while pinned
    std::unordered_map<ClientId, uint32_t> pins;
    std::unordered_map<uint64_t, ClientId> holds;   // pins for messages in flight: token -> sender
    uint32_t total_pins = 0;                        // pins and holds
    std::list<ObjectId>::iterator lru;  // valid while unpinned and sealed in memory
    bool in_lru = false;
  };

  // Space for `size` bytes, evicting or spilling others (never `keep`). kResourceExhausted.
  Result<uint64_t> make_room(uint64_t size, const ObjectId& keep);
  void lru_add(const ObjectId& id, Entry& e);
  void lru_drop(Entry& e);
  void free_memory(Entry& e);
  void erase(const ObjectId& id);
  void unpin(const ObjectId& id, Entry& e, ClientId client, uint32_t count);
  void drop_hold(const ObjectId& id, Entry& e, uint64_t token);
  void drop_pins(const ObjectId& id, Entry& e, uint32_t count);  // after a pin or hold is gone
  void add_pin(Entry& e);

  SharedArena arena_;
  BestFitAllocator allocator_;
  std::unique_ptr<SpillStorage> spill_;
  std::unordered_map<ObjectId, Entry> objects_;
  std::list<ObjectId> lru_;  // unpinned sealed in-memory objects, least recently used first
  uint64_t pinned_bytes_ = 0;
  uint64_t evictions_ = 0, spills_ = 0, restores_ = 0;
  uint64_t next_hold_ = 0;
};

}  // namespace weft::objectstore
