# Shared by the packaging tests: builds examples/ as a project of its own and runs what it built.
#   make_workdir                       $work: a directory removed when the test exits
#   build_examples SOURCE_DIR BUILD_DIR [cmake args...]   ($EXAMPLE_TARGETS: only these)
#   check_examples BUILD_DIR SOURCE_DIR
# Every example runs embedded and with two worker processes (the program re-executed as them),
# and generate_text runs the default model (scripts/setup fetches it) through weft::llm.

make_workdir() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
}

build_examples() {
  local src=$1 dir=$2
  shift 2
  cmake -S "$src/examples" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  # shellcheck disable=SC2086
  cmake --build "$dir" -j "${WEFT_PACKAGING_JOBS:-1}" ${EXAMPLE_TARGETS:+--target $EXAMPLE_TARGETS}
}

expect() {  # expect WHAT PATTERN OUTPUT
  if ! grep -qE -- "$2" <<<"$3"; then
    echo "FAIL: $1: expected /$2/ in:"
    echo "$3"
    return 1
  fi
  echo "ok: $1"
}

check_examples() {
  local dir=$1 src=$2 procs
  for procs in 0 2; do
    export WEFT_PROCESSES=$procs
    expect "quickstart (processes=$procs)" '^328350$' "$("$dir/quickstart")"
    expect "hello_tasks (processes=$procs)" 'sum of squares 1..100 = 338350' "$("$dir/hello_tasks")"
    expect "actor_counter (processes=$procs)" 'final value: 1110' "$("$dir/actor_counter")"
    local workers=1
    [ "$procs" = 2 ] && workers=2
    expect "divide_and_conquer (processes=$procs)" "\(expected 49999995000000\) with $workers workers" \
      "$("$dir/divide_and_conquer" 1)"
    expect "priority_pipeline (processes=$procs)" 'batch jobs done: 400' "$("$dir/priority_pipeline")"
  done
  unset WEFT_PROCESSES
  expect "generate_text (weft::llm, the default model)" '^ Paris\.' \
    "$("$dir/generate_text" "$src/models/SmolLM2-135M-Instruct.Q4_1.gguf" 'The capital of France is' 8)"
}
