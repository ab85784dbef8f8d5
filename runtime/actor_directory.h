// Named actors of a runtime: weft::actor<T>(f).name("x") registers one, weft::get_actor<T>("x")
// finds it. The directory holds a reference to each, so a named actor lives until the runtime
// shuts down (Ray's "detached" lifetime), whether or not any handle is left. Thread-safe.
#pragma once

#include <mutex>
#include <string>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#include "weft/detail/actor_core.h"
#include "weft/status.h"

namespace weft::runtime {

class ActorDirectory {
 public:
  ActorDirectory() = default;
  ActorDirectory(const ActorDirectory&) = delete;
  ActorDirectory& operator=(const ActorDirectory&) = delete;
  ~ActorDirectory() { clear(); }

  // Takes a reference to `actor` under `name`; kAlreadyExists if the name is taken.
  Status add(const std::string& name, const std::type_info& type, detail::ActorCore* actor);
  // The actor named `name`, with a reference added for the caller; kNotFound, or
  // kInvalidArgument when it is of another class than `type`.
  Result<detail::ActorCore*> find(const std::string& name, const std::type_info& type) const;
  // The same, for a class named as demangled (what another process sends).
  Result<detail::ActorCore*> find_by_class_name(const std::string& name, const std::string& class_name) const;
  // Drops one name and its reference (a name the node refused).
  void remove(const std::string& name);
  // Drops every name and the references they hold.
  void clear();

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::pair<std::type_index, detail::ActorCore*>> actors_;
};

}  // namespace weft::runtime
