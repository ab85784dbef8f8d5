// A contiguous array of plain values that travels between processes through the node's
// shared-memory object store: written there once, read in place by every process of the node.
//
//   auto xs = weft::Array<float>::make(n);          // in shared memory in multi-process mode
//   std::fill_n(xs.mutable_data(), n, 1.0f);         // writable until it is first shared
//   auto ref = weft::put(xs);                        // no copy
//   weft::task(total).remote(ref);                   // a worker reads the same bytes in place
//
//   float total(const weft::Array<float>& xs) { return std::accumulate(xs.begin(), xs.end(), 0.0f); }
//
// An Array is a handle: copies share the values. In the embedded runtime (or an array smaller
// than 64 KiB, or one built from a std::vector and never put) the values live in private memory
// and are copied when they travel to another process; weft::put moves a private array into the
// store once, so later tasks in other processes read it without copying. Once shared, the values
// are immutable (mutable_data() returns null). Thread-safe as a value type: handles may be
// copied and read from several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <msgpack.hpp>

#include "weft/detail/hooks.h"
#include "weft/serialization.h"

namespace weft {

/// An immutable array of trivially copyable values that crosses processes without copies (see
/// the top of this file).
template <class T>
class Array {
  static_assert(std::is_trivially_copyable_v<T>, "weft::Array holds trivially copyable values");

 public:
  /// Arrays at least this large travel through the store; smaller ones inside messages.
  static constexpr size_t kSharedThreshold = 64 * 1024;

  /// Empty.
  Array() = default;
  /// Takes the values over (private memory until shared).
  explicit Array(std::vector<T> values) : s_(std::make_shared<State>()) {
    s_->owned = std::move(values);
    s_->data = s_->owned.data();
    s_->n = s_->owned.size();
  }
  /// A copy of the values.
  Array(std::initializer_list<T> values) : Array(std::vector<T>(values)) {}

  /// n values (zero-initialised in private memory; unspecified in the store), writable until
  /// first shared: in the node's store when the process has one, so sharing copies nothing.
  static Array make(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (n > 0 && bytes >= kSharedThreshold && detail::node_store_available()) {
      auto obj = detail::store_create(bytes, /*owned=*/true);
      if (!obj.ok()) throw Error("weft::Array::make: " + obj.status().to_string());
      return from_store(std::move(*obj), n, /*sealed=*/false);
    }
    return Array(std::vector<T>(n));
  }

  ///@{
  /// Read access, like std::span<const T>: the values, read in place wherever they live.
  size_t size() const { return s_ ? s_->n : 0; }
  bool empty() const { return size() == 0; }
  const T* data() const { return s_ ? s_->data : nullptr; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size(); }
  const T& operator[](size_t i) const { return s_->data[i]; }
  std::span<const T> span() const { return {data(), size()}; }
  ///@}
  /// Writable values, or null once the array has been shared (sealed in the store).
  T* mutable_data() { return s_ && !s_->sealed ? s_->data : nullptr; }
  /// Whether the values live in the node's shared-memory store.
  bool in_shared_memory() const { return s_ && s_->in_store; }

  /// Moves private values into the store (once) and seals them, so every later transfer to
  /// another process is by reference. No-op without a node store, or when already shared.
  void share() const {
    if (!s_ || s_->n == 0) return;
    if (s_->in_store) {
      seal();
      return;
    }
    const size_t bytes = s_->n * sizeof(T);
    if (!detail::node_store_available()) return;
    auto obj = detail::store_create(bytes, /*owned=*/true);
    if (!obj.ok()) throw Error("weft::Array: " + obj.status().to_string());
    std::memcpy(obj->data, s_->data, bytes);
    s_->obj = std::move(*obj);
    s_->data = reinterpret_cast<T*>(s_->obj.data);
    s_->in_store = true;
    s_->owned.clear();
    s_->owned.shrink_to_fit();
    seal();
  }

  // ---- MessagePack (weft's serialisation) ----
  static constexpr int8_t kExtType = 87;  ///< payload: object id (16 bytes) | count (8) | hold (8)

  /// Internal: writes the array (a store reference or the bytes inline).
  template <class Stream>
  void msgpack_pack_to(msgpack::packer<Stream>& pk) const {
    const size_t bytes = size() * sizeof(T);
    if (in_shared_memory() || (bytes >= kSharedThreshold && detail::node_store_available())) {
      char ext[32];
      ObjectId id;
      uint64_t token = 0;
      if (in_shared_memory()) {
        seal();
        token = hold(s_->obj);  // alive until the reader takes the hold over
        id = s_->obj.id;
      } else {  // private values, copied once into a transient object for their one reader
        auto obj = detail::store_create(bytes, /*owned=*/false);
        if (!obj.ok()) throw std::runtime_error("weft::Array: " + obj.status().to_string());
        std::memcpy(obj->data, data(), bytes);
        if (Status s = detail::store_seal_and_pin(*obj); !s.is_ok()) throw std::runtime_error(s.to_string());
        token = hold(*obj);
        id = obj->id;
      }
      const uint64_t n = size();
      std::memcpy(ext, &id.hi, 8);
      std::memcpy(ext + 8, &id.lo, 8);
      std::memcpy(ext + 16, &n, 8);
      std::memcpy(ext + 24, &token, 8);
      pk.pack_ext(sizeof ext, kExtType);
      pk.pack_ext_body(ext, sizeof ext);
      return;
    }
    pk.pack_bin(static_cast<uint32_t>(bytes));
    pk.pack_bin_body(reinterpret_cast<const char*>(data()), static_cast<uint32_t>(bytes));
  }

  /// Internal: reads what msgpack_pack_to wrote.
  static Array msgpack_unpack_from(const msgpack::object& o) {
    if (o.type == msgpack::type::BIN) {
      if (o.via.bin.size % sizeof(T) != 0) throw msgpack::type_error();
      std::vector<T> v(o.via.bin.size / sizeof(T));
      if (!v.empty()) std::memcpy(v.data(), o.via.bin.ptr, o.via.bin.size);
      return Array(std::move(v));
    }
    if (o.type != msgpack::type::EXT || o.via.ext.type() != kExtType || o.via.ext.size != 32)
      throw msgpack::type_error();
    ObjectId id;
    uint64_t n, token;
    std::memcpy(&id.hi, o.via.ext.data(), 8);
    std::memcpy(&id.lo, o.via.ext.data() + 8, 8);
    std::memcpy(&n, o.via.ext.data() + 16, 8);
    std::memcpy(&token, o.via.ext.data() + 24, 8);
    auto obj = detail::store_open(id, token);
    if (!obj.ok()) throw std::runtime_error("weft::Array: " + obj.status().to_string());
    if (n > obj->size / sizeof(T) || obj->size != n * sizeof(T)) throw msgpack::type_error();
    return from_store(std::move(*obj), n, /*sealed=*/true);
  }

 private:
  struct State {
    std::vector<T> owned;
    T* data = nullptr;
    size_t n = 0;
    bool in_store = false;
    bool sealed = false;
    detail::SharedObject obj;  ///< keeps the mapping and this process's pin
  };
  static Array from_store(detail::SharedObject obj, size_t n, bool sealed) {
    Array a;
    a.s_ = std::make_shared<State>();
    a.s_->obj = std::move(obj);
    a.s_->data = reinterpret_cast<T*>(a.s_->obj.data);
    a.s_->n = n;
    a.s_->in_store = true;
    a.s_->sealed = sealed;
    return a;
  }
  static uint64_t hold(const detail::SharedObject& obj) {
    Result<uint64_t> token = detail::store_hold(obj);
    if (!token.ok()) throw std::runtime_error("weft::Array: " + token.status().to_string());
    return *token;
  }
  void seal() const {
    if (s_->sealed) return;
    if (Status s = detail::store_seal_and_pin(s_->obj); !s.is_ok()) throw std::runtime_error(s.to_string());
    s_->sealed = true;
  }
  std::shared_ptr<State> s_;
};

template <class T>
struct is_serializable<Array<T>> : std::true_type {};

}  // namespace weft

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <class T>
  struct pack<weft::Array<T>> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& pk, const weft::Array<T>& a) const {
      a.msgpack_pack_to(pk);
      return pk;
    }
  };
  template <class T>
  struct convert<weft::Array<T>> {
    const msgpack::object& operator()(const msgpack::object& o, weft::Array<T>& a) const {
      a = weft::Array<T>::msgpack_unpack_from(o);
      return o;
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack
