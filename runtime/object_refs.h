// This process's side of refs that cross processes (weft/detail/ref_wire.h): the objects it owns
// that other processes wait for, and its slots for objects owned elsewhere.
//
// Owner side: a ref to a pending object, exported inside a capture (a message being packed), gets
// an entry that holds the object while a message carries it or a borrower waits for it. Refs to
// done objects need no entry: their value travels in the record.
// Borrower side: one pending slot per id, held until the owner's answer fills it.
//
// Thread-safe. Objects are released outside the lock (a released value may hold refs).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "scheduler/ref_service.h"
#include "weft/detail/ref_wire.h"

namespace weft::runtime {

class ObjectRefs final : public sched::RefService {
 public:
  // `self`: this process's key (its pid). `hand_over_to`: nonzero in a worker process, whose own
  // objects go to that owner (the driver) when a ref to them leaves the process.
  explicit ObjectRefs(uint64_t self, uint64_t hand_over_to = 0) : self_(self), hand_over_to_(hand_over_to) {}
  ~ObjectRefs() override;

  // The process's instance, used by the msgpack adaptors of ObjectRef.
  static ObjectRefs& process();
  // A worker process: its objects are handed to `driver` when they leave.
  void set_hand_over(uint64_t driver) { hand_over_to_ = driver; }

  detail::RefRecord export_ref(detail::ObjectBase* o, const detail::ValueCodec& codec);
  detail::ObjectBase* import_ref(detail::RefRecord record, const detail::ValueCodec& codec);

  void begin_capture() override;
  detail::Carried end_capture() override;
  void release(const detail::Carried& carried) override;
  void wait(const ObjectId& id, uint64_t borrower, std::function<void(detail::RefRecord)> ready) override;
  void borrow_done(uint64_t borrower, const ObjectId& id) override;
  void drop_borrower(uint64_t borrower) override;
  void set_requester(std::function<void(const ObjectId&, uint64_t)> request) override;
  void resolve(detail::RefRecord record) override;

  // For tests: entries kept for other processes, and slots waiting for owners.
  size_t owned_entries() const;
  size_t pending_slots() const;

  // Values up to this size travel inside the record; larger ones through the node's store.
  static constexpr size_t kInlineBytes = 64 * 1024;

 private:
  struct Owned {
    detail::ObjectBase* object = nullptr;  // one reference
    const detail::ValueCodec* codec = nullptr;
    uint32_t in_flight = 0;                            // messages carrying it, not answered yet
    std::unordered_map<uint64_t, uint32_t> borrowers;  // process -> waits not yet done
    std::unordered_multimap<uint64_t, detail::Carried> answers;  // process -> what its answers carry
  };
  struct Pending {
    detail::ObjectBase* slot = nullptr;  // one reference
    const detail::ValueCodec* codec = nullptr;
  };

  // The record of a done object: its value (inline or in the store) or its error.
  detail::RefRecord done_record(detail::ObjectBase* o, const detail::ValueCodec& codec, uint64_t owner) const;
  // The same for an answer to a borrower, packed under a capture of its own: `carried` gets what
  // it carries.
  detail::RefRecord answer_record(detail::ObjectBase* o, const detail::ValueCodec& codec, detail::Carried& carried);
  // Finishes `slot` from a record carrying a value or an error.
  static void fill(detail::ObjectBase* slot, const detail::RefRecord& r, const detail::ValueCodec& codec);
  // With mu_ held: erases the entry if nothing keeps it; returns the object to release.
  detail::ObjectBase* maybe_free(std::unordered_map<ObjectId, Owned>::iterator it);

  const uint64_t self_;
  uint64_t hand_over_to_;
  mutable std::mutex mu_;
  std::unordered_map<ObjectId, Owned> owned_;
  std::unordered_map<ObjectId, Pending> pending_;
  std::function<void(const ObjectId&, uint64_t)> request_;
};

}  // namespace weft::runtime
