"""Timestamps over the PostgreSQL endpoint (issue 23, item 6): Hourglass keeps nanoseconds,
PostgreSQL microseconds. By default the wire carries what PostgreSQL would (microseconds,
truncated), so every client parses it; with `SET hourglass.timestamp_precision = 'nanosecond'`
text-format timestamps (rows, cursors, COPY) carry nine digits, which psql shows and pgjdbc reads
into `Timestamp.getNanos()`; binary stays microseconds and `CAST(time AS BIGINT)` gives the exact
nanoseconds. Parameters with nine digits select the exact row."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hgtest import pg_connector

T0_NS = 1_709_251_200_000_000_000  # 2024-03-01 00:00:00 UTC
OFFSETS_NS = [0, 500, 123_456_000, 123_456_789, 999_999_999, 86_400_000_000_001]
TIMES_NS = [T0_NS + o for o in OFFSETS_NS]
LP = "".join(f"ts,k=k{i} v={i}i {t}\n" for i, t in enumerate(TIMES_NS))

REPO_ROOT = Path(__file__).resolve().parents[2]
JAR = Path(os.environ.get("PGJDBC_JAR", "/usr/share/java/postgresql.jar"))
EPOCH = dt.datetime(1970, 1, 1)


def nine_digits(ns: int) -> str:
    """PostgreSQL's text form of a timestamp, with nine fractional digits."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return (EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S") + f".{frac:09d}"


def truncated(ns: int) -> dt.datetime:
    """The naive datetime a client gets by default: microseconds, truncated."""
    return EPOCH + dt.timedelta(microseconds=ns // 1000)


@pytest.fixture
def pg(shared_server, db):
    return pg_connector(shared_server, db, LP)


def test_default_is_microseconds_in_text_and_binary(pg):
    with pg() as conn:
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute("SELECT time FROM ts ORDER BY time")
            assert cur.description[0].type_code == 1114  # timestamp
            assert [r[0] for r in cur.fetchall()] == [truncated(t) for t in TIMES_NS]
        assert conn.execute("SHOW hourglass.timestamp_precision").fetchone() == ("microsecond",)


def test_asyncpg_binary_is_microseconds(pg):
    asyncpg = pytest.importorskip("asyncpg")

    async def body():
        conn = await asyncpg.connect(host=pg.host, port=pg.port, user="hg", database=pg.db)
        try:
            return [r[0] for r in await conn.fetch("SELECT time FROM ts ORDER BY time")]
        finally:
            await conn.close()

    assert asyncio.run(body()) == [truncated(t) for t in TIMES_NS]


def test_nanosecond_text_rows_cursors_and_copy(pg):
    want = [nine_digits(t) for t in TIMES_NS]
    with pg(autocommit=True) as conn:
        conn.execute("SET hourglass.timestamp_precision = 'nanosecond'")
        assert conn.execute("SHOW hourglass.timestamp_precision").fetchone() == ("nanosecond",)
        # Read the text as sent: a loader that keeps the string (psycopg's own parser takes six
        # digits at most, which is why nanoseconds are not the default).
        from psycopg.types.string import TextLoader

        conn.adapters.register_loader(1114, TextLoader)
        cur = conn.cursor()
        cur.execute("SELECT time, k FROM ts ORDER BY time")
        assert cur.description[0].type_code == 1114
        assert [r[0] for r in cur.fetchall()] == want
        # A server-side cursor (DECLARE / FETCH).
        conn.execute("BEGIN")
        conn.execute("DECLARE c CURSOR FOR SELECT time FROM ts ORDER BY time")
        got = [r[0] for r in conn.execute("FETCH 4 FROM c").fetchall()]
        got += [r[0] for r in conn.execute("FETCH ALL FROM c").fetchall()]
        conn.execute("COMMIT")
        assert got == want
        for fmt in ("text", "csv"):
            with conn.cursor().copy(f"COPY (SELECT time FROM ts ORDER BY time) TO STDOUT (FORMAT {fmt})") as copy:
                body = b"".join(bytes(b) for b in copy).decode()
            assert body.splitlines() == want, fmt
        # Binary columns stay microseconds; the exact nanoseconds come as a number.
        cur = conn.cursor(binary=True)
        cur.execute("SELECT time, CAST(time AS BIGINT) AS ns FROM ts ORDER BY time")
        rows = cur.fetchall()
        assert [r[0] for r in rows] == [truncated(t) for t in TIMES_NS]
        assert [r[1] for r in rows] == TIMES_NS
        conn.execute("RESET hourglass.timestamp_precision")
        assert conn.execute("SELECT time FROM ts ORDER BY time").fetchone()[0] == nine_digits(TIMES_NS[0])[:-3]


def test_bad_precision_is_refused_by_name(pg):
    import psycopg

    with pg(autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            conn.execute("SET hourglass.timestamp_precision = 'millisecond'")
        assert "hourglass.timestamp_precision" in str(e.value)
        assert conn.execute("SHOW hourglass.timestamp_precision").fetchone() == ("microsecond",)


def test_nine_digit_parameters_select_the_exact_row(pg):
    with pg() as conn:
        exact = nine_digits(TIMES_NS[3])
        assert conn.execute("SELECT k FROM ts WHERE time = %s::timestamp", (exact,)).fetchall() == [("k3",)]
        # Its microsecond truncation is another instant (the row written at .123456000).
        assert conn.execute("SELECT k FROM ts WHERE time = %s::timestamp", (exact[:-3],)).fetchall() == [("k2",)]
        got = conn.execute(
            "SELECT count(*) FROM ts WHERE time > %s::timestamp AND time < %s::timestamp",
            (nine_digits(TIMES_NS[0]), nine_digits(TIMES_NS[4])),
        ).fetchone()
        assert got == (3,)


def test_psql_shows_nanoseconds_when_asked(pg):
    psql = shutil.which("psql")
    if not psql:
        pytest.skip("no psql")
    sql = "SET hourglass.timestamp_precision = 'nanosecond'; SELECT time FROM ts ORDER BY time"
    out = subprocess.run(
        [psql, "-X", "-At", "-h", pg.host, "-p", str(pg.port), "-U", "hg", "-d", pg.db, "-c", sql],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == [nine_digits(t) for t in TIMES_NS]


def test_pgjdbc_reads_the_nanoseconds(pg, tmp_path):
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip("no JDK (javac, java)")
    if not JAR.is_file():
        pytest.skip(f"PostgreSQL JDBC driver not found at {JAR}: run scripts/install-test-deps.sh")
    source = REPO_ROOT / "tests" / "jdbc" / "JdbcNanos.java"
    subprocess.run(["javac", "-cp", str(JAR), "-d", str(tmp_path), str(source)], check=True, capture_output=True, timeout=180)

    def run(precision: str) -> list[tuple[int, int]]:
        proc = subprocess.run(
            ["java", "-cp", f"{JAR}{os.pathsep}{tmp_path}", "JdbcNanos", pg.host, str(pg.port), pg.db, precision],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return [tuple(int(x) for x in line.split()) for line in proc.stdout.splitlines()]

    assert run("nanosecond") == [divmod(t, 1_000_000_000) for t in TIMES_NS]
    assert run("microsecond") == [(t // 1_000_000_000, t % 1_000_000_000 // 1000 * 1000) for t in TIMES_NS]
