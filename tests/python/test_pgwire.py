"""The PostgreSQL wire protocol endpoint with real clients: psycopg 3 (simple and extended
protocol, server-side parameter binding, text and binary results, every column type, NULLs,
SQLSTATEs, cancellation) and psql (`\\dt`, `\\d table`, a query, an error)."""

from __future__ import annotations

import datetime as dt
import decimal
import shutil
import subprocess
import threading
import time

import psycopg
import pytest

from hgtest import pg_connector

LP = (
    'cpu,host=a,region=us usage=1.5,count=3i,ok=true,big=18446744073709551615u,note="hi" 1700000000000000000\n'
    'cpu,host=b,region=eu usage=2.5,count=4i,ok=false,big=8u,note="yo" 1700000060000000000\n'
    "cpu,host=c,region=eu usage=4.0 1700000400000000000\n"
)
T0 = dt.datetime(2023, 11, 14, 22, 13, 20)


@pytest.fixture
def pg(shared_server, db):
    """A database with three `cpu` rows (one with NULL measures) and a psycopg connector."""
    return pg_connector(shared_server, db, LP)


def test_banner_and_simple_query(pg):
    with pg(autocommit=True) as conn:
        rows = conn.execute("SELECT host, usage FROM cpu ORDER BY host", prepare=False).fetchall()
    assert rows == [("a", 1.5), ("b", 2.5), ("c", 4.0)]


def test_every_column_type_text_and_binary(pg):
    for binary in (False, True):
        with pg() as conn:
            cur = conn.cursor(binary=binary)
            cur.execute("SELECT host, region, measure_name, time, usage, count, ok, big, note FROM cpu ORDER BY time")
            rows = cur.fetchall()
            oids = [d.type_code for d in cur.description]
        # text, text, text, timestamp, float8, int8, bool, numeric (UInt64), text
        assert oids == [25, 25, 25, 1114, 701, 20, 16, 1700, 25], binary
        assert rows[0] == ("a", "us", "cpu", T0, 1.5, 3, True, decimal.Decimal(18446744073709551615), "hi")
        assert rows[1][3] == T0 + dt.timedelta(minutes=1)
        assert rows[1][6] is False and rows[1][7] == 8
        # Missing measures are NULLs.
        assert rows[2][4] == 4.0 and rows[2][5:] == (None, None, None, None)


def test_more_types(pg):
    sql = (
        "SELECT CAST(1 AS INT), CAST(1.5 AS REAL), CAST('2024-02-03' AS DATE), "
        "CAST(12.34 AS DECIMAL(10,2)), make_array(1, 2, 3), CAST(NULL AS BIGINT)"
    )
    for binary in (False, True):
        with pg() as conn:
            cur = conn.cursor(binary=binary)
            cur.execute(sql)
            assert [d.type_code for d in cur.description] == [23, 700, 1082, 1700, 1016, 20]
            assert cur.fetchone() == (1, 1.5, dt.date(2024, 2, 3), decimal.Decimal("12.34"), [1, 2, 3], None)


def test_server_side_parameters_and_prepared_statements(pg):
    with pg() as conn:
        sql = "SELECT host, count FROM cpu WHERE usage > %s AND region = %s ORDER BY host"
        assert conn.execute(sql, (1.0, "eu")).fetchall() == [("b", 4), ("c", None)]
        # prepare=True: a named prepared statement, executed again with other values.
        for _ in range(3):
            assert conn.execute(sql, (2.0, "eu"), prepare=True).fetchall() == [("b", 4), ("c", None)]
        assert conn.execute("SELECT count(*) FROM cpu WHERE time >= %s", (T0 + dt.timedelta(seconds=30),)).fetchone() == (2,)
        assert conn.execute("SELECT host FROM cpu WHERE ok = %s", (True,)).fetchall() == [("a",)]
        assert conn.execute("SELECT count(*) FROM cpu WHERE count = %s", (None,)).fetchone() == (0,)
        # Binary parameters.
        cur = conn.cursor()
        cur.execute("SELECT host FROM cpu WHERE count = %b", (4,))
        assert cur.fetchall() == [("b",)]


def test_portal_row_limits_stream(pg):
    with pg() as conn:
        with conn.cursor(name="big") as cur:  # a server-side cursor: DECLARE ... FETCH
            try:
                cur.execute("SELECT host FROM cpu ORDER BY host")
                got = cur.fetchmany(2)
            except psycopg.Error:
                pytest.skip("DECLARE CURSOR not supported; portal limits tested in Rust")
        assert got == [("a",), ("b",)]


def test_database_default_schema_and_qualified(pg, shared_server):
    with pg(autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*) FROM {pg.db}.cpu").fetchone() == (3,)
        assert conn.execute("SELECT current_database(), current_schema()").fetchone() == (pg.db, pg.db)
    host, port = shared_server.pg_addr
    with psycopg.connect(host=host, port=port, dbname="other_db", user="hg", autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*) FROM {pg.db}.cpu").fetchone() == (3,)


@pytest.mark.parametrize(
    "sql,code",
    [
        ("SELEC 1", "42601"),
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM cpu", "42703"),
        ("SELECT no_such_function(1)", None),
        ("SHOW no_such_setting", "42704"),
    ],
)
def test_errors_carry_sqlstate(pg, sql, code):
    with pg(autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as e:
            conn.execute(sql)
        if code:
            assert e.value.sqlstate == code, e.value
        else:
            assert e.value.sqlstate and e.value.sqlstate[:2] in ("42", "22"), e.value
        # The connection stays usable.
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_session_statements(pg):
    with pg() as conn:  # psycopg opens a transaction: BEGIN is accepted
        conn.execute("SET application_name = 'x'")
        conn.execute("SET TIME ZONE 'UTC'")
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("16")
        assert conn.execute("SHOW search_path").fetchone() == (pg.db,)
        assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 16")
        conn.commit()
        conn.rollback()
    with pg() as conn:
        assert conn.info.server_version >= 160000
        assert conn.info.parameter_status("server_encoding") == "UTF8"


def test_time_functions(pg):
    with pg() as conn:
        rows = conn.execute(
            "SELECT time_bucket(INTERVAL '5 minutes', time) AS b, count(*) FROM cpu GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert rows == [(dt.datetime(2023, 11, 14, 22, 10), 2), (dt.datetime(2023, 11, 14, 22, 20), 1)]
        # Week buckets start on Mondays (TimescaleDB's origin 2000-01-03).
        assert conn.execute("SELECT time_bucket(INTERVAL '7 days', TIMESTAMP '2023-11-15 10:00:00')").fetchone() == (
            dt.datetime(2023, 11, 13),
        )
        assert conn.execute("SELECT date_trunc('hour', time) FROM cpu WHERE host = 'a'").fetchone() == (
            dt.datetime(2023, 11, 14, 22),
        )
        assert conn.execute(
            "SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMP '2000-01-01') FROM cpu WHERE host = 'b'"
        ).fetchone() == (dt.datetime(2023, 11, 14, 22, 14),)
        assert conn.execute("SELECT extract(epoch FROM time) FROM cpu WHERE host = 'a'").fetchone()[0] == 1700000000
        assert conn.execute("SELECT to_timestamp(0)").fetchone()[0].replace(tzinfo=None) == dt.datetime(1970, 1, 1)
        assert conn.execute("SELECT count(*) FROM cpu WHERE time > now() - INTERVAL '100000 days'").fetchone() == (3,)


def test_cancel_request(pg):
    with pg(autocommit=True) as conn:
        # A cross join large enough to run for a while in a debug build.
        sql = "SELECT count(*) FROM generate_series(1, 200000) a, generate_series(1, 20000) b"
        timer = threading.Timer(0.5, conn.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(sql)
        timer.cancel()
        assert time.monotonic() - started < 30
        assert conn.execute("SELECT 1").fetchone() == (1,)


# -- psql ---------------------------------------------------------------------------------------

def psql(pg, *commands: str) -> subprocess.CompletedProcess:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    args = [exe, "-h", "127.0.0.1", "-p", str(pg.port), "-d", pg.db, "-U", "hg", "-X", "-A", "-t"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})


def test_psql_query(pg):
    r = psql(pg, "SELECT host, usage FROM cpu ORDER BY host")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["a|1.5", "b|2.5", "c|4.0"]


def test_psql_list_tables(pg):
    r = psql(pg, "\\dt")
    assert r.returncode == 0, r.stderr
    assert f"{pg.db}|cpu|table|hourglass" in r.stdout.splitlines()


def test_psql_describe_table(pg):
    r = psql(pg, "\\d cpu")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "host|text|||" in lines
    assert "time|timestamp without time zone||not null|" in lines
    assert "usage|double precision|||" in lines
    assert "count|bigint|||" in lines
    assert "ok|boolean|||" in lines
    assert "big|numeric|||" in lines
    r = psql(pg, "\\d no_such_table")
    assert "Did not find any relation named" in r.stderr


def test_psql_error(pg):
    r = psql(pg, "SELECT * FROM no_such_table")
    assert r.returncode != 0
    assert "ERROR:" in r.stderr and "no_such_table" in r.stderr


def test_set_hourglass_disabled_rules(pg):
    """`SET hourglass.disabled_rules` switches plan rules off for the connection only; an unknown
    rule is an error (22023) and leaves the setting as it was."""
    sql = "SELECT host, sum(usage) FROM cpu GROUP BY host ORDER BY host"

    def plan(conn):
        return " ".join(r[1] for r in conn.execute("EXPLAIN " + sql, prepare=False).fetchall())

    with pg(autocommit=True) as conn, pg(autocommit=True) as other:
        before = conn.execute(sql, prepare=False).fetchall()
        assert "hourglass_dictionary_as_view" in plan(conn)
        conn.execute("SET hourglass.disabled_rules = 'all'", prepare=False)
        assert "hourglass_dictionary_as_view" not in plan(conn)
        assert "hourglass_dictionary_as_view" in plan(other)
        assert conn.execute(sql, prepare=False).fetchall() == before
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="bogus"):
            conn.execute("SET hourglass.disabled_rules TO 'bogus'", prepare=False)
        assert "hourglass_dictionary_as_view" not in plan(conn)
        conn.execute("SET hourglass.disabled_rules = 'none'", prepare=False)
        assert "hourglass_dictionary_as_view" in plan(conn)


def test_map_results_arrive_as_text(pg):
    """Maps (map_agg, histogram) have no PostgreSQL type in arrow-pg: they arrive as text, in
    the simple and the extended protocol, text and binary, instead of failing the query."""
    sql = "SELECT map_agg(host, usage) AS m, histogram(host) AS h, count(*) AS n FROM cpu WHERE host <> 'c'"
    with pg(autocommit=True) as conn:
        simple = conn.execute(sql, prepare=False).fetchall()
        extended = conn.execute(sql, prepare=True).fetchall()
        binary = conn.cursor(binary=True).execute(sql).fetchall()
    assert simple == extended == binary == [("{a: 1.5, b: 2.5}", "{a: 1, b: 1}", 2)]
