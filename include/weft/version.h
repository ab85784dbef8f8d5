// weft's version: the one place it is written (CMakeLists.txt reads it from here).
//
//   #if WEFT_VERSION >= 200  // 0.2.0 or later
//   std::puts(weft::version_string());
#pragma once

/// Major version: changes that break source compatibility.
#define WEFT_VERSION_MAJOR 0
/// Minor version: new features, source compatible within a major version.
#define WEFT_VERSION_MINOR 2
/// Patch version: fixes only.
#define WEFT_VERSION_PATCH 0
/// The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH, for `#if` comparisons.
#define WEFT_VERSION (WEFT_VERSION_MAJOR * 10000 + WEFT_VERSION_MINOR * 100 + WEFT_VERSION_PATCH)

#define WEFT_VERSION_STRINGIFY_(x) #x
#define WEFT_VERSION_STRINGIFY(x) WEFT_VERSION_STRINGIFY_(x)
/// The version as a string literal, "MAJOR.MINOR.PATCH".
#define WEFT_VERSION_STRING                  \
  WEFT_VERSION_STRINGIFY(WEFT_VERSION_MAJOR) \
  "." WEFT_VERSION_STRINGIFY(WEFT_VERSION_MINOR) "." WEFT_VERSION_STRINGIFY(WEFT_VERSION_PATCH)

namespace weft {

/// The version of the weft library this program was compiled against, "MAJOR.MINOR.PATCH".
constexpr const char* version_string() { return WEFT_VERSION_STRING; }

}  // namespace weft
