#include "objectstore/store.h"

#include <cstdlib>

#include <fmt/format.h>

#include "core/check.h"

namespace weft::objectstore {

Result<std::unique_ptr<Store>> Store::create(const StoreOptions& options) {
  const size_t capacity = options.capacity != 0 ? options.capacity : SharedArena::default_size();
  WEFT_ASSIGN_OR_RETURN(SharedArena arena, SharedArena::create(capacity, "weft-store"));
  std::string parent = options.spill_dir;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  WEFT_ASSIGN_OR_RETURN(std::unique_ptr<DirectorySpill> spill, DirectorySpill::create(parent));
  return std::make_unique<Store>(std::move(arena), std::move(spill));
}

Store::Store(SharedArena arena, std::unique_ptr<SpillStorage> spill)
    : arena_(std::move(arena)), allocator_(arena_.size()), spill_(std::move(spill)) {}

bool Store::is_sealed(const ObjectId& id) const {
  auto it = objects_.find(id);
  return it != objects_.end() && it->second.state != State::kCreated;
}

void Store::lru_add(const ObjectId& id, Entry& e) {
  if (e.in_lru || e.state != State::kSealed || e.total_pins != 0) return;
  e.lru = lru_.insert(lru_.end(), id);
  e.in_lru = true;
}

void Store::lru_drop(Entry& e) {
  if (!e.in_lru) return;
  lru_.erase(e.lru);
  e.in_lru = false;
}

// Freed ranges keep their pages: the next object there is written without page faults in any
// process that already touched them (the arena's memory stays at its high-water mark, as a
// preallocated arena would).
void Store::free_memory(Entry& e) { allocator_.free(e.offset); }

void Store::erase(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  Entry& e = it->second;
  lru_drop(e);
  if (e.state == State::kSpilled) {
    spill_->remove(id);
  } else {
    free_memory(e);
  }
  objects_.erase(it);
}

Result<uint64_t> Store::make_room(uint64_t size, const ObjectId& keep) {
  for (;;) {
    if (auto off = allocator_.allocate(size)) {
      Status committed = arena_.commit(*off, allocator_.allocated_size(*off));
      if (committed.is_ok()) return *off;
      allocator_.free(*off);
      if (lru_.empty()) return committed;  // the system itself is out of memory
    }
    // Victim: the least recently used secondary copy, else the least recently used primary.
    auto victim = lru_.end();
    for (auto it = lru_.begin(); it != lru_.end(); ++it) {
      if (*it != keep && !objects_.at(*it).primary) {
        victim = it;
        break;
      }
    }
    if (victim == lru_.end()) {
      for (auto it = lru_.begin(); it != lru_.end(); ++it) {
        if (*it != keep) {
          victim = it;
          break;
        }
      }
    }
    if (victim == lru_.end()) {
      return Status::resource_exhausted(fmt::format(
          "store full: {} bytes do not fit in a store of {} bytes ({} free, largest free range {}, {} pinned by "
          "readers, {} in objects being written)",
          size, allocator_.capacity(), allocator_.free_bytes(), allocator_.largest_free(), pinned_bytes_,
          allocator_.capacity() - allocator_.free_bytes() - pinned_bytes_));
    }
    const ObjectId id = *victim;
    Entry& e = objects_.at(id);
    if (!e.primary) {
      ++evictions_;
      erase(id);
      continue;
    }
    WEFT_RETURN_IF_ERROR(spill_->write(id, arena_.base() + e.offset, e.size));
    ++spills_;
    lru_drop(e);
    free_memory(e);
    e.state = State::kSpilled;
  }
}

Result<ObjectLocation> Store::create(ClientId owner, const ObjectId& id, uint64_t size, const CreateOptions& options) {
  if (size == 0) return Status::invalid_argument("an object needs at least one byte");
  if (objects_.count(id) != 0) return Status::already_exists("object " + id.hex() + " exists already");
  WEFT_ASSIGN_OR_RETURN(uint64_t offset, make_room(size, id));
  Entry& e = objects_[id];
  e.offset = offset;
  e.size = size;
  e.owner = owner;
  e.task = options.task;
  e.primary = options.primary;
  e.transient = options.transient;
  return ObjectLocation{offset, size};
}

Status Store::seal(ClientId client, const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::not_found("object " + id.hex() + " does not exist");
  Entry& e = it->second;
  if (e.state != State::kCreated) return Status::failed_precondition("object " + id.hex() + " is sealed already");
  if (e.owner != client) return Status::failed_precondition("only the creator of " + id.hex() + " may seal it");
  e.state = State::kSealed;
  if (e.doomed && e.total_pins == 0) {
    erase(id);
  } else {
    lru_add(id, e);
  }
  return Status::ok();
}

Status Store::abort(ClientId client, const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::not_found("object " + id.hex() + " does not exist");
  if (it->second.state != State::kCreated || it->second.owner != client) {
    return Status::failed_precondition("only the creator may abort an unsealed object");
  }
  erase(id);
  return Status::ok();
}

Result<ObjectLocation> Store::get(ClientId client, const ObjectId& id, uint64_t hold) {
  auto it = objects_.find(id);
  // A removed object stays readable by the readers its holds were left for.
  if (it == objects_.end() || (it->second.doomed && !(hold != 0 && it->second.holds.contains(hold)))) {
    return Status::not_found("object " + id.hex() + " does not exist");
  }
  if (it->second.state == State::kCreated) return Status::unavailable("object " + id.hex() + " is not sealed yet");
  if (it->second.state == State::kSpilled) {
    WEFT_ASSIGN_OR_RETURN(uint64_t offset, make_room(it->second.size, id));
    Entry& e = objects_.at(id);
    Status read = spill_->read(id, arena_.base() + offset, e.size);
    if (!read.is_ok()) {
      allocator_.free(offset);
      return read;
    }
    spill_->remove(id);
    e.offset = offset;
    e.state = State::kSealed;
    ++restores_;
  }
  Entry& e = objects_.at(id);
  if (hold != 0 && e.holds.erase(hold) == 1) {
    // the hold becomes this client's pin: the total stays
  } else {
    add_pin(e);
  }
  ++e.pins[client];
  return ObjectLocation{e.offset, e.size};
}

void Store::add_pin(Entry& e) {
  lru_drop(e);
  if (e.total_pins == 0) pinned_bytes_ += e.size;
  e.ever_pinned = true;
  ++e.total_pins;
}

Result<uint64_t> Store::hold(ClientId client, const ObjectId& id) {
  auto it = objects_.find(id);
  // A removed object that someone still pins may be handed on: its readers keep it alive.
  if (it == objects_.end()) return Status::not_found("object " + id.hex() + " does not exist");
  if (it->second.state != State::kSealed) {
    return Status::failed_precondition("object " + id.hex() + " must be sealed and in memory to be handed on");
  }
  add_pin(it->second);
  const uint64_t token = ++next_hold_;
  it->second.holds.emplace(token, client);
  return token;
}

Status Store::unhold(ClientId client, const ObjectId& id, uint64_t token) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::ok();
  auto h = it->second.holds.find(token);
  if (h == it->second.holds.end()) return Status::ok();  // taken over by its reader, or dropped
  if (h->second != client) {
    return Status::failed_precondition("hold " + std::to_string(token) + " on object " + id.hex() +
                                       " is another client's");
  }
  drop_hold(id, it->second, token);
  return Status::ok();
}

void Store::drop_pins(const ObjectId& id, Entry& e, uint32_t count) {
  e.total_pins -= count;
  if (e.total_pins != 0) return;
  pinned_bytes_ -= e.size;
  if (e.doomed || e.transient) {
    erase(id);
  } else {
    lru_add(id, e);
  }
}

void Store::unpin(const ObjectId& id, Entry& e, ClientId client, uint32_t count) {
  auto p = e.pins.find(client);
  WEFT_CHECK(p != e.pins.end() && p->second >= count);
  p->second -= count;
  if (p->second == 0) e.pins.erase(p);
  drop_pins(id, e, count);
}

void Store::drop_hold(const ObjectId& id, Entry& e, uint64_t token) {
  WEFT_CHECK(e.holds.erase(token) == 1);
  drop_pins(id, e, 1);
}

Status Store::release(ClientId client, const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.pins.count(client) == 0) {
    return Status::failed_precondition("this client holds no pin on object " + id.hex());
  }
  unpin(id, it->second, client, 1);
  return Status::ok();
}

Status Store::remove(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::not_found("object " + id.hex() + " does not exist");
  Entry& e = it->second;
  if (e.total_pins > 0 || e.state == State::kCreated) {
    e.doomed = true;  // pins and holds keep it until they drop  // freed when the last reader releases it, or its creator seals or goes
    return Status::ok();
  }
  erase(id);
  return Status::ok();
}

void Store::disconnect(ClientId client) {
  std::vector<ObjectId> dropped;
  std::vector<std::pair<ObjectId, uint32_t>> pinned;
  std::vector<std::pair<ObjectId, uint64_t>> held;
  for (auto& [id, e] : objects_) {
    // Everything it created goes with it: nobody else would ever remove it (readers' pins keep
    // an object until they release it).
    if (e.owner == client) dropped.push_back(id);
    if (auto p = e.pins.find(client); p != e.pins.end()) pinned.emplace_back(id, p->second);
    for (const auto& [token, sender] : e.holds) {
      if (sender == client) held.emplace_back(id, token);
    }
  }
  // Each step may erase objects (a transient one whose last pin this was): look them up again.
  for (auto& [id, count] : pinned) {
    if (auto it = objects_.find(id); it != objects_.end()) unpin(id, it->second, client, count);
  }
  for (auto& [id, token] : held) {
    if (auto it = objects_.find(id); it != objects_.end()) drop_hold(id, it->second, token);
  }
  for (const ObjectId& id : dropped) {
    auto it = objects_.find(id);
    if (it == objects_.end()) continue;
    if (it->second.state == State::kCreated || it->second.total_pins == 0) {
      erase(id);  // unsealed: nobody can have pinned it
    } else {
      it->second.doomed = true;  // freed when its last reader releases it
    }
  }
}

StoreStats Store::stats() const {
  StoreStats s;
  s.capacity = allocator_.capacity();
  s.used = allocator_.capacity() - allocator_.free_bytes();
  s.pinned_bytes = pinned_bytes_;
  s.objects = objects_.size();
  for (const auto& [id, e] : objects_) {
    s.sealed += e.state == State::kSealed;
    s.spilled += e.state == State::kSpilled;
    s.pins += e.total_pins;
  }
  s.evictions = evictions_;
  s.spills = spills_;
  s.restores = restores_;
  return s;
}

}  // namespace weft::objectstore
