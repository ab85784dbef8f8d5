// The driver's actors as worker processes reach them: a task in a worker looks a named actor up
// (weft::get_actor), or reads a handle passed to it, and calls it through the driver, in order with
// the actor's other calls. The runtime implements it (runtime/actor_exports.h); the dispatcher
// calls it for the workers' messages.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "weft/detail/hooks.h"
#include "weft/status.h"

namespace weft::sched {

class ActorExports {
 public:
  virtual ~ActorExports() = default;

  // Process `borrower` looks up the actor named `name` of class `class_name`: the id its calls
  // name, the actor kept alive for it until release (or its death). kNotFound, or
  // kInvalidArgument for another class.
  virtual Result<uint64_t> lookup(const std::string& name, const std::string& class_name, uint64_t borrower) = 0;
  // Runs the registered method `method` of exported actor `id` on packed arguments, after the
  // actor's earlier calls; `done` gets the outcome on some thread.
  virtual void forward(uint64_t id, const std::string& method, std::string args,
                       std::function<void(detail::RemoteOutcome)> done) = 0;
  // Process `borrower` holds one more handle to exported actor `id` (it read one in a message, or
  // is passing one on): the actor is kept alive for it until the matching release.
  virtual void borrow(uint64_t id, uint64_t borrower) = 0;
  virtual void release(uint64_t id, uint64_t borrower) = 0;
  virtual void drop_borrower(uint64_t borrower) = 0;
};

}  // namespace weft::sched
