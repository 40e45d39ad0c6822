"""Sends one SQL statement many times to a running server and prints its latency: p10/p50/p90 in
ms over one keep-alive HTTP connection to /api/v3/query_sql (20 warm-up requests first; the
timing is query_shape_cost.py's).

    python3 scripts/bench/sql_repeat.py --url http://127.0.0.1:8086 --db benchmark \
        [--runs 400] [--format arrow] "SELECT ..."

For A/B runs on data kept by `side_by_side.py --keep`: start `hourglass serve --data-dir
KEPT/hourglass` (or KEPT/cardinality/hourglass) with one setting, run this, stop, start with the
other, and alternate.
"""

import argparse
import http.client
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from query_shape_cost import latency_ms  # noqa: E402


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
    answer = {}

    def send_one():
        conn.request("POST", "/api/v3/query_sql", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        answer["bytes"] = r.read()
        if r.status != 200:
            sys.exit(f"sql_repeat: HTTP {r.status}: {answer['bytes'][:300]!r}")

    p10, p50, p90 = latency_ms(send_one, a.runs)
    print(f"runs {a.runs}: p10 {p10:.2f} ms, p50 {p50:.2f} ms, p90 {p90:.2f} ms; "
          f"last answer {len(answer['bytes']):,} B")


if __name__ == "__main__":
    main()
