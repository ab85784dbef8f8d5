#!/usr/bin/env bash
# weft taken from this checkout with FetchContent by a project of its own (examples/), built as
# shared libraries: the examples run against libweft.so, which exports only the public API and
# carries its SONAME. weft's own tests, benchmarks, examples and command stay out of that build.
#   fetchcontent_test.sh SOURCE_DIR
set -euo pipefail
src=$(realpath "$1")
source "$src/tests/packaging/examples.sh"
make_workdir

build_examples "$src" "$work/app" -DWEFT_EXAMPLES_FETCH="$src" -DBUILD_SHARED_LIBS=ON
check_examples "$work/app" "$src"

deps=$work/app/_deps/weft-build
for target in gtest runtime_bench weft_internal_serving weft; do
  if [ "$target" = weft ]; then
    [ ! -e "$deps/apps/weft" ] || { echo "FAIL: the weft command was built"; exit 1; }
  elif find "$deps" -name "*$target*" | grep -q .; then
    echo "FAIL: $target was built in a project that only uses weft"
    exit 1
  fi
done

lib=$(realpath "$deps/libweft.so")
expect "SONAME" "SONAME.*libweft\.so\.[0-9]+(\.[0-9]+)?\]" "$(readelf -d "$lib")"
expect "examples load libweft.so" 'libweft\.so\.' "$(ldd "$work/app/quickstart")"
exported=$(nm -DC --defined-only "$lib")
expect "the public API is exported" 'weft::init\(weft::Options const&\)' "$exported"
internal=$(grep -E 'weft::(sched|objectstore|workers|runtime)::' <<<"$exported" || true)
if [ -n "$internal" ]; then
  echo "FAIL: internal symbols exported:"
  echo "$internal" | head -20
  exit 1
fi
echo "ok: $(grep -c ' T ' <<<"$exported") functions exported, no internal ones"
