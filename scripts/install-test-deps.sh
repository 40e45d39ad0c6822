#!/usr/bin/env bash
# Installs the Python packages the end-to-end tests (tests/python) need into the machine's
# python3, at pinned versions. Idempotent: when every package is already importable at its
# pinned version it returns at once without touching the network. Needs only PyPI.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

# The PostgreSQL JDBC driver for tests/python/test_pg_jdbc.py (Debian's package; needs root and
# apt). Skipped when the jar is already there. Placed before the Python check, which exits early.
if [[ ! -f /usr/share/java/postgresql.jar ]] && command -v apt-get >/dev/null; then
  echo "install-test-deps: installing libpostgresql-jdbc-java"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpostgresql-jdbc-java
fi

# Pinned requirements (distribution name, optional extras, exact version).
REQS=(
  "pytest==9.2.0"
  "requests==2.34.2"
  "influxdb-client==1.50.0"
  "boto3==1.43.11"
  "moto[server]==5.2.1"
  "psycopg[binary]==3.3.9"
  "cryptography==48.0.0"
)

# Prints the requirements whose distribution is missing or at another version, or all of them
# when one of the modules the tests import cannot be imported.
missing="$("$PYTHON" - "${REQS[@]}" <<'PY'
import importlib, re, sys
from importlib import metadata

out = []
for req in sys.argv[1:]:
    name, version = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(.+)$", req).groups()
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != version:
        out.append(req)
# psycopg[binary] brings a separate distribution, psycopg-binary, at the same version.
try:
    if metadata.version("psycopg-binary") != "3.3.9":
        out.append("psycopg[binary]==3.3.9")
except metadata.PackageNotFoundError:
    out.append("psycopg[binary]==3.3.9")
for module in ("pytest", "requests", "influxdb_client", "boto3", "moto.server", "flask_cors", "psycopg",
               "cryptography"):
    try:
        importlib.import_module(module)
    except Exception:
        out = list(sys.argv[1:])
        break
print(" ".join(dict.fromkeys(out)))
PY
)"

if [[ -z "$missing" ]]; then
  echo "install-test-deps: all pinned test packages present"
  exit 0
fi

echo "install-test-deps: installing $missing"
# shellcheck disable=SC2086
"$PYTHON" -m pip install --quiet --no-input $missing

"$PYTHON" -c 'import boto3, cryptography, influxdb_client, moto.server, flask_cors, psycopg, pytest, requests'
echo "install-test-deps: done"
