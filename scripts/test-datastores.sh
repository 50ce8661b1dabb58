#!/usr/bin/env bash
# The API-semantics end-to-end suites on every datastore (issue 13): each file runs once per backend,
# one file at a time, with SKIFF_TEST_DATASTORE set so that every server the tests start runs on that
# backend (test/helpers/test-datastore.ts). Not part of `npm test`: it runs the same files four more
# times, which the suite's time budget has no room for.
#
#   scripts/test-datastores.sh                         every backend, the default files
#   scripts/test-datastores.sh postgres etcd           only these backends
#   scripts/test-datastores.sh mariadb -- test/e2e/kubectl-get.test.ts    chosen files
#
# Prints, per backend, "<backend>: N passed, N failed (M min S s)", then a closing summary line; the exit
# code is non-zero if anything failed. Needs root (postgres and mariadbd run as their own users) and
# Debian's postgresql, mariadb-server and etcd-server.
set -uo pipefail
cd "$(dirname "$0")/.."

# REST semantics: CRUD, list/watch, pagination, field and label selectors, patch types, CRDs,
# discovery, errors and restarts.
default_files=(
  test/e2e/kubectl-get.test.ts
  test/e2e/kubectl-write.test.ts
  test/e2e/kubectl-lifecycle.test.ts
  test/e2e/kubectl-crd.test.ts
  test/e2e/kubectl-discovery.test.ts
  test/e2e/negative-api.test.ts
  test/e2e/client-http-api.test.ts
  test/e2e/client-http-informer.test.ts
)
all_backends=(postgres mariadb etcd embedded-etcd)

backends=()
files=()
seen_sep=false
for arg in "$@"; do
  if [ "$arg" = -- ]; then seen_sep=true; continue; fi
  if $seen_sep; then files+=("$arg"); continue; fi
  case " ${all_backends[*]} " in
    *" $arg "*) backends+=("$arg") ;;
    *) echo "unknown backend '$arg' (one of: ${all_backends[*]}; files go after --)" >&2; exit 2 ;;
  esac
done
[ "${#backends[@]}" -gt 0 ] || backends=("${all_backends[@]}")
[ "${#files[@]}" -gt 0 ] || files=("${default_files[@]}")

if [ "$(id -u)" -ne 0 ]; then echo "test-datastores needs root: postgres and mariadbd run as their own users" >&2; exit 1; fi
# The tests run the built CLI.
npm run --silent build || { echo "build failed" >&2; exit 1; }

counts=$(mktemp -d)
trap 'rm -rf "$counts"' EXIT
started=$(date +%s)
summary=()
total_pass=0
total_fail=0
status=0
took() { local s=$1; echo "$((s / 60)) min $((s % 60)) s"; }

for backend in "${backends[@]}"; do
  echo "=== $backend: ${#files[@]} files"
  b_start=$(date +%s)
  b_pass=0
  b_fail=0
  failed_files=()
  for f in "${files[@]}"; do
    out="$counts/$backend-$(basename "$f")"
    SKIFF_TEST_DATASTORE=$backend node --import tsx --test --test-concurrency=1 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=./scripts/test-counts-reporter.mjs --test-reporter-destination="$out" \
      "$f"
    rc=$?
    read -r p fl _ < <(cat "$out" 2>/dev/null || echo "0 1 0")
    # A file that died before reporting (or exited non-zero with no failed test) counts as one failure.
    if [ "$rc" -ne 0 ] && [ "${fl:-0}" -eq 0 ]; then fl=1; fi
    b_pass=$((b_pass + ${p:-0}))
    b_fail=$((b_fail + ${fl:-0}))
    [ "${fl:-0}" -eq 0 ] || failed_files+=("$(basename "$f")")
  done
  line="$backend: $b_pass passed, $b_fail failed ($(took $(( $(date +%s) - b_start ))))"
  [ "${#failed_files[@]}" -eq 0 ] || line+=" — failing: ${failed_files[*]}"
  echo "$line"
  summary+=("$line")
  total_pass=$((total_pass + b_pass))
  total_fail=$((total_fail + b_fail))
  [ "$b_fail" -eq 0 ] || status=1
done

echo "--- datastores"
printf '%s\n' "${summary[@]}"
echo "test-datastores: ${#backends[@]} backends, $total_pass passed, $total_fail failed ($(took $(( $(date +%s) - started ))))"
exit "$status"
