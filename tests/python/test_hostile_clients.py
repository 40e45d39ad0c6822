"""Hostile clients against the connection limits and timeouts (docs/security.md, "Connections"):
slowloris headers, slow bodies, idle floods from many addresses, one address over its limit,
half-open TLS handshakes, PostgreSQL clients that never finish startup, and SIGTERM with
half-sent requests open.

Attack connections come from 127.0.0.2, 127.0.0.3, ... (the client socket is bound to them), so
the per-address limit never blocks the legitimate client on 127.0.0.1. Throughout each attack
the server must answer /health, accept a line-protocol write and a query, and accept a
PostgreSQL login; the figures (attack connections held, /health latency p50/max) are printed
(`pytest -s` shows them). Timeouts are set short with the flags to keep the file fast.

With a binary that lacks the flags (before they existed) the tests still run, without them, and
fail where that binary fails.
"""

from __future__ import annotations

import http.client
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests

from conftest import HourglassServer
from sectest import add_user, make_ca_and_cert

TIMEOUT_S = 5

HEADER_TIMEOUT = 2
IDLE_TIMEOUT = 3
BODY_TIMEOUT = 2
PG_STARTUP_TIMEOUT = 2
SHUTDOWN_TIMEOUT = 3
PER_PEER = 64
# Time past a timeout a connection may take to be closed (a debug build on a busy machine).
MARGIN = 2.5

FAST = {
    "--header-read-timeout-secs": HEADER_TIMEOUT,
    "--idle-timeout-secs": IDLE_TIMEOUT,
    "--body-read-timeout-secs": BODY_TIMEOUT,
    "--pg-startup-timeout-secs": PG_STARTUP_TIMEOUT,
    "--shutdown-timeout-secs": SHUTDOWN_TIMEOUT,
    "--max-connections-per-peer": PER_PEER,
}

NS = 1_700_000_000_000_000_000


# ---------------------------------------------------------------------------------------------
# Servers.

@pytest.fixture(scope="module")
def serve_help(hourglass_bin) -> str:
    out = subprocess.run([str(hourglass_bin), "serve", "--help"], capture_output=True, text=True,
                         timeout=60)
    return out.stdout


def _fd_limited(binary: Path, directory: Path, limit: int) -> Path:
    """A launcher that runs `binary` with RLIMIT_NOFILE (soft and hard) set to `limit`."""
    wrapper = directory / f"hourglass-nofile-{limit}"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))\n"
        f"os.execv({str(binary)!r}, [{str(binary)!r}] + sys.argv[1:])\n"
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture
def hostile_server(hourglass_bin, serve_help, tmp_path):
    """Factory: `hostile_server(flags={...}, args=[...], fd_limit=None, data_dir=None)`. Flags
    the binary does not know are left out (so an older binary runs, without them)."""
    started: list[HourglassServer] = []

    def start(flags=None, args=(), fd_limit=None, data_dir=None) -> HourglassServer:
        n = len(started)
        binary = _fd_limited(hourglass_bin, tmp_path, fd_limit) if fd_limit else hourglass_bin
        merged = {**FAST, **(flags or {})}
        argv = []
        for flag, value in merged.items():
            if flag in serve_help:
                argv += [flag, str(value)]
        logs = tmp_path / f"logs{n}"
        logs.mkdir(parents=True, exist_ok=True)
        s = HourglassServer(binary, Path(data_dir) if data_dir else tmp_path / f"data{n}", logs,
                            args=[*argv, *args])
        s.has_limits = "--max-connections-per-peer" in serve_help
        started.append(s)
        return s.start()

    try:
        yield start
    finally:
        for s in started:
            s.teardown()


def _port(srv) -> int:
    return int(srv.url.rsplit(":", 1)[1])


def _stderr(srv) -> str:
    return srv.stderr_path.read_text(errors="replace") if srv.stderr_path else ""


# ---------------------------------------------------------------------------------------------
# Attack connections.

def _connect(port: int, source: str, timeout: float = 2.0) -> socket.socket | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # The local port is picked at connect(), for the whole address pair (Linux): no clash
        # with the server's TIME_WAIT of a connection it closed.
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
    except OSError:
        pass
    try:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        return s
    except OSError:
        s.close()
        return None


def _closed(s: socket.socket, seen: bytearray | None = None) -> bool:
    """Whether the server closed `s` (EOF or reset); data it sent first goes into `seen`."""
    while True:
        try:
            chunk = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if not chunk:
            return True
        if seen is not None:
            seen += chunk


class Swarm:
    """Attack connections from several source addresses; every socket is closed by `close()`.

    `sustain=True` keeps the numbers up: a connection the server closed is opened again (after
    `retry` seconds), by a background thread, until `close()`."""

    def __init__(self, port: int, sources: list[str], per_source: int, on_open=None,
                 sustain: bool = False, retry: float = 1.0):
        self.port = port
        self.sources = sources
        self.per_source = per_source
        self.on_open = on_open
        self.sustain = sustain
        self.retry = retry
        self.lock = threading.Lock()
        # slot -> (source, socket or None, received bytes, closed-at time)
        self.slots: list[list] = []
        self.failed_connects = 0
        self.closed_by_server = 0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        # What each connection the server closed had received (b"" when nothing).
        self.replies: list[bytes] = []

    def _open(self, source: str):
        s = _connect(self.port, source)
        if s is None:
            self.failed_connects += 1
            return None
        if self.on_open is not None:
            try:
                self.on_open(s)
            except OSError:
                pass
        return s

    def open(self) -> "Swarm":
        for source in self.sources:
            for _ in range(self.per_source):
                self.slots.append([source, self._open(source), bytearray(), None])
        if self.sustain:
            self.thread = threading.Thread(target=self._keep_up, daemon=True)
            self.thread.start()
        return self

    def settle(self, within: float = 1.5) -> int:
        """Waits until the server has dealt with the connections just opened (a connect
        completes before the server accepts, and refuses, it): the number held stops changing."""
        t_end = time.monotonic() + within
        last, same = -1, 0
        while time.monotonic() < t_end and same < 3:
            held = self.held()
            same = same + 1 if held == last else 0
            last = held
            time.sleep(0.1)
        return last

    def _keep_up(self):
        while not self.stop.wait(0.1):
            self.poll()
            now = time.monotonic()
            with self.lock:
                for slot in self.slots:
                    if self.stop.is_set():
                        return
                    if slot[1] is None and (slot[3] is None or now - slot[3] >= self.retry):
                        slot[1] = self._open(slot[0])
                        slot[2] = bytearray()
                        slot[3] = None if slot[1] is not None else now

    def poll(self):
        """Notes the connections the server closed."""
        now = time.monotonic()
        with self.lock:
            for slot in self.slots:
                s = slot[1]
                if s is not None and _closed(s, slot[2]):
                    s.close()
                    slot[1] = None
                    slot[3] = now
                    self.closed_by_server += 1
                    self.replies.append(bytes(slot[2]))

    def held(self) -> int:
        self.poll()
        with self.lock:
            return sum(1 for slot in self.slots if slot[1] is not None)

    def held_by_source(self) -> dict[str, int]:
        self.poll()
        out: dict[str, int] = {}
        with self.lock:
            for source, s, _, _ in self.slots:
                if s is not None:
                    out[source] = out.get(source, 0) + 1
        return out

    def each_open(self, fn):
        with self.lock:
            for slot in self.slots:
                if slot[1] is not None:
                    try:
                        fn(slot[1])
                    except OSError:
                        pass

    def close(self):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        with self.lock:
            for slot in self.slots:
                if slot[1] is not None:
                    slot[1].close()
                    slot[1] = None


def _sources(first: int, count: int) -> list[str]:
    return [f"127.0.0.{i}" for i in range(first, first + count)]


def _wait_closed(swarms, within: float) -> tuple[int, float]:
    """Waits up to `within` seconds for the server to close every attack connection of
    `swarms` (one or a list); returns (connections still open, seconds waited)."""
    swarms = swarms if isinstance(swarms, (list, tuple)) else [swarms]
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if sum(s.held() for s in swarms) == 0:
            return 0, time.monotonic() - t0
        time.sleep(0.1)
    return sum(s.held() for s in swarms), time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# The legitimate client.

class Service:
    """Checks that the server still serves the legitimate client (127.0.0.1): /health with its
    latency, a line-protocol write, a query, a PostgreSQL login."""

    def __init__(self, srv, db: str, verify=True, headers=None, pg=None):
        self.srv = srv
        self.db = db
        self.verify = verify
        self.headers = headers or {}
        self.pg = pg or {}
        self.latencies_ms: list[float] = []
        self.writes = 0

    def health(self):
        t0 = time.monotonic()
        r = requests.get(f"{self.srv.url}/health", timeout=TIMEOUT_S, verify=self.verify)
        self.latencies_ms.append((time.monotonic() - t0) * 1000)
        assert r.status_code == 200, r.text

    def check(self):
        for _ in range(3):
            self.health()
        self.writes += 1
        line = f"m,src=legit v={self.writes}i {NS + self.writes}"
        r = requests.post(f"{self.srv.url}/api/v3/write_lp", params={"db": self.db}, data=line,
                          headers=self.headers, timeout=TIMEOUT_S, verify=self.verify)
        assert r.status_code == 204, r.text
        r = requests.get(f"{self.srv.url}/api/v3/query_sql",
                         params={"db": self.db, "q": "SELECT count(*) AS n FROM m", "format": "json"},
                         headers=self.headers, timeout=TIMEOUT_S, verify=self.verify)
        assert r.status_code == 200 and r.json()[0]["n"] >= self.writes, r.text
        host, port = self.srv.pg_addr
        options = {"host": host, "user": "u", **self.pg}
        with psycopg.connect(port=port, dbname=self.db, connect_timeout=TIMEOUT_S, **options) as conn:
            assert conn.execute("SELECT count(*) FROM m").fetchone()[0] >= self.writes

    def report(self, what: str, held) -> str:
        lat = sorted(self.latencies_ms)
        text = (f"[{what}] attack connections held: {held}; /health p50 "
                f"{statistics.median(lat):.1f} ms, max {max(lat):.1f} ms over {len(lat)} requests")
        print("\n" + text)
        return text


def _attack_window(service: Service, seconds: float, every: float = 0.3):
    """Health checks through `seconds`, with one full check (write, query, login) at the start."""
    t_end = time.monotonic() + seconds
    service.check()
    while time.monotonic() < t_end:
        service.health()
        time.sleep(every)


# ---------------------------------------------------------------------------------------------
# Slowloris and slow bodies.

def test_slowloris_headers_are_cut_at_the_header_timeout(hostile_server, db):
    srv = hostile_server()
    service = Service(srv, db)
    request_line = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
    swarm = Swarm(_port(srv), _sources(2, 8), 25, on_open=lambda s: s.send(request_line[:5]))
    try:
        swarm.open()
        stop = threading.Event()

        def dribble():
            sent = 5
            while not stop.wait(0.25):
                byte = request_line[sent:sent + 1] or b"a"
                swarm.each_open(lambda s: s.send(byte))
                sent += 1

        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        try:
            held_during = swarm.held()
            _attack_window(service, 1.0)
            left, waited = _wait_closed(swarm, HEADER_TIMEOUT + MARGIN)
        finally:
            stop.set()
            t.join(timeout=5)
        service.report("slowloris headers", f"{held_during} of 200")
        print(f"  still open {waited:.1f} s later: {left}")
        assert left == 0, f"{left} slowloris connections still open after the header timeout"
    finally:
        swarm.close()
    service.check()


def test_slow_bodies_are_cut(hostile_server, db):
    srv = hostile_server()
    service = Service(srv, db)
    head = (f"POST /api/v3/write_lp?db={db}_slow HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n").encode()
    body = f"m v=1i {NS}\n".encode() * 100
    swarm = Swarm(_port(srv), _sources(2, 8), 10, on_open=lambda s: s.send(head))
    try:
        swarm.open()
        stop = threading.Event()

        def trickle():
            sent = 0
            while not stop.wait(0.25):
                byte = body[sent:sent + 1]
                swarm.each_open(lambda s: s.send(byte))
                sent += 1

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            held_during = swarm.held()
            _attack_window(service, 1.0)
            left, waited = _wait_closed(swarm, BODY_TIMEOUT + MARGIN + 1)
        finally:
            stop.set()
            t.join(timeout=5)
        statuses = sorted({r.split(b"\r\n", 1)[0].decode(errors="replace") for r in swarm.replies
                           if r})
        service.report("slow bodies", f"{held_during} of 80")
        print(f"  still open {waited:.1f} s later: {left}; answers: {statuses}")
        assert left == 0, f"{left} slow-body connections still open after the body timeout"
    finally:
        swarm.close()
    # Nothing of a body cut short was written.
    r = requests.get(f"{srv.url}/api/v3/query_sql",
                     params={"db": f"{db}_slow", "q": "SELECT count(*) AS n FROM m", "format": "json"},
                     timeout=TIMEOUT_S)
    assert r.status_code != 200 or r.json() == [{"n": 0}], r.text
    service.check()


def test_keep_alive_idle_timeout_and_streamed_responses(hostile_server, db):
    """The header timeout does not cover the wait between keep-alive requests (the idle timeout
    does); a response streamed longer than the idle timeout to a client that keeps reading is
    not cut."""
    srv = hostile_server(flags={"--header-read-timeout-secs": 1, "--idle-timeout-secs": 2})
    rows = 60_000
    pad = "x" * 60
    for start in range(0, rows, 20_000):
        body = "\n".join(f'big,k=k{i % 7} s="{pad}",v={i}i {NS + i}' for i in range(start, start + 20_000))
        r = requests.post(f"{srv.url}/api/v3/write_lp", params={"db": db}, data=body, timeout=60)
        assert r.status_code == 204, r.text

    # Keep-alive: a second request 1.5 s after the first (past the header timeout) is served,
    # and the connection is closed once idle for longer than the idle timeout.
    conn = http.client.HTTPConnection("127.0.0.1", _port(srv), timeout=TIMEOUT_S)
    try:
        conn.request("GET", "/health")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        sock = conn.sock
        time.sleep(1.5)
        conn.request("GET", "/health")
        second = conn.getresponse()
        second.read()
        assert second.status == 200 and conn.sock is sock, "the keep-alive connection was not reused"
        sock.setblocking(False)
        t0 = time.monotonic()
        closed = False
        while not closed and time.monotonic() - t0 < 2 + MARGIN + 2:
            time.sleep(0.1)
            closed = _closed(sock)
        print(f"\n[keep-alive] second request after 1.5 s idle (header timeout 1 s) served; idle "
              f"connection closed {time.monotonic() - t0:.1f} s later (idle timeout 2 s): {closed}")
        assert closed, "an idle keep-alive connection was not closed after the idle timeout"
    finally:
        conn.close()

    # A streamed CSV read slowly (small receive buffer) for longer than the idle timeout.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(TIMEOUT_S)
    s.connect(("127.0.0.1", _port(srv)))
    try:
        q = requests.Request("GET", f"{srv.url}/api/v3/query_sql",
                             params={"db": db, "q": "SELECT k, s, v FROM big ORDER BY v",
                                     "format": "csv"}).prepare()
        s.sendall(f"GET {q.path_url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        t0 = time.monotonic()
        while True:
            chunk = s.recv(32768)
            if not chunk:
                break
            data += chunk
            time.sleep(0.02)
        took = time.monotonic() - t0
    finally:
        s.close()
    lines = data.split(b"\r\n\r\n", 1)[1].count(b"\n") if b"\r\n\r\n" in data else 0
    print(f"[streaming] {len(data) / 1e6:.1f} MB read slowly over {took:.1f} s; {lines} lines")
    assert data.startswith(b"HTTP/1.1 200"), bytes(data[:200])
    # Chunked encoding adds lines of its own: at least every row arrived.
    assert lines >= rows, f"the streamed response was cut: {lines} lines of {rows} rows"


# ---------------------------------------------------------------------------------------------
# Floods and the connection limits.

def test_idle_flood_from_many_addresses(hostile_server, db):
    """4,400 idle connections from 40 addresses against a server allowed 4,096 descriptors."""
    srv = hostile_server(fd_limit=4096, flags={"--max-connections": 100_000})
    service = Service(srv, db)
    swarm = Swarm(_port(srv), _sources(2, 40), 110, retry=1.0)
    try:
        t0 = time.monotonic()
        swarm.open()
        opened = time.monotonic() - t0
        held_start = swarm.settle()
        by_source_max = max(swarm.held_by_source().values(), default=0)
        # From now on the connections the server closes (refused, or past the header timeout)
        # are opened again.
        swarm.sustain = True
        swarm.thread = threading.Thread(target=swarm._keep_up, daemon=True)
        swarm.thread.start()
        _attack_window(service, 4.0)
        held_end = swarm.held()
        service.report("idle flood", f"{held_start} at start (of 4400, opened in {opened:.1f} s), "
                                     f"{held_end} after 4 s; at most {by_source_max} per address")
    finally:
        swarm.close()
    service.check()
    log = _stderr(srv)
    assert "Too many open files" not in log, log[-3000:]
    if srv.has_limits:
        assert by_source_max <= PER_PEER
        metrics = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT_S).text
        assert "hourglass_connections_max 3072\n" in metrics, metrics[-2000:]
        refused = [l for l in metrics.splitlines()
                   if l.startswith('hourglass_connections_refused_total{protocol="http",reason="max_connections_per_peer"}')]
        print(f"  {refused[0] if refused else 'no counter'}")
        assert refused and int(refused[0].rsplit(" ", 1)[1]) > 0
        assert "lowered" in log, "an explicit --max-connections above the ceiling was not lowered"


def test_one_address_over_its_limit_is_refused_others_served(hostile_server, db):
    # Long timeouts: the connections held must stay while they are counted.
    srv = hostile_server(flags={"--header-read-timeout-secs": 20, "--pg-startup-timeout-secs": 20})
    service = Service(srv, db)
    pg_port = srv.pg_addr[1]
    http = Swarm(_port(srv), ["127.0.0.9"], 50)
    pg = Swarm(pg_port, ["127.0.0.9"], 30)
    other = Swarm(_port(srv), ["127.0.0.10"], 10)
    try:
        http.open()
        http.settle()  # all 50 admitted before the PostgreSQL ones come
        pg.open()
        other.open()
        pg.settle()
        held = http.held() + pg.held()
        other_held = other.held()
        _attack_window(service, 0.5)
        pg_codes = [r for r in pg.replies if r]
        http_replies = [r for r in http.replies if r]
        service.report("one address over its limit",
                       f"{held} of 80 from 127.0.0.9 (limit {PER_PEER}), {other_held} of 10 from 127.0.0.10")
        print(f"  refused: {len(http.replies)} HTTP, {len(pg.replies)} PostgreSQL; "
              f"PostgreSQL answer: {pg_codes[:1]!r}")
        assert held == PER_PEER, f"127.0.0.9 holds {held} connections, limit {PER_PEER}"
        assert other_held == 10
        assert http_replies == [] and len(pg.replies) == 80 - PER_PEER
        assert all(b"C53300\0" in r for r in pg_codes) and len(pg_codes) == 80 - PER_PEER
    finally:
        http.close()
        pg.close()
        other.close()
    service.check()


def test_global_limit_refuses_with_503(hostile_server, db):
    srv = hostile_server(flags={"--max-connections": 40, "--max-connections-per-peer": 0,
                                "--header-read-timeout-secs": 20})
    swarm = Swarm(_port(srv), ["127.0.0.3"], 45)
    time.sleep(0.3)  # the start-up probe's connections are gone
    try:
        swarm.open()
        held = swarm.settle()
        refused = list(swarm.replies)
        print(f"\n[global limit] held {held} of 45 (limit 40); refusals: {refused[:1]!r}")
        assert held == 40
        assert len(refused) == 5 and all(r.startswith(b"HTTP/1.1 503 ") for r in refused)
    finally:
        swarm.close()
    time.sleep(0.3)
    service = Service(srv, db)
    service.check()
    metrics = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT_S).text
    assert 'hourglass_connections_refused_total{protocol="http",reason="max_connections"} 5\n' in metrics


# ---------------------------------------------------------------------------------------------
# TLS.

def _client_hello() -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_half_open_tls_handshakes(hostile_server, db, tmp_path):
    ca, cert, key = make_ca_and_cert(tmp_path)
    srv = hostile_server(args=["--tls-cert", str(cert), "--tls-key", str(key)])
    hello = _client_hello()
    service = Service(srv, db, verify=str(ca),
                      pg={"host": "localhost", "sslmode": "verify-full", "sslrootcert": str(ca)})
    silent = Swarm(_port(srv), _sources(2, 4), 25)
    partial = Swarm(_port(srv), _sources(6, 4), 25, on_open=lambda s: s.send(hello[:len(hello) // 2]))
    pg_partial = Swarm(srv.pg_addr[1], _sources(10, 2), 25,
                       on_open=lambda s: s.send(struct.pack("!II", 8, 80877103) + hello[:20]))
    try:
        silent.open()
        partial.open()
        pg_partial.open()
        held = silent.held() + partial.held() + pg_partial.held()
        _attack_window(service, 1.0)
        left, waited = _wait_closed([silent, partial, pg_partial],
                                    max(HEADER_TIMEOUT, PG_STARTUP_TIMEOUT) + MARGIN)
        service.report("half-open TLS handshakes", f"{held} of 250")
        print(f"  still open {waited:.1f} s later: {left}")
        assert left == 0, f"{left} half-open TLS connections still open after the timeout"
    finally:
        silent.close()
        partial.close()
        pg_partial.close()
    service.check()


# ---------------------------------------------------------------------------------------------
# PostgreSQL startup.

def _startup(user: str, database: str) -> bytes:
    params = f"user\0{user}\0database\0{database}\0\0".encode()
    return struct.pack("!II", 8 + len(params), 196608) + params


def test_postgres_connections_that_never_finish_startup(hourglass_bin, hostile_server, db):
    srv = hostile_server(args=["--require-auth"])
    creds = add_user(hourglass_bin, srv.data_dir, "ops", ("*", "admin"))
    headers = {"Authorization": f"Token {creds['token']}"}
    service = Service(srv, db, headers=headers, pg={"user": "ops", "password": creds["password"]})
    port = srv.pg_addr[1]
    full = _startup("ops", db)
    swarms = {
        "silent": Swarm(port, _sources(2, 4), 30),
        "half a startup message": Swarm(port, _sources(6, 2), 20, on_open=lambda s: s.send(full[:12])),
        "SSLRequest, then nothing": Swarm(port, _sources(8, 2), 20,
                                          on_open=lambda s: s.send(struct.pack("!II", 8, 80877103))),
        "startup, no SCRAM answer": Swarm(port, _sources(10, 2), 10, on_open=lambda s: s.send(full)),
    }
    try:
        for s in swarms.values():
            s.open()
        time.sleep(0.3)
        held = sum(s.held() for s in swarms.values())
        _attack_window(service, 1.0)
        _wait_closed(list(swarms.values()), PG_STARTUP_TIMEOUT + MARGIN)
        left = {name: s.held() for name, s in swarms.items()}
        service.report("PostgreSQL startup never finished", f"{held} of 220")
        print(f"  still open after the startup timeout: {left}")
        mid_auth = [r for r in swarms["startup, no SCRAM answer"].replies if r]
        print(f"  mid-authentication ones read: {mid_auth[:1]!r}")
        assert sum(left.values()) == 0, left
    finally:
        for s in swarms.values():
            s.close()
    service.check()


# ---------------------------------------------------------------------------------------------
# Shutdown.

def test_sigterm_with_half_sent_requests(hostile_server, db):
    srv = hostile_server()
    acked = 0
    for batch in range(5):
        body = "\n".join(f"m,b=b{batch} v={i}i {NS + batch * 1000 + i}" for i in range(200))
        r = requests.post(f"{srv.url}/api/v3/write_lp", params={"db": db}, data=body, timeout=TIMEOUT_S)
        assert r.status_code == 204, r.text
        acked += 200
    port = _port(srv)
    half_head = _connect(port, "127.0.0.2")
    half_body = _connect(port, "127.0.0.3")
    pg_silent = _connect(srv.pg_addr[1], "127.0.0.4")
    keep_alive = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    idle = Swarm(port, _sources(5, 4), 25).open()
    socks = [s for s in (half_head, half_body, pg_silent, keep_alive) if s is not None]
    try:
        assert half_head and half_body and pg_silent
        half_head.send(b"POST /api/v3/write_lp?db=" + db.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Le")
        half_body.send(f"POST /api/v3/write_lp?db={db} HTTP/1.1\r\nHost: x\r\n"
                       f"Content-Length: 1000\r\n\r\nm,b=half v=1i {NS}\n".encode())
        keep_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b" 200 " in keep_alive.recv(65536)
        time.sleep(0.3)
        proc = srv.proc
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        limit = SHUTDOWN_TIMEOUT + 5
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        print(f"\n[shutdown] exited {rc} {took:.1f} s after SIGTERM with a half-sent head, a "
              f"half-sent body, a silent PostgreSQL connection, a keep-alive one and 100 idle ones open "
              f"(shutdown timeout {SHUTDOWN_TIMEOUT} s)")
        if rc is None:
            srv.kill()
            pytest.fail(f"the server did not exit within {limit} s of SIGTERM")
        srv.proc = None
        assert rc == 0, _stderr(srv)[-3000:]
    finally:
        for s in socks:
            s.close()
        idle.close()
    srv.start()
    r = requests.get(f"{srv.url}/api/v3/query_sql",
                     params={"db": db, "q": "SELECT count(*) AS n FROM m", "format": "json"},
                     timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.json() == [{"n": acked}], r.text
