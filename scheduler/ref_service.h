// The process's object references as a multi-process executor sees them: what it calls when a
// message carries refs (weft/detail/ref_wire.h) and when another process asks for a value. The
// runtime implements it (runtime/object_refs.h); unit tests use it directly, two instances
// standing for two processes.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "weft/detail/ref_wire.h"
#include "weft/ids.h"

namespace weft::sched {

class RefService {
 public:
  virtual ~RefService() = default;

  // ---- the owner's side ----
  // What a message packed on this thread between the two calls carries (refs to pending objects,
  // holds on store objects): kept alive until release() is called with what end_capture returned.
  virtual void begin_capture() = 0;
  virtual detail::Carried end_capture() = 0;
  // The message has been answered (or lost with its reader): its readers asked for what they need
  // by now, and took over the holds they read.
  virtual void release(const detail::Carried& carried) = 0;
  // Process `borrower` waits for object `id`: `ready` gets its record once it is done, at once if it
  // is, on the producing thread otherwise (an unknown id gets a kFailed ObjectLost record). The
  // object stays alive for the borrower until borrow_done.
  virtual void wait(const ObjectId& id, uint64_t borrower, std::function<void(detail::RefRecord)> ready) = 0;
  virtual void borrow_done(uint64_t borrower, const ObjectId& id) = 0;
  // The borrower's process died: everything it waited for is let go, and holds on answers it never
  // read are dropped.
  virtual void drop_borrower(uint64_t borrower) = 0;

  // ---- the borrower's side ----
  // How this process asks an owner for the value of a pending object (called outside any lock).
  virtual void set_requester(std::function<void(const ObjectId& id, uint64_t owner)> request) = 0;
  // An owner's answer to a request: finishes the slot waiting for it, if there still is one.
  virtual void resolve(detail::RefRecord record) = 0;
};

}  // namespace weft::sched
