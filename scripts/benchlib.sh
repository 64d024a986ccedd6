# The steps of scripts/bench: each benchmark's figures printed as a table,
# a failing one reported without stopping the others. Sourced, not run.

# table prints one table per benchmark line of go test's output: metric, value.
table() {
  awk '/^Benchmark/ {
    printf "%s (%s runs)\n", $1, $2
    for (i = 5; i < NF; i += 2) printf "  %-26s %10s\n", $(i+1), $i
    print ""
  }'
}

# bench NAME PACKAGE BENCHTIME TIMEOUT runs one benchmark and prints its
# figures. A failure prints the end of its output and is remembered, so the
# figures of the benchmarks after it still print (bench_done exits 1).
failed=()
bench() {
  local name=$1 pkg=$2 benchtime=$3 timeout=$4 out rc=0
  out=$(go test -run '^$' -bench "^$name\$" -benchtime="$benchtime" -timeout "$timeout" "$pkg" 2>&1) || rc=$?
  if [ $rc -ne 0 ]; then
    printf '%s\n' "$out" | tail -n 30
    log "FAILED: $name (exit $rc)"
    failed+=("$name")
    return 0
  fi
  printf '%s\n' "$out" | grep -E '^(goos|goarch|cpu|Benchmark)' || true
  echo
  printf '%s\n' "$out" | table
}

# step NAME CMD... runs a command that prints its own figures, remembering a
# failure like bench does.
step() {
  local name=$1 rc=0
  shift
  "$@" || rc=$?
  if [ $rc -ne 0 ]; then
    log "FAILED: $name (exit $rc)"
    failed+=("$name")
  fi
}

bench_done() {
  if [ ${#failed[@]} -gt 0 ]; then
    log "failed: ${failed[*]}"
    exit 1
  fi
}
