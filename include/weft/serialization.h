// MessagePack serialisation of task arguments and results.
//
// Every argument and result type of a remote function must be serialisable, so that a program
// written against the embedded runtime runs unchanged when its tasks move to other processes or
// nodes. weft checks this at compile time: weft::Serializable<T> holds for arithmetic types,
// enums, std::string, std::vector / std::array / std::map / std::unordered_map / std::set /
// std::pair / std::tuple / std::optional of serialisable types, ObjectRef and ActorHandle, and any
// class with MSGPACK_DEFINE(...). For a type with a hand-written msgpack adaptor, specialise
// weft::is_serializable<T> as std::true_type.
//
//   struct Point { double x, y; MSGPACK_DEFINE(x, y); };
//   std::string bytes = weft::pack(Point{1, 2});
//   weft::Result<Point> p = weft::unpack<Point>(bytes);
#pragma once

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <msgpack.hpp>

#include "weft/status.h"

namespace weft {

/// @cond INTERNAL
template <class T>
class ObjectRef;
template <class T>
class ActorHandle;
/// @endcond

/// Specialise as std::true_type for types with a custom msgpack adaptor.
template <class T, class = void>
struct is_serializable : std::false_type {};

namespace detail {
/// ObjectRefs (alone or in a vector) are dependencies, resolved before a task runs.
template <class T>
struct is_ref_like : std::false_type {};
template <class T>
struct is_ref_like<ObjectRef<T>> : std::true_type {};
template <class T, class A>
struct is_ref_like<std::vector<ObjectRef<T>, A>> : std::true_type {};
template <class T>
inline constexpr bool is_ref_like_v = is_ref_like<T>::value;

/// Values that must not leave their process: none of weft's own types (refs and actor handles
/// travel, weft/detail/ref_wire.h and weft/actor.h); a type that specialises it keeps the tasks and
/// actor factories taking it in the driver.
template <class T>
struct stays_in_process : std::false_type {};

template <class T>
concept HasMsgpackDefine = requires(const T& t, msgpack::packer<msgpack::sbuffer>& pk) { t.msgpack_pack(pk); };
}  // namespace detail

template <class T>
concept Serializable = is_serializable<std::remove_cv_t<T>>::value;

template <class T>
struct is_serializable<T, std::enable_if_t<std::is_arithmetic_v<T> || std::is_enum_v<T>>> : std::true_type {};
template <>
struct is_serializable<std::string> : std::true_type {};
template <>
struct is_serializable<msgpack::type::nil_t> : std::true_type {};
template <class T>
struct is_serializable<T, std::enable_if_t<detail::HasMsgpackDefine<T>>> : std::true_type {};
template <class T, class A>
struct is_serializable<std::vector<T, A>> : is_serializable<T> {};
template <class T, size_t N>
struct is_serializable<std::array<T, N>> : is_serializable<T> {};
template <class T>
struct is_serializable<std::optional<T>> : is_serializable<T> {};
template <class T, class C, class A>
struct is_serializable<std::set<T, C, A>> : is_serializable<T> {};
template <class K, class V, class C, class A>
struct is_serializable<std::map<K, V, C, A>> : std::bool_constant<Serializable<K> && Serializable<V>> {};
template <class K, class V, class H, class E, class A>
struct is_serializable<std::unordered_map<K, V, H, E, A>> : std::bool_constant<Serializable<K> && Serializable<V>> {};
template <class A, class B>
struct is_serializable<std::pair<A, B>> : std::bool_constant<Serializable<A> && Serializable<B>> {};
template <class... Ts>
struct is_serializable<std::tuple<Ts...>> : std::bool_constant<(Serializable<Ts> && ...)> {};
/// Refs travel as records (weft/detail/ref_wire.h); handles as ids.
template <class T>
struct is_serializable<ObjectRef<T>> : std::true_type {};
template <class T, class A>
struct is_serializable<std::vector<ObjectRef<T>, A>> : std::true_type {};
template <class T>
struct is_serializable<ActorHandle<T>> : std::true_type {};

namespace detail {
/// Instantiated once per checked type so that the compiler names the type in the error.
template <class T>
constexpr bool require_serializable() {
  static_assert(Serializable<T>,
                "weft: this argument/result type is not MessagePack-serialisable. Add MSGPACK_DEFINE(...) "
                "to the class, or specialise weft::is_serializable<T> if it has its own msgpack adaptor.");
  return true;
}
}  // namespace detail

namespace detail {
// A msgpack stream appending to a string: packed bytes land in the string returned, not in a
// buffer copied into it afterwards (for a large binary, one copy of it fewer).
struct StringSink {
  std::string& out;
  void write(const char* data, size_t n) { out.append(data, n); }
};
}  // namespace detail

/// Encodes a value as MessagePack bytes.
template <Serializable T>
std::string pack(const T& value) {
  std::string out;
  detail::StringSink sink{out};
  msgpack::pack(sink, value);
  return out;
}

/// Bounds for decoding untrusted bytes: no container can hold more elements, and no string more
/// bytes, than the input has bytes; nesting is capped. Without them a 5-byte array header claiming
/// 4 billion elements makes the decoder allocate tens of gigabytes up front.
inline msgpack::unpack_limit unpack_limits_for(size_t input_bytes) {
  return msgpack::unpack_limit(input_bytes, input_bytes, input_bytes, input_bytes, input_bytes, 64);
}

/// Parses exactly one MessagePack value filling `bytes` (untrusted: bounded by unpack_limits_for).
/// kInvalidArgument saying "not MessagePack (...)" or "trailing bytes after the message".
inline Result<msgpack::object_handle> unpack_message(std::string_view bytes) {
  try {
    size_t off = 0;
    bool referenced = false;
    msgpack::object_handle h = msgpack::unpack(bytes.data(), bytes.size(), off, referenced, nullptr, nullptr,
                                               unpack_limits_for(bytes.size()));
    if (off != bytes.size()) return Status::invalid_argument("trailing bytes after the message");
    return h;
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("not MessagePack (") + e.what() + ")");
  }
}

/// Decodes MessagePack bytes; malformed or hostile input, or a type mismatch, gives kCorruption,
/// never a crash.
template <Serializable T>
Result<T> unpack(std::string_view bytes) {
  try {
    // Strings and binaries are read where they lie in `bytes` (which outlives the handle here)
    // rather than copied into the handle's zone first: one copy of a large value fewer.
    auto in_place = [](msgpack::type::object_type, std::size_t, void*) { return true; };
    msgpack::object_handle oh =
        msgpack::unpack(bytes.data(), bytes.size(), in_place, nullptr, unpack_limits_for(bytes.size()));
    return oh.get().as<T>();
  } catch (const std::exception& e) {
    return Status::corruption(std::string("msgpack decode failed: ") + e.what());
  }
}

}  // namespace weft
