"""`COPY (query) TO STDOUT` / `COPY table [(cols)] TO STDOUT` on the PostgreSQL endpoint with real
clients: psycopg 3's `cursor.copy` (text, CSV, binary with `set_types`), psql's `\\copy ... TO file
CSV HEADER`, asyncpg's `copy_from_query` and connectorx (Polars' `read_database_uri`, whose
default is `COPY (query) TO STDOUT WITH BINARY`) when they are installed; a 1,000,000-row COPY
with the server's resident memory bounded; `COPY ... FROM STDIN` refused (the endpoint is
read-only)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import importlib.util
import io
import shutil
import subprocess
import time

import psycopg
import pytest

from hgtest import RssSampler, pg_connector

LP = (
    'cpu,host=a,region=us usage=1.5,count=3i,ok=true,note="hi, there" 1700000000123456000\n'
    'cpu,host=b,region=eu usage=2.5,count=4i,ok=false,note="say \\"yo\\"" 1700000060000001000\n'
    "cpu,host=c,region=eu usage=4.0 1700000400000000000\n"
)
T0 = dt.datetime(2023, 11, 14, 22, 13, 20, 123456)
MIB = 1 << 20


@pytest.fixture
def pg(shared_server, db):
    return pg_connector(shared_server, db, LP)


def copy_bytes(conn, sql: str) -> bytes:
    out = bytearray()
    with conn.cursor() as cur:
        with cur.copy(sql) as copy:
            for chunk in copy:
                out += chunk
        assert cur.rowcount >= 0
    return bytes(out)


def test_copy_text_rows_and_escaping(pg):
    with pg(autocommit=True) as conn:
        cur = conn.cursor()
        with cur.copy("COPY (SELECT host, usage, count, note FROM cpu ORDER BY host) TO STDOUT") as copy:
            rows = list(copy.rows())
        assert cur.rowcount == 3
        assert rows == [
            ("a", "1.5", "3", "hi, there"),
            ("b", "2.5", "4", 'say "yo"'),
            ("c", "4.0", None, None),
        ]
        raw = copy_bytes(
            conn,
            "COPY (SELECT 'a' || chr(9) || 'b\\c' || chr(10) || 'd' AS s, CAST(NULL AS TEXT) AS n, "
            "CAST(1 AS INT) AS i) TO STDOUT",
        )
        assert raw == b"a\\tb\\\\c\\nd\t\\N\t1\n"
        # Options: delimiter, NULL string, header in text format; COPY table (cols).
        raw = copy_bytes(conn, "COPY cpu (host, count) TO STDOUT (DELIMITER '|', NULL 'nil', HEADER)")
        lines = sorted(raw.decode().splitlines()[1:])
        assert raw.decode().splitlines()[0] == "host|count"
        assert lines == ["a|3", "b|4", "c|nil"]


def test_copy_csv_quoting_and_options(pg):
    with pg(autocommit=True) as conn:
        raw = copy_bytes(conn, "COPY (SELECT host, usage, note FROM cpu ORDER BY host) TO STDOUT WITH CSV HEADER")
        assert raw == b'host,usage,note\na,1.5,"hi, there"\nb,2.5,"say ""yo"""\nc,4.0,\n'
        raw = copy_bytes(
            conn,
            "COPY (SELECT host, note, '' AS e FROM cpu ORDER BY host) TO STDOUT "
            "(FORMAT csv, DELIMITER ';', NULL 'NULL', QUOTE '''', ESCAPE '\\', FORCE_QUOTE (host))",
        )
        # An empty string is quoted only when it is the NULL string (CSV's default).
        assert raw == b"'a';hi, there;\n'b';say \"yo\";\n'c';NULL;\n"
        assert copy_bytes(conn, "COPY (SELECT '' AS e, CAST(NULL AS TEXT) AS n) TO STDOUT CSV") == b'"",\n'
        raw = copy_bytes(conn, "COPY (SELECT host FROM cpu ORDER BY host) TO STDOUT (FORMAT csv, FORCE_QUOTE *)")
        assert raw == b'"a"\n"b"\n"c"\n'


def test_copy_binary_with_set_types(pg):
    sql = "SELECT host, time, usage, count, ok, note, CAST(2 AS INT) AS i, CAST('2024-02-03' AS DATE) AS d FROM cpu ORDER BY host"
    types = ["text", "timestamp", "float8", "int8", "bool", "text", "int4", "date"]
    with pg(autocommit=True) as conn:
        cur = conn.cursor()
        with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(types)
            rows = list(copy.rows())
        assert cur.rowcount == 3
        expected = conn.cursor(binary=True).execute(sql).fetchall()
        assert rows == expected
        assert rows[0][:2] == ("a", T0)  # microseconds kept
        assert rows[1][1] == dt.datetime(2023, 11, 14, 22, 14, 20, 1)
        assert rows[2][3:6] == (None, None, None)
        assert rows[0][6:] == (2, dt.date(2024, 2, 3))
        # Old syntax; the raw stream starts with PostgreSQL's signature and ends with -1.
        raw = copy_bytes(conn, "COPY (SELECT host FROM cpu WHERE host = 'zzz') TO STDOUT WITH BINARY")
        assert raw == b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff"
        raw = copy_bytes(conn, "COPY (SELECT CAST(7 AS BIGINT) AS x, CAST(NULL AS BIGINT) AS y) TO STDOUT WITH BINARY")
        assert raw[19:] == b"\x00\x02" + b"\x00\x00\x00\x08" + (7).to_bytes(8, "big") + b"\xff\xff\xff\xff" + b"\xff\xff"


def test_copy_from_stdin_and_files_are_refused(pg):
    with pg(autocommit=True) as conn:
        cur = conn.cursor()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            with cur.copy("COPY cpu FROM STDIN") as copy:
                copy.write_row(("x",))
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            cur.execute("COPY cpu TO '/tmp/hourglass-copy-test'")
        assert conn.execute("SELECT count(*) FROM cpu").fetchone() == (3,)


def test_psql_copy_csv_header_matches_select(pg, tmp_path):
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    out = tmp_path / "out.csv"
    query = "SELECT host, region, time, usage, count, ok, note FROM cpu ORDER BY host"
    r = subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(pg.port), "-d", pg.db, "-U", "hg", "-X",
         "-c", f"\\copy ({query}) TO '{out}' CSV HEADER"],
        capture_output=True, text=True, timeout=60, env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "COPY 3"
    with open(out, newline="") as f:
        got = list(csv.reader(f))
    with pg(autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute(query)
        names = [d.name for d in cur.description]
    assert got[0] == names
    assert [row[0] for row in got[1:]] == ["a", "b", "c"]
    assert got[1][2] == "2023-11-14 22:13:20.123456"
    assert got[1][5:] == ["t", "hi, there"]
    assert got[3][4:] == ["", "", ""]
    # Compare with psql's own rendering of the SELECT (unaligned, comma-separated, CSV mode).
    s = subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(pg.port), "-d", pg.db, "-U", "hg", "-X", "--csv", "-c", query],
        capture_output=True, text=True, timeout=60, env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"},
    )
    assert s.returncode == 0, s.stderr
    assert list(csv.reader(io.StringIO(s.stdout))) == got


def test_large_copy_streams_with_bounded_memory(pg):
    n = 1_000_000
    sql = (
        f"COPY (SELECT value, value * 2 AS d, repeat('x', 200) AS pad FROM generate_series(1, {n})) "
        "TO STDOUT"
    )
    lines = 0
    size = 0
    started = time.monotonic()
    with RssSampler(pg.pid) as rss, pg(autocommit=True) as conn:
        cur = conn.cursor()
        with cur.copy(sql) as copy:
            for chunk in copy:
                lines += bytes(chunk).count(b"\n")
                size += len(chunk)
        assert cur.rowcount == n
    elapsed = time.monotonic() - started
    print(
        f"\nCOPY of {n} rows, {size / MIB:.0f} MiB in {elapsed:.1f} s: server VmRSS "
        f"{rss.base / MIB:.0f} MiB before, {rss.peak / MIB:.0f} MiB peak"
    )
    assert lines == n
    # The whole result is over 200 MiB; streamed, the server holds a batch or so.
    assert rss.growth < 120 * MIB, (rss.base, rss.peak)


def test_asyncpg_copy_from_query(pg):
    asyncpg = pytest.importorskip("asyncpg")

    async def run():
        conn = await asyncpg.connect(host=pg.host, port=pg.port, user="hg", database=pg.db)
        try:
            out = io.BytesIO()
            status = await conn.copy_from_query(
                "SELECT host, usage, note FROM cpu ORDER BY host", output=out, format="csv", header=True
            )
            binary = io.BytesIO()
            await conn.copy_from_query("SELECT host FROM cpu ORDER BY host", output=binary, format="binary")
            return status, out.getvalue(), binary.getvalue()
        finally:
            await conn.close()

    status, data, binary = asyncio.run(run())
    assert status == "COPY 3"
    assert data == b'host,usage,note\na,1.5,"hi, there"\nb,2.5,"say ""yo"""\nc,4.0,\n'
    assert binary.startswith(b"PGCOPY\n\xff\r\n\x00") and binary.endswith(b"\xff\xff")


def test_connectorx_binary_copy(pg):
    cx = pytest.importorskip("connectorx")

    uri = f"postgresql://hg@{pg.host}:{pg.port}/{pg.db}"
    query = "SELECT host, time, usage, count, ok, note FROM cpu ORDER BY host"
    table = cx.read_sql(uri, query, return_type="arrow")
    got = table.to_pydict()
    assert got["host"] == ["a", "b", "c"]
    assert got["time"][0] == T0
    assert got["usage"] == [1.5, 2.5, 4.0]
    assert got["count"] == [3, 4, None]
    assert got["ok"] == [True, False, None]
    assert got["note"] == ["hi, there", 'say "yo"', None]
    if importlib.util.find_spec("polars") is not None:
        import polars as pl

        df = pl.read_database_uri(query, uri, engine="connectorx")
        assert df["host"].to_list() == ["a", "b", "c"]
        assert df["count"].to_list() == [3, 4, None]
