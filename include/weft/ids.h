// Identifiers of objects and tasks.
//
// An ObjectId is 128 bits: a per-process random prefix and a per-thread stream in `hi`, a counter
// in `lo`. Ids are unique within a run of a cluster without any coordination, and cheap to make
// (no atomics on the hot path).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "weft/export.h"

namespace weft {

/// The 128-bit id of an object (see the top of this file).
struct WEFT_API ObjectId {
  uint64_t hi = 0;  ///< process prefix and thread stream
  uint64_t lo = 0;  ///< counter

  /// True for the default (all-zero) id, which names no object.
  bool is_nil() const { return hi == 0 && lo == 0; }
  std::string hex() const;  ///< 32 lowercase hex digits
  static ObjectId next();   ///< thread-safe
  /// Same bits.
  friend bool operator==(const ObjectId&, const ObjectId&) = default;
};

}  // namespace weft

/// @cond INTERNAL
template <>
struct std::hash<weft::ObjectId> {
  size_t operator()(const weft::ObjectId& id) const noexcept { return id.hi * 0x9E3779B97F4A7C15ull ^ id.lo; }
};
/// @endcond
