#!/usr/bin/env bash
# Runs the real-client end-to-end tests (tests/python) against a built hourglass binary.
#
#   scripts/python-tests.sh [pytest args...]
#
# The binary is $HOURGLASS_BIN, by default target/debug/hourglass of this repository: build it
# first (`cargo build -p hourglass`); this script does not run cargo. Installs what the tests need
# first (scripts/install-test-deps.sh: Debian packages and the Python virtual environment
# .venv-test/ with the pinned packages of scripts/requirements-test.txt) and runs pytest with that
# environment's python (scripts/python-env.sh), never the machine's python3; processes the tests
# start in Python (the moto S3 server) use the same interpreter (sys.executable). Exits non-zero
# when a test fails, when the binary is missing, and when pytest collected no test at all (its
# exit code 5).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

export HOURGLASS_BIN="${HOURGLASS_BIN:-$REPO_ROOT/target/debug/hourglass}"
if [[ ! -x "$HOURGLASS_BIN" ]]; then
  echo "python-tests: no executable hourglass binary at $HOURGLASS_BIN (run 'cargo build -p hourglass' or set HOURGLASS_BIN)" >&2
  exit 1
fi

bash "$REPO_ROOT/scripts/install-test-deps.sh"
PYTHON="$(bash "$REPO_ROOT/scripts/python-env.sh")"

unset PYTHONPATH PYTHONHOME
export PYTHONDONTWRITEBYTECODE=1

set +e
"$PYTHON" -m pytest -q -p no:cacheprovider tests/python "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "python-tests: pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
