"""The query memory and time limits hold for the values functions build, and only users who may
read run queries at all.

With `--query-memory-mb 256 --query-timeout-secs 2`, a query that asks a function for a huge value
(`repeat('x', 1500000000)`, `lpad`, `array_repeat`, `range`, `replace`, `||` chains, a constant
repeated over every row, a running `string_agg` over a window, ...) is refused at once with a
resources-exhausted error naming what it would build, and the server's resident memory (VmRSS of
/proc/PID/status) stays far below the gigabytes DataFusion alone would allocate, during and after;
work that runs long (a `generate_series` table of a trillion rows) ends at the time limit.

With `--require-auth`, a user holding only a `write` grant may not run any query, not even
`SELECT 1`: HTTP 403 on /api/v3/query_sql, SQLSTATE 42501 on the PostgreSQL wire, and
AccessDeniedException from the Timestream Query API.
"""

from __future__ import annotations

import threading
import time

import boto3
import psycopg
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from sectest import add_user, query_sql, token_headers, write_lp

TIMEOUT = 60
MIB = 1 << 20
# The debug binary idles at ~60-90 MiB; with the bounds a refused query adds little. Without them
# `repeat('x', 1500000000)` alone took the server to 5.8 GiB.
RSS_LIMIT = 1024 * MIB
NS = 1_000_000_000
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread; `.peak` is the largest seen."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def limited(module_server):
    srv = module_server(args=["--query-memory-mb", "256", "--query-timeout-secs", "2"])
    # A table (in the memory store) to build on: constants repeated over its rows, columns.
    now = time.time_ns()
    lines = "\n".join(f"m,h=h{i % 10} v={i}i,s=\"{'x' * 100}\" {now - (5000 - i) * 1000}"
                      for i in range(5000))
    r = requests.post(f"{srv.url}/api/v3/write_lp", params={"db": "lim"}, data=lines, timeout=TIMEOUT)
    assert r.status_code == 204, r.text
    # To Parquet: a projection DataFusion pushes into the scan is evaluated by the decoder.
    r = requests.post(f"{srv.url}/admin/flush", timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["files_written"] >= 1, r.text
    return srv


def run(srv, sql: str):
    t0 = time.monotonic()
    r = requests.post(f"{srv.url}/api/v3/query_sql", json={"db": "lim", "q": sql, "format": "json"},
                      timeout=TIMEOUT)
    return r, time.monotonic() - t0


BIG = "y" * 100_000


# (what the error names, the query): each would build gigabytes without the bounds.
AMPLIFIERS = [
    ("repeat", "SELECT length(repeat('x', 1500000000))"),
    ("lpad", "SELECT length(lpad('x', 1500000000))"),
    ("rpad", "SELECT length(rpad('x', 1500000000, 'yz'))"),
    ("array_repeat", "SELECT cardinality(array_repeat(1, 1000000000))"),
    ("array_repeat", "SELECT cardinality(array_repeat(repeat('x', 1000), 10000000))"),
    ("array_resize", "SELECT cardinality(array_resize([1], 1000000000, 0))"),
    ("range", "SELECT cardinality(range(1000000000))"),
    ("generate_series", "SELECT cardinality(generate_series(1, 1000000000))"),
    ("sequence", "SELECT count(cardinality(sequence(v, v + 10000))) FROM generate_series(1, 100000) AS t(v)"),
    ("replace", "SELECT length(replace(repeat('a', 10000000), 'a', repeat('b', 1000)))"),
    ("regexp_replace", "SELECT length(regexp_replace(repeat('a', 1000000), 'a', repeat('b', 1000), 'g'))"),
    ("array_replace_all", "SELECT cardinality(array_replace_all(array_repeat('a', v), 'a', repeat('b', 1000))) "
                          "FROM (VALUES (1000000)) AS t(v)"),
    ("array_to_string", "SELECT length(array_to_string(range(v), repeat('-', 1000))) FROM (VALUES (1000000)) AS t(v)"),
    ("to_char", "SELECT length(to_char(now(), repeat('%c', 3000000)))"),
    ("concat", "SELECT length(concat(s, s, s, s, s, s, s, s)) FROM (SELECT repeat('x', v) AS s FROM (VALUES (30000000)) AS t(v))"),
    ("||", "SELECT length(s || s || s || s || s || s || s || s) FROM (SELECT repeat('x', v) AS s FROM (VALUES (30000000)) AS t(v))"),
    ("overlay", "SELECT length(overlay(s placing concat(s, s) from 2)) FROM (SELECT repeat('x', v) AS s FROM (VALUES (30000000)) AS t(v))"),
    ("make_array", "SELECT cardinality(make_array(s, s, s)) FROM (SELECT repeat('x', v) AS s FROM (VALUES (30000000)) AS t(v))"),
    # A constant repeated over every row of a batch.
    ("repeated over", "SELECT repeat('x', 1000000) FROM generate_series(1, 100000)"),
    ("repeated over", "SELECT repeat('y', 1000000) AS c, v FROM m"),
    ("repeated over", f"SELECT '{BIG}' AS c FROM m"),
    ("repeated over", f"SELECT max(length(CASE WHEN v > 0 THEN '{BIG}' ELSE 'a' END)) FROM m"),
    ("repeated over", f"SELECT h, max(concat(h, '{BIG}')) FROM m GROUP BY h"),
    ("repeated over", f"SELECT v FROM m ORDER BY concat(CAST(v AS VARCHAR), '{BIG}') LIMIT 1"),
    ("lpad", "SELECT lpad(s, 100000) FROM m"),
    # Many constants in one query.
    ("constants of the query", "SELECT " + ", ".join(f"length(repeat('{c}', 10000000)) AS {c}" for c in "abcdefgh")),
    # A running aggregate over a window: quadratic in the partition.
    ("string_agg over a window",
     "SELECT max(length(a)) FROM (SELECT string_agg(s, ',') OVER (ORDER BY v) AS a FROM "
     "(SELECT v, lpad(CAST(v AS VARCHAR), 1000, 'x') AS s FROM generate_series(1, 100000) AS t(v)))"),
    ("array_agg over a window",
     "SELECT max(cardinality(a)) FROM (SELECT array_agg(s) OVER (ORDER BY v) AS a FROM "
     "(SELECT v, lpad(CAST(v AS VARCHAR), 1000, 'x') AS s FROM generate_series(1, 100000) AS t(v)))"),
]


def test_amplifying_functions_are_refused_quickly_and_memory_stays_low(limited):
    pid = limited.proc.pid
    idle = rss_bytes(pid)
    with RssSampler(pid) as sampler:
        for what, sql in AMPLIFIERS:
            r, took = run(limited, sql)
            assert r.status_code == 503, f"{sql[:200]}: {r.status_code} {r.text[:300]}"
            error = r.json()["error"]
            assert what in error, f"{sql[:200]}: {error}"
            assert "query exceeded its resources" in error, f"{sql[:200]}: {error}"
            assert took < 10, f"{sql[:200]} took {took:.1f} s"
            assert sampler.peak < RSS_LIMIT, f"after {sql[:200]}: RSS {sampler.peak / MIB:.0f} MiB"
    time.sleep(1)
    after = rss_bytes(pid)
    assert after < RSS_LIMIT
    # mimalloc returns freed pages to the OS 5 s after they are freed with the default memory
    # budget (crates/hourglass/src/allocator.rs).
    time.sleep(6)
    later = rss_bytes(pid)
    print(f"\nidle RSS {idle / MIB:.0f} MiB, peak {sampler.peak / MIB:.0f} MiB, "
          f"1 s after {after / MIB:.0f} MiB, 7 s after {later / MIB:.0f} MiB")
    # The server still answers, and ordinary calls of the same functions are answered.
    r, _ = run(limited, "SELECT repeat('ab', 3) AS r, lpad('7', 3, '0') AS p, cardinality(range(10)) AS n, "
                        "'a' || 'b' AS c, length(string_agg(s, ',')) AS l FROM m")
    assert r.status_code == 200, r.text
    assert r.json() == [{"r": "ababab", "p": "007", "n": 10, "c": "ab", "l": 5000 * 101 - 1}]


def test_aggregates_past_the_memory_limit_are_refused(limited):
    pid = limited.proc.pid
    with RssSampler(pid) as sampler:
        for sql in [
            "SELECT length(string_agg(s, ',')) FROM (SELECT lpad(CAST(v AS VARCHAR), 1000, 'x') AS s "
            "FROM generate_series(1, 1000000) AS t(v))",
            "SELECT cardinality(array_agg(s)) FROM (SELECT lpad(CAST(v AS VARCHAR), 1000, 'x') AS s "
            "FROM generate_series(1, 1000000) AS t(v))",
        ]:
            r, took = run(limited, sql)
            assert r.status_code == 503, f"{sql}: {r.status_code} {r.text[:300]}"
            assert "query exceeded its resources" in r.json()["error"], r.text
            assert took < 20, f"{sql} took {took:.1f} s"
    assert sampler.peak < RSS_LIMIT, f"RSS {sampler.peak / MIB:.0f} MiB"


def test_long_work_ends_at_the_time_limit(limited):
    pid = limited.proc.pid
    with RssSampler(pid) as sampler:
        for sql in [
            "SELECT count(*) FROM generate_series(1, 1000000000000) AS t(v)",
            "SELECT max(v) FROM range(1, 1000000000000) AS t(v)",
            "SELECT count(DISTINCT length(lpad(CAST(v AS VARCHAR), 100, 'x'))) FROM generate_series(1, 1000000000000) AS t(v)",
        ]:
            r, took = run(limited, sql)
            assert r.status_code == 503, f"{sql}: {r.status_code} {r.text[:300]}"
            assert "time limit" in r.json()["error"], r.text
            assert took < 8, f"{sql} took {took:.1f} s with a 2 s limit"
        # One long synchronous evaluation (planning folds it): a `reduce` copying its growing
        # state 10,000 times. Each step is a bounded call that checks the query's deadline.
        query = boto3.client("timestream-query", endpoint_url=limited.url, region_name="us-east-1",
                             aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                             config=NO_RETRY)
        t0 = time.monotonic()
        with pytest.raises(ClientError) as e:
            query.query(QueryString="SELECT length(reduce(sequence(1, 10000), '', "
                                    "(s, x) -> s || repeat('x', 1000), s -> s))")
        took = time.monotonic() - t0
        assert "time limit" in e.value.response["Error"]["Message"], e.value.response
        assert took < 8, f"reduce took {took:.1f} s with a 2 s limit"
    assert sampler.peak < RSS_LIMIT, f"RSS {sampler.peak / MIB:.0f} MiB"


# ---------------------------------------------------------------------------------------------
# Users without a read grant.

@pytest.fixture(scope="module")
def secure(hourglass_bin, module_server):
    srv = module_server(args=["--require-auth", "--query-memory-mb", "256", "--query-timeout-secs", "2"])
    d = srv.data_dir
    srv.users = {
        "writer": add_user(hourglass_bin, d, "writer", ("wo", "write")),
        "everywhere": add_user(hourglass_bin, d, "everywhere", ("*", "write")),
        "reader": add_user(hourglass_bin, d, "reader", ("wo", "read")),
        "admin": add_user(hourglass_bin, d, "admin", ("wo", "admin")),
    }
    # The database is created by its admin's first write; then the writer writes to it.
    for user in ("admin", "writer"):
        r = write_lp(srv.url, "wo", "m,h=a v=1i 1700000000000000000", headers=token_headers(srv.users[user]))
        assert r.status_code == 204, r.text
    return srv


QUERIES = ["SELECT 1", "SELECT length(repeat('x', 1500000000))", "SELECT count(*) FROM m",
           "SHOW TABLES", "EXPLAIN SELECT 1"]


def test_write_only_users_get_403_over_http(secure):
    for user in ("writer", "everywhere"):
        headers = token_headers(secure.users[user])
        for sql in QUERIES:
            r = query_sql(secure.url, "wo", sql, headers=headers)
            assert r.status_code == 403, f"{user} {sql}: {r.status_code} {r.text[:300]}"
            assert "no read grant" in r.json()["error"], r.text
        # Writing still works.
        r = write_lp(secure.url, "wo", "m,h=b v=2i 1700000001000000000", headers=headers)
        assert r.status_code == 204, r.text
    r = query_sql(secure.url, "wo", "SELECT 1 AS one", headers=token_headers(secure.users["reader"]))
    assert r.status_code == 200 and r.json() == [{"one": 1}], r.text


def _pg(secure, user):
    host, port = secure.pg_addr
    return psycopg.connect(host=host, port=port, user=user, password=secure.users[user]["password"],
                           dbname="wo", connect_timeout=10, autocommit=True)


def test_write_only_users_get_42501_over_postgres(secure):
    for user in ("writer", "everywhere"):
        with _pg(secure, user) as conn:
            for sql in ["SELECT 1", "SELECT length(repeat('x', 1500000000))", "EXPLAIN SELECT 1"]:
                with pytest.raises(psycopg.Error) as e:
                    conn.execute(sql).fetchall()
                assert e.value.sqlstate == "42501", f"{user} {sql}: {e.value.sqlstate} {e.value}"
                assert "no read grant" in str(e.value)
    with _pg(secure, "reader") as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_write_only_users_get_access_denied_from_timestream(secure):
    for user in ("writer", "everywhere"):
        u = secure.users[user]
        query = boto3.client("timestream-query", endpoint_url=secure.url, region_name="us-east-1",
                             aws_access_key_id=u["access_key_id"],
                             aws_secret_access_key=u["secret_access_key"], config=NO_RETRY)
        for sql in ["SELECT 1", "SELECT length(repeat('x', 1500000000))", 'SELECT count(*) FROM "wo"."m"',
                    "SHOW DATABASES"]:
            with pytest.raises(ClientError) as e:
                query.query(QueryString=sql)
            err = e.value.response["Error"]
            status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
            assert (err["Code"], status) == ("AccessDeniedException", 403), f"{user} {sql}: {err} {status}"
            assert "no read grant" in err["Message"], err
    u = secure.users["reader"]
    query = boto3.client("timestream-query", endpoint_url=secure.url, region_name="us-east-1",
                         aws_access_key_id=u["access_key_id"], aws_secret_access_key=u["secret_access_key"],
                         config=NO_RETRY)
    assert query.query(QueryString="SELECT 1")["Rows"][0]["Data"][0]["ScalarValue"] == "1"
