#!/usr/bin/env bash
# Installs the peers of the side-by-side benchmark (scripts/bench/side_by_side.py) for a run by
# hand: InfluxDB 1.x from Debian's `influxdb` package (apt-get), and the test suite's Python
# virtual environment .venv-test/ (scripts/python-env.sh: duckdb, pyarrow, numpy, requests at the
# versions of scripts/requirements-test.txt). Run the benchmark with that environment's python
# (side_by_side.py switches to it by itself). The test command does not use this script:
# scripts/install-test-deps.sh installs the same things for it, and fails when it cannot.
# Idempotent: skips what is already there. A missing apt (or a failing install) is reported but
# is not fatal: the benchmark then runs without InfluxDB and says so. Exit status is non-zero only
# when the Python environment (needed for DuckDB and the Parquet files) cannot be made.
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi

if command -v influxd >/dev/null 2>&1; then
  echo "bench-deps: influxd present: $(influxd version 2>/dev/null | head -1)"
elif command -v apt-get >/dev/null 2>&1; then
  echo "bench-deps: installing influxdb with apt-get..."
  if $SUDO apt-get update -qq >/dev/null 2>&1 \
     && $SUDO apt-get install -y -qq --no-install-recommends influxdb >/dev/null 2>&1; then
    echo "bench-deps: influxd installed: $(influxd version 2>/dev/null | head -1)"
  else
    echo "bench-deps: WARNING: could not install influxdb with apt-get; InfluxDB will be skipped" >&2
  fi
else
  echo "bench-deps: WARNING: no apt-get; InfluxDB will be skipped" >&2
fi

if python="$(bash "$REPO_ROOT/scripts/python-env.sh")"; then
  echo "bench-deps: Python environment ready: $python (duckdb $("$python" -c 'import duckdb; print(duckdb.__version__)'))"
else
  echo "bench-deps: could not make the Python environment (scripts/python-env.sh)" >&2
  exit 1
fi
