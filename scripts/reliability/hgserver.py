"""Starting `hourglass serve` for the reliability scripts (crash_test.py, soak.py).

The server binds ephemeral loopback ports; its address is read from the startup banner
(`http listening on ADDR`) and it is waited for until `/health` answers. HOURGLASS_* variables of
the calling environment are not passed on, so only the given flags configure it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import requests

BANNER_RE = re.compile(r"http listening on (127\.0\.0\.1:\d+)")


def start(binary: str, data_dir: Path, flags: list[str], stderr_path: Path,
          timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """Starts the server; returns the process and its base URL. Raises RuntimeError (with the
    tail of its stderr) when it does not start or become healthy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOURGLASS_")}
    env["HOURGLASS_LOG"] = os.environ.get("HOURGLASS_LOG", "info")
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [binary, "serve", "--data-dir", str(data_dir), "--http-addr", "127.0.0.1:0",
             "--pg-addr", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True, env=env)
    addr: list[str] = []
    ready = threading.Event()

    def drain():
        for line in proc.stdout:
            m = BANNER_RE.search(line)
            if m and not addr:
                addr.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()

    def fail(what: str) -> RuntimeError:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        tail = Path(stderr_path).read_text(errors="replace")[-3000:]
        return RuntimeError(f"server {what}; see {stderr_path}:\n{tail}")

    if not ready.wait(timeout) or not addr:
        raise fail("did not start")
    url = f"http://{addr[0]}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise fail("did not become healthy")
