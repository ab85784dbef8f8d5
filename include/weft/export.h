// Symbol visibility. weft's libraries are compiled with hidden visibility, so a shared build
// (-DBUILD_SHARED_LIBS=ON) exports only what is marked WEFT_API: the public API and the few entry
// points its header templates call. Static builds are unaffected.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
/// Marks a class or function as part of the shared library's exported interface.
#define WEFT_API [[gnu::visibility("default")]]
#else
#define WEFT_API
#endif
