// How an ObjectRef travels to another process. Internal.
//
// A ref is written as a RefRecord: the object's id, its owner (the process that created it) and
// what the reader needs to get the value without asking anyone when it can:
//
//   kInline   the object is done: its value, packed, travels in the record
//   kInStore  the object is done and its packed value is large: it waits in the node's store,
//             held for the record's one reader, who takes the hold over (as weft::Array does);
//             a sender whose message is lost before it is read drops the hold (Carried)
//   kFailed   the object failed: its error travels (the reader's get raises it, by type)
//   kPending  not done yet: the reader's slot waits, and asks the owner to send the value once it
//             exists; the owner keeps the object alive for the message carrying the record, then
//             for each reader that asked, until that reader says it has the value
//
// A value that is itself a weft::Array travels as a store reference inside the packed value, so
// an array passed by ref through any number of processes is still read in place.
//
// The reader of a record gets a slot of its own (a Borrowed<T>) under the same id; refs to the
// same pending object in one process share one slot. In a worker process, a ref to an object the
// worker made itself (a put, a nested task) is handed to the driver when it leaves: the worker
// waits for the value and writes it into the record, so nothing the worker owns outlives it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <msgpack.hpp>

#include "weft/detail/hooks.h"
#include "weft/detail/object.h"
#include "weft/errors.h"
#include "weft/export.h"
#include "weft/ids.h"
#include "weft/object_ref.h"
#include "weft/serialization.h"
#include "weft/status.h"

namespace weft::detail {

struct RefRecord {
  enum State : uint8_t { kPending = 0, kInline = 1, kInStore = 2, kFailed = 3 };
  uint64_t id_hi = 0, id_lo = 0;
  uint64_t owner = 0;  // the owning process's key (its pid within a node)
  uint8_t state = kPending;
  std::string bytes;                    // kInline: the packed value
  uint64_t store_hi = 0, store_lo = 0;  // kInStore: the store object holding the packed value
  uint64_t hold = 0;                    // kInStore: the sender's hold, which the reader takes over
  uint8_t error_kind = 0;               // kFailed: the ErrorInfo
  std::string error_task, error_type, error_message;
  MSGPACK_DEFINE_ARRAY(id_hi, id_lo, owner, state, bytes, store_hi, store_lo, hold, error_kind, error_task, error_type,
                       error_message)

  ObjectId id() const { return {id_hi, id_lo}; }
  void set_id(const ObjectId& i) {
    id_hi = i.hi;
    id_lo = i.lo;
  }
  ObjectId store_object() const { return {store_hi, store_lo}; }
  void set_error(const ErrorInfo& e) {
    state = kFailed;
    error_kind = static_cast<uint8_t>(e.kind);
    error_task = e.task_name;
    error_type = e.exception_type;
    error_message = e.message;
  }
  ErrorPtr error() const {
    const uint8_t kind = error_kind <= static_cast<uint8_t>(ErrorKind::kOwnerDied) ? error_kind : 3;
    return std::make_shared<ErrorInfo>(ErrorInfo{error_task, error_message, error_type, static_cast<ErrorKind>(kind)});
  }
};

// What the runtime needs to know about T to move an Object<T> across processes.
struct ValueCodec {
  ObjectBase* (*make_slot)(const ObjectId& id, uint64_t owner);    // a pending Borrowed<T>, one reference
  Result<std::string> (*pack_value)(ObjectBase* done_object);      // its value, packed
  Status (*set_value)(ObjectBase* slot, std::string_view packed);  // finishes the slot with a value
};

// A reader's slot for an object owned by another process.
template <class T>
class Borrowed final : public Object<T> {
 public:
  Borrowed(const ObjectId& id, uint64_t owner) : Object<T>(1, id), owner_(owner) {}
  uint64_t borrowed_from() const noexcept override { return owner_; }

 private:
  uint64_t owner_;
};

template <class T>
struct CodecFor {
  static ObjectBase* make_slot(const ObjectId& id, uint64_t owner) { return new Borrowed<T>(id, owner); }
  static Result<std::string> pack_value(ObjectBase* o) {
    try {
      if constexpr (std::is_void_v<T>) {
        return pack(msgpack::type::nil_t());
      } else {
        return pack(static_cast<Object<T>*>(o)->value());
      }
    } catch (const std::exception& e) {
      return Status::invalid_argument(std::string("the value could not be encoded: ") + e.what());
    }
  }
  static Status set_value(ObjectBase* o, std::string_view packed) {
    if constexpr (std::is_void_v<T>) {
      static_cast<Object<void>*>(o)->set_value();
      return Status::ok();
    } else {
      Result<T> v = unpack<T>(packed);
      if (!v.ok()) return v.status();
      static_cast<Object<T>*>(o)->set_value(std::move(*v));
      return Status::ok();
    }
  }
  static constexpr ValueCodec kCodec{&make_slot, &pack_value, &set_value};
};

// The record for a ref to `o` in this process (see the top of this file). May block: a worker
// handing over an object it made waits for its value.
WEFT_API RefRecord export_ref(ObjectBase* o, const ValueCodec& codec);
// The object a record names, with one reference for the caller: this process's own object, its
// slot for the id, or a new slot. Never null.
WEFT_API ObjectBase* import_ref(RefRecord record, const ValueCodec& codec);

}  // namespace weft::detail

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <class T>
  struct pack<weft::ObjectRef<T>> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const weft::ObjectRef<T>& r) const {
      using C = weft::detail::CodecFor<T>;
      pk.pack(weft::detail::export_ref(r.checked(), C::kCodec));
      return pk;
    }
  };
  template <class T>
  struct convert<weft::ObjectRef<T>> {
    const msgpack::object& operator()(const msgpack::object& o, weft::ObjectRef<T>& r) const {
      using C = weft::detail::CodecFor<T>;
      auto* obj = weft::detail::import_ref(o.as<weft::detail::RefRecord>(), C::kCodec);
      r = weft::ObjectRef<T>::adopt(static_cast<weft::detail::Object<T>*>(obj));
      return o;
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack
