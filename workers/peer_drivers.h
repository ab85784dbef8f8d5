// A driver's links to the other drivers attached to the same `weft node`: how it reaches their
// named actors and the objects they own. The node's directory says where each driver listens
// (node_protocol.h: Name/Find/Locate); this driver then connects to that driver's control socket
// as a peer (PeerHello) and speaks the messages its own workers speak to it (control.h):
//
//   find_named    Find at the node, then ActorLookup at the holder: an alias id for the actor
//   call_actor    ActorForward, waits for ActorReply (the holder runs it in the actor's mailbox)
//   borrow/drop   ActorBorrow / ActorRelease
//   request       ObjectWait for one of this driver's slots (ObjectRefs), resolved by ObjectReady,
//                 acknowledged by BorrowDone
//   relay         ObjectWait on behalf of one of this driver's workers; its answer goes to the
//                 callback, and borrow_done acknowledges it once the worker has it
//
// A peer that dies (its pid is watched) fails what waits on it: calls with weft::WorkerDied
// naming the dead driver, objects with weft::OwnerDied. One I/O thread owns the sockets; the
// methods may be called from any thread (find_named and call_actor block until answered).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "weft/detail/hooks.h"
#include "weft/detail/ref_wire.h"
#include "weft/status.h"
#include "workers/borrowers.h"

namespace weft::workers {

class PeerDrivers final : public ObjectRelay {
 public:
  // `node_address`: the node ("unix:PATH"); `endpoint`: where this driver listens (it tells the
  // node nothing new: the node knows it from the attachment). `resolve` gets the answers to
  // request() (ObjectRefs::resolve).
  static Result<std::unique_ptr<PeerDrivers>> start(const std::string& node_address,
                                                    std::function<void(detail::RefRecord)> resolve);
  ~PeerDrivers() override;
  // The runtime stops: calls waiting on other drivers return cancelled, objects waited for fail,
  // and later requests do nothing. The links stay until destruction.
  void cancel();

  // Aliases (the ids find_named returns) never collide with a driver's own actor ids.
  static constexpr uint64_t kAliasBase = detail::kForeignActorBase;
  static bool is_alias(uint64_t actor) { return actor >= kAliasBase; }

  // Publishes this driver's actor `name` (of class `class_name`) in the node's directory;
  // kAlreadyExists when another driver holds the name.
  Status publish(const std::string& name, const std::string& class_name);
  // Another driver's actor of that name: an alias for it, kept alive there until drop(alias).
  // kNotFound; kInvalidArgument for another class.
  Result<uint64_t> find_named(const std::string& name, const std::string& class_name);
  detail::RemoteOutcome call_actor(uint64_t alias, const std::string& method, std::string args,
                                   const std::string& call_name);
  void borrow(uint64_t alias);
  void drop(uint64_t alias);

  // This driver waits for object `id` owned by driver `owner`.
  void request(const ObjectId& id, uint64_t owner);
  // A worker of this driver waits for it: `answer` gets the record (on the I/O thread).
  void relay(const ObjectId& id, uint64_t owner, std::function<void(detail::RefRecord)> answer) override;
  // The worker has the relayed value (or died): the owner may let go of it.
  void borrow_done(const ObjectId& id, uint64_t owner) override;

  // For tests: drivers linked, and peers seen dead.
  size_t linked() const;

 private:
  PeerDrivers() = default;
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace weft::workers
