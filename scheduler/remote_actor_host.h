// Where actors live when they live outside this process: the worker processes of a node. The
// runtime holds one beside its executor in multi-process mode (none when embedded), so actor
// calls reach the hosting processes through this interface, not through the executor's type.
#pragma once

#include <cstdint>
#include <string>

#include "weft/detail/hooks.h"

namespace weft::sched {

class RemoteActorHost {
 public:
  virtual ~RemoteActorHost() = default;

  // Builds an instance with the registered factory `factory` from packed arguments. Blocks the
  // calling thread until a worker answers; `call_name` names errors. The host rebuilds the actor
  // up to `max_restarts` times if the process it lives in dies.
  virtual detail::RemoteOutcome create_actor(const std::string& factory, std::string args, const std::string& call_name,
                                             int max_restarts) = 0;
  // Runs the registered method `method` on actor `actor`; blocks until its worker answers.
  virtual detail::RemoteOutcome call_actor(uint64_t actor, const std::string& method, std::string args,
                                           const std::string& call_name) = 0;
  // The last handle and call are gone: the hosting worker frees the instance.
  virtual void drop_actor(uint64_t actor) = 0;
  // This process holds one more handle to actor `actor` (a worker tells its driver, which keeps the
  // actor alive for it until drop_actor); nothing by default.
  virtual void borrow_actor(uint64_t actor) { (void)actor; }
  // Publishes an actor named in this process where other processes look names up (the node's
  // directory); nothing by default.
  virtual Status publish_name(const std::string& name, const std::string& class_name) {
    (void)name;
    (void)class_name;
    return Status::ok();
  }
  // A named actor this host can reach (a worker asks its driver); kNotFound by default.
  virtual Result<uint64_t> find_named(const std::string& name, const std::string& class_name) {
    (void)class_name;
    return Status::not_found("no actor named '" + name + "'");
  }
};

}  // namespace weft::sched
