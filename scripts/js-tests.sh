#!/usr/bin/env bash
# Runs the AWS SDK for JavaScript v3 tests (tests/js: Timestream write and query clients) against
# a built hourglass binary.
#
#   scripts/js-tests.sh [node --test args...]
#
# The binary is $HOURGLASS_BIN, by default target/debug/hourglass of this repository: build it
# first (`cargo build -p hourglass`); this script does not run cargo. Installs the pinned npm
# packages of tests/js (package-lock.json) with `npm install --no-audit --no-fund` first; needs
# node >= 18 and the npm registry.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT/tests/js"

export HOURGLASS_BIN="${HOURGLASS_BIN:-$REPO_ROOT/target/debug/hourglass}"
if [[ ! -x "$HOURGLASS_BIN" ]]; then
  echo "js-tests: no executable hourglass binary at $HOURGLASS_BIN (run 'cargo build -p hourglass' or set HOURGLASS_BIN)" >&2
  exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "js-tests: node and npm are required" >&2
  exit 1
fi

npm install --no-audit --no-fund
exec node --test "$@"
