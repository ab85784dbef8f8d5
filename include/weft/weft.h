// weft: C++ task graphs on a work-stealing runtime. The one header users include.
//
//   #include <weft/weft.h>
//
//   int add(int a, int b) { return a + b; }
//   WEFT_REMOTE(add);
//
//   int main() {
//     if (auto s = weft::init(); !s) return 1;
//     auto x = weft::task(add).remote(1, 2);
//     auto y = weft::task(add).remote(x, 10);   // depends on x
//     std::printf("%d\n", weft::get(y));        // 13
//     return weft::shutdown().is_ok() ? 0 : 1;
//   }
#pragma once

#include "weft/actor.h"
#include "weft/api.h"
#include "weft/array.h"
#include "weft/errors.h"
#include "weft/ids.h"
#include "weft/object_ref.h"
#include "weft/options.h"
#include "weft/parallel.h"
#include "weft/registry.h"
#include "weft/serialization.h"
#include "weft/status.h"
#include "weft/task.h"

/// @namespace weft
/// The runtime's public API: init and shutdown, remote functions (task) and actors (actor)
/// returning ObjectRef futures, get/put/wait, SLO priority classes, data-parallel loops, and the
/// LLM engine (weft::llm, in <weft/llm.h>).
