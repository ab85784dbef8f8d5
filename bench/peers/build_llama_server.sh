#!/usr/bin/env bash
# Builds (once) llama.cpp's own llama-server, the HTTP serving peer weft is measured against,
# from the llama.cpp sources vendored in llama-cpp-python's sdist (same version as the llm peer).
# Usage: bench/peers/build_llama_server.sh   (prints the llama-server binary's path)
#   WEFT_JOBS=N                  build parallelism (default 2)
#   LLAMA_CPP_PYTHON_VERSION=V   sdist to take llama.cpp from (default 0.3.36)
# Several minutes on 2 cores the first time; later runs print the cached path.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
dest="$root/.venv-peers/llama-server"
bin="$dest/bin/llama-server"

if [ -x "$bin" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "llama-cpp-python==$version" ]; then
  echo "$bin"
  exit 0
fi

# Everything happens in a scratch directory next to $dest (same filesystem), which is renamed
# into place only once the binary has built and runs, so an interrupted build leaves no $dest.
mkdir -p "$root/.venv-peers"
work="$(mktemp -d "$root/.venv-peers/.llama-server-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetching llama-cpp-python==$version sources" >&2
python3 -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$version" -d "$work/dl" >&2
tar -xzf "$work"/dl/llama_cpp_python-*.tar.gz -C "$work"
pkg="$work/llama_cpp_python-$version"
src="$pkg/vendor/llama.cpp"
if [ ! -f "$src/CMakeLists.txt" ]; then
  echo "no vendor/llama.cpp in the llama-cpp-python==$version sdist" >&2
  exit 1
fi
# The sdist carries no git metadata; its changelog names the llama.cpp commit it vendors.
commit="$(awk -v v="## [$version]" '$0 == v {on=1; next} on && /^## \[/ {exit}
  on && match($0, /llama\.cpp@[0-9a-f]+/) {print substr($0, RSTART + 10, RLENGTH - 10); exit}' \
  "$pkg/CHANGELOG.md" 2>/dev/null || true)"
commit="${commit:-unknown}"

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$work" # the scratch path changes per run; keep cache keys relative
fi
generator=()
if command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi

# Static, CPU-only, tuned for this machine; no network at build time (no HTTPS client, no
# web UI download) and nothing beyond the llama-server target gets built.
echo "configuring llama.cpp@$commit" >&2
cmake -S "$src" -B "$work/build" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_COMMIT="$commit" \
  -DLLAMA_BUILD_NUMBER=0 >&2

echo "building llama-server (-j ${WEFT_JOBS:-2})" >&2
flock /tmp/weft-build.lock \
  cmake --build "$work/build" --target llama-server -j "${WEFT_JOBS:-2}" >&2

built="$(find "$work/build" -type f -name llama-server -perm -u+x | head -n 1)"
if [ -z "$built" ]; then
  echo "llama-server did not build" >&2
  exit 1
fi
"$built" --version >&2

mkdir -p "$work/out/bin"
mv "$built" "$work/out/bin/llama-server"
echo "llama-cpp-python==$version" >"$work/out/VERSION"
echo "$commit" >"$work/out/LLAMA_CPP_COMMIT"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "$bin"
