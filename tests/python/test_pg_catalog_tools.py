"""Issue 23: catalog queries answer right or fail with an error, never with zero rows. The
queries psql (`\\l`, `\\dt`, `\\dt+`, `\\d table`, `\\dn`) and SQLAlchemy 2's PostgreSQL Inspector
send, against a database holding one `cpu` table."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest

from hgtest import pg_connector

LP = "cpu,host=a,region=us usage=1.5,count=3i 1700000000000000000\n"


@pytest.fixture
def pg(shared_server, db):
    return pg_connector(shared_server, db, LP)


def psql(pg, command: str) -> str:
    if shutil.which("psql") is None:
        pytest.skip("psql not installed")
    out = subprocess.run(
        ["psql", "-X", "-h", pg.host, "-p", str(pg.port), "-U", "hg", "-d", pg.db,
         "-v", "ON_ERROR_STOP=1", "-A", "-F", "|", "-c", command],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0 and "ERROR" not in out.stderr, out.stderr
    return out.stdout


def test_count_of_an_empty_catalog_table_is_one_row_of_zero(pg):
    with pg(autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_sequence").fetchall() == [(0,)]
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_policy").fetchall() == [(0,)]
        names = conn.execute("SELECT collname FROM pg_catalog.pg_collation ORDER BY oid").fetchall()
        assert names == [("default",), ("C",), ("POSIX",)]


def test_a_failing_catalog_query_is_an_error_not_zero_rows(pg):
    with pg(autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT nosuchcolumn FROM pg_catalog.pg_class").fetchall()
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM pg_catalog.pg_no_such_table").fetchall()
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT pg_catalog.no_such_function(1)").fetchall()


def test_catalog_functions(pg):
    with pg(autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_catalog.pg_size_pretty(pg_catalog.pg_total_relation_size(c.oid)),"
            " pg_catalog.pg_get_constraintdef(c.oid), pg_catalog.pg_get_indexdef(c.oid),"
            " pg_catalog.pg_get_viewdef(c.oid), pg_catalog.pg_get_serial_sequence('cpu', 'host'),"
            " pg_catalog.obj_description(c.oid, 'pg_class'), pg_catalog.col_description(c.oid, 1),"
            " pg_catalog.has_table_privilege(c.oid, 'SELECT'), pg_catalog.pg_table_is_visible(c.oid),"
            " pg_catalog.format_type(a.atttypid, a.atttypmod)"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relname = 'cpu' AND a.attname = 'usage' AND pg_catalog.pg_table_is_visible(c.oid)"
        ).fetchall()
        assert row == [("0 bytes", None, None, None, None, None, None, True, True, "double precision")]
        bounds = conn.execute(
            "SELECT array_lower(current_schemas(true), 1), array_upper(current_schemas(true), 1),"
            " array_upper(current_schemas(false), 1)"
        ).fetchall()
        assert bounds == [(1, 2, 1)]
        assert conn.execute("SELECT pg_catalog.pg_size_pretty(20480)").fetchall() == [("20 kB",)]


def test_psql_describe_commands(pg):
    lines = psql(pg, "\\l").splitlines()
    assert any(l.startswith(f"{pg.db}|hourglass|UTF8|") for l in lines), lines
    assert "(0 rows)" not in "\n".join(lines)
    assert f"{pg.db}|cpu|table|hourglass" in psql(pg, "\\dt")
    plus = psql(pg, "\\dt+")
    assert f"{pg.db}|cpu|table|hourglass|permanent|heap|0 bytes|" in plus, plus
    d = psql(pg, "\\d cpu")
    assert "usage|double precision||" in d and "time|timestamp without time zone||not null|" in d, d
    assert f"{pg.db}|hourglass" in psql(pg, "\\dn")


def test_sqlalchemy_inspector(pg):
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(f"postgresql+psycopg://hg@{pg.host}:{pg.port}/{pg.db}")
    try:
        insp = sa.inspect(engine)
        assert insp.get_table_names() == ["cpu"]
        assert insp.has_table("cpu") and not insp.has_table("nope")
        assert insp.get_pk_constraint("cpu")["constrained_columns"] == []
        assert insp.get_foreign_keys("cpu") == []
        assert insp.get_indexes("cpu") == []
        assert insp.get_unique_constraints("cpu") == []
        assert insp.get_check_constraints("cpu") == []
        assert insp.get_table_comment("cpu") == {"text": None}
    finally:
        engine.dispose()
