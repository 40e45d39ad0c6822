"""Helpers shared by the end-to-end tests: HTTP calls against a running server (line protocol
writes, SQL queries, admin actions), timestamp conversions, a psycopg connector and a process's
resident memory (read once or sampled in a thread). Every request has a timeout."""

from __future__ import annotations

import calendar
import gzip as gzip_mod
import json
import re
import threading
from datetime import datetime, timezone

import requests

TIMEOUT_S = 30

NS_PER_S = 1_000_000_000

# The time rendering of query results: ISO 8601 without a zone, optional fractional seconds.
ISO_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|\+00:00)?$")


def parse_time(text: str) -> int:
    """`2024-01-01T00:00:00.000000123` (UTC, zone optional) -> nanoseconds since the epoch."""
    m = ISO_RE.match(text)
    assert m, f"not an ISO timestamp: {text!r}"
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "").ljust(9, "0")
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    return secs * NS_PER_S + int(frac or "0")


def ns(text: str) -> int:
    """Nanoseconds of an ISO time written in a test, e.g. ns('2024-01-01T00:00:01.5')."""
    return parse_time(text)


def iso(nanos: int) -> str:
    """The whole-second part of a timestamp as the server renders it (no zone)."""
    return datetime.fromtimestamp(nanos // NS_PER_S, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


class HttpClient:
    """Mixed into the server object of conftest: needs `self.url`."""

    url: str

    # -- writes --------------------------------------------------------------------------------

    def _post_lp(self, path: str, body, params: dict, gzip: bool, headers: dict | None):
        data = body.encode() if isinstance(body, str) else body
        hdrs = {"Content-Type": "text/plain; charset=utf-8"}
        if gzip:
            data = gzip_mod.compress(data)
            hdrs["Content-Encoding"] = "gzip"
        if headers:
            hdrs.update(headers)
        params = {k: v for k, v in params.items() if v is not None}
        return requests.post(f"{self.url}{path}", params=params, data=data, headers=hdrs, timeout=TIMEOUT_S)

    def write_v1(self, body, db="testdb", precision=None, gzip=False, headers=None, **params):
        return self._post_lp("/write", body, {"db": db, "precision": precision, **params}, gzip, headers)

    def write_v2(self, body, bucket="testdb", org="o", precision=None, gzip=False, headers=None):
        return self._post_lp(
            "/api/v2/write",
            body,
            {"org": org, "bucket": bucket, "precision": precision},
            gzip,
            headers,
        )

    def write_v3(self, body, db="testdb", precision=None, accept_partial=None, gzip=False, headers=None):
        params = {"db": db, "precision": precision}
        if accept_partial is not None:
            params["accept_partial"] = "true" if accept_partial else "false"
        return self._post_lp("/api/v3/write_lp", body, params, gzip, headers)

    def write_ok(self, body, db="testdb", precision=None, api="v3", gzip=False):
        if api == "v1":
            r = self.write_v1(body, db=db, precision=precision, gzip=gzip)
        elif api == "v2":
            r = self.write_v2(body, bucket=db, precision=precision, gzip=gzip)
        else:
            r = self.write_v3(body, db=db, precision=precision, gzip=gzip)
        assert r.status_code == 204, f"write failed: {r.status_code} {r.text[:3000]}"
        return r

    # -- queries -------------------------------------------------------------------------------

    def query(self, sql: str, db: str | None = "testdb", format: str | None = "json", method: str = "GET"):
        params = {"db": db, "q": sql}
        if format is not None:
            params["format"] = format
        params = {k: v for k, v in params.items() if v is not None}
        if method == "GET":
            return requests.get(f"{self.url}/api/v3/query_sql", params=params, timeout=TIMEOUT_S)
        return requests.post(f"{self.url}/api/v3/query_sql", json=params, timeout=TIMEOUT_S)

    def rows(self, sql: str, db: str = "testdb") -> list[dict]:
        r = self.query(sql, db=db, format="json")
        assert r.status_code == 200, f"query {sql!r} failed: {r.status_code} {r.text[:3000]}"
        return json.loads(r.text)

    def count(self, table: str, db: str = "testdb") -> int:
        return self.rows(f'SELECT COUNT(*) AS n FROM "{table}"', db=db)[0]["n"]

    # -- admin ---------------------------------------------------------------------------------

    def flush(self) -> dict:
        r = requests.post(f"{self.url}/admin/flush", timeout=120)
        assert r.status_code == 200, f"/admin/flush failed: {r.status_code} {r.text}"
        return r.json()

    def influx_client(self, **kwargs):
        from influxdb_client import InfluxDBClient

        return InfluxDBClient(url=self.url, token="x", org="o", timeout=TIMEOUT_S * 1000, **kwargs)


def pg_connector(server, db: str, lp: str):
    """Writes `lp` into database `db` of `server`, then returns a psycopg connector to it:
    `connect(**kw)` opens a connection (user `hg`, trust), with `.db`, `.host`, `.port` and
    `.pid` (the server's process id) for tests that need them."""
    import psycopg

    server.write_ok(lp, db=db)
    host, port = server.pg_addr

    def connect(**kw):
        return psycopg.connect(host=host, port=port, dbname=db, user="hg", connect_timeout=10, **kw)

    connect.db = db
    connect.host = host
    connect.port = port
    connect.pid = server.proc.pid
    return connect


# -- a process's memory ------------------------------------------------------------------------


def rss_bytes(pid: int, key: str = "VmRSS") -> int:
    """A size of /proc/PID/status in bytes: the resident set (VmRSS) or e.g. its peak (VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for {pid}")


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread while in the `with` block: `.base` when
    created, `.peak` the largest seen (read once more at the end), `.growth` their difference."""

    def __init__(self, pid: int):
        self.pid = pid
        self.base = self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, AssertionError):
                return
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.base
