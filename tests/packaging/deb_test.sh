#!/usr/bin/env bash
# The Debian package CPack makes from this build: its control fields and file list, its declared
# dependencies resolved by apt on this Debian machine, and the package installed into a
# throw-away root with dpkg, where the examples are built against it and run.
#   deb_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
source "$src/tests/packaging/examples.sh"
make_workdir

(cd "$build" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(find "$work/pkg" -maxdepth 1 -name 'weft_*.deb')
[ -n "$deb" ] || { echo "FAIL: no weft_*.deb"; exit 1; }
version=$("$build/apps/weft" --version | cut -d' ' -f2)
expect "package name and version" "^weft_${version}_$(dpkg --print-architecture)\.deb\$" "$(basename "$deb")"

# Dependencies: what the weft command links (dpkg-shlibdeps) and what building against the
# headers and static libraries needs.
depends=$(dpkg-deb -f "$deb" Depends)
for dep in libc6 libstdc++6 libzmq5 libmsgpack-cxx-dev libfmt-dev libspdlog-dev libzmq3-dev cppzmq-dev libpcre2-dev; do
  expect "Depends: $dep" "(^|, )${dep//+/\\+}( |,|\$)" "$depends"
done
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/weft ./usr/include/weft/weft.h ./usr/include/weft/llm.h ./usr/include/weft/llm/llama_model.h \
  ./usr/lib/libweft.a ./usr/lib/libweft_llm.a ./usr/lib/cmake/weft/weftConfig.cmake ./usr/lib/pkgconfig/weft.pc; do
  expect "contains $f" " $f\$" "$contents"
done

# Every declared dependency resolves against this machine's package database (a dry run of
# `apt-get install ./weft_*.deb`).
if command -v apt-get >/dev/null; then
  sim=$(apt-get install -s --no-install-recommends "$deb" 2>&1) || { echo "$sim"; echo "FAIL: apt-get cannot install it"; exit 1; }
  expect "apt-get install -s ./$(basename "$deb")" '^Inst weft ' "$sim"
fi

# Installed into an empty root by dpkg (its dependencies are this machine's), then used from there.
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --force-not-root --log=/dev/null -i "$deb" >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log"; exit 1; }
expect "dpkg lists it installed" '^ii +weft ' "$(dpkg --root="$root" -l weft)"
expect "weft --version from the package" "^weft $version\$" "$("$root/usr/bin/weft" --version)"
EXAMPLE_TARGETS=quickstart build_examples "$src" "$work/app" -DCMAKE_PREFIX_PATH="$root/usr"
expect "quickstart against the package" '^328350$' "$("$work/app/quickstart")"
expect "quickstart against the package, 2 processes" '^328350$' "$(WEFT_PROCESSES=2 "$work/app/quickstart")"
