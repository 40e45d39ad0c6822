"""Fixtures of the real-client end-to-end tests: the `hourglass` binary, a factory of running
servers (each in its own temporary data directory, on ephemeral loopback ports), and a moto S3
server with a bucket. Every process started here is stopped at teardown, even when a test fails.

The binary is $HOURGLASS_BIN, else target/debug/hourglass of this repository (built by the
caller: `cargo build -p hourglass`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import requests

from hgtest import HttpClient

REPO_ROOT = Path(__file__).resolve().parents[2]

BANNER_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
BANNER_RE = re.compile(r"http listening on (127\.0\.0\.1:\d+)")
PG_BANNER_RE = re.compile(r"postgres listening on (127\.0\.0\.1):(\d+)")


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HourglassServer(HttpClient):
    """One `hourglass serve` process over a data directory that outlives restarts."""

    def __init__(self, binary: Path, data_dir: Path, log_dir: Path, args=(), env=None):
        self.binary = binary
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.args = list(args)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.pg_addr: tuple[str, int] | None = None  # (host, port) of the PostgreSQL endpoint
        self.starts = 0
        self.stdout_lines: list[str] = []
        self.stderr_path: Path | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "HourglassServer":
        assert self.proc is None, "server already running"
        self.pg_addr = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.stderr_path = self.log_dir / f"hourglass-stderr-{self.starts}.log"
        # Only the flags given here configure the server: drop inherited HOURGLASS_* settings.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HOURGLASS_") or k in ("HOURGLASS_LOG", "HOURGLASS_BIN")}
        env.setdefault("HOURGLASS_LOG", "info")
        if self.env:
            env.update(self.env)
        cmd = [
            str(self.binary),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--http-addr",
            "127.0.0.1:0",
            "--pg-addr",
            "127.0.0.1:0",
            *self.args,
        ]
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                text=True,
                bufsize=1,
            )
        found = threading.Event()
        lines = self.stdout_lines = []
        addr: list[str] = []
        proc = self.proc

        def read_stdout():
            # Keeps draining stdout for the life of the process so it never blocks on a full pipe.
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                pg = PG_BANNER_RE.search(line)
                if pg:
                    self.pg_addr = (pg.group(1), int(pg.group(2)))
                m = BANNER_RE.search(line)
                if m and not found.is_set():
                    addr.append(m.group(1))
                    found.set()
            found.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        if not found.wait(BANNER_TIMEOUT_S) or not addr:
            try:
                rc = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                rc = None
            self._force_kill()
            why = f"exited with code {rc}" if rc is not None else f"timed out after {BANNER_TIMEOUT_S} s"
            pytest.fail(
                f"hourglass did not print 'http listening on' ({why}); stdout: {lines!r}\n"
                f"stderr:\n{_tail(self.stderr_path)}"
            )
        # With --tls-cert the HTTP port serves https.
        scheme = "https" if "--tls-cert" in self.args else "http"
        self.url = f"{scheme}://{addr[0]}"
        self._wait_healthy()
        # The banner prints the postgres line right after the http one.
        deadline = time.monotonic() + 5
        while self.pg_addr is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def _wait_healthy(self, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"hourglass exited with {self.proc.returncode} while starting;\n"
                    f"stderr:\n{_tail(self.stderr_path)}"
                )
            try:
                # The readiness probe does not check the certificate (tests that use TLS do).
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = requests.get(f"{self.url}/health", timeout=5, verify=False)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        pytest.fail(f"/health did not answer 200 within {timeout} s: {last}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S, sig: int = signal.SIGTERM) -> int:
        """SIGTERM (or `sig`), wait for exit, and require exit code 0 (ordered shutdown)."""
        assert self.proc is not None, "server not running"
        proc = self.proc
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._force_kill()
            pytest.fail(
                f"hourglass did not exit within {timeout} s of signal {sig};\n"
                f"stderr:\n{_tail(self.stderr_path)}"
            )
        self.proc = None
        assert rc == 0, (
            f"hourglass exited with {rc} after signal {sig} (expected 0);\n"
            f"stderr:\n{_tail(self.stderr_path)}"
        )
        return rc

    def kill(self) -> None:
        """SIGKILL: a crash, nothing is shut down cleanly."""
        assert self.proc is not None, "server not running"
        self._force_kill()

    def _force_kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass

    def restart(self) -> "HourglassServer":
        """Stops (SIGTERM, exit 0 required) if running, then starts on the same data directory
        and a new port."""
        if self.running:
            self.stop()
        elif self.proc is not None:
            self.proc = None
        return self.start()

    def teardown(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        self._force_kill()


@pytest.fixture(scope="session")
def hourglass_bin() -> Path:
    configured = os.environ.get("HOURGLASS_BIN")
    path = Path(configured) if configured else Path("target/debug/hourglass")
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"hourglass binary not found at {path}: build it with `cargo build -p hourglass` "
            "or set HOURGLASS_BIN"
        )
    return path


def _server_factory(hourglass_bin: Path, base: Path):
    started: list[HourglassServer] = []

    def start(args=(), env=None, data_dir=None) -> HourglassServer:
        n = len(started)
        data = Path(data_dir) if data_dir else base / f"data{n}"
        logs = base / f"logs{n}"
        logs.mkdir(parents=True, exist_ok=True)
        s = HourglassServer(hourglass_bin, data, logs, args=args, env=env)
        started.append(s)
        return s.start()

    def teardown():
        for s in started:
            s.teardown()

    return start, teardown


@pytest.fixture
def server(hourglass_bin, tmp_path):
    """Factory: `server(args=[...], env={...}, data_dir=...)` starts a server and returns it.
    Servers have `.url`, `.data_dir`, `.stop()`, `.kill()`, `.restart()` and the HTTP helpers
    of `hgtest.HttpClient`."""
    start, teardown = _server_factory(hourglass_bin, tmp_path)
    try:
        yield start
    finally:
        teardown()


@pytest.fixture(scope="module")
def module_server(hourglass_bin, tmp_path_factory):
    """Factory like `server`, for servers a whole module shares (stopped after the module)."""
    start, teardown = _server_factory(hourglass_bin, tmp_path_factory.mktemp("module"))
    try:
        yield start
    finally:
        teardown()


@pytest.fixture(scope="module")
def shared_server(hourglass_bin, tmp_path_factory):
    """One server for a whole test module, for tests that neither stop nor restart it (each
    such test writes to its own database: see `db`)."""
    start, teardown = _server_factory(hourglass_bin, tmp_path_factory.mktemp("shared"))
    try:
        yield start()
    finally:
        teardown()


@pytest.fixture
def db(request) -> str:
    """A database name unique to the test."""
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    return f"db_{name}"[:120]


class MotoS3:
    def __init__(self, endpoint: str, bucket: str):
        import boto3

        self.endpoint = endpoint
        self.bucket = bucket
        self.env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(keys)


@contextlib.contextmanager
def moto_server(log_path: Path):
    """A moto server (every AWS service it mocks) on a free loopback port, logging to
    `log_path`: yields its endpoint URL, terminates it on exit."""
    proc = None
    endpoint = None
    try:
        for _attempt in range(3):
            port = _free_port()
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            up = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    requests.get(f"{endpoint}/", timeout=2)
                    up = True
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            if up:
                break
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            proc = None
        if proc is None:
            pytest.fail(f"moto server did not start:\n{_tail(log_path)}")
        yield endpoint
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def moto_s3(tmp_path):
    """A moto S3 server on a free loopback port with an empty bucket; `.env` holds the AWS_*
    variables that point a client (and hourglass) at it, `.client` is a boto3 S3 client."""
    with moto_server(tmp_path / "moto.log") as endpoint:
        s3 = MotoS3(endpoint, "hourglass-test")
        s3.client.create_bucket(Bucket=s3.bucket)
        yield s3
