#!/usr/bin/env bash
# Differential query fuzzer (scripts/fuzz_queries.py; docs/reliability.md).
#   scripts/fuzz_queries.sh --minutes N [--seed S] [--binary PATH]
#   scripts/fuzz_queries.sh --quick      # CI: fixed seed, <= 2 min with a debug build
# Runs with the test virtual environment's Python (.venv-test). Exit 1 on a wrong answer.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The suite's virtual environment, created or refreshed from scripts/requirements-test.txt.
PY="${HOURGLASS_TEST_PYTHON:-$(bash "$ROOT/scripts/python-env.sh")}"
exec "$PY" "$ROOT/scripts/fuzz_queries.py" "$@"
