#!/usr/bin/env bash
# The whole test suite: setup and build, the layer and generated-files checks, the typecheck, then the
# unit tests and the end-to-end tests against real server processes.
#
#   scripts/test.sh            everything (what `npm test` and .ci/run run)
#   scripts/test.sh --unit     no setup, no root: the layer and generated-files checks, then test/unit
#                              (what `npm run test:unit` runs)
#   scripts/test.sh FILE...    setup and checks as for everything, then only the named test files
#
# Ends with the suite's wall time and node's counts, also when something failed, e.g.
#   suite time: 14 min 3 s
#   suite: 812 passed, 0 failed, 0 skipped
# The count line stays last and alone: it is the closing line that CI reads. The exit code is
# non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
counts=$(mktemp -d)   # one file per node --test run: "passed failed skipped" (and the unit shards)
report() {
  local rc=$? elapsed=$(( $(date +%s) - started ))
  local took="$((elapsed / 60)) min $((elapsed % 60)) s"
  if [ -f "$counts/unit" ] || compgen -G "$counts/e2e*" >/dev/null; then
    local pass fail skipped
    read -r pass fail skipped < <(cat "$counts"/unit "$counts"/e2e* 2>/dev/null | awk '{ p += $1; f += $2; s += $3 } END { print p, f, s }')
    echo "suite time: $took"
    echo "suite: $pass passed, $fail failed, $skipped skipped"
  else
    echo "suite time: $took, stopped before the tests ran (exit $rc)"
  fi
  rm -rf "$counts"
}
trap report EXIT

unit=false
files=()
for arg in "$@"; do
  case "$arg" in
    --unit) unit=true ;;
    *) files+=("$arg") ;;
  esac
done

if ! $unit; then
  bash scripts/setup.sh
  if [ "$(id -u)" -ne 0 ]; then echo "note: some end-to-end tests need root and will fail without it" >&2; fi
fi
node scripts/check-layers.mjs
node scripts/check-generated.mjs
if ! $unit; then npx tsc -p tsconfig.test.json --noEmit; fi

shopt -s nullglob
unit_files=()
e2e_files=()
if [ "${#files[@]}" -eq 0 ]; then
  unit_files=(test/unit/*.test.ts)
  if ! $unit; then e2e_files=(test/e2e/*.test.ts); fi
else
  for f in "${files[@]}"; do
    case "$f" in */e2e/*) e2e_files+=("$f") ;; *) unit_files+=("$f") ;; esac
  done
fi

# One node --test run per kind, each with two reporters: node's spec output on stdout, and its counts
# for the closing lines.
run_tests() {
  local name=$1 concurrency=$2
  shift 2
  [ $# -gt 0 ] || return 0
  node --import tsx --test --test-concurrency="$concurrency" ${test_timeout:+--test-timeout="$test_timeout"} \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=./scripts/test-counts-reporter.mjs --test-reporter-destination="$counts/$name" \
    "$@"
}

# Unit test files run in SKIFF_UNIT_SHARDS processes at once (default: the number of cores, at least
# 2), each importing its share of the files, instead of one process per file: about three quarters of
# the CPU a per-file run spends is each file's own Node and tsx start and its own loading of the same
# src/ modules (measured on 2 cores: about 100 s of CPU for 77 files one process each, about 30 s in
# two shard processes).
# SKIFF_UNIT_SHARDS=0 gives every file its own process again (node's isolation, for hunting a test
# that leaks state into the next file). End-to-end files run in two lanes (below).
cores=$(nproc 2>/dev/null || echo 2)
shards=${SKIFF_UNIT_SHARDS:-$(( cores > 2 ? cores : 2 ))}
unit_entries=("${unit_files[@]}")
unit_concurrency=$(( cores > 2 ? cores : 2 ))
if [ "$shards" -gt 0 ] && [ "${#unit_files[@]}" -gt 1 ]; then
  unit_entries=()
  for ((i = 0; i < shards && i < ${#unit_files[@]}; i++)); do
    unit_entries+=("$counts/shards/unit-$((i + 1))-of-$shards.test.mts")
  done
  unit_concurrency=${#unit_entries[@]}
  mkdir -p "$counts/shards"
  for i in "${!unit_files[@]}"; do
    f=${unit_files[$i]}
    case "$f" in /*) ;; *) f="$PWD/$f" ;; esac
    echo "await import('$f');" >> "${unit_entries[$((i % ${#unit_entries[@]}))]}"
  done
fi
status=0
# A unit test is a few seconds at most, but the limit applies to each shard as a whole, and on 2
# cores each shard now runs for about two minutes (three when something else takes a core): five
# minutes lets that pass while a test that hangs still fails long before CI's limit.
test_timeout=300000 run_tests unit "$unit_concurrency" "${unit_entries[@]}" || status=$?

# End-to-end files run in two lanes at once, each one file at a time (SKIFF_E2E_LANES=1: one lane):
# - the host lane: files that run containers or hosts on this machine (they import the image helper,
#   a network-namespace host or LAN helper, or drive the browser); they share containerd, the CNI
#   plugins and the root network namespace's devices, so never two at once;
# - the API lane: every other file (servers, hollow nodes, datastores, a throwaway namespace of its
#   own), which shares nothing with the host lane but free ports and the CPU.
# Most of an end-to-end test's time is waiting (for a process, a watch, a grace period), so the two
# lanes overlap well on two cores. The API lane's output is kept and printed after the host lane's.
host_re="helpers/(images|netns-host|lan|l2-lan)\.js|playwright"
host_files=()
api_files=()
for f in "${e2e_files[@]}"; do
  if [ "${SKIFF_E2E_LANES:-2}" = 1 ] || grep -qE "$host_re" "$f"; then host_files+=("$f"); else api_files+=("$f"); fi
done
api_log="$counts/api-lane.log"
api_status=0
if [ "${#api_files[@]}" -gt 0 ]; then
  echo "end-to-end: ${#host_files[@]} files in the host lane (shown now), ${#api_files[@]} in the API lane (shown when both are done)"
  run_tests e2e-api 1 "${api_files[@]}" > "$api_log" 2>&1 &
  api_pid=$!
fi
run_tests e2e-host 1 "${host_files[@]}" || status=$?
if [ -n "${api_pid:-}" ]; then
  wait "$api_pid" || api_status=$?
  echo "--- the API lane (${#api_files[@]} files) ---"
  cat "$api_log"
  [ "$api_status" -eq 0 ] || status=$api_status
fi
exit "$status"
