"""Peak server memory while a 10 M-row result streams to a PostgreSQL client.

    python3 scripts/bench/pg_stream_rss.py [--rows 10000000] [--binary PATH]
    python3 scripts/bench/pg_stream_rss.py --url http://127.0.0.1:8086 --pg 127.0.0.1:5433 --pid PID

Without --url, starts `hourglass serve` (target/release/hourglass if present, else
target/debug/hourglass, or --binary) on a temporary data directory and ephemeral loopback ports,
and stops it at the end. Loads --rows narrow rows (`t v=<int>i`, one a millisecond, ending now)
into database `pgrss` by line protocol (/api/v2/write, chunks of 50,000 lines) unless the table
already has them, flushes (POST /admin/flush), records the server's idle RSS (VmRSS of
/proc/PID/status), then runs `SELECT * FROM t` through psycopg 3 and counts the rows while a
thread samples the server's RSS every 100 ms. The client stays bounded: `cursor.stream(size=N)`
(libpq chunked-rows mode, libpq >= 17) or `cursor.stream()` (single-row mode) on older libpq.

Prints rows, seconds, rows/s, idle RSS, peak RSS and their difference (MiB).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import requests

from hg_server import RssSampler, rss_bytes, start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
DB = "pgrss"
CHUNK = 50_000
MIB = 1 << 20


def count_rows(s: requests.Session, url: str) -> int:
    r = s.get(f"{url}/api/v3/query_sql", params={"db": DB, "q": "SELECT count(*) AS n FROM t"}, timeout=300)
    return r.json()[0]["n"] if r.status_code == 200 else 0


def load(url: str, rows: int) -> None:
    s = requests.Session()
    if count_rows(s, url) >= rows:
        print(f"table {DB}.t already has {rows} rows", flush=True)
        return
    t0 = time.perf_counter()
    end_ms = int(time.time() * 1000)
    first_ms = end_ms - rows
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        body = "\n".join(f"t v={i}i {(first_ms + i) * 1_000_000}" for i in range(start, start + n))
        while True:
            r = s.post(f"{url}/api/v2/write", params={"bucket": DB, "org": "o"}, data=body, timeout=300)
            if r.status_code == 503:  # memory budget: persist, then retry
                s.post(f"{url}/admin/flush", timeout=600).raise_for_status()
                continue
            r.raise_for_status()
            break
    print(f"loaded {rows} rows in {time.perf_counter() - t0:.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--url", help="HTTP base URL of a running server (with --pg and --pid)")
    ap.add_argument("--pg", help="host:port of the running server's PostgreSQL endpoint")
    ap.add_argument("--pid", type=int, help="process id of the running server")
    ap.add_argument("--fetch", type=int, default=10_000, help="rows per chunk of the stream")
    args = ap.parse_args()

    proc = tmp = None
    if args.url:
        if not (args.pg and args.pid):
            ap.error("--url needs --pg and --pid")
        url, pg, pid = args.url.rstrip("/"), args.pg, args.pid
    else:
        binary = args.binary
        if binary is None:
            release = REPO / "target/release/hourglass"
            binary = release if release.exists() else REPO / "target/debug/hourglass"
        print(f"server: {binary}", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix="pg-stream-rss-"))
        proc, url, pg = start_server(binary, tmp / "data", "--memory-budget-mb", "4096")
        pid = proc.pid
    try:
        load(url, args.rows)
        requests.post(f"{url}/admin/flush", timeout=600).raise_for_status()
        time.sleep(1.0)
        idle = rss_bytes(pid)
        host, port = pg.rsplit(":", 1)
        chunked = psycopg.pq.version() >= 170000
        with psycopg.connect(host=host, port=int(port), dbname=DB, user="bench", autocommit=True) as conn:
            cur = conn.cursor()
            n = 0
            with RssSampler(pid, interval=0.1) as rss:
                t0 = time.perf_counter()
                stream = cur.stream("SELECT * FROM t", size=args.fetch) if chunked else cur.stream("SELECT * FROM t")
                for _ in stream:
                    n += 1
                seconds = time.perf_counter() - t0
        peak = max(idle, rss.peak, rss_bytes(pid))
        mode = f"cursor.stream(size={args.fetch}) (chunked rows)" if chunked else "cursor.stream() (single row)"
        print(f"client: psycopg {psycopg.__version__}, libpq {psycopg.pq.version()}, {mode}")
        print(f"rows:       {n}")
        print(f"seconds:    {seconds:.2f}  ({n / seconds:,.0f} rows/s)")
        print(f"idle RSS:   {idle / MIB:.1f} MiB")
        print(f"peak RSS:   {peak / MIB:.1f} MiB")
        print(f"difference: {(peak - idle) / MIB:.1f} MiB")
        if n != args.rows:
            sys.exit(f"expected {args.rows} rows, got {n}")
    finally:
        if proc is not None:
            stop_server(proc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
