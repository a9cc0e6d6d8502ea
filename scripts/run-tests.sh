#!/usr/bin/env bash
# node --test expands glob patterns only from Node 21 on; on Node 20 the files are listed here.
# Usage: scripts/run-tests.sh [folder...]   (default: all of test/)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find "${@:-test}" -name '*.test.ts' -type f | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "run-tests: no *.test.ts files under ${*:-test}" >&2
  exit 1
fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
