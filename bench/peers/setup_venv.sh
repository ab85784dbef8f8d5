#!/usr/bin/env bash
# Creates (once) the virtualenv that holds the peer systems weft is measured against.
# Usage: bench/peers/setup_venv.sh PACKAGE...   (prints the venv's python path)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-peers"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --upgrade pip >&2
fi
for pkg in "$@"; do
  "$venv/bin/python" -c "import importlib,sys; importlib.import_module(sys.argv[1])" "${pkg%%[=<>]*}" 2>/dev/null ||
    "$venv/bin/pip" install -q "$pkg" >&2
done
echo "$venv/bin/python"
