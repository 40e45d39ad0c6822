#!/usr/bin/env bash
# Runs every test of the project: Rust unit and end-to-end tests (SQL golden files three ways,
# WAL torn writes, tiering and retention), then the real-client tests against the debug binary:
# Python (influxdb-client, requests, boto3 + moto S3; the bad-input and resource-bound suites), a
# short crash test (scripts/reliability/crash_test.py) and the AWS SDK for JavaScript v3; and the
# differential query fuzzer's quick mode (scripts/fuzz_queries.sh --quick, fixed seed, ~2 min).
# One target directory is shared by all steps; no release build happens here.
#
# It first installs what the tests need (scripts/install-test-deps.sh: Debian packages, and the
# Python virtual environment .venv-test/ with the pinned packages of scripts/requirements-test.txt)
# and runs every Python step with that environment's python, never the machine's python3.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONPATH PYTHONHOME

echo "== test dependencies: Debian packages and the Python environment (scripts/install-test-deps.sh) =="
bash scripts/install-test-deps.sh
PYTHON="$(bash scripts/python-env.sh)"

echo "== cargo build (debug) =="
cargo build --workspace --all-targets --locked

echo "== cargo test =="
cargo test --workspace --locked

echo "== differential query fuzzer, quick mode: rules on vs off, and DuckDB, must agree =="
bash scripts/fuzz_queries.sh --quick --binary "$PWD/target/debug/hourglass"

echo "== side-by-side quick mode: Hourglass, InfluxDB 1.6 and DuckDB must return the same answers (also at 2,000 hosts; 8 clients under mixed load without an error) =="
"$PYTHON" scripts/bench/side_by_side.py --quick --require-peers --concurrency --cardinality --binary "$PWD/target/debug/hourglass" --out "${TMPDIR:-/tmp}/hourglass-sbs-quick.json"

echo "== real-client tests: Python (influxdb-client, requests, boto3, moto S3, psycopg, psql) =="
HOURGLASS_BIN="$PWD/target/debug/hourglass" bash scripts/python-tests.sh

echo "== reliability: short crash test (SIGKILL during load, persistence, compaction, retention) =="
"$PYTHON" scripts/reliability/crash_test.py --binary "$PWD/target/debug/hourglass" --cycles 5 --verify-every 5 --seed 1

echo "== real-client tests: AWS SDK for JavaScript v3 =="
HOURGLASS_BIN="$PWD/target/debug/hourglass" bash scripts/js-tests.sh
