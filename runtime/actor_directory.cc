#include "runtime/actor_directory.h"

#include <vector>

#include "weft/detail/hooks.h"

namespace weft::runtime {

Status ActorDirectory::add(const std::string& name, const std::type_info& type, detail::ActorCore* actor) {
  std::lock_guard lock(mu_);
  if (!actors_.try_emplace(name, std::type_index(type), actor).second) {
    return Status::already_exists("an actor named '" + name + "' already exists");
  }
  actor->add_ref();
  return Status::ok();
}

void ActorDirectory::remove(const std::string& name) {
  detail::ActorCore* actor = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = actors_.find(name);
    if (it == actors_.end()) return;
    actor = it->second.second;
    actors_.erase(it);
  }
  actor->release();  // outside the lock: it may be the last reference
}

Result<detail::ActorCore*> ActorDirectory::find(const std::string& name, const std::type_info& type) const {
  std::lock_guard lock(mu_);
  auto it = actors_.find(name);
  if (it == actors_.end()) return Status::not_found("no actor is named '" + name + "'");
  if (it->second.first != std::type_index(type)) {
    return Status::invalid_argument("the actor named '" + name + "' is a " + it->second.second->class_name() +
                                    ", not a " + detail::demangle(type.name()));
  }
  it->second.second->add_ref();
  return it->second.second;
}

Result<detail::ActorCore*> ActorDirectory::find_by_class_name(const std::string& name,
                                                              const std::string& class_name) const {
  std::lock_guard lock(mu_);
  auto it = actors_.find(name);
  if (it == actors_.end()) return Status::not_found("no actor is named '" + name + "'");
  if (it->second.second->class_name() != class_name) {
    return Status::invalid_argument("the actor named '" + name + "' is a " + it->second.second->class_name() +
                                    ", not a " + class_name);
  }
  it->second.second->add_ref();
  return it->second.second;
}

void ActorDirectory::clear() {
  std::vector<detail::ActorCore*> held;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, entry] : actors_) held.push_back(entry.second);
    actors_.clear();
  }
  for (detail::ActorCore* a : held) a->release();  // outside the lock: a release may free the actor
}

}  // namespace weft::runtime
