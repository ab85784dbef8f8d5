#!/usr/bin/env bash
# weft installed into a prefix and used as a project outside this tree would use it: examples/
# built on its own with find_package(weft) and run (embedded and with worker processes), one
# example built through pkg-config, and the installed files checked.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
source "$src/tests/packaging/examples.sh"
make_workdir

cmake --install "$build" --prefix "$work/prefix" >/dev/null
prefix=$work/prefix
libdir=$(dirname "$(find "$prefix" -name weftConfig.cmake -printf '%h')")/..
libdir=$(realpath "$libdir")

# What a user gets: public headers (detail/ beside them), the engine's headers under weft/, the
# libraries, the command, the CMake package and pkg-config files. No internal module leaks.
for f in include/weft/weft.h include/weft/version.h include/weft/detail/hooks.h include/weft/llm.h \
  include/weft/llm/generator.h include/weft/kernels/cpu/thread_team.h bin/weft; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
for f in libweft.a libweft_llm.a cmake/weft/weftConfig.cmake cmake/weft/weftConfigVersion.cmake \
  cmake/weft/weftTargets.cmake pkgconfig/weft.pc pkgconfig/weft-llm.pc; do
  [ -e "$libdir/$f" ] || { echo "FAIL: lib/$f not installed"; exit 1; }
done
for d in core scheduler runtime workers objectstore serving; do
  [ ! -e "$prefix/include/weft/$d" ] || { echo "FAIL: internal headers include/weft/$d installed"; exit 1; }
done
if grep -rlF -e "$src" -e "$build" "$libdir/cmake" "$libdir/pkgconfig"; then
  echo "FAIL: the package names the source or build tree"
  exit 1
fi
expect "weft --version" "^weft $("$build/apps/weft" --version | cut -d' ' -f2)\$" "$("$prefix/bin/weft" --version)"

# find_package(weft 0.2 CONFIG REQUIRED), then every example.
build_examples "$src" "$work/app" -DCMAKE_PREFIX_PATH="$prefix"
check_examples "$work/app" "$src"

# A version the package does not satisfy is refused (SameMajorVersion).
mkdir -p "$work/v9"
printf 'cmake_minimum_required(VERSION 3.25)\nproject(v LANGUAGES CXX)\nfind_package(weft 9 CONFIG REQUIRED)\n' \
  >"$work/v9/CMakeLists.txt"
if cmake -S "$work/v9" -B "$work/v9/b" -DCMAKE_PREFIX_PATH="$prefix" >"$work/v9.log" 2>&1; then
  echo "FAIL: find_package(weft 9) accepted version $(grep -o 'weft [0-9.]*' "$work/v9.log")"
  exit 1
fi
expect "find_package(weft 9) refused" 'not compatible|version' "$(cat "$work/v9.log")"

# pkg-config: one compiler command (static libraries: their dependencies are on the link line).
export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046
c++ -O1 "$src/examples/quickstart.cc" -o "$work/quickstart_pc" $(pkg-config --cflags --libs weft)
expect "quickstart via pkg-config" '^328350$' "$("$work/quickstart_pc")"
