"""Streaming 1,000,000 rows through the PostgreSQL endpoint with bounded server memory, one test
per client data people use (issue 23): psycopg 3 and psycopg2 named cursors (`itersize`),
SQLAlchemy 2 `stream_results` + `yield_per` with `result.partitions()` over both drivers, pandas
`read_sql(chunksize=...)` over SQLAlchemy, asyncpg's `conn.cursor()` in a transaction and its
`copy_from_query` to a file, Polars' `read_database_uri` with connectorx (`COPY ... TO STDOUT
WITH BINARY`: the client holds the frame, the server must not) and psql with `FETCH_COUNT`.

One server holds `quotes`: 1,000,000 rows written by line protocol in four POSTs, then flushed to
Parquet. Every client reads every row (no aggregate on the server) while a thread samples the
server's VmRSS; each test checks the row count, the exact sums of `bid`, `ask` and `size` (the
prices are multiples of 1/4, so their float sums are exact in any order), the `cond` characters,
the set of symbols and the first and last time against what was written, and that the server's
peak RSS grew by less than RSS_BOUND. Run with `-s` to see each client's seconds, the server's
CPU seconds and RSS. With the debug binary the text-format clients cost the server ~10 s of CPU
each (half of it rendering timestamps as text), so the file takes ~2 minutes on 2 cores.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice

import pytest

from hgtest import RssSampler, parse_time, pg_connector, rss_bytes

DB = "quotes_1m"
ROWS = 1_000_000
BATCH = 250_000  # lines per POST: ~17 MiB
SYMBOLS = 100
T0_NS = calendar.timegm((2024, 1, 2, 0, 0, 0)) * 1_000_000_000
STEP_NS = 1_000_000  # one quote a millisecond
PAD = 100
FETCH = 10_000  # rows per round trip (itersize, yield_per, chunksize, FETCH_COUNT)
# `cond` widens every row by PAD characters on the server (writing them would only slow the
# load), so that the result is large next to the bound.
SELECT = f"SELECT symbol, time, bid, ask, size, repeat('c', {PAD}) AS cond FROM quotes"
MIB = 1 << 20
# The result is ~150 bytes a row: the CSV copy of 1 M rows is 142 MiB, the text DataRows
# (31 bytes of framing a row more) are larger, and kept whole as Arrow batches it is ~135 MiB.
# Streamed, the server holds a batch or so per query: measured growth 0.4-6.6 MiB per client
# (17 MiB once while other builds loaded the machine). 48 MiB, a third of the result, leaves room
# for allocator noise and the Parquet scan's buffers and still fails any path that collects the
# result on the server (pgwire's default Execute once did: +238 MiB for 2 M narrow rows).
RSS_BOUND = 48 * MIB
EPOCH = dt.datetime(1970, 1, 1)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- what was written ------------------------------------------------------------------------------


def quote(i: int) -> tuple[str, int, float, float, int]:
    """Row i: (symbol, time ns, bid, ask, size)."""
    bid = (400 + i % 1000) / 4
    return f"S{i % SYMBOLS}", T0_NS + i * STEP_NS, bid, bid + (1 + i % 4) / 4, 1 + i % 500


def ns_of(t) -> int:
    """Nanoseconds since the epoch of a datetime / pandas Timestamp (naive = UTC) or of the text
    psql prints."""
    if isinstance(t, str):
        return parse_time(t)
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return (t - EPOCH) // dt.timedelta(microseconds=1) * 1000


@dataclass
class Tally:
    """What a client read, accumulated chunk by chunk; compared whole with what was written."""

    rows: int = 0
    size: int = 0
    bid: float = 0.0
    ask: float = 0.0
    cond_chars: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    symbols: set = field(default_factory=set)

    def add(self, n, symbols, first, last, bid, ask, size, cond_chars):
        if n == 0:
            return
        self.rows += n
        self.symbols.update(symbols)
        first, last = ns_of(first), ns_of(last)
        self.first_ns = first if self.first_ns is None else min(self.first_ns, first)
        self.last_ns = last if self.last_ns is None else max(self.last_ns, last)
        self.bid += float(bid)
        self.ask += float(ask)
        self.size += int(size)
        self.cond_chars += int(cond_chars)

    def add_rows(self, rows):
        """Rows as sequences in SELECT's column order (tuples, Records, SQLAlchemy Rows)."""
        if not rows:
            return
        symbol, time_, bid, ask, size, cond = zip(*rows)
        self.add(len(rows), symbol, min(time_), max(time_), sum(bid), sum(ask), sum(size),
                 sum(map(len, cond)))

    def add_pandas(self, df):
        self.add(len(df), df["symbol"].unique(), df["time"].min(), df["time"].max(), df["bid"].sum(),
                 df["ask"].sum(), df["size"].sum(), df["cond"].str.len().sum())

    def add_polars(self, df):
        self.add(df.height, df["symbol"].unique().to_list(), df["time"].min(), df["time"].max(),
                 df["bid"].sum(), df["ask"].sum(), df["size"].sum(),
                 df["cond"].str.len_chars().sum())

    def add_text(self, lines):
        """Lines of `psql -A -t` (fields separated by `|`). The times are fixed-width ISO text
        up to the seconds, so the smallest and largest strings are the first and last times."""
        symbol, time_, bid, ask, size, cond = zip(*(line.split("|") for line in lines))
        self.add(len(lines), symbol, min(time_), max(time_), sum(map(float, bid)),
                 sum(map(float, ask)), sum(map(int, size)), sum(map(len, cond)))


def chunks(iterable, n: int):
    it = iter(iterable)
    while chunk := list(islice(it, n)):
        yield chunk


# -- the server's CPU time -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextmanager
def streamed(quotes, label: str):
    """Yields a Tally for the body to fill while the server's RSS is sampled; then prints the
    seconds and RSS, and checks the tally against what was written and the RSS growth against
    RSS_BOUND."""
    tally = Tally()
    cpu = cpu_seconds(quotes.pid)
    started = time.monotonic()
    with RssSampler(quotes.pid) as rss:
        yield tally
    seconds = time.monotonic() - started
    cpu = cpu_seconds(quotes.pid) - cpu
    print(f"\n[{label}] {tally.rows:,} rows in {seconds:.1f} s (server CPU {cpu:.1f} s); server VmRSS "
          f"{rss.base / MIB:.0f} MiB before, peak {rss.peak / MIB:.0f} MiB (+{rss.growth / MIB:.1f} MiB)")
    assert tally == quotes.expected
    assert rss.growth < RSS_BOUND, (label, rss.base, rss.peak)


# -- the server and its data -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def quotes(shared_server):
    """Writes the 1,000,000 quotes (the last batch through pg_connector, which returns the
    connector), flushes them to Parquet, and returns the connector with `.expected` (a Tally of
    what was written), `.uri` and `.sa_url(driver)`."""
    started = time.monotonic()
    expected = Tally()
    bodies = []
    for start in range(0, ROWS, BATCH):
        rows = [quote(i) for i in range(start, min(ROWS, start + BATCH))]
        bodies.append("\n".join(f"quotes,symbol={s} bid={b},ask={a},size={z}i {t}"
                                for s, t, b, a, z in rows) + "\n")
        expected.add(len(rows), {r[0] for r in rows}, EPOCH + dt.timedelta(microseconds=rows[0][1] // 1000),
                     EPOCH + dt.timedelta(microseconds=rows[-1][1] // 1000), sum(r[2] for r in rows),
                     sum(r[3] for r in rows), sum(r[4] for r in rows), PAD * len(rows))
    generated = time.monotonic()
    for body in bodies[:-1]:
        r = shared_server.write_v2(body, bucket=DB)
        assert r.status_code == 204, f"write failed: {r.status_code} {r.text[:3000]}"
    pg = pg_connector(shared_server, DB, bodies[-1])
    size = sum(map(len, bodies))
    del bodies
    written = time.monotonic()
    shared_server.flush()
    assert shared_server.count("quotes", db=DB) == ROWS
    print(f"\n[load] {ROWS:,} rows, {size / MIB:.0f} MiB of line protocol: generated in "
          f"{generated - started:.1f} s, written in {written - generated:.1f} s, flushed in "
          f"{time.monotonic() - written:.1f} s")
    pg.expected = expected
    pg.uri = f"postgresql://hg@{pg.host}:{pg.port}/{pg.db}"
    pg.sa_url = lambda driver: f"postgresql+{driver}://hg@{pg.host}:{pg.port}/{pg.db}"
    return pg


# -- one test per client ---------------------------------------------------------------------------


def test_psycopg_named_cursor(quotes):
    with streamed(quotes, "psycopg 3 named cursor") as tally, quotes() as conn:
        with conn.cursor(name="quotes_stream") as cur:
            cur.itersize = FETCH
            cur.execute(SELECT)
            for rows in chunks(cur, FETCH):
                tally.add_rows(rows)


def test_psycopg2_named_cursor(quotes):
    psycopg2 = pytest.importorskip("psycopg2")
    with streamed(quotes, "psycopg2 named cursor") as tally:
        conn = psycopg2.connect(host=quotes.host, port=quotes.port, dbname=quotes.db, user="hg",
                                connect_timeout=10)
        try:
            with conn.cursor(name="quotes_stream") as cur:
                cur.itersize = FETCH
                cur.execute(SELECT)
                for rows in chunks(cur, FETCH):
                    tally.add_rows(rows)
        finally:
            conn.close()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sqlalchemy_stream_results(quotes, driver):
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip(driver)
    engine = sa.create_engine(quotes.sa_url(driver))
    try:
        with streamed(quotes, f"SQLAlchemy + {driver}, yield_per") as tally, engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=FETCH).execute(sa.text(SELECT))
            for part in result.partitions(FETCH):
                tally.add_rows(part)
    finally:
        engine.dispose()


def test_pandas_read_sql_chunksize(quotes):
    sa = pytest.importorskip("sqlalchemy")
    pd = pytest.importorskip("pandas")
    engine = sa.create_engine(quotes.sa_url("psycopg"))
    try:
        with streamed(quotes, "pandas read_sql(chunksize) over SQLAlchemy + psycopg") as tally, \
                engine.connect() as conn:
            for frame in pd.read_sql(SELECT, conn.execution_options(stream_results=True), chunksize=FETCH):
                tally.add_pandas(frame)
    finally:
        engine.dispose()


def test_asyncpg_cursor_in_transaction(quotes):
    asyncpg = pytest.importorskip("asyncpg")

    async def run(tally):
        conn = await asyncpg.connect(host=quotes.host, port=quotes.port, user="hg", database=quotes.db)
        try:
            async with conn.transaction():
                cur = await conn.cursor(SELECT)
                while rows := await cur.fetch(FETCH):
                    tally.add_rows(rows)
        finally:
            await conn.close()

    with streamed(quotes, "asyncpg cursor") as tally:
        asyncio.run(run(tally))


def test_asyncpg_copy_from_query_to_file(quotes, tmp_path):
    asyncpg = pytest.importorskip("asyncpg")
    pl = pytest.importorskip("polars")
    path = tmp_path / "quotes.csv"

    async def run():
        conn = await asyncpg.connect(host=quotes.host, port=quotes.port, user="hg", database=quotes.db)
        try:
            return await conn.copy_from_query(SELECT, output=str(path), format="csv", header=True)
        finally:
            await conn.close()

    with streamed(quotes, "asyncpg copy_from_query to a CSV file") as tally:
        assert asyncio.run(run()) == f"COPY {ROWS}"
        print(f"\n  CSV file: {path.stat().st_size / MIB:.0f} MiB")
        tally.add_polars(pl.read_csv(path, try_parse_dates=True))


def test_polars_read_database_uri_connectorx(quotes):
    pl = pytest.importorskip("polars")
    pytest.importorskip("connectorx")
    with streamed(quotes, "Polars read_database_uri (connectorx)") as tally:
        df = pl.read_database_uri(SELECT, quotes.uri, engine="connectorx")
        tally.add_polars(df)
    assert df.height == ROWS and df.columns == ["symbol", "time", "bid", "ask", "size", "cond"]


def test_psql_fetch_count(quotes):
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    args = [exe, "-h", quotes.host, "-p", str(quotes.port), "-U", "hg", "-d", quotes.db, "-X", "-A", "-t",
            "-v", "ON_ERROR_STOP=1", "-c", f"\\set FETCH_COUNT {FETCH}", "-c", SELECT]
    psql_hwm = 0
    with streamed(quotes, f"psql FETCH_COUNT={FETCH}") as tally:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})
        try:
            for lines in chunks(proc.stdout, FETCH):
                tally.add_text([line.rstrip("\n") for line in lines])
                try:
                    psql_hwm = max(psql_hwm, rss_bytes(proc.pid, "VmHWM"))
                except (OSError, AssertionError):
                    pass
            err = proc.stderr.read()
            assert proc.wait(timeout=60) == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"  psql's own peak RSS: {psql_hwm / MIB:.0f} MiB")
    # FETCH_COUNT took effect: psql never held the whole result (well over 100 MiB as a PGresult).
    assert 0 < psql_hwm < 64 * MIB, psql_hwm


def test_psycopg_closes_a_named_cursor_it_never_described(quotes):
    """psycopg 3 closes a named cursor whose query was never described (its execute failed on
    the client, e.g. a parameter it cannot adapt) by first asking whether it exists:
    `SELECT 1 FROM pg_catalog.pg_cursors WHERE name = '...'`. pandas hits this with
    `read_sql(sqlalchemy.text(...), conn.execution_options(stream_results=True))`: its
    `has_table` probe passes the TextClause as a parameter, the probe fails on the client,
    psycopg's close query fails on the server and aborts the transaction, and the real query
    then fails with 25P02."""
    import psycopg

    with quotes() as conn:
        conn.execute("SELECT 1").fetchall()  # in a transaction now
        cur = conn.cursor(name="never_described")
        with pytest.raises(psycopg.ProgrammingError):
            cur.execute("SELECT symbol FROM quotes WHERE symbol = %s", (object(),))
        cur.close()
        assert conn.execute("SELECT count(*) FROM quotes WHERE symbol = 'S1'").fetchone() == (ROWS // SYMBOLS,)
