"""An InfluxDB 1.x server (Debian's `influxd`) for the InfluxQL differential test: started on
127.0.0.1 with free ports and its own config, meta, data and WAL directories under a temporary
directory, stopped (SIGTERM, then SIGKILL) by `stop()`. The configuration is the one of
scripts/bench/sbs_engines.py, without reporting, monitoring, continuous queries or limits; this
module adds retries when a probed port is taken before influxd binds it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))

import sbs_engines  # noqa: E402

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20

# The side-by-side benchmark's configuration (127.0.0.1, no reporting, monitoring, continuous
# queries or limits), so the two harnesses run the same InfluxDB.
CONF = sbs_engines.INFLUX_CONF


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    return shutil.which("influxd") is not None


def version() -> str:
    return subprocess.run(["influxd", "version"], capture_output=True, text=True, timeout=30).stdout.strip()


class InfluxD:
    def __init__(self, base_dir: str):
        self.base_dir = base_dir
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = os.path.join(base_dir, "influxd.log")

    def start(self) -> "InfluxD":
        os.makedirs(self.base_dir, exist_ok=True)
        last_err = None
        for _attempt in range(3):  # a free port may be taken between the probe and the bind
            http, rpc = _free_port(), _free_port()
            conf = os.path.join(self.base_dir, "influxdb.conf")
            with open(conf, "w") as f:
                f.write(CONF.format(d=self.base_dir, rpc=rpc, http=http))
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    ["influxd", "-config", conf],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.url = f"http://127.0.0.1:{http}"
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if requests.get(self.url + "/ping", timeout=2).status_code == 204:
                        return self
                except requests.RequestException as e:
                    last_err = e
                time.sleep(0.1)
            last_err = last_err or f"exited with {self.proc.poll()}"
            self.stop()
        raise RuntimeError(f"influxd did not start: {last_err}; log:\n{self.log_tail()}")

    def log_tail(self, limit: int = 3000) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-limit:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
