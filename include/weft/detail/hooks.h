// The few non-template entry points that weft's header templates call into the runtime library.
// Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "weft/errors.h"
#include "weft/export.h"
#include "weft/ids.h"
#include "weft/options.h"
#include "weft/status.h"

namespace weft::detail {

class Runnable;
class ObjectBase;
using ErrorPtr = std::shared_ptr<const ErrorInfo>;

// Throws weft::Error unless a runtime is initialised and not shut down.
WEFT_API void ensure_running();

// Enqueues a ready runnable on the current runtime's scheduler.
WEFT_API void submit(Runnable* r);

// Wakes threads blocked on objects (see ObjectBase::arm_sleeper). Cheap when none sleep.
WEFT_API void wake_sleepers() noexcept;

// Blocks until at least `k` of `objs` are done, running other ready tasks on this thread while it
// waits. Returns false when `deadline_ns` (steady clock) passes first.
WEFT_API bool wait_done(ObjectBase* const* objs, size_t n, size_t k, int64_t deadline_ns);

// The error a task leaves when its body raised the exception being handled now.
WEFT_API ErrorPtr error_from_current_exception(const std::string& task_name);
// The error a task leaves when the runtime shut down before it ran.
WEFT_API ErrorPtr cancelled_error(const std::string& task_name);

// Resource admission for tasks that declare resources.
enum class Admission { kNow, kParked, kInfeasible };
// kNow: the caller runs `r`. kParked: the runtime submits `r` when resources free up.
// kInfeasible: the node can never satisfy `need`; *why says so.
WEFT_API Admission acquire_resources(Runnable* r, const ResourceSet& need, std::string* why);
WEFT_API void release_resources(const ResourceSet& need);

// Demangled name of a type_info, for error messages.
WEFT_API std::string demangle(const char* mangled);

// ---- actors hosted in worker processes (multi-process mode) ----

struct RemoteOutcome {
  bool ok = false;
  std::string payload;  // the packed result
  ErrorPtr error;       // when !ok: the exception, or the worker's death
  uint64_t actor = 0;   // remote_actor_create: the new actor's id
};
// True in a driver in multi-process mode: actors whose factory takes its arguments by value
// live in worker processes.
WEFT_API bool remote_actors_available();
// Both block the calling thread until the worker answers; `call_name` names errors. An actor
// with `max_restarts` is rebuilt (its factory run again on the same arguments) that many times
// when its worker process dies.
WEFT_API RemoteOutcome remote_actor_create(const std::string& factory, std::string packed_args,
                                           const std::string& call_name, int max_restarts = 0);
WEFT_API RemoteOutcome remote_actor_call(uint64_t actor, const std::string& method, std::string packed_args,
                                         const std::string& call_name);
// Named actors (runtime/actor_directory.h): name_actor takes a reference to `actor` under
// `name` (kAlreadyExists if taken); named_actor returns it with a reference added for the caller
// (kNotFound, or kInvalidArgument for another class).
class ActorCore;
WEFT_API Status name_actor(const std::string& name, const std::type_info& type, ActorCore* actor);
WEFT_API Result<ActorCore*> named_actor(const std::string& name, const std::type_info& type);

// A hold on a store object that a message carries for its reader (objectstore/store.h).
struct StoreHold {
  ObjectId object;
  uint64_t token = 0;
};

// What one message keeps alive for its readers until it is answered or lost: the sender's
// entries for refs to its pending objects, its holds on store objects (weft::Array values,
// kInStore records) and the actors it lends handles to. A hold its reader took over is a no-op
// to drop.
struct Carried {
  std::vector<ObjectId> refs;
  std::vector<StoreHold> holds;
  std::vector<uint64_t> actors;  // export ids (runtime/actor_exports.h)
  bool empty() const { return refs.empty() && holds.empty() && actors.empty(); }
};

// What a message packed on this thread between construction and packed() carries (refs to
// pending objects, holds on store objects) is kept alive by this process until destruction: the
// message's lifetime (ref_wire.h).
class WEFT_API CarriedRefs {
 public:
  CarriedRefs();
  ~CarriedRefs();
  CarriedRefs(const CarriedRefs&) = delete;
  CarriedRefs& operator=(const CarriedRefs&) = delete;
  void packed();

 private:
  Carried carried_;
  bool recording_ = true;
};

// An ActorHandle packed into a message (multi-process mode): the id under which the driver
// exports the actor, the worker that lends it (0: the driver, which keeps the actor for the
// message it is packing) and that driver. In a worker, only handles to the driver's actors can
// leave, and a handle is read only under the driver it names; anything else throws weft::Error.
struct ActorWireId {
  uint64_t id = 0;
  uint64_t lender = 0;
  uint64_t owner = 0;  // the driver whose export id it is
};
WEFT_API ActorWireId export_actor(ActorCore* actor);
// Ids from here up name another driver's actors (aliases, workers/peer_drivers.h).
inline constexpr uint64_t kForeignActorBase = uint64_t{1} << 62;
// The handle read from a message: in the driver, the actor itself (one reference; throws
// weft::Error when it is gone); in a worker, null once the driver is told the worker holds a handle
// (the caller makes a proxy whose calls go to the driver under `id`).
WEFT_API ActorCore* import_actor(const ActorWireId& wire);

// In a worker process, the driver's actor named `name` of class `class_name`: the id its calls
// name through remote_actor_call (kNotFound elsewhere, or when the driver has none).
WEFT_API Result<uint64_t> named_driver_actor(const std::string& name, const std::string& class_name);

// The last handle and call are gone: the worker frees the instance.
WEFT_API void remote_actor_drop(uint64_t actor);

// ---- the node's shared-memory object store (multi-process mode), for weft::Array ----

// An object of the node store mapped in this process. `keep` holds the connection (so the
// mapping outlives the runtime if need be) and, once pinned, the pin: the last copy of it
// releases the pin, and removes the object when this process owns it.
struct SharedObject {
  ObjectId id;
  uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<void> keep;
};
// True in a driver in multi-process mode and in its workers.
WEFT_API bool node_store_available();
// A new writable object, visible to no one until sealed. `owned`: this process removes it when
// its last handle goes; otherwise it is transient (gone when its one reader is done).
WEFT_API Result<SharedObject> store_create(size_t size, bool owned);
// Seals the object (immutable, readable everywhere) and pins it for this process.
WEFT_API Status store_seal_and_pin(SharedObject& obj);
// Pins an existing object; `hold` (nonzero): take over that hold its sender left (store_hold).
WEFT_API Result<SharedObject> store_open(const ObjectId& id, uint64_t hold);
// Keeps a pinned object alive for a reader in another process that will open it with the hold;
// returns once the store holds it. Returns the hold's token, which the message carries; a hold
// made while a message is packed under capture (ObjectRefs) is part of what it carries.
WEFT_API Result<uint64_t> store_hold(const SharedObject& obj);

}  // namespace weft::detail
