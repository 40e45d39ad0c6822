"""What one small query costs, request by request: the per-query fixed cost behind one-series
dashboard queries, and what each plan rule on that path saves.

    python3 scripts/bench/query_shape_cost.py --bin target/release/hourglass [--runs 300]
        [--disabled-rules none] [--only select1,single-groupby-1-1-1] [--data DIR] [--pg]

Loads TSBS-like rows (100 hosts x 24 h at 10 s, three tags and three integer fields) into a
fresh server once (kept in --data, reused when it exists), persists them to Parquet, then sends
each request --runs times over one keep-alive HTTP connection to /api/v3/query_sql (20 warm-up
runs first) and prints p10/p50/p90 in ms. Every request is sent with `disabled_rules` as given,
so `--disabled-rules plan_cache` or `one_partition` shows what each saves. With `--pg` the
requests go over the PostgreSQL wire instead (psycopg, one connection, each statement an unnamed
Parse/Bind/Execute as dashboards' drivers send them; `SET hourglass.disabled_rules` first; needs
psycopg, e.g. the test suite's `.venv-test/bin/python`). The requests:
`SELECT 1`; single-groupby-1-1-1's shape (one host, one hour, 1-minute buckets, max); its
EXPLAIN (plans, does not run); the same shape over a one-row VALUES (no table); a one-host
latest value; a one-host one-hour count; cpu-max-all-8's shape (eight hosts, eight hours). Run the server under `valgrind --tool=callgrind` (with
MIMALLOC_PURGE_DELAY set, so that it does not re-execute itself) for instruction counts by phase.
"""

import argparse
import datetime
import http.client
import os
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hg_server  # noqa: E402

START = 1_451_606_400_000_000_000  # 2016-01-01T00:00:00Z
HOSTS = 100
STEP = 10 * 10**9


def ts(ns):
    t = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return "TIMESTAMP '" + t.strftime("%Y-%m-%d %H:%M:%S") + "'"


def requests_to_time():
    a = START + 5 * 3600 * 10**9
    b = a + 3600 * 10**9
    shape = (f"SELECT date_bin(INTERVAL '1 minute', time) AS bucket, max(usage_user) AS max_usage_user "
             f"FROM cpu WHERE hostname IN ('host_7') AND time >= {ts(a)} AND time < {ts(b)} GROUP BY 1 ORDER BY 1")
    values = (f"SELECT date_bin(INTERVAL '1 minute', time) AS bucket, max(u) AS m FROM "
              f"(VALUES ({ts(a)}, 5, 'host_7')) AS t(time, u, hostname) WHERE hostname IN ('host_7') "
              f"AND time >= {ts(a)} AND time < {ts(b)} GROUP BY 1 ORDER BY 1")
    return {
        "select1": "SELECT 1",
        "single-groupby-1-1-1": shape,
        "explain": "EXPLAIN " + shape,
        "values": values,
        "lastpoint-1-host": ("SELECT DISTINCT ON (hostname) hostname, time, usage_user FROM cpu "
                             "WHERE hostname IN ('host_7') ORDER BY hostname, time DESC"),
        "count-1-host": f"SELECT count(*) FROM cpu WHERE hostname = 'host_7' AND time >= {ts(a)} AND time < {ts(b)}",
        # cpu-max-all-8's shape: eight hosts over eight hours, every field's hourly maximum.
        "cpu-max-all-8": ("SELECT date_bin(INTERVAL '1 hour', time) AS hour, max(usage_user), max(usage_system), "
                          "max(usage_idle) FROM cpu WHERE hostname IN ("
                          + ", ".join(f"'host_{h}'" for h in range(3, 83, 10))
                          + f") AND time >= {ts(a)} AND time < {ts(a + 8 * 3600 * 10**9)} GROUP BY 1 ORDER BY 1"),
    }


def latency_ms(send_one, runs, warmup=20):
    """(p10, p50, p90) in ms of `runs` calls of `send_one`, after `warmup` untimed ones."""
    for _ in range(warmup):
        send_one()
    lat = []
    for _ in range(runs):
        t0 = time.perf_counter()
        send_one()
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return lat[len(lat) // 10], statistics.median(lat), lat[len(lat) * 9 // 10]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", default="/tmp/hourglass-query-shape-cost")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--disabled-rules", default="none")
    ap.add_argument("--only", help="comma-separated request names")
    ap.add_argument("--pg", action="store_true", help="over the PostgreSQL wire (psycopg)")
    a = ap.parse_args()

    fresh = not os.path.isdir(a.data)
    proc, url, pg_addr = hg_server.start_server(a.bin, a.data)
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=600)

    def send(method, path, body=None):
        conn.request(method, path, body=body, headers={"Connection": "keep-alive"})
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"{path[:120]}: HTTP {r.status}: {data[:300]!r}")
        return data

    try:
        if fresh:
            lines = []
            for t in range(8640):
                for h in range(HOSTS):
                    lines.append(f"cpu,hostname=host_{h},region=r{h % 9},datacenter=d{h % 3} "
                                 f"usage_user={(t * 7 + h) % 100}i,usage_system={(t * 3 + h) % 100}i,"
                                 f"usage_idle={(t + h) % 100}i {START + t * STEP}")
                    if len(lines) == 20_000:
                        send("POST", "/api/v2/write?bucket=bench&org=o", "\n".join(lines))
                        lines = []
            if lines:
                send("POST", "/api/v2/write?bucket=bench&org=o", "\n".join(lines))
            send("POST", "/admin/flush", b"")
        todo = requests_to_time()
        names = a.only.split(",") if a.only else list(todo)
        via = "the PostgreSQL wire" if a.pg else "HTTP"
        print(f"disabled_rules={a.disabled_rules}; {a.runs} runs each, one keep-alive connection over {via}")
        if a.pg:
            import psycopg
            pg_host, pg_port = pg_addr.rsplit(":", 1)
            pg = psycopg.connect(host=pg_host, port=int(pg_port), dbname="bench", user="hg",
                                 autocommit=True, prepare_threshold=None)
            pg.execute(f"SET hourglass.disabled_rules = '{a.disabled_rules}'")

            def run_one(q):
                pg.execute(q).fetchall()
        else:
            def run_one(q):
                send("GET", "/api/v3/query_sql?" + urllib.parse.urlencode(
                    {"db": "bench", "q": q, "disabled_rules": a.disabled_rules}))
        for name in names:
            p10, p50, p90 = latency_ms(lambda: run_one(todo[name]), a.runs)
            print(f"{name:22s} p10 {p10:.3f}  p50 {p50:.3f}  p90 {p90:.3f} ms", flush=True)
    finally:
        hg_server.stop_server(proc)


if __name__ == "__main__":
    main()
