"""What the PostgreSQL and scheduled-query benchmarks share (standard library only): an
`hourglass serve` process on ephemeral loopback ports, its ordered stop, and its resident memory
(VmRSS of /proc/PID/status), read once or sampled in a thread."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path


def start_server(binary: Path | str, data_dir: Path | str, *args: str):
    """Starts `hourglass serve` over `data_dir` with the HTTP and PostgreSQL endpoints on
    ephemeral loopback ports and the extra command-line `args`, with no inherited HOURGLASS_*
    settings and warn logging. Returns (process, HTTP base URL, PostgreSQL host:port)."""
    cmd = [str(binary), "serve", "--data-dir", str(data_dir), "--http-addr", "127.0.0.1:0",
           "--pg-addr", "127.0.0.1:0", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOURGLASS_")}
    env["HOURGLASS_LOG"] = "warn"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    http = pg = None
    deadline = time.time() + 60
    while (http is None or pg is None) and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if m := re.search(r"http listening on (\S+)", line):
            http = m.group(1)
        if m := re.search(r"postgres listening on (\S+)", line):
            pg = m.group(1)
        if "not served by this version" in line:
            stop_server(proc)
            raise SystemExit(f"{binary} predates the PostgreSQL endpoint ({line.strip()}); "
                             "rebuild it or pass --binary target/debug/hourglass")
    if http is None or pg is None:
        proc.kill()
        proc.wait()
        raise SystemExit(f"server did not print its addresses: {cmd}")
    # Keep draining stdout so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, f"http://{http}", pg


def stop_server(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM (an ordered shutdown), then SIGKILL if it has not exited within `timeout` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class RssSampler:
    """Samples a process's VmRSS every `interval` s in a thread while in the `with` block:
    `.base` when created, `.peak` the largest seen (its last reading taken at the end)."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid = pid
        self.interval = interval
        self.base = self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))
