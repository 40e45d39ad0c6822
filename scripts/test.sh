#!/usr/bin/env bash
# Runs every test of the project: Rust unit and end-to-end tests, then the real-client tests
# (Python: influxdb-client, requests, boto3 + moto S3) against the debug binary.
# One target directory is shared by all steps; no release build happens here.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build (debug) =="
cargo build --workspace --all-targets --locked

echo "== cargo test =="
cargo test --workspace --locked

echo "== real-client tests =="
HOURGLASS_BIN="$PWD/target/debug/hourglass" bash scripts/python-tests.sh
