// The driver's actors as worker processes reach them (sched::ActorExports): looked up by name (in
// the running runtime's directory) or passed in a message (an ActorHandle packed into a task's
// arguments, lent for that message), each kept alive for the messages carrying it and the workers
// that hold it, and called through the actor's own mailbox so that a worker's calls run in order
// with everyone else's. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "scheduler/actor_exports.h"
#include "weft/detail/actor_core.h"

namespace weft::runtime {

class ActorExportTable final : public sched::ActorExports {
 public:
  ActorExportTable() = default;
  ~ActorExportTable() override { clear(); }

  // The process's table (it lives until exit).
  static ActorExportTable& process();

  Result<uint64_t> lookup(const std::string& name, const std::string& class_name, uint64_t borrower) override;
  void forward(uint64_t id, const std::string& method, std::string args,
               std::function<void(detail::RemoteOutcome)> done) override;
  void borrow(uint64_t id, uint64_t borrower) override;
  void release(uint64_t id, uint64_t borrower) override;
  void drop_borrower(uint64_t borrower) override;

  // A handle to `actor` is packed into a message: its id, the actor kept alive for the message
  // until return_lent (the id is added to the thread's capture, see capture_lent).
  uint64_t lend(detail::ActorCore* actor);
  void return_lent(const std::vector<uint64_t>& ids);
  // The exported actor `id`, one reference for the caller; null when it is gone.
  detail::ActorCore* find(uint64_t id);

  // Lets go of every exported actor (the runtime shuts down).
  void clear();
  size_t exported() const;  // for tests

  // Ids lent on this thread (lend) are appended to `into` until this is called again with nullptr:
  // the actors a message being packed carries. A lend outside a capture is kept until clear().
  static void capture_lent(std::vector<uint64_t>* into);

 private:
  struct Entry {
    detail::ActorCore* actor = nullptr;  // one reference
    std::unordered_map<uint64_t, uint32_t> borrowers;
    uint32_t in_flight = 0;  // messages carrying a handle to it, not answered yet
  };
  // With mu_ held: the entry's id, made if need be (taking the caller's reference, or not).
  uint64_t entry_for(detail::ActorCore* actor, bool adopt_reference);
  // With mu_ held: erases the entry if nothing keeps it; returns the actor to release.
  detail::ActorCore* maybe_free(std::unordered_map<uint64_t, Entry>::iterator it);
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> by_id_;
  std::unordered_map<detail::ActorCore*, uint64_t> id_of_;
  uint64_t next_id_ = 1;
};

}  // namespace weft::runtime
