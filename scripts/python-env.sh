#!/usr/bin/env bash
# The test suite's Python: makes sure the virtual environment .venv-test/ (in the repository root,
# ignored by git) holds exactly scripts/requirements-test.txt, then prints the absolute path of its
# python on stdout (everything else goes to stderr):
#
#   PYTHON="$(bash scripts/python-env.sh)"
#   "$PYTHON" -m pytest ...
#
# Every Python test, reliability script and benchmark of scripts/test.sh runs with that python,
# never the machine's python3, so packages installed (or missing) there change nothing.
#
# The environment is made with `python3 -m venv` (no system site-packages) and reused while
# .venv-test/hourglass-requirements.sha256 matches the hash of the requirements file and of the
# base python (version and path), every pinned distribution is installed at its pinned version and
# the suite's modules import. Otherwise it is cleared, made again and filled with
# `pip install -r scripts/requirements-test.txt` (needs PyPI); the hash is written last, so an
# interrupted install is redone. Callers are serialised (flock on the folder): a test run and a
# fuzzer starting together wait for one another instead of racing.
#
# Settings: HOURGLASS_BASE_PYTHON (default python3; >= 3.11 with the venv and ensurepip modules:
# on Debian's python3 the python3-venv package, which scripts/install-test-deps.sh installs),
# HOURGLASS_TEST_VENV (default <repository>/.venv-test).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQS="$REPO_ROOT/scripts/requirements-test.txt"
BASE="${HOURGLASS_BASE_PYTHON:-python3}"
VENV="${HOURGLASS_TEST_VENV:-$REPO_ROOT/.venv-test}"
# The modules the suite imports (tests/python, scripts/reliability, scripts/bench,
# scripts/fuzz_queries.py): they must import, not only be installed.
MODULES=(pytest requests influxdb_client boto3 botocore moto.server flask_cors psycopg cryptography
         duckdb pyarrow pyarrow.parquet pyarrow.compute numpy sqlalchemy psycopg2 pandas asyncpg polars connectorx pgcli
         selenium)

# Nothing from the caller's environment may put other packages on the path or redirect pip.
unset PYTHONPATH PYTHONHOME PYTHONUSERBASE PIP_USER PIP_TARGET PIP_PREFIX
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { echo "python-env: $*" >&2; }
die() { log "$*"; exit 1; }

command -v "$BASE" >/dev/null || die "no $BASE on PATH (Python >= 3.11 is needed)"
base_id="$("$BASE" -c 'import os, sys
if sys.version_info < (3, 11):
    sys.exit(f"Python >= 3.11 is needed, {sys.executable} is {sys.version.split()[0]}")
import ensurepip, venv
print(sys.version)
print(os.path.realpath(sys.executable))' 2>&1)" \
  || die "$BASE cannot make a virtual environment: $base_id (on Debian: apt-get install python3-venv, which scripts/install-test-deps.sh does)"
expected="$({ sha256sum <"$REQS"; echo "$base_id"; } | sha256sum | cut -d' ' -f1)"

mkdir -p "$VENV"
VENV="$(cd "$VENV" && pwd)"
STAMP="$VENV/hourglass-requirements.sha256"
PY="$VENV/bin/python"
if [[ ! -f "$VENV/pyvenv.cfg" && -n "$(ls -A "$VENV")" ]]; then
  die "$VENV is not empty and is not a virtual environment: not touching it"
fi

if command -v flock >/dev/null; then
  exec 9<"$VENV"
  flock 9
fi

# True when the environment is complete: every pinned distribution at its version, no site-packages
# from outside the environment on the path, and every module of MODULES importable.
healthy() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$expected" && -x "$PY" ]] || return 1
  "$PY" - "$REQS" "${MODULES[@]}" <<'PY' >&2
import importlib, re, sys
from importlib import metadata

reqs, modules = sys.argv[1], sys.argv[2:]
bad = []
if sys.prefix == sys.base_prefix:
    bad.append(f"{sys.executable} is not in a virtual environment")
bad += [f"{p} on sys.path is outside the environment" for p in sys.path
        if "-packages" in p and not p.startswith(sys.prefix)]
with open(reqs) as f:
    for line in f:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line)
        if not m:
            bad.append(f"requirement {line!r} is not NAME==VERSION")
            continue
        name, want = m.groups()
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != want:
            bad.append(f"{name} is {have or 'not installed'}, pinned {want}")
for module in modules:
    try:
        importlib.import_module(module)
    except Exception as e:  # noqa: BLE001
        bad.append(f"import {module}: {type(e).__name__}: {e}")
for b in bad:
    print(f"python-env: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$expected" ]]; then
  if healthy; then
    echo "$PY"
    exit 0
  fi
  log "$VENV is broken (above): making it again"
elif [[ -f "$VENV/pyvenv.cfg" ]]; then
  log "$VENV was made for other requirements or another base python: making it again"
fi

start=$SECONDS
rm -f "$STAMP"
log "creating $VENV with $BASE -m venv and installing scripts/requirements-test.txt"
"$BASE" -m venv --clear "$VENV" >&2
"$PY" -m pip install --require-virtualenv --quiet --progress-bar off -r "$REQS" >&2
echo "$expected" >"$STAMP"
healthy || die "$VENV is incomplete after installing scripts/requirements-test.txt (above)"
log "$VENV ready in $((SECONDS - start)) s"
echo "$PY"
