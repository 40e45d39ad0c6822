#!/usr/bin/env bash
# Runs every test of the project: Rust unit and end-to-end tests (SQL golden files three ways,
# WAL torn writes, tiering and retention), then the real-client tests against the debug binary:
# Python (influxdb-client, requests, boto3 + moto S3; the bad-input and resource-bound suites), a
# short crash test (scripts/reliability/crash_test.py) and the AWS SDK for JavaScript v3.
# One target directory is shared by all steps; no release build happens here.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build (debug) =="
cargo build --workspace --all-targets --locked

echo "== cargo test =="
cargo test --workspace --locked

echo "== side-by-side quick mode: Hourglass, InfluxDB 1.6 and DuckDB must return the same answers =="
python3 scripts/bench/side_by_side.py --deps --quick --binary "$PWD/target/debug/hourglass" --out "${TMPDIR:-/tmp}/hourglass-sbs-quick.json"

echo "== real-client tests: Python (influxdb-client, requests, boto3, moto S3, psycopg, psql) =="
HOURGLASS_BIN="$PWD/target/debug/hourglass" bash scripts/python-tests.sh

echo "== reliability: short crash test (SIGKILL during load, persistence, compaction, retention) =="
python3 scripts/reliability/crash_test.py --binary "$PWD/target/debug/hourglass" --cycles 5 --verify-every 5 --seed 1

echo "== real-client tests: AWS SDK for JavaScript v3 =="
HOURGLASS_BIN="$PWD/target/debug/hourglass" bash scripts/js-tests.sh
