#!/usr/bin/env bash
# Installs everything the tests need beyond the Rust toolchain, node/npm, a JDK and psql (which
# every machine of this project has): the one place that does. Idempotent; scripts/test.sh and
# scripts/python-tests.sh call it.
#
# 1. Debian packages, with apt-get (needs root; skipped when already installed):
#      libpostgresql-jdbc-java  the PostgreSQL JDBC driver (tests/python/test_pg_jdbc.py)
#      influxdb                 InfluxDB 1.6, the peer of the side-by-side quick mode
#      prometheus               Prometheus 2.42, remote write/read peer (test_prometheus.py)
#      mosquitto                the MQTT broker of tests/python/test_mqtt.py (started by the test)
#      prometheus-alertmanager  Alertmanager, receiver of alert rules' notifications (test_alerts.py)
#      tmux                     a real terminal for `hourglass import`'s progress bar (test_import.py)
#      chromium, chromium-driver  headless Chromium and its WebDriver (test_console.py, Selenium)
#      python3-venv             only when `python3 -m venv` is not available
#    A failing install fails this script.
# 2. The test suite's Python virtual environment .venv-test/ with the pinned packages of
#    scripts/requirements-test.txt (scripts/python-env.sh; needs PyPI). Nothing is installed into
#    the machine's python3: the tests run with the environment's python.
#
# The npm packages of tests/js are installed by scripts/js-tests.sh (package-lock.json).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apt_missing=()
[[ -f /usr/share/java/postgresql.jar ]] || apt_missing+=(libpostgresql-jdbc-java)
command -v influxd >/dev/null || apt_missing+=(influxdb)
command -v prometheus >/dev/null || apt_missing+=(prometheus)
[[ -x /usr/sbin/mosquitto ]] || command -v mosquitto >/dev/null || apt_missing+=(mosquitto)
[[ -x /usr/bin/prometheus-alertmanager ]] || apt_missing+=(prometheus-alertmanager)
command -v tmux >/dev/null || apt_missing+=(tmux)
[[ -x /usr/bin/chromium ]] || apt_missing+=(chromium)
[[ -x /usr/bin/chromedriver ]] || apt_missing+=(chromium-driver)
"${HOURGLASS_BASE_PYTHON:-python3}" -c 'import ensurepip, venv' 2>/dev/null || apt_missing+=(python3-venv)

if [[ ${#apt_missing[@]} -gt 0 ]]; then
  if ! command -v apt-get >/dev/null; then
    echo "install-test-deps: no apt-get to install ${apt_missing[*]}: install them by hand" >&2
    exit 1
  fi
  SUDO=()
  if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null; then SUDO=(sudo -n); fi
  echo "install-test-deps: installing ${apt_missing[*]} with apt-get"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
else
  echo "install-test-deps: Debian packages present (libpostgresql-jdbc-java, influxdb, prometheus, mosquitto, prometheus-alertmanager, tmux, chromium, chromium-driver)"
fi

python="$(bash "$REPO_ROOT/scripts/python-env.sh")"
echo "install-test-deps: Python test environment ready: $python"
