// Small helpers every benchmark uses: a wall clock, and exiting with a clear message when a
// setup step fails (a benchmark has no one to hand an error to).
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "weft/status.h"

namespace weft::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Exits with `tool: message` when `s` is an error.
inline void must(const Status& s, const char* tool) {
  if (!s.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", tool, s.to_string().c_str());
    std::exit(1);
  }
}

// The value of `r`, or exits as must(Status) does.
template <class T>
T must(Result<T> r, const char* tool) {
  must(r.status(), tool);
  return std::move(r).value();
}

}  // namespace weft::bench
