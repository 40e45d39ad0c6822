"""Prometheus remote write and remote read 1.0 against Hourglass (`/api/v1/prom/write`,
`/api/v1/prom/read`; mapping in docs/protocols/prometheus.md).

- A real Prometheus (Debian's `prometheus`, 2.42) scrapes itself and a small exporter served by
  this test (counters, a gauge and a histogram with fixed label sets, one series lacking a label)
  and remote-writes to Hourglass. A second Prometheus with no targets reads everything back
  through remote read (`read_recent: true`); the same PromQL range queries (`rate`, `sum by`,
  `histogram_quantile`, `!=`/`=~`/`!~` and missing-label selectors) must give equal answers.
- Hand-encoded protobuf (the wire format written out below, snappy literals) checks write ->
  read directly: stale markers and NaN payloads bit for bit, every matcher kind, inclusive time
  bounds, the one-table layout, and the same after the rows moved to Parquet.
- Malformed bodies get 400 with a text naming what is wrong; with `--require-auth`, callers
  without the grant get 401/403.
- One keep-alive client's remote-write throughput (500 series, 1000 samples a request) is
  printed.
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from hgtest import parse_time
from sectest import add_user, token_headers, write_lp

TIMEOUT_S = 30
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
STALE_NAN = 0x7FF0000000000002

# -- protobuf and snappy, written out -------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return _varint(tag << 3 | 2) + _varint(len(payload)) + payload


def _int_field(tag: int, n: int) -> bytes:
    return _varint(tag << 3) + _varint(n)


def _double_field(tag: int, bits: int) -> bytes:
    return _varint(tag << 3 | 1) + struct.pack("<Q", bits)


def _bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def write_request(series) -> bytes:
    """`series`: [(labels dict, [(timestamp_ms, float or ('bits', int))])]."""
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in labels.items():
            ts += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for t, v in samples:
            bits = v[1] if isinstance(v, tuple) else _bits(v)
            ts += _field(2, _double_field(1, bits) + _int_field(2, t))
        out += _field(1, bytes(ts))
    return bytes(out)


def read_request(queries) -> bytes:
    """`queries`: [(start_ms, end_ms, [(type, name, value)])], type 0 EQ 1 NEQ 2 RE 3 NRE."""
    out = bytearray()
    for start, end, matchers in queries:
        q = _int_field(1, start) + _int_field(2, end)
        for kind, name, value in matchers:
            q += _field(3, _int_field(1, kind) + _field(2, name.encode()) + _field(3, value.encode()))
        out += _field(1, q)
    return bytes(out)


def _fields(buf: bytes):
    """(tag, wire type, value) of a message: ints for varints and fixed64, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        tag, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 1:
            value, i = struct.unpack_from("<Q", buf, i)[0], i + 8
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        yield tag, wire, value


def _read_varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def read_response(buf: bytes):
    """[[(labels tuple, [(timestamp_ms, value bits)])]] per query."""
    results = []
    for tag, _, qr in _fields(buf):
        assert tag == 1
        series = []
        for _, _, ts in _fields(qr):
            labels, samples = [], []
            for t, _, v in _fields(ts):
                if t == 1:
                    kv = {tt: vv.decode() for tt, _, vv in _fields(v)}
                    labels.append((kv.get(1, ""), kv.get(2, "")))
                elif t == 2:
                    s = {tt: vv for tt, _, vv in _fields(v)}
                    stamp = s.get(2, 0)
                    stamp = stamp - (1 << 64) if stamp >= 1 << 63 else stamp
                    samples.append((stamp, s.get(1, 0)))
            series.append((tuple(labels), samples))
        results.append(series)
    return results


def snappy_compress(data: bytes) -> bytes:
    """A valid snappy block holding only literals (every decoder reads it)."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        out += bytes([61 << 2]) + struct.pack("<H", len(chunk) - 1) + chunk
    return bytes(out)


def snappy_decompress(data: bytes) -> bytes:
    size, i = _read_varint(data, 0)
    out = bytearray()
    while i < len(data):
        tag = data[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[i:i + extra], "little")
                i += extra
            n += 1
            out += data[i:i + n]
            i += n
            continue
        if kind == 1:
            n, offset = 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | data[i]
            i += 1
        elif kind == 2:
            n, offset = (tag >> 2) + 1, int.from_bytes(data[i:i + 2], "little")
            i += 2
        else:
            n, offset = (tag >> 2) + 1, int.from_bytes(data[i:i + 4], "little")
            i += 4
        for _ in range(n):
            out.append(out[-offset])
    assert len(out) == size
    return bytes(out)


def prom_write(url, db, body: bytes, session=None, headers=None, raw=False, **params):
    data = body if raw else snappy_compress(body)
    h = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
         "X-Prometheus-Remote-Write-Version": "0.1.0", **(headers or {})}
    return (session or requests).post(f"{url}/api/v1/prom/write", params={"db": db, **params},
                                      data=data, headers=h, timeout=TIMEOUT_S)


def prom_read(url, db, queries, headers=None, **params):
    h = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
         "X-Prometheus-Remote-Read-Version": "0.1.0", **(headers or {})}
    r = requests.post(f"{url}/api/v1/prom/read", params={"db": db, **params},
                      data=snappy_compress(read_request(queries)), headers=h, timeout=TIMEOUT_S)
    return r


def read_ok(url, db, queries, **params):
    r = prom_read(url, db, queries, **params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Encoding"] == "snappy"
    return read_response(snappy_decompress(r.content))


# -- direct protobuf tests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hg(module_server):
    return module_server()


def test_write_then_read_is_exact(hg):
    now = int(time.time() * 1000) // 1000 * 1000
    t0, t1, t2 = now - 30_000, now - 20_000, now - 10_000
    payload_nan = 0x7FF8000000000001
    series = [
        ({"__name__": "http_requests_total", "job": "api", "code": "200", "path": "/a"},
         [(t0, 1.0), (t1, ("bits", STALE_NAN)), (t2, 3.0)]),
        ({"__name__": "http_requests_total", "job": "api", "code": "500"},  # no path
         [(t0, 4.0), (t1, ("bits", payload_nan))]),
        ({"job": "web", "__name__": "http_requests_total", "code": "200", "path": "/b"},
         [(t2, float("inf")), (t0, -0.0)]),  # out of order within a series
        ({"__name__": "queue_depth", "job": "api", "time": "label named time"}, [(t1, 7.5)]),
    ]
    r = prom_write(hg.url, "p", write_request(series))
    assert r.status_code == 204, r.text

    def q(*matchers, start=t0, end=t2):
        return read_ok(hg.url, "p", [(start, end, list(matchers))])[0]

    everything = q((0, "__name__", "http_requests_total"))
    labels = [dict(s[0]) for s in everything]
    # Sorted by labels; the absent `path` is absent, not empty.
    assert labels == [
        {"__name__": "http_requests_total", "code": "200", "job": "api", "path": "/a"},
        {"__name__": "http_requests_total", "code": "200", "job": "web", "path": "/b"},
        {"__name__": "http_requests_total", "code": "500", "job": "api"},
    ]
    assert everything[0][1] == [(t0, _bits(1.0)), (t1, STALE_NAN), (t2, _bits(3.0))]
    assert everything[1][1] == [(t0, _bits(-0.0)), (t2, _bits(float("inf")))]
    assert everything[2][1] == [(t0, _bits(4.0)), (t1, payload_nan)]

    def names(series_list):
        return [dict(s[0]).get("path", "-") + "/" + dict(s[0])["job"] + "/" + dict(s[0])["code"]
                for s in series_list]

    m = (0, "__name__", "http_requests_total")
    assert names(q(m, (1, "code", "200"))) == ["-/api/500"]
    assert names(q(m, (2, "path", "/[ab]"))) == ["/a/api/200", "/b/web/200"]
    assert names(q(m, (3, "path", "/a.*"))) == ["/b/web/200", "-/api/500"]
    assert names(q(m, (0, "path", ""))) == ["-/api/500"]  # missing label
    assert names(q(m, (1, "path", ""))) == ["/a/api/200", "/b/web/200"]
    assert names(q(m, (2, "job", "ap"))) == []  # anchored: "ap" does not match "api"
    assert names(q(m, (2, "job", "api|web"), (2, "code", "5.."))) == ["-/api/500"]
    assert names(q((2, "__name__", "http_.*"), (0, "job", "web"))) == ["/b/web/200"]
    # Time bounds are inclusive, in milliseconds.
    only_t1 = q(m, (0, "job", "api"), start=t1, end=t1)
    assert [s[1] for s in only_t1] == [[(t1, STALE_NAN)], [(t1, payload_nan)]]
    assert q(m, start=t1 + 1, end=t2 - 1) == []
    # A label whose name is a column of the table reads back under its own name.
    other = q((0, "__name__", "queue_depth"), (0, "time", "label named time"))
    assert [dict(s[0]) for s in other] == [
        {"__name__": "queue_depth", "job": "api", "time": "label named time"}]
    # The rows as SQL sees them: one table per metric, labels as dimensions, measure_name.
    rows = hg.rows('SELECT measure_name, job, code, path, "measure_value::double" AS v '
                   'FROM http_requests_total WHERE code = \'500\' ORDER BY time', db="p")
    assert [r["measure_name"] for r in rows] == ["http_requests_total"] * 2
    assert "path" not in rows[0] and rows[0]["v"] == 4.0  # NULL (the JSON leaves it out)

    # Two queries in one request answer in order; after the rows moved to Parquet, the same.
    both = [(t0, t2, [m, (0, "job", "api")]), (t0, t2, [(0, "__name__", "queue_depth")])]
    before = read_ok(hg.url, "p", both)
    assert [len(r) for r in before] == [2, 1]
    assert before[0][0][1][1] == (t1, STALE_NAN) and before[0][1][1][1] == (t1, payload_nan)
    assert hg.flush() is not None
    assert read_ok(hg.url, "p", both) == before
    # Acknowledged means durable: after SIGKILL the WAL gives the samples back, bits intact.
    late = [({"__name__": "after_crash", "job": "api"}, [(t2, ("bits", STALE_NAN)), (t2 + 1, ("bits", payload_nan))])]
    assert prom_write(hg.url, "p", write_request(late)).status_code == 204
    hg.kill()
    hg.start()
    got = read_ok(hg.url, "p", [(t2, t2 + 1, [(0, "__name__", "after_crash")])])[0]
    assert got == [((("__name__", "after_crash"), ("job", "api")), [(t2, STALE_NAN), (t2 + 1, payload_nan)])]


def test_one_table_layout_of_the_timestream_connector(hg):
    now = int(time.time() * 1000)
    series = [({"__name__": "a_metric", "host": "h1"}, [(now - 5000, 1.0)]),
              ({"__name__": "b_metric", "host": "h2"}, [(now - 5000, 2.0)]),
              ({"__name__": "_hidden", "host": "h3"}, [(now - 5000, 3.0)])]
    assert prom_write(hg.url, "onetable", write_request(series), table="prometheus").status_code == 204
    rows = hg.rows('SELECT measure_name, host FROM prometheus ORDER BY host', db="onetable")
    assert [r["measure_name"] for r in rows] == ["a_metric", "b_metric", "_hidden"]
    got = read_ok(hg.url, "onetable", [(now - 10_000, now, [(2, "__name__", "[ab]_metric|_h.*")])],
                  table="prometheus")[0]
    assert [dict(s[0])["host"] for s in got] == ["h3", "h1", "h2"]
    # Per metric, a name that is not a valid table name shares `prometheus.other`.
    assert prom_write(hg.url, "names", write_request(series)).status_code == 204
    got = read_ok(hg.url, "names", [(now - 10_000, now, [(2, "__name__", "_.*")])])[0]
    assert [dict(s[0]) for s in got] == [{"__name__": "_hidden", "host": "h3"}]
    assert hg.rows('SELECT count(*) AS n FROM "prometheus.other"', db="names")[0]["n"] == 1


def test_malformed_requests_are_400_with_a_reason(hg):
    now = int(time.time() * 1000)
    good = write_request([({"__name__": "m"}, [(now, 1.0)])])
    cases = [
        (prom_write(hg.url, "bad", b"not snappy at all", raw=True), "snappy"),
        (prom_write(hg.url, "bad", b"\x0a\x05ab"), "protobuf"),
        (prom_write(hg.url, "bad", b"", raw=True), "empty"),
        (prom_write(hg.url, "", good), "'db'"),
        (prom_write(hg.url, "bad", write_request([({"job": "x"}, [(now, 1.0)])])), "__name__"),
        # An hour ahead: past the 15 minutes of future a write window allows.
        (prom_write(hg.url, "bad", write_request([({"__name__": "m"}, [(now, 1.0), (now + 3_600_000, 2.0)])])),
         "1 samples not written (outside the write window)"),
        (prom_read(hg.url, "p", [(0, now, [(2, "job", "a(")])]), 'job=~"a("'),
        (prom_read(hg.url, "p", [(0, now, [(9, "job", "a")])]), "unknown type 9"),
    ]
    for r, reason in cases:
        assert r.status_code == 400, (reason, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers
        assert reason in r.text, (reason, r.text)
    r = prom_write(hg.url, "bad", good,
                   headers={"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
    assert r.status_code == 415 and "remote write 2.0" in r.text, r.text
    r = requests.post(f"{hg.url}/api/v1/prom/read", params={"db": "p"}, data=b"\x00garbage",
                      timeout=TIMEOUT_S)
    assert r.status_code == 400 and "not valid snappy" in r.text, r.text
    # The sample inside the window of the partly refused request was written.
    got = read_ok(hg.url, "bad", [(now - 1000, now + 7_200_000, [(0, "__name__", "m")])])[0]
    assert [s[1] for s in got] == [[(now, _bits(1.0))]]
    assert prom_read(hg.url, "nosuchdb", [(0, now, [])]).status_code == 404


def test_remote_write_and_read_need_grants(module_server, hourglass_bin):
    srv = module_server(args=["--require-auth"])
    d = srv.data_dir
    op = add_user(hourglass_bin, d, "op", ("*", "admin"))
    writer = add_user(hourglass_bin, d, "writer", ("metrics", "write"))
    reader = add_user(hourglass_bin, d, "reader", ("metrics", "read"))
    now = int(time.time() * 1000)
    body = write_request([({"__name__": "m", "k": "v"}, [(now - 1000, 1.0)])])
    # A write grant alone cannot create the database.
    assert prom_write(srv.url, "metrics", body, headers=token_headers(writer)).status_code == 403
    assert write_lp(srv.url, "metrics", "setup x=1i", headers=token_headers(op)).status_code == 204
    assert prom_write(srv.url, "metrics", body).status_code == 401
    r = prom_write(srv.url, "metrics", body, headers=token_headers(reader))
    assert r.status_code == 403 and "may not write" in r.text, r.text
    r = prom_write(srv.url, "metrics", body, headers={"Authorization": f"Bearer {writer['token']}"})
    assert r.status_code == 204, r.text
    q = [(now - 5000, now, [(0, "__name__", "m")])]
    assert prom_read(srv.url, "metrics", q).status_code == 401
    assert prom_read(srv.url, "metrics", q, headers=token_headers(writer)).status_code == 403
    r = prom_read(srv.url, "metrics", q, headers=token_headers(reader))
    assert r.status_code == 200, r.text
    assert [dict(s[0]) for s in read_response(snappy_decompress(r.content))[0]] == [
        {"__name__": "m", "k": "v"}]


def test_a_full_memory_store_is_503_with_retry_after(module_server):
    """Prometheus retries 5xx: past the memory budget the answer is 503 + Retry-After."""
    srv = module_server(args=["--memory-budget-mb", "1", "--maintenance-interval-ms", "3600000"])
    base = int(time.time() * 1000) - 60_000
    seen = None
    for i in range(50):
        series = [({"__name__": "fill", "instance": f"host-{s}", "pad": f"{'x' * 40}{i}-{s}"},
                   [(base + i * 10, float(i))]) for s in range(5000)]
        r = prom_write(srv.url, "full", write_request(series))
        if r.status_code != 204:
            seen = r
            break
    assert seen is not None, "the memory store never filled"
    assert seen.status_code == 503, seen.text
    assert seen.headers.get("Retry-After") == "1", seen.headers
    assert "memory store is full" in seen.text, seen.text


def test_remote_write_throughput_of_one_client(hg, capsys):
    """500 series, 2 samples each = 1000 samples a request (Prometheus sends 500-2000), over one
    keep-alive connection; the bodies are encoded beforehand."""
    base = int(time.time() * 1000) - 600_000
    bodies = []
    for i in range(30):
        series = [({"__name__": f"bench_metric_{s % 50}", "instance": f"host-{s}", "job": "bench",
                    "region": f"r{s % 5}"},
                   [(base + i * 2000, float(i)), (base + i * 2000 + 1000, float(i) + 0.5)])
                  for s in range(500)]
        bodies.append(snappy_compress(write_request(series)))
    session = requests.Session()
    assert prom_write(session=session, url=hg.url, db="bench", body=bodies[0], raw=True).status_code == 204
    start = time.perf_counter()
    for body in bodies[1:]:
        r = prom_write(session=session, url=hg.url, db="bench", body=body, raw=True)
        assert r.status_code == 204, r.text
    elapsed = time.perf_counter() - start
    samples = 1000 * (len(bodies) - 1)
    rate = samples / elapsed
    with capsys.disabled():
        print(f"\nremote write, one keep-alive client: {samples} samples in {elapsed:.2f} s = "
              f"{rate:,.0f} samples/s ({(len(bodies) - 1) / elapsed:.1f} requests/s)")
    assert hg.rows("SELECT count(*) AS n FROM bench_metric_7", db="bench")[0]["n"] == 30 * 10 * 2
    assert rate > 1000


# -- a real Prometheus on both sides ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """/metrics in the text format: counters, a gauge and a histogram whose values move by fixed
    steps at every scrape."""

    def __init__(self):
        self.scrapes = 0
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def render(self) -> str:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        lines = ["# TYPE test_requests_total counter"]
        for method, code, path, step in [("get", "200", "/a", 5), ("get", "404", "/b", 1),
                                         ("put", "200", "/a", 2), ("post", "500", None, 3)]:
            labels = f'method="{method}",code="{code}"' + (f',path="{path}"' if path else "")
            lines.append(f"test_requests_total{{{labels}}} {n * step}")
        lines.append("# TYPE test_temperature_celsius gauge")
        for room, base in [("kitchen", 20.5), ("cellar", 11.25)]:
            lines.append(f'test_temperature_celsius{{room="{room}"}} {base + (n % 7) * 0.5}')
        lines.append("# TYPE test_latency_seconds histogram")
        cumulative = 0
        for le, per in [("0.05", 3), ("0.1", 2), ("0.5", 4), ("1", 1), ("+Inf", 1)]:
            cumulative += per + (n % 3 if le == "0.5" else 0)
            lines.append(f'test_latency_seconds_bucket{{handler="api",le="{le}"}} {cumulative * n}')
        lines.append(f'test_latency_seconds_sum{{handler="api"}} {n * 2.75}')
        lines.append(f'test_latency_seconds_count{{handler="api"}} {cumulative * n}')
        return "\n".join(lines) + "\n"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    def __init__(self, directory: Path, config: str, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "prometheus.yml").write_text(config)
        self.log = directory / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}",
                 f"--storage.tsdb.path={directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited: {self.log.read_text()[-3000:]}"
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(f"prometheus not ready: {self.log.read_text()[-3000:]}")

    def query(self, path: str, **params):
        r = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=TIMEOUT_S)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        return body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


QUERIES = [
    "up",
    "test_requests_total",
    "rate(test_requests_total[5s])",
    "sum by (code) (rate(test_requests_total[5s]))",
    "histogram_quantile(0.9, sum by (le) (rate(test_latency_seconds_bucket[5s])))",
    'test_requests_total{code!="200"}',
    'test_requests_total{method=~"get|put", path!~"/b.*"}',
    'test_requests_total{path=""}',
    "avg_over_time(test_temperature_celsius[4s])",
    'count by (__name__) ({__name__=~"test_.*", job="exporter"})',
    'rate(prometheus_http_requests_total{handler="/metrics"}[5s])',
    "go_goroutines",
]


def test_prometheus_reads_back_through_hourglass_what_it_wrote(hg, tmp_path):
    assert Path(PROMETHEUS).exists(), "prometheus is not installed: run scripts/install-test-deps.sh"
    exporter = Exporter()
    started: list[Prometheus] = []
    try:
        p1_port = _free_port()
        writer = Prometheus(tmp_path / "writer", f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{p1_port}"]}}]
  - job_name: exporter
    static_configs: [{{targets: ["127.0.0.1:{exporter.port}"]}}]
remote_write:
  - url: "{hg.url}/api/v1/prom/write?db=prom"
    queue_config: {{min_shards: 1, max_shards: 1, batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
""", p1_port)
        started.append(writer)
        # Both targets up, then enough data for 5 s rates over a 12 s range.
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            up = writer.query("query", query="up == 1")["data"]["result"]
            if len(up) == 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"targets not up: {up}")
        time.sleep(16)
        end = int(time.time()) - 2
        start = end - 12
        # Everything up to past `end` is in Hourglass (one shard sends in order).
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            r = hg.query('SELECT job, max(time) AS t FROM up GROUP BY job', db="prom")
            newest = r.json() if r.status_code == 200 else r.text
            if r.status_code == 200 and len(newest) == 2 and all(
                    _epoch(row["t"]) >= end + 3 for row in newest):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"remote write did not catch up to {end + 3}: {newest}")

        p2_port = _free_port()
        reader = Prometheus(tmp_path / "reader", f"""
global:
  scrape_interval: 1s
remote_read:
  - url: "{hg.url}/api/v1/prom/read?db=prom"
    read_recent: true
""", p2_port)
        started.append(reader)
        for promql in QUERIES:
            params = dict(query=promql, start=start, end=end, step="1s")
            want = writer.query("query_range", **params)["data"]
            got = reader.query("query_range", **params)
            assert "warnings" not in got, (promql, got["warnings"])
            assert want["result"], f"{promql}: no data in the writing Prometheus"
            assert got["data"] == want, f"{promql}:\nwriter {want}\nreader {got['data']}"
    finally:
        for p in started:
            p.stop()
        exporter.close()


def _epoch(value) -> float:
    return parse_time(value) / 1e9 if isinstance(value, str) else float(value) / 1e9
