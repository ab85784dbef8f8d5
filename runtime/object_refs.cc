#include "runtime/object_refs.h"

#include <unistd.h>

#include <cstring>
#include <utility>

#include "runtime/actor_exports.h"
#include "runtime/node_store.h"
#include "weft/detail/hooks.h"

namespace weft::runtime {
namespace {

using detail::ObjectBase;
using detail::RefRecord;
using detail::ValueCodec;

// What a message packed on this thread carries: refs to pending objects, holds on store objects.
struct Capture {
  const ObjectRefs* owner = nullptr;
  detail::Carried carried;
};
thread_local Capture t_capture;

ErrorInfo lost(const ObjectId& id, const std::string& why) {
  return ErrorInfo{"object " + id.hex(), why, "weft::ObjectLost", ErrorKind::kObjectLost};
}

// A task's waiting for one object, repurposed: calls `fn` once the object is done.
class DoneWatch final : public detail::TaskBase {
 public:
  DoneWatch(ObjectBase* o, std::function<void()> fn) : fn_(std::move(fn)) {
    reserve_dependencies(1);
    add_dependency(o);
  }
  void start() { start_dependencies(); }
  void run() override {}
  void cancel() override {}

 private:
  void on_ready() noexcept override {
    fn_();
    delete this;
  }
  std::function<void()> fn_;
};

}  // namespace

ObjectRefs& ObjectRefs::process() {
  static ObjectRefs* refs = new ObjectRefs(static_cast<uint64_t>(getpid()));  // lives until exit
  return *refs;
}

ObjectRefs::~ObjectRefs() {
  for (auto& [id, e] : owned_) e.object->release();
  for (auto& [id, p] : pending_) p.slot->release();
}

RefRecord ObjectRefs::done_record(ObjectBase* o, const ValueCodec& codec, uint64_t owner) const {
  RefRecord r;
  r.set_id(o->id());
  r.owner = owner;
  if (o->failed()) {
    r.set_error(*o->error());
    return r;
  }
  Result<std::string> packed = codec.pack_value(o);
  if (!packed.ok()) {
    r.set_error(
        ErrorInfo{"object " + o->id().hex(), packed.status().message(), "weft::RemoteError", ErrorKind::kRemote});
    return r;
  }
  if (packed->size() <= kInlineBytes || !detail::node_store_available()) {
    r.state = RefRecord::kInline;
    r.bytes = std::move(*packed);
    return r;
  }
  // Large: a store object held for the record's one reader, who takes the hold over.
  auto obj = detail::store_create(packed->size(), /*owned=*/false);
  Status s = obj.ok() ? Status::ok() : obj.status();
  if (s.is_ok()) {
    std::memcpy(obj->data, packed->data(), packed->size());
    s = detail::store_seal_and_pin(*obj);
  }
  Result<uint64_t> hold = s.is_ok() ? detail::store_hold(*obj) : Result<uint64_t>(s);
  if (!hold.ok()) s = hold.status();
  if (!s.is_ok()) {  // no room in the store: the value travels in the message after all
    r.state = RefRecord::kInline;
    r.bytes = std::move(*packed);
    return r;
  }
  r.state = RefRecord::kInStore;
  r.store_hi = obj->id.hi;
  r.store_lo = obj->id.lo;
  r.hold = *hold;
  return r;
}

void ObjectRefs::fill(ObjectBase* slot, const RefRecord& r, const ValueCodec& codec) {
  Status s = Status::ok();
  switch (r.state) {
    case RefRecord::kFailed:
      slot->fail(r.error());
      return;
    case RefRecord::kInline:
      s = codec.set_value(slot, r.bytes);
      break;
    case RefRecord::kInStore: {
      auto obj = detail::store_open(r.store_object(), r.hold);
      if (!obj.ok()) {
        slot->fail(std::make_shared<ErrorInfo>(
            lost(r.id(), "its value is gone from the node's store (" + obj.status().message() + ")")));
        return;
      }
      s = codec.set_value(slot, std::string_view(reinterpret_cast<const char*>(obj->data), obj->size));
      break;
    }
    default:
      return;
  }
  if (!s.is_ok()) {
    slot->fail(
        std::make_shared<ErrorInfo>(ErrorInfo{"object " + r.id().hex(), "its value did not decode: " + s.message(),
                                              "weft::RemoteError", ErrorKind::kRemote}));
  }
}

RefRecord ObjectRefs::export_ref(ObjectBase* o, const ValueCodec& codec) {
  const uint64_t from = o->borrowed_from();
  if (from != 0 && from != self_) {  // our slot for another process's object
    if (o->done()) return done_record(o, codec, from);
    RefRecord r;
    r.set_id(o->id());
    r.owner = from;
    return r;
  }
  if (hand_over_to_ != 0) {  // a worker's own object: the value leaves with the ref
    if (!o->done()) {
      ObjectBase* one[1] = {o};
      detail::wait_done(one, 1, 1, detail::kNoDeadline);
    }
    return done_record(o, codec, hand_over_to_);
  }
  if (o->done()) return done_record(o, codec, self_);
  RefRecord r;
  r.set_id(o->id());
  r.owner = self_;
  if (t_capture.owner != this) return r;  // not carried by a message we track: readers get ObjectLost
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, added] = owned_.try_emplace(o->id());
  if (added) {
    o->add_ref();
    it->second.object = o;
    it->second.codec = &codec;
  }
  ++it->second.in_flight;
  t_capture.carried.refs.push_back(o->id());
  return r;
}

ObjectBase* ObjectRefs::import_ref(RefRecord record, const ValueCodec& codec) {
  const ObjectId id = record.id();
  if (record.owner == self_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = owned_.find(id); it != owned_.end() && it->second.codec == &codec) {
        it->second.object->add_ref();
        return it->second.object;
      }
    }
    if (record.state == RefRecord::kPending) {  // ours, but no longer kept for anyone
      ObjectBase* slot = codec.make_slot(id, self_);
      slot->fail(std::make_shared<ErrorInfo>(lost(id,
                                                  "its owner no longer keeps it (a ref to a pending object "
                                                  "must travel inside a task's arguments or result)")));
      return slot;
    }
  } else if (record.state == RefRecord::kPending) {
    ObjectBase* slot = nullptr;
    std::function<void(const ObjectId&, uint64_t)> request;
    {
      std::lock_guard<std::mutex> lock(mu_);
      request = request_;
      auto [it, added] = pending_.try_emplace(id);
      if (!added && it->second.codec == &codec) {
        it->second.slot->add_ref();
        return it->second.slot;
      }
      if (!added) {  // the same id read as another type: a slot of its own, never shared
        slot = codec.make_slot(id, record.owner);
        slot->fail(std::make_shared<ErrorInfo>(
            ErrorInfo{"object " + id.hex(), "read as two different types", "weft::RemoteError", ErrorKind::kRemote}));
        return slot;
      }
      slot = codec.make_slot(id, record.owner);
      it->second = Pending{slot, &codec};
      slot->add_ref();  // the caller's
    }
    if (request) {
      request(id, record.owner);
    } else {
      resolve([&] {
        RefRecord r;
        r.set_id(id);
        r.set_error(lost(id, "this process cannot reach the object's owner"));
        return r;
      }());
    }
    return slot;
  }
  ObjectBase* slot = codec.make_slot(id, record.owner);
  fill(slot, record, codec);
  return slot;
}

void ObjectRefs::begin_capture() {
  t_capture.owner = this;
  t_capture.carried = {};
  capture_holds(&t_capture.carried.holds);
  ActorExportTable::capture_lent(&t_capture.carried.actors);
}

detail::Carried ObjectRefs::end_capture() {
  capture_holds(nullptr);
  ActorExportTable::capture_lent(nullptr);
  t_capture.owner = nullptr;
  return std::exchange(t_capture.carried, {});
}

RefRecord ObjectRefs::answer_record(ObjectBase* o, const ValueCodec& codec, detail::Carried& carried) {
  Capture outer = std::exchange(t_capture, Capture{});  // set aside whatever this thread was packing
  begin_capture();
  RefRecord r = done_record(o, codec, self_);
  carried = end_capture();
  t_capture = std::move(outer);
  if (t_capture.owner != nullptr) {
    capture_holds(&t_capture.carried.holds);
    ActorExportTable::capture_lent(&t_capture.carried.actors);
  }
  return r;
}

ObjectBase* ObjectRefs::maybe_free(std::unordered_map<ObjectId, Owned>::iterator it) {
  if (it->second.in_flight > 0 || !it->second.borrowers.empty()) return nullptr;
  ObjectBase* o = it->second.object;
  owned_.erase(it);
  return o;
}

void ObjectRefs::release(const detail::Carried& carried) {
  drop_holds(carried.holds);  // its readers took them over by now, or never will
  if (!carried.actors.empty()) ActorExportTable::process().return_lent(carried.actors);
  std::vector<ObjectBase*> freed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ObjectId& id : carried.refs) {
      auto it = owned_.find(id);
      if (it == owned_.end() || it->second.in_flight == 0) continue;
      --it->second.in_flight;
      if (ObjectBase* o = maybe_free(it)) freed.push_back(o);
    }
  }
  for (ObjectBase* o : freed) o->release();
}

void ObjectRefs::wait(const ObjectId& id, uint64_t borrower, std::function<void(RefRecord)> ready) {
  ObjectBase* o = nullptr;
  const ValueCodec* codec = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = owned_.find(id); it != owned_.end()) {
      ++it->second.borrowers[borrower];
      o = it->second.object;
      o->add_ref();
      codec = it->second.codec;
    }
  }
  if (o == nullptr) {
    RefRecord r;
    r.set_id(id);
    r.owner = self_;
    r.set_error(lost(id, "its owner no longer keeps it"));
    ready(std::move(r));
    return;
  }
  auto* watch = new DoneWatch(o, [this, o, codec, borrower, ready = std::move(ready)] {
    // What the answer carries (a hold on its value in the store, actors it lends) is kept until the
    // borrower says it read it (borrow_done) or dies (drop_borrower).
    detail::Carried carried;
    RefRecord r = answer_record(o, *codec, carried);
    bool kept = carried.empty();
    if (!kept) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = owned_.find(o->id());
      if (it != owned_.end() && it->second.borrowers.contains(borrower)) {
        it->second.answers.emplace(borrower, carried);
        kept = true;
      }
    }
    ready(std::move(r));
    if (!kept) release(carried);  // it died while the value was made
    o->release();
  });
  watch->start();
}

void ObjectRefs::borrow_done(uint64_t borrower, const ObjectId& id) {
  ObjectBase* freed = nullptr;
  detail::Carried read;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = owned_.find(id);
    if (it == owned_.end()) return;
    auto b = it->second.borrowers.find(borrower);
    if (b == it->second.borrowers.end()) return;
    if (--b->second == 0) it->second.borrowers.erase(b);
    // It has the value: what the answer carried is its own now.
    if (auto a = it->second.answers.find(borrower); a != it->second.answers.end()) {
      read = std::move(a->second);
      it->second.answers.erase(a);
    }
    freed = maybe_free(it);
  }
  release(read);  // a hold it took over is its pin now: dropping that does nothing
  if (freed) freed->release();
}

void ObjectRefs::drop_borrower(uint64_t borrower) {
  std::vector<ObjectBase*> freed;
  std::vector<detail::Carried> unread;  // answers it never read
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = owned_.begin(); it != owned_.end();) {
      auto next = std::next(it);
      auto [first, last] = it->second.answers.equal_range(borrower);
      for (auto a = first; a != last; ++a) unread.push_back(std::move(a->second));
      it->second.answers.erase(first, last);
      if (it->second.borrowers.erase(borrower) > 0) {
        if (ObjectBase* o = maybe_free(it)) freed.push_back(o);
      }
      it = next;
    }
  }
  for (const detail::Carried& c : unread) release(c);
  for (ObjectBase* o : freed) o->release();
}

void ObjectRefs::set_requester(std::function<void(const ObjectId&, uint64_t)> request) {
  std::lock_guard<std::mutex> lock(mu_);
  request_ = std::move(request);
}

void ObjectRefs::resolve(RefRecord record) {
  Pending p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(record.id());
    if (it != pending_.end()) {
      p = it->second;
      pending_.erase(it);
    }
  }
  if (p.slot == nullptr) {
    // Nobody waits any more; a value held in the store for us is let go.
    if (record.state == RefRecord::kInStore && record.hold != 0) {
      (void)detail::store_open(record.store_object(), record.hold);
    }
    return;
  }
  if (record.state == RefRecord::kPending) {
    record.set_error(lost(record.id(), "its owner answered without a value"));
  }
  fill(p.slot, record, *p.codec);
  p.slot->release();
}

size_t ObjectRefs::owned_entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return owned_.size();
}

size_t ObjectRefs::pending_slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

}  // namespace weft::runtime

namespace weft::detail {

RefRecord export_ref(ObjectBase* o, const ValueCodec& codec) {
  return runtime::ObjectRefs::process().export_ref(o, codec);
}

ObjectBase* import_ref(RefRecord record, const ValueCodec& codec) {
  return runtime::ObjectRefs::process().import_ref(std::move(record), codec);
}

CarriedRefs::CarriedRefs() { runtime::ObjectRefs::process().begin_capture(); }

void CarriedRefs::packed() {
  if (!recording_) return;
  recording_ = false;
  carried_ = runtime::ObjectRefs::process().end_capture();
}

CarriedRefs::~CarriedRefs() {
  packed();
  if (!carried_.empty()) runtime::ObjectRefs::process().release(carried_);
}

}  // namespace weft::detail
