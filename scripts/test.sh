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
counts=$(mktemp)
report() {
  local rc=$? elapsed=$(( $(date +%s) - started ))
  local took="$((elapsed / 60)) min $((elapsed % 60)) s"
  if [ -s "$counts" ]; then
    local pass fail skipped
    read -r pass fail skipped < "$counts"
    echo "suite time: $took"
    echo "suite: $pass passed, $fail failed, $skipped skipped"
  else
    echo "suite time: $took, stopped before the tests ran (exit $rc)"
  fi
  rm -f "$counts"
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
if [ "${#files[@]}" -eq 0 ]; then
  if $unit; then files=(test/unit/*.test.ts); else files=(test/unit/*.test.ts test/e2e/*.test.ts); fi
fi
# Two reporters: node's spec output on stdout, and its counts into $counts for the closing lines.
node --import tsx --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./scripts/test-counts-reporter.mjs --test-reporter-destination="$counts" \
  "${files[@]}"
