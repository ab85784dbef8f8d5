// ObjectRef<T>: a future for a value produced by a task or put into the object store.
//
//   weft::ObjectRef<int> r = weft::task(add).remote(1, 2);
//   int three = weft::get(r);
//
// Refs are cheap to copy (one atomic increment) and may be passed to other tasks, alone or inside
// a std::vector; such a task starts once the objects exist and receives the values (or the refs
// themselves, for a parameter of type ObjectRef<T>). A ref keeps its object alive; the object is
// freed when the last ref to it is dropped. Refs are safe to copy and read from any thread. A
// default-constructed or moved-from ref is empty: using it raises weft::Error.
//
// Refs travel to other processes (multi-process mode) in task arguments, results and inside any
// value, by id with their owner (weft/detail/ref_wire.h); get there reads the same object, and
// raises weft::ObjectLost if it can no longer be had.
#pragma once

#include <type_traits>
#include <utility>
#include <vector>

#include "weft/detail/object.h"
#include "weft/errors.h"
#include "weft/ids.h"

namespace weft {

/// A future for a value of type T (see the top of this file).
template <class T>
class ObjectRef {
  static_assert(!std::is_reference_v<T> && !std::is_const_v<T>, "ObjectRef<T> holds a plain value type");

 public:
  using value_type = T;  ///< the object's type

  /// Empty.
  ObjectRef() = default;
  /// Another reference to the same object.
  ObjectRef(const ObjectRef& o) noexcept : obj_(o.obj_) {
    if (obj_) obj_->add_ref();
  }
  /// Takes `o`'s reference; `o` is left empty.
  ObjectRef(ObjectRef&& o) noexcept : obj_(std::exchange(o.obj_, nullptr)) {}
  /// Refers to `o`'s object instead.
  ObjectRef& operator=(ObjectRef o) noexcept {
    std::swap(obj_, o.obj_);
    return *this;
  }
  ~ObjectRef() {
    if (obj_) obj_->release();
  }

  /// False when empty.
  bool valid() const noexcept { return obj_ != nullptr; }
  /// valid().
  explicit operator bool() const noexcept { return valid(); }
  /// True once the object exists (or its producer failed): get will not block.
  bool is_ready() const { return checked()->done(); }
  /// The object's id.
  const ObjectId& id() const { return checked()->id(); }

  /// Internal: the object slot. Never null on a valid ref.
  detail::Object<T>* object() const noexcept { return obj_; }
  /// Internal: the object slot; raises weft::Error on an empty ref.
  detail::Object<T>* checked() const {
    if (!obj_) throw Error("weft: use of an empty ObjectRef (default-constructed or moved-from)");
    return obj_;
  }
  /// Internal: takes over one reference the caller holds on `obj`.
  static ObjectRef adopt(detail::Object<T>* obj) noexcept {
    ObjectRef r;
    r.obj_ = obj;
    return r;
  }

  /// Both refer to the same object.
  friend bool operator==(const ObjectRef& a, const ObjectRef& b) { return a.obj_ == b.obj_; }

 private:
  detail::Object<T>* obj_ = nullptr;
};

/// @cond INTERNAL
template <class T>
struct is_object_ref : std::false_type {};
template <class T>
struct is_object_ref<ObjectRef<T>> : std::true_type {};
template <class T>
inline constexpr bool is_object_ref_v = is_object_ref<T>::value;

template <class T>
struct is_object_ref_vector : std::false_type {};
template <class T, class A>
struct is_object_ref_vector<std::vector<ObjectRef<T>, A>> : std::true_type {};
template <class T>
inline constexpr bool is_object_ref_vector_v = is_object_ref_vector<T>::value;
/// @endcond

}  // namespace weft

#include "weft/detail/ref_wire.h"  // how refs travel to other processes
