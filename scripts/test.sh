#!/usr/bin/env bash
# The whole test suite: unit tests, then end-to-end tests against real server processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(id -u)" -ne 0 ]; then echo "note: some end-to-end tests need root and will fail without it" >&2; fi
node scripts/check-layers.mjs
npx tsc -p tsconfig.test.json --noEmit
shopt -s nullglob
files=(test/unit/*.test.ts test/e2e/*.test.ts)
exec node --import tsx --test --test-reporter=spec "${files[@]}"
