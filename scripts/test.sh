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
counts=$(mktemp -d)   # one file per node --test run: "passed failed skipped"
report() {
  local rc=$? elapsed=$(( $(date +%s) - started ))
  local took="$((elapsed / 60)) min $((elapsed % 60)) s"
  if compgen -G "$counts/*" > /dev/null; then
    local pass fail skipped
    read -r pass fail skipped < <(cat "$counts"/* | awk '{ p += $1; f += $2; s += $3 } END { print p, f, s }')
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
# for the closing lines. Unit test files run SKIFF_UNIT_CONCURRENCY at a time (default: the number of
# cores, at least 2): each file is its own process, and most of a unit file's time is Node and tsx
# starting and loading modules, which overlaps well. End-to-end files run one at a time: they start
# servers, containerd and network namespaces, and take the machine's CPU with them.
run_tests() {
  local name=$1 concurrency=$2
  shift 2
  [ $# -gt 0 ] || return 0
  node --import tsx --test --test-concurrency="$concurrency" \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=./scripts/test-counts-reporter.mjs --test-reporter-destination="$counts/$name" \
    "$@"
}
cores=$(nproc 2>/dev/null || echo 2)
status=0
run_tests unit "${SKIFF_UNIT_CONCURRENCY:-$(( cores > 2 ? cores : 2 ))}" "${unit_files[@]}" || status=$?
run_tests e2e 1 "${e2e_files[@]}" || status=$?
exit "$status"
