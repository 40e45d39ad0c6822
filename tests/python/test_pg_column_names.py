"""Result column names on the PostgreSQL wire are PostgreSQL's (docs/protocols/postgresql.md,
Column names): `count(*)` is `count`, a cast of a column the column's name, any other unnamed
expression `?column?`, names may repeat; in RowDescription of simple and extended queries,
Describe of a prepared statement, named cursors and COPY's header. The HTTP API keeps
DataFusion's names."""

from __future__ import annotations

import pytest

from hgtest import pg_connector

LP = (
    "cpu,hostname=h1,region=r1 usage_user=1.5,usage_system=2 1709251200000000000\n"
    "cpu,hostname=h2,region=r1 usage_user=2.5,usage_system=3 1709251201000000000\n"
)


@pytest.fixture
def pg(shared_server, db):
    return pg_connector(shared_server, db, LP)


def names(conn, sql: str, params=None) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [d.name for d in cur.description]


def test_names_as_postgresql_gives_them(pg):
    with pg() as conn:
        for sql, want in [
            ("SELECT count(*) FROM cpu", ["count"]),
            ("SELECT count(*), sum(usage_user), avg(cpu.usage_system), max(time) FROM cpu",
             ["count", "sum", "avg", "max"]),
            ("SELECT hostname, cpu.region FROM cpu", ["hostname", "region"]),
            ("SELECT CAST(usage_user AS int), usage_user::bigint, 1::int, 'a'::text FROM cpu",
             ["usage_user", "usage_user", "int4", "text"]),
            ("SELECT usage_user + 1, 1, NULL, usage_user IS NULL FROM cpu",
             ["?column?", "?column?", "?column?", "?column?"]),
            ("SELECT true, CASE WHEN usage_user > 2 THEN 'x' END, coalesce(usage_user, 0) FROM cpu",
             ["bool", "case", "coalesce"]),
            ("SELECT date_trunc('hour', time), (SELECT max(usage_user) FROM cpu) FROM cpu",
             ["date_trunc", "max"]),
            ("SELECT count(*) AS n, hostname AS \"Host\" FROM cpu GROUP BY hostname",
             ["n", "Host"]),
            ("SELECT * FROM cpu", None),
        ]:
            got = names(conn, sql)
            if want is None:
                assert {"hostname", "region", "time", "usage_user", "usage_system"} <= set(got), got
            else:
                assert got == want, (sql, got)
        # Prepared (extended protocol, Describe of the statement) alike.
        assert names(conn, "SELECT count(*), sum(usage_user) FROM cpu WHERE usage_user > %s",
                     (0.5,)) == ["count", "sum"]


def test_repeated_names(pg):
    with pg() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT time, CAST(time AS BIGINT) FROM cpu ORDER BY time")
            assert [d.name for d in cur.description] == ["time", "time"]
            rows = cur.fetchall()
            assert len(rows) == 2 and rows[0][1] == 1709251200000000000, rows
            cur.execute("SELECT count(*), count(usage_user), hostname, hostname FROM cpu"
                        " GROUP BY hostname ORDER BY hostname")
            assert [d.name for d in cur.description] == ["count", "count", "hostname", "hostname"]
            assert cur.fetchall() == [(1, 1, "h1", "h1"), (1, 1, "h2", "h2")]
            cur.execute("SELECT *, time FROM cpu ORDER BY time")
            got = [d.name for d in cur.description]
            assert got[-1] == "time" and got.count("time") == 2, got


def test_cursors_copy_and_pandas(pg):
    with pg() as conn:
        with conn.transaction():
            with conn.cursor(name="c1") as cur:
                cur.execute("SELECT count(*), sum(usage_user) FROM cpu")
                assert cur.fetchall() == [(2, 4.0)]
                assert [d.name for d in cur.description] == ["count", "sum"]
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT count(*), max(usage_system)::int FROM cpu)"
                          " TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                data = b"".join(bytes(b) for b in copy)
        assert data.decode().splitlines() == ["count,max", "2,3"], data
    pd = pytest.importorskip("pandas")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://hg@{pg.host}:{pg.port}/{pg.db}")
    try:
        with engine.connect() as c:
            df = pd.read_sql("SELECT hostname, count(*), avg(usage_user) FROM cpu"
                             " GROUP BY hostname ORDER BY hostname", c)
            assert list(df.columns) == ["hostname", "count", "avg"]
            assert df["count"].to_list() == [1, 1]
            row = c.execute(sqlalchemy.text("SELECT count(*) FROM cpu")).one()
            assert row.count == 2
    finally:
        engine.dispose()
