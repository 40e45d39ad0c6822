#!/usr/bin/env bash
# Installs the peers of the side-by-side benchmark (scripts/bench/side_by_side.py):
#   InfluxDB 1.x from Debian's `influxdb` package (apt-get), and DuckDB + pyarrow + numpy (pip).
# Idempotent: skips what is already there. A missing apt (or a failing install) is reported but
# is not fatal: the benchmark then runs without InfluxDB and says so. Exit status is non-zero only
# when the Python packages (needed for DuckDB and the Parquet files) cannot be installed.
set -uo pipefail

PYTHON="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive

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

if "$PYTHON" -c "import duckdb, pyarrow, numpy, requests" >/dev/null 2>&1; then
  echo "bench-deps: duckdb $("$PYTHON" -c 'import duckdb; print(duckdb.__version__)'), pyarrow present"
else
  echo "bench-deps: installing duckdb pyarrow with pip..."
  "$PYTHON" -m pip install -q duckdb pyarrow numpy requests || { echo "bench-deps: pip install failed" >&2; exit 1; }
fi
