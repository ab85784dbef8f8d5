// The driver's named actors as worker processes reach them (sched::ActorExports): looked up by
// name (in the running runtime's directory) from a worker, each kept alive for the workers that hold it, and called
// through the actor's own mailbox so that a worker's calls run in order with everyone else's. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "scheduler/actor_exports.h"
#include "weft/detail/actor_core.h"

namespace weft::runtime {

class ActorExportTable final : public sched::ActorExports {
 public:
  ActorExportTable() = default;
  ~ActorExportTable() override { clear(); }

  Result<uint64_t> lookup(const std::string& name, const std::string& class_name, uint64_t borrower) override;
  void forward(uint64_t id, const std::string& method, std::string args,
               std::function<void(detail::RemoteOutcome)> done) override;
  void release(uint64_t id, uint64_t borrower) override;
  void drop_borrower(uint64_t borrower) override;

  // Lets go of every exported actor (the runtime shuts down).
  void clear();
  size_t exported() const;  // for tests

 private:
  struct Entry {
    detail::ActorCore* actor = nullptr;  // one reference
    std::unordered_map<uint64_t, uint32_t> borrowers;
  };
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> by_id_;
  std::unordered_map<detail::ActorCore*, uint64_t> id_of_;
  uint64_t next_id_ = 1;
};

}  // namespace weft::runtime
