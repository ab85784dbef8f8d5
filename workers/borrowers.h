// The driver's side of what other processes borrow from it: its pending objects they wait for
// and its actors they hold handles to and call. The borrowers are its own workers and the other
// drivers of its node (peers); both send the same messages (control.h): ObjectWait, BorrowDone,
// ActorLookup, ActorForward, ActorBorrow, ActorRelease. A worker's wait for an object another
// driver owns is relayed to that driver (PeerDrivers), and the answer passed on.
//
// Called from the dispatcher thread; answers are queued through `answer`, which any thread may
// call (an object finishes, a forwarded call returns).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <tuple>

#include "scheduler/actor_exports.h"
#include "scheduler/ref_service.h"
#include "workers/control.h"

namespace weft::workers {

// Where waits for another driver's objects go (PeerDrivers; a fake in tests).
class ObjectRelay {
 public:
  virtual ~ObjectRelay() = default;
  // A worker waits for object `id` owned by driver `owner`: `answer` gets the record.
  virtual void relay(const ObjectId& id, uint64_t owner, std::function<void(detail::RefRecord)> answer) = 0;
  // The worker has it (or died): the owner may let go of it.
  virtual void borrow_done(const ObjectId& id, uint64_t owner) = 0;
};

class Borrowers {
 public:
  // Any may be null: that kind of borrowing is refused (refs, actors) or not relayed (peers).
  Borrowers(sched::RefService* refs, sched::ActorExports* actors, ObjectRelay* peers,
            std::function<void(pid_t, ControlMessage)> answer)
      : refs_(refs), actors_(actors), peers_(peers), answer_(std::move(answer)) {}

  // Handles one of the messages above from process `from`; false for any other message.
  bool handle(pid_t from, ControlMessage& msg);
  // `pid` died: everything it held or waited for is let go.
  void gone(pid_t pid);
  // An answer for `pid` could not be delivered (it is gone).
  void undelivered(pid_t pid, const ControlMessage& m);

  uint64_t object_waits() const { return object_waits_.load(); }

 private:
  struct Relayed {
    pid_t pid;
    ObjectId id;
    bool operator<(const Relayed& o) const { return std::tie(pid, id.hi, id.lo) < std::tie(o.pid, o.id.hi, o.id.lo); }
  };
  void on_object_wait(pid_t from, const ObjectWait& w);
  void on_borrow_done(pid_t from, const ObjectId& id);

  sched::RefService* refs_;
  sched::ActorExports* actors_;
  ObjectRelay* peers_;
  std::function<void(pid_t, ControlMessage)> answer_;
  std::multimap<Relayed, uint64_t> relayed_;  // waits passed on to another driver: -> its pid
  std::atomic<uint64_t> object_waits_{0};
};

}  // namespace weft::workers
