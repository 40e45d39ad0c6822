"""The Timestream Query API's overhead over the same query on /api/v3/query_sql.

    python3 scripts/bench/query_overhead.py --url http://127.0.0.1:8086 [--rows 200000] [--runs 30]

Loads TSBS-like rows by line protocol into database `qbench` (once), then runs each query
`--runs` times through both interfaces (alternating) over one keep-alive connection each and
prints the
median latency of both and the overhead of the Query API (its ratio to query_sql, minus one).
The Query API is called as plain AWS JSON 1.0 POSTs (what the SDKs send; Hourglass does not
check signatures), fetching every page.
"""

import argparse
import json
import statistics
import time

import requests

QUERIES = [
    ("aggregate by host",
     'SELECT hostname, max(usage_user) AS m, avg(usage_system) AS a FROM "qbench"."cpu" GROUP BY hostname ORDER BY hostname'),
    ("1-minute buckets, one host",
     "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(usage_user) AS m FROM \"qbench\".\"cpu\" "
     "WHERE hostname = 'host_7' GROUP BY 1 ORDER BY 1"),
    ("last rows",
     'SELECT hostname, time, usage_user FROM "qbench"."cpu" ORDER BY time DESC, hostname LIMIT 100'),
]


def load(url, rows):
    s = requests.Session()
    have = s.get(f"{url}/api/v3/query_sql", params={"db": "qbench", "q": "SELECT count(*) AS n FROM cpu"}, timeout=60)
    if have.status_code == 200 and have.json()[0]["n"] >= rows:
        return
    hosts = 100
    start = 1_700_000_000_000_000_000
    lines = []
    for i in range(rows):
        h, step = i % hosts, i // hosts
        lines.append(
            f"cpu,hostname=host_{h},region=r{h % 9} usage_user={(i * 7) % 100}i,usage_system={(i * 3) % 100}i "
            f"{start + step * 10_000_000_000}")
        if len(lines) == 10_000:
            s.post(f"{url}/api/v2/write", params={"bucket": "qbench", "org": "o"}, data="\n".join(lines), timeout=60).raise_for_status()
            lines = []
    if lines:
        s.post(f"{url}/api/v2/write", params={"bucket": "qbench", "org": "o"}, data="\n".join(lines), timeout=60).raise_for_status()


def query_sql(session, url, sql, count=False):
    r = session.post(f"{url}/api/v3/query_sql", json={"q": sql, "format": "json"}, timeout=120)
    r.raise_for_status()
    return len(r.json()) if count else len(r.content)


def timestream_query(session, url, sql, count=False):
    """Fetches every page; decodes a page only to find its NextToken (or to count rows), so the
    client's JSON parsing of the larger Timestream encoding is not timed as server overhead."""
    headers = {"X-Amz-Target": "Timestream_20181101.Query", "Content-Type": "application/x-amz-json-1.0"}
    body = {"QueryString": sql}
    rows = 0
    while True:
        r = session.post(f"{url}/", data=json.dumps(body), headers=headers, timeout=120)
        r.raise_for_status()
        if not count and b'"NextToken"' not in r.content:
            return rows
        page = r.json()
        rows += len(page.get("Rows", []))
        if not page.get("NextToken"):
            return rows
        body = {"QueryString": sql, "NextToken": page["NextToken"]}


def timed_pair(first, second, runs):
    """Median latency (ms) of each of two calls, alternated so drift in machine load hits both."""
    a, b = [], []
    for _ in range(runs):
        for fn, samples in ((first, a), (second, b)):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(a), statistics.median(b)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8086")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=100)
    a = p.parse_args()
    load(a.url, a.rows)
    a_sess, b_sess = requests.Session(), requests.Session()
    print(f"{'query':<28} {'rows':>6} {'query_sql ms':>13} {'Query API ms':>13} {'overhead':>9}")
    for name, sql in QUERIES:
        n1 = query_sql(a_sess, a.url, sql, count=True)
        n2 = timestream_query(b_sess, a.url, sql, count=True)
        assert n1 == n2, (name, n1, n2)
        base, ts = timed_pair(
            lambda: query_sql(a_sess, a.url, sql), lambda: timestream_query(b_sess, a.url, sql), a.runs
        )
        print(f"{name:<28} {n1:>6} {base:>13.2f} {ts:>13.2f} {100 * (ts / base - 1):>8.1f}%")


if __name__ == "__main__":
    main()
