"""Sends one SQL statement many times to a running server and prints its latency: p10/p50/p90 in
ms over one keep-alive HTTP connection to /api/v3/query_sql (20 warm-up requests first).

    python3 scripts/bench/sql_repeat.py --url http://127.0.0.1:8086 --db benchmark \
        [--runs 400] [--format arrow] "SELECT ..."

For A/B runs on data kept by `side_by_side.py --keep`: start `hourglass serve --data-dir
KEPT/hourglass` (or KEPT/cardinality/hourglass) with one setting, run this, stop, start with the
other, and alternate.
"""

import argparse
import http.client
import json
import sys
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8086")
    ap.add_argument("--db", default="benchmark")
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--format", default="arrow")
    ap.add_argument("sql")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    body = json.dumps({"db": a.db, "q": a.sql, "format": a.format})
    times = []
    for i in range(a.runs + 20):
        t = time.perf_counter()
        conn.request("POST", "/api/v3/query_sql", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit(f"sql_repeat: HTTP {r.status}: {data[:300]!r}")
        if i >= 20:
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    n = len(times)
    print(f"runs {n}: p10 {times[n // 10]:.2f} ms, p50 {times[n // 2]:.2f} ms, p90 {times[9 * n // 10]:.2f} ms; "
          f"last answer {len(data):,} B")


if __name__ == "__main__":
    main()
