// Registration of remote functions and actor methods by name.
//
//   int add(int a, int b) { return a + b; }
//   WEFT_REMOTE(add);                                   // at namespace scope, in a .cc file
//   struct Counter { int incr(int by); int value() const; };
//   Counter make_counter(int start);
//   WEFT_REMOTE(make_counter, &Counter::incr, &Counter::value);
//
// The name (the spelling inside WEFT_REMOTE, without '&') is what identifies the function to a
// worker in another process running the same binary, so it never depends on addresses.
// Registration runs during static initialisation and never throws; conflicting registrations
// (one name for two different functions) are recorded and make weft::init fail with their names.
//
// Thread safety: registration may run concurrently with lookups (e.g. from dlopen); lookups take
// a shared lock, and each thread caches its last hit so the submit path rarely touches the lock.
#pragma once

#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "weft/export.h"
#include "weft/serialization.h"
#include "weft/status.h"

namespace weft {

/// What a RemoteEntry names.
enum class RemoteKind : uint8_t {
  kFunction,  ///< a free function (a task, or an actor factory)
  kMethod,    ///< an actor's member function
};

/// Runs a registered function on MessagePack-encoded arguments (an array, one element per
/// parameter) and returns the encoded result; arguments that do not decode give kCorruption, and
/// an exception the function raises propagates to the caller. `self` is the actor instance for methods, null for
/// functions. Null when a parameter cannot travel by value (an ObjectRef, for instance).
using PackedInvoker = Result<std::string> (*)(void* self, std::string_view packed_args);

/// Builds an actor instance from packed factory arguments (the factory's exceptions propagate);
/// the instance is freed with the matching ActorDestructor.
using PackedConstructor = void* (*)(std::string_view packed_args);
/// Frees an instance that a PackedConstructor built.
using ActorDestructor = void (*)(void* instance);

/// One registered function or method.
struct RemoteEntry {
  std::string name;        ///< as spelled in WEFT_REMOTE, without '&'
  RemoteKind kind;         ///< function or actor method
  std::string key;         ///< the bytes of the function or member pointer
  PackedInvoker invoker;   ///< runs it on packed arguments
  std::string defined_at;  ///< file:line of the WEFT_REMOTE
  /// For functions returning a class (or std::unique_ptr to one) from arguments that travel by
  /// value: how a worker process builds and frees an actor instance with it. Null otherwise.
  PackedConstructor construct = nullptr;  ///< builds an actor instance, or null
  ActorDestructor destroy = nullptr;      ///< frees what construct built, or null
};

/// The process's registered functions, filled by WEFT_REMOTE during static initialisation.
class WEFT_API Registry {
 public:
  /// The one registry of this process.
  static Registry& global();

  /// Never throws. Returns false when `name` is already taken by another function.
  bool add(RemoteEntry entry) noexcept;
  /// Null when not registered.
  const RemoteEntry* find_by_name(std::string_view name) const;
  /// By the bytes of the function or member pointer; null when not registered.
  const RemoteEntry* find_by_key(std::string_view key) const;
  /// Not OK when a name was registered for two different functions.
  Status validate() const;
  /// Every registered name.
  std::vector<std::string> names() const;

 private:
  Registry() = default;
  struct Impl;
  Impl& impl() const;
};

namespace detail {

template <class P>
std::string pointer_key(P p) {
  std::string key(sizeof(P), '\0');
  std::memcpy(key.data(), &p, sizeof(P));
  return key;
}

/// "&Counter::incr" -> "Counter::incr"
WEFT_API std::string normalize_remote_name(std::string_view spelled);

/// The entry for a registered pointer, or weft::Error naming the unregistered function.
WEFT_API const RemoteEntry& lookup_remote(const std::string& key, const void* fn_address_or_null);

template <class F>
struct fn_traits;
template <class R, class... Ps>
struct fn_traits<R (*)(Ps...)> {
  using result = R;
  using params = std::tuple<Ps...>;
  using cls = void;
};
template <class R, class C, class... Ps>
struct fn_traits<R (C::*)(Ps...)> {
  using result = R;
  using params = std::tuple<Ps...>;
  using cls = C;
};
template <class R, class C, class... Ps>
struct fn_traits<R (C::*)(Ps...) const> : fn_traits<R (C::*)(Ps...)> {};

template <class T>
inline constexpr bool travels_by_value_v =
    Serializable<std::remove_cvref_t<T>> && !stays_in_process<std::remove_cvref_t<T>>::value;

template <auto F>
Result<std::string> invoke_packed(void* self, std::string_view packed) {
  using Tr = fn_traits<decltype(F)>;
  using Args = decltype(std::apply([](auto... p) { return std::tuple<std::remove_cvref_t<decltype(p)>...>{}; },
                                   std::declval<typename Tr::params>()));
  auto args = unpack<Args>(packed);
  if (!args.ok()) return args.status();
  // Exceptions from the function propagate to the caller, which names their type.
  auto call = [&](auto&... a) -> decltype(auto) {
    if constexpr (std::is_void_v<typename Tr::cls>) {
      return F(a...);
    } else {
      return (static_cast<typename Tr::cls*>(self)->*F)(a...);
    }
  };
  if constexpr (std::is_void_v<typename Tr::result>) {
    std::apply(call, *args);
    return pack(msgpack::type::nil_t());
  } else {
    return pack(std::apply(call, *args));
  }
}

template <auto F>
constexpr PackedInvoker packed_invoker_for() {
  using Tr = fn_traits<decltype(F)>;
  constexpr bool ok = []<class... Ps>(std::tuple<Ps...>*) {
    return (travels_by_value_v<Ps> && ...);
  }(static_cast<typename Tr::params*>(nullptr));
  if constexpr (ok && (std::is_void_v<typename Tr::result> || Serializable<typename Tr::result>)) {
    return &invoke_packed<F>;
  } else {
    return nullptr;
  }
}

template <class T>
struct actor_class {
  using type = T;
};
template <class T>
struct actor_class<std::unique_ptr<T>> {
  using type = T;
};

template <auto F>
void* construct_packed(std::string_view packed) {
  using Tr = fn_traits<decltype(F)>;
  using Args = decltype(std::apply([](auto... p) { return std::tuple<std::remove_cvref_t<decltype(p)>...>{}; },
                                   std::declval<typename Tr::params>()));
  auto args = unpack<Args>(packed);
  if (!args.ok()) throw std::runtime_error(args.status().to_string());
  using R = typename Tr::result;
  if constexpr (std::is_same_v<R, std::unique_ptr<typename actor_class<R>::type>>) {
    auto made = std::apply([](auto&... a) { return F(a...); }, *args);
    if (!made) throw std::runtime_error("actor factory returned a null pointer");
    return made.release();
  } else {
    return new R(std::apply([](auto&... a) { return F(a...); }, *args));
  }
}

template <class T>
void destroy_instance(void* p) {
  delete static_cast<T*>(p);
}

template <auto F>
constexpr std::pair<PackedConstructor, ActorDestructor> actor_constructor_for() {
  using Tr = fn_traits<decltype(F)>;
  using R = typename Tr::result;
  using C = typename actor_class<R>::type;
  if constexpr (std::is_void_v<typename Tr::cls> && std::is_class_v<C> && !std::is_same_v<C, std::string> &&
                (std::is_move_constructible_v<R> || !std::is_same_v<C, R>)) {
    constexpr bool travels = []<class... Ps>(std::tuple<Ps...>*) {
      return (travels_by_value_v<Ps> && ...);
    }(static_cast<typename Tr::params*>(nullptr));
    if constexpr (travels) return {&construct_packed<F>, &destroy_instance<C>};
  }
  return {nullptr, nullptr};
}

template <auto F>
bool register_remote(const char* spelled, const char* file, int line) noexcept {
  using Tr = fn_traits<decltype(F)>;
  RemoteKind kind = std::is_void_v<typename Tr::cls> ? RemoteKind::kFunction : RemoteKind::kMethod;
  try {
    constexpr auto actor = actor_constructor_for<F>();
    return Registry::global().add(RemoteEntry{normalize_remote_name(spelled), kind, pointer_key(F),
                                              packed_invoker_for<F>(), std::string(file) + ":" + std::to_string(line),
                                              actor.first, actor.second});
  } catch (...) {
    return false;
  }
}

}  // namespace detail
}  // namespace weft

// Up to 16 functions or member pointers per WEFT_REMOTE.
#define WEFT_PP_NARG_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, ...) N
#define WEFT_PP_NARG(...) WEFT_PP_NARG_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
#define WEFT_FE_1(m, x) m(x)
#define WEFT_FE_2(m, x, ...) m(x) WEFT_FE_1(m, __VA_ARGS__)
#define WEFT_FE_3(m, x, ...) m(x) WEFT_FE_2(m, __VA_ARGS__)
#define WEFT_FE_4(m, x, ...) m(x) WEFT_FE_3(m, __VA_ARGS__)
#define WEFT_FE_5(m, x, ...) m(x) WEFT_FE_4(m, __VA_ARGS__)
#define WEFT_FE_6(m, x, ...) m(x) WEFT_FE_5(m, __VA_ARGS__)
#define WEFT_FE_7(m, x, ...) m(x) WEFT_FE_6(m, __VA_ARGS__)
#define WEFT_FE_8(m, x, ...) m(x) WEFT_FE_7(m, __VA_ARGS__)
#define WEFT_FE_9(m, x, ...) m(x) WEFT_FE_8(m, __VA_ARGS__)
#define WEFT_FE_10(m, x, ...) m(x) WEFT_FE_9(m, __VA_ARGS__)
#define WEFT_FE_11(m, x, ...) m(x) WEFT_FE_10(m, __VA_ARGS__)
#define WEFT_FE_12(m, x, ...) m(x) WEFT_FE_11(m, __VA_ARGS__)
#define WEFT_FE_13(m, x, ...) m(x) WEFT_FE_12(m, __VA_ARGS__)
#define WEFT_FE_14(m, x, ...) m(x) WEFT_FE_13(m, __VA_ARGS__)
#define WEFT_FE_15(m, x, ...) m(x) WEFT_FE_14(m, __VA_ARGS__)
#define WEFT_FE_16(m, x, ...) m(x) WEFT_FE_15(m, __VA_ARGS__)
#define WEFT_PP_FOR_EACH(m, ...) WEFT_PP_CAT(WEFT_FE_, WEFT_PP_NARG(__VA_ARGS__))(m, __VA_ARGS__)

#define WEFT_REMOTE_ONE_(f)                                                  \
  [[maybe_unused]] static const bool WEFT_PP_CAT(weft_remote_, __COUNTER__) = \
      ::weft::detail::register_remote<f>(#f, __FILE__, __LINE__);

// Registers functions, actor factories and actor methods for remote execution.
#define WEFT_REMOTE(...) WEFT_PP_FOR_EACH(WEFT_REMOTE_ONE_, __VA_ARGS__)
