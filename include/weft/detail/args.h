// How task arguments become dependencies and then parameter values. Internal.
//
// A stored argument is either an ObjectRef<T>, a std::vector<ObjectRef<T>>, or a plain value
// already converted to the parameter's type. Every ref in the arguments is a dependency. When the
// task runs, a ref is replaced by its value if the parameter asks for a value (T or const T&), and
// passed through if the parameter is itself an ObjectRef.
#pragma once

#include <cstddef>
#include <string>
#include <tuple>
#include <utility>
#include <type_traits>
#include <vector>

#include "weft/object_ref.h"
#include "weft/serialization.h"

namespace weft::detail {

template <class T>
inline constexpr bool is_vector_v = false;
template <class T, class Al>
inline constexpr bool is_vector_v<std::vector<T, Al>> = true;

// The type a task stores for argument A bound to parameter P.
template <class P, class A>
using stored_arg_t = std::conditional_t<is_ref_like_v<std::decay_t<A>>, std::decay_t<A>, std::remove_cvref_t<P>>;

template <class S>
size_t count_deps(const S& s) {
  if constexpr (is_object_ref_v<S>) {
    return 1;
  } else if constexpr (is_object_ref_vector_v<S>) {
    return s.size();
  } else {
    return 0;
  }
}

template <class S, class F>
void for_each_dep(const S& s, F&& f) {
  if constexpr (is_object_ref_v<S>) {
    f(static_cast<ObjectBase*>(s.checked()));
  } else if constexpr (is_object_ref_vector_v<S>) {
    for (const auto& r : s) f(static_cast<ObjectBase*>(r.checked()));
  }
}

// Links every ObjectRef in `args` (a tuple of stored arguments) as a dependency of `task`, then
// drops its guard, so the task is handed on now or when its last dependency finishes.
template <class Tuple>
void start_with_dependencies(TaskBase& task, const Tuple& args) {
  size_t n = 0;
  std::apply([&](const auto&... a) { ((n += count_deps(a)), ...); }, args);
  task.reserve_dependencies(n);
  std::apply([&](const auto&... a) { (for_each_dep(a, [&](ObjectBase* o) { task.add_dependency(o); }), ...); }, args);
  task.start_dependencies();
}

// Raises weft::Error for an empty ref among the arguments, before anything is allocated.
template <class... S>
void check_refs_valid(const S&... s) {
  (for_each_dep(s, [](ObjectBase*) {}), ...);
}

// The value passed for parameter P from stored argument `s` (all dependencies are met).
template <class P, class S>
decltype(auto) resolve_arg(S& s) {
  using PD = std::remove_cvref_t<P>;
  if constexpr (is_object_ref_v<S> && !is_object_ref_v<PD>) {
    return (s.object()->value());
  } else if constexpr (is_object_ref_vector_v<S> && !is_object_ref_vector_v<PD>) {
    PD out;
    out.reserve(s.size());
    for (const auto& r : s) out.push_back(r.object()->value());
    return out;
  } else {
    return (s);
  }
}

// Compile-time check of one argument against its parameter, with readable errors.
template <class P, class A>
constexpr bool check_arg() {
  using S = std::decay_t<A>;
  using PD = std::remove_cvref_t<P>;
  if constexpr (is_object_ref_v<S>) {
    using T = typename S::value_type;
    static_assert(std::is_same_v<PD, S> || std::is_convertible_v<const T&, P>,
                  "weft: an ObjectRef<T> argument needs a parameter of type T, const T& or ObjectRef<T>");
    if constexpr (!std::is_void_v<T>) require_serializable<T>();
  } else if constexpr (is_object_ref_vector_v<S>) {
    using T = typename S::value_type::value_type;
    static_assert(std::is_same_v<PD, S> || (is_vector_v<PD> && std::is_convertible_v<const T&, typename PD::value_type>),
                  "weft: a std::vector<ObjectRef<T>> argument needs a parameter of type std::vector<T> "
                  "(by value or const&) or std::vector<ObjectRef<T>>");
    require_serializable<T>();
  } else {
    static_assert(std::is_constructible_v<PD, A>, "weft: an argument cannot be converted to its parameter's type");
    static_assert(!std::is_pointer_v<PD>, "weft: raw pointers cannot be task arguments; pass values or ObjectRefs");
    require_serializable<PD>();
  }
  return true;
}

// The resolved arguments of a call with parameters `P` (a std::tuple), packed as one MessagePack
// array: what a worker process's invoker takes. Every parameter must travel by value.
template <class P, class Stored, size_t... I>
std::string pack_resolved(Stored& stored, std::index_sequence<I...>) {
  std::string out;
  StringSink sink{out};
  msgpack::packer<StringSink> pk(sink);
  pk.pack_array(sizeof...(I));
  (pk.pack(resolve_arg<std::tuple_element_t<I, P>>(std::get<I>(stored))), ...);
  return out;
}

}  // namespace weft::detail
