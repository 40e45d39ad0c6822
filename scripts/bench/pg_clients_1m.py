"""1,000,000 rows into pandas and Polars: PostgreSQL clients against `/api/v3/query_sql` (issue 23).

    .venv-test/bin/python scripts/bench/pg_clients_1m.py [--repeat 3] [--rows 1000000] [--binary PATH]
    .venv-test/bin/python scripts/bench/pg_clients_1m.py --url http://HOST:PORT --pg HOST:PORT --pid PID

Without --url, starts `hourglass serve` on a temporary data directory and ephemeral loopback
ports, and stops it at the end: --binary, else target/release/hourglass when it exists and is not
older than the newest source file under crates/, else target/debug/hourglass (the output says
which). Loads --rows quotes (`quotes,symbol=S<k> bid=<b>,ask=<a>,size=<n>i <ns>`, 100 symbols, one
a millisecond) into database `pgclients` by line protocol (/api/v2/write, 250,000 lines a POST)
unless the table already has them, flushes (POST /admin/flush) and records the server's idle RSS.
Then every method reads `SELECT symbol, time, bid, ask, size FROM quotes` whole into a DataFrame,
--repeat times over one connection opened beforehand (an HTTP keep-alive session; connectorx opens
its own connection per call), while a thread samples the server's VmRSS every 20 ms:

  pandas read_sql, SQLAlchemy + psycopg 3      pd.read_sql(sql, connection)
  pandas read_sql, SQLAlchemy + psycopg2       the same over psycopg2
  pandas read_sql, ADBC                        adbc_driver_postgresql (skipped when not installed)
  Polars read_database_uri (connectorx)        binary COPY (query) TO STDOUT
  HTTP arrow -> pyarrow / pandas / Polars      POST /api/v3/query_sql {"format": "arrow"}, the
                                               Arrow IPC stream read by pyarrow.ipc.open_stream
  HTTP parquet -> pandas / Polars              {"format": "parquet"} (the server buffers the
                                               whole result to write the file)

Each run's row count and sum of `size` are checked against what was written (outside the timed
section). Prints a table: rows, best and median seconds, rows/s of the best run, and the server's
peak RSS growth: its peak during a run less its RSS just before, the largest over the runs (a
method that buffers on the server shows it on its first run; later runs, and the next method,
may reuse the heap it freed).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

from hg_server import RssSampler, rss_bytes, start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
DB = "pgclients"
CHUNK = 250_000
SYMBOLS = 100
T0_NS = 1_704_153_600_000_000_000  # 2024-01-02T00:00:00Z
STEP_NS = 1_000_000
SQL = "SELECT symbol, time, bid, ask, size FROM quotes"
MIB = 1 << 20


# -- server ------------------------------------------------------------------------------------------


def pick_binary() -> tuple[Path, str]:
    release = REPO / "target/release/hourglass"
    debug = REPO / "target/debug/hourglass"
    newest = max((p.stat().st_mtime for p in (REPO / "crates").rglob("*.rs")), default=0.0)
    if release.exists() and release.stat().st_mtime >= newest:
        return release, "release build"
    why = "older than the sources" if release.exists() else "not built"
    return debug, f"DEBUG build (target/release/hourglass {why}; figures far below release)"


# -- data ----------------------------------------------------------------------------------------------


def expected_size_sum(rows: int) -> int:
    return sum(1 + i % 500 for i in range(rows))


def load(s: requests.Session, url: str, rows: int) -> None:
    r = s.get(f"{url}/api/v3/query_sql", params={"db": DB, "q": "SELECT count(*) AS n FROM quotes"}, timeout=300)
    if r.status_code == 200 and r.json()[0]["n"] == rows:
        print(f"table {DB}.quotes already has {rows:,} rows", flush=True)
        return
    if r.status_code == 200:
        raise SystemExit(f"table {DB}.quotes has {r.json()[0]['n']:,} rows, not {rows:,}: use another server")
    t0 = time.perf_counter()
    for start in range(0, rows, CHUNK):
        lines = []
        for i in range(start, min(rows, start + CHUNK)):
            bid = (400 + i % 1000) / 4
            lines.append(f"quotes,symbol=S{i % SYMBOLS} bid={bid},ask={bid + (1 + i % 4) / 4},"
                         f"size={1 + i % 500}i {T0_NS + i * STEP_NS}")
        while True:
            r = s.post(f"{url}/api/v2/write", params={"bucket": DB, "org": "o"}, data="\n".join(lines), timeout=300)
            if r.status_code == 503:  # memory budget: persist, then retry
                s.post(f"{url}/admin/flush", timeout=600).raise_for_status()
                continue
            r.raise_for_status()
            break
    print(f"loaded {rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)


# -- methods: each returns (open, run, close); run(handle) returns the frame ---------------------------


def sqlalchemy_pandas(pg: str, driver: str):
    import pandas as pd
    import sqlalchemy as sa

    host, port = pg.rsplit(":", 1)
    engine = sa.create_engine(f"postgresql+{driver}://bench@{host}:{port}/{DB}")

    def run(conn):
        return pd.read_sql(SQL, conn)

    def close(conn):
        conn.close()
        engine.dispose()

    return engine.connect, run, close


def adbc_pandas(pg: str):
    import adbc_driver_postgresql.dbapi as adbc
    import pandas as pd

    def run(conn):
        return pd.read_sql(SQL, conn)

    return (lambda: adbc.connect(f"postgresql://bench@{pg}/{DB}")), run, (lambda conn: conn.close())


def connectorx_polars(pg: str):
    import polars as pl

    def run(_):
        return pl.read_database_uri(SQL, f"postgresql://bench@{pg}/{DB}", engine="connectorx")

    return (lambda: None), run, (lambda _: None)


def http_arrow(url: str, to: str):
    import pyarrow as pa

    def run(s):
        r = s.post(f"{url}/api/v3/query_sql", json={"db": DB, "q": SQL, "format": "arrow"}, stream=True, timeout=600)
        r.raise_for_status()
        r.raw.decode_content = True
        table = pa.ipc.open_stream(r.raw).read_all()
        return convert(table, to)

    return requests.Session, run, (lambda s: s.close())


def http_parquet(url: str, to: str):
    import pyarrow.parquet as pq

    def run(s):
        r = s.post(f"{url}/api/v3/query_sql", json={"db": DB, "q": SQL, "format": "parquet"}, timeout=600)
        r.raise_for_status()
        return convert(pq.read_table(io.BytesIO(r.content)), to)

    return requests.Session, run, (lambda s: s.close())


def convert(table, to: str):
    if to == "pandas":
        return table.to_pandas()
    if to == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table


def rows_and_size_sum(frame) -> tuple[int, int]:
    """Of a pandas or Polars DataFrame or a pyarrow Table."""
    import pyarrow.compute as pc

    if hasattr(frame, "num_rows"):
        return frame.num_rows, pc.sum(frame.column("size")).as_py()
    return len(frame), int(frame["size"].sum())


def methods(url: str, pg: str):
    """(name, factory, modules it needs)."""
    return [
        ("pandas read_sql, SQLAlchemy + psycopg 3", lambda: sqlalchemy_pandas(pg, "psycopg"),
         ["pandas", "sqlalchemy", "psycopg"]),
        ("pandas read_sql, SQLAlchemy + psycopg2", lambda: sqlalchemy_pandas(pg, "psycopg2"),
         ["pandas", "sqlalchemy", "psycopg2"]),
        ("pandas read_sql, ADBC", lambda: adbc_pandas(pg), ["pandas", "adbc_driver_postgresql"]),
        ("Polars read_database_uri (connectorx)", lambda: connectorx_polars(pg), ["polars", "connectorx"]),
        ("HTTP format=arrow -> pyarrow Table", lambda: http_arrow(url, "arrow"), ["pyarrow"]),
        ("HTTP format=arrow -> pandas", lambda: http_arrow(url, "pandas"), ["pyarrow", "pandas"]),
        ("HTTP format=arrow -> Polars", lambda: http_arrow(url, "polars"), ["pyarrow", "polars"]),
        ("HTTP format=parquet -> pandas", lambda: http_parquet(url, "pandas"), ["pyarrow", "pandas"]),
        ("HTTP format=parquet -> Polars", lambda: http_parquet(url, "polars"), ["pyarrow", "polars"]),
    ]


def missing(modules: list[str]) -> list[str]:
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is None]


def measure(name, factory, pid: int, repeat: int, rows: int, size_sum: int):
    open_, run, close = factory()
    handle = open_()
    seconds: list[float] = []
    growth = 0
    try:
        for _ in range(repeat):
            with RssSampler(pid) as rss:
                t0 = time.perf_counter()
                frame = run(handle)
                seconds.append(time.perf_counter() - t0)
            n, sizes = rows_and_size_sum(frame)
            del frame
            growth = max(growth, rss.peak - rss.base)
            if (n, sizes) != (rows, size_sum):
                raise SystemExit(f"{name}: {n:,} rows, sum(size) {sizes} (expected {rows:,}, {size_sum})")
    finally:
        close(handle)
    return seconds, growth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--url", help="HTTP base URL of a running server (with --pg and --pid)")
    ap.add_argument("--pg", help="host:port of the running server's PostgreSQL endpoint")
    ap.add_argument("--pid", type=int, help="process id of the running server (for its RSS)")
    ap.add_argument("--only", help="run only the methods whose name contains this text")
    args = ap.parse_args()

    proc = tmp = None
    if args.url:
        if not (args.pg and args.pid):
            ap.error("--url needs --pg and --pid")
        url, pg, pid = args.url.rstrip("/"), args.pg, args.pid
        print(f"server: running at {url}, pid {pid}")
    else:
        binary, kind = (args.binary, "given by --binary") if args.binary else pick_binary()
        built = datetime.fromtimestamp(binary.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        print(f"server: {binary} ({kind}, built {built})", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix="pg-clients-1m-"))
        proc, url, pg = start_server(binary, tmp / "data")
        pid = proc.pid
    try:
        with requests.Session() as s:
            load(s, url, args.rows)
            s.post(f"{url}/admin/flush", timeout=600).raise_for_status()
        size_sum = expected_size_sum(args.rows)
        time.sleep(1.0)
        idle = rss_bytes(pid)
        print(f"server idle RSS {idle / MIB:.0f} MiB; {args.rows:,} rows x {args.repeat} runs per method; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n", flush=True)

        results = []
        for name, factory, needs in methods(url, pg):
            if args.only and args.only.lower() not in name.lower():
                continue
            if lacking := missing(needs):
                results.append((name, None, f"skipped: {', '.join(lacking)} not installed"))
                print(f"{name}: skipped ({', '.join(lacking)} not installed)", flush=True)
                continue
            try:
                seconds, growth = measure(name, factory, pid, args.repeat, args.rows, size_sum)
            except Exception as e:  # noqa: BLE001 - a failing client is a result too
                msg = f"{type(e).__name__}: {e}".splitlines()[0][:200]
                results.append((name, None, f"FAILED: {msg}"))
                print(f"{name}: FAILED {msg}", flush=True)
                continue
            results.append((name, (seconds, growth), ""))
            print(f"{name}: {', '.join(f'{x:.2f}' for x in seconds)} s; server peak +{growth / MIB:.1f} MiB",
                  flush=True)

        print("\n| method | rows | best s | median s | rows/s (best) | server peak RSS growth |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, res, note in results:
            if res is None:
                print(f"| {name} | | | | | {note} |")
                continue
            seconds, growth = res
            best = min(seconds)
            print(f"| {name} | {args.rows:,} | {best:.2f} | {statistics.median(seconds):.2f} | "
                  f"{args.rows / best:,.0f} | {growth / MIB:.1f} MiB |")
        print(f"\nserver idle RSS {idle / MIB:.0f} MiB; load average now {os.getloadavg()[0]:.1f}")
    finally:
        if proc is not None:
            stop_server(proc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
