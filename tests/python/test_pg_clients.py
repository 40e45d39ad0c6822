"""The PostgreSQL endpoint with the clients data people use (issue 23): SQLAlchemy 2 over psycopg 3
and psycopg2 (queries with bound parameters, the Inspector's catalog calls), pandas over
SQLAlchemy (`read_sql`, `read_sql_table`, chunked reads), asyncpg (`$n` parameters, prepared
statements, COPY), Polars' `read_database_uri` with its connectorx engine, and pgcli run
non-interactively (`pgcli -c`). Every test runs against one server holding a `cpu` table of 10,000 points
(dimensions hostname and region, measures usage_user and usage_system, times in 2024) and checks
real values against aggregates computed here from what was written."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

DB = "clients"
N_ROWS = 10_000
N_HOSTS = 10
T0 = dt.datetime(2024, 3, 1)  # UTC, naive: the server's times are timestamp without time zone
CUTOFF = dt.datetime(2024, 3, 1, 8)  # a time filter: the rows at or after 08:00


def _region(h: int) -> str:
    return ("us-east", "us-west", "eu-central")[h % 3]


def _rows() -> list[dict]:
    """Row i: host i % 10, one point a minute per host from T0. The measures are multiples of
    1/4, so their sums are exact in floating point whatever the order of addition."""
    rows = []
    for i in range(N_ROWS):
        h = i % N_HOSTS
        rows.append(
            {
                "hostname": f"host_{h}",
                "region": _region(h),
                "time": T0 + dt.timedelta(minutes=i // N_HOSTS),
                "usage_user": float((i * 7) % 100) + 0.25,
                "usage_system": (i % 13) / 2,
            }
        )
    return rows


ROWS = _rows()


def _by_host(rows) -> dict[str, tuple[int, float, float]]:
    acc: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    for r in rows:
        a = acc[r["hostname"]]
        a[0] += 1
        a[1] += r["usage_user"]
        a[2] += r["usage_system"]
    return {h: tuple(v) for h, v in sorted(acc.items())}


ALL_BY_HOST = _by_host(ROWS)
AFTER_BY_HOST = _by_host(r for r in ROWS if r["time"] >= CUTOFF)
TOTAL_USER = sum(r["usage_user"] for r in ROWS)
TOTAL_SYSTEM = sum(r["usage_system"] for r in ROWS)


def _line_protocol() -> str:
    epoch = dt.datetime(1970, 1, 1)
    lines = []
    for r in ROWS:
        t_ns = int((r["time"] - epoch).total_seconds()) * 1_000_000_000
        lines.append(
            f"cpu,hostname={r['hostname']},region={r['region']} "
            f"usage_user={r['usage_user']!r},usage_system={r['usage_system']!r} {t_ns}"
        )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pgsrv(shared_server):
    """The shared server with the 10,000 `cpu` points in database `clients`; returns (host, port)."""
    body = _line_protocol().splitlines(keepends=True)
    for start in range(0, len(body), 2500):
        shared_server.write_ok("".join(body[start : start + 2500]), db=DB)
    assert shared_server.count("cpu", db=DB) == N_ROWS
    return shared_server.pg_addr


def _uri(pgsrv, scheme: str = "postgresql") -> str:
    host, port = pgsrv
    return f"{scheme}://hg@{host}:{port}/{DB}"


# -- SQLAlchemy 2 ---------------------------------------------------------------------------------

DRIVERS = ["psycopg", "psycopg2"]


@pytest.fixture
def engine_for(pgsrv):
    import sqlalchemy as sa

    made = []

    def make(driver: str):
        eng = sa.create_engine(_uri(pgsrv, f"postgresql+{driver}"), connect_args={"connect_timeout": 10})
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.dispose()


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_connect_and_query(engine_for, driver):
    import sqlalchemy as sa

    eng = engine_for(driver)
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        got = conn.execute(
            sa.text(
                "SELECT count(*) AS n, sum(usage_user) AS u, sum(usage_system) AS s FROM cpu "
                "WHERE hostname = :host AND time >= :since"
            ),
            {"host": "host_3", "since": CUTOFF},
        ).one()
        assert tuple(got) == AFTER_BY_HOST["host_3"]
        rows = conn.execute(
            sa.text("SELECT hostname, region, time, usage_user FROM cpu WHERE time < :t ORDER BY time, hostname LIMIT :n"),
            {"t": T0 + dt.timedelta(minutes=1), "n": 20},
        ).all()
        assert [tuple(r) for r in rows] == [
            (r["hostname"], r["region"], r["time"], r["usage_user"]) for r in ROWS[:N_HOSTS]
        ]


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_transaction_and_group_by(engine_for, driver):
    import sqlalchemy as sa

    eng = engine_for(driver)
    # engine.begin(): BEGIN ... COMMIT around the query.
    with eng.begin() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT hostname, count(*), sum(usage_user), sum(usage_system) FROM cpu "
                "GROUP BY hostname ORDER BY hostname"
            )
        ).all()
    assert {r[0]: tuple(r[1:]) for r in rows} == ALL_BY_HOST


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_inspector_table_names(engine_for, driver):
    import sqlalchemy as sa

    insp = sa.inspect(engine_for(driver))
    assert "cpu" in insp.get_table_names()
    assert "cpu" in insp.get_table_names(schema=DB)


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_inspector_has_table(engine_for, driver):
    import sqlalchemy as sa

    insp = sa.inspect(engine_for(driver))
    assert insp.has_table("cpu")
    assert insp.has_table("cpu", schema=DB)
    assert not insp.has_table("no_such_table")


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_savepoint(engine_for, driver):
    """begin_nested(): SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO SAVEPOINT inside a transaction,
    with a failing query rolled back to the savepoint and the transaction going on."""
    import sqlalchemy as sa

    eng = engine_for(driver)
    with eng.connect() as conn:
        with conn.begin():
            with conn.begin_nested():
                n = conn.execute(sa.text("SELECT count(*) FROM cpu WHERE hostname = :h"), {"h": "host_2"}).scalar_one()
            nested = conn.begin_nested()
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(sa.text("SELECT * FROM no_such_table"))
            nested.rollback()
            again = conn.execute(sa.text("SELECT count(*) FROM cpu")).scalar_one()
    assert n == ALL_BY_HOST["host_2"][0]
    assert again == N_ROWS


# -- pandas ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_pandas_read_sql_with_params(engine_for, driver):
    import pandas as pd
    import sqlalchemy as sa

    eng = engine_for(driver)
    df = pd.read_sql(
        sa.text(
            "SELECT hostname, count(*) AS n, sum(usage_user) AS u, sum(usage_system) AS s FROM cpu "
            "WHERE time >= :since GROUP BY hostname ORDER BY hostname"
        ),
        eng,
        params={"since": CUTOFF},
    )
    assert list(df.columns) == ["hostname", "n", "u", "s"]
    assert {r.hostname: (r.n, r.u, r.s) for r in df.itertuples()} == AFTER_BY_HOST


@pytest.mark.parametrize("driver", DRIVERS)
def test_pandas_read_sql_chunksize(engine_for, driver):
    import pandas as pd
    import sqlalchemy as sa

    eng = engine_for(driver)
    chunks = list(
        pd.read_sql(
            sa.text("SELECT hostname, time, usage_user FROM cpu ORDER BY time, hostname"),
            eng,
            chunksize=1000,
        )
    )
    assert [len(c) for c in chunks] == [1000] * 10
    df = pd.concat(chunks, ignore_index=True)
    assert df["usage_user"].sum() == TOTAL_USER
    assert list(df["hostname"][:3]) == ["host_0", "host_1", "host_2"]
    assert df["time"].iloc[-1] == pd.Timestamp(ROWS[-1]["time"])


# -- asyncpg --------------------------------------------------------------------------------------


def _asyncpg(pgsrv, body):
    """Runs `await body(conn)` on a fresh asyncpg connection and returns its result."""
    import asyncpg

    host, port = pgsrv

    async def main():
        conn = await asyncpg.connect(host=host, port=port, user="hg", database=DB, timeout=10, ssl=False)
        try:
            return await asyncio.wait_for(body(conn), 60)
        finally:
            await conn.close()

    return asyncio.run(main())


def _copy_csv(pgsrv, sql: str, *args) -> tuple[str, str]:
    """asyncpg's `copy_from_query(sql, *args)` in CSV: (its status, the text)."""

    async def body(conn):
        out = io.BytesIO()
        status = await conn.copy_from_query(sql, *args, output=out, format="csv")
        return status, out.getvalue().decode()

    return _asyncpg(pgsrv, body)


def test_asyncpg_fetch_with_params(pgsrv):
    async def body(conn):
        one = await conn.fetchval("SELECT 1")
        per_host = await conn.fetchrow(
            "SELECT count(*) AS n, sum(usage_user) AS u, sum(usage_system) AS s FROM cpu "
            "WHERE hostname = $1 AND time >= $2",
            "host_7",
            CUTOFF,
        )
        first = await conn.fetch(
            "SELECT hostname, region, time, usage_user, usage_system FROM cpu WHERE time < $1 "
            "ORDER BY time, hostname",
            T0 + dt.timedelta(minutes=1),
        )
        return one, per_host, first

    one, per_host, first = _asyncpg(pgsrv, body)
    assert one == 1
    assert tuple(per_host) == AFTER_BY_HOST["host_7"]
    assert [tuple(r) for r in first] == [
        (r["hostname"], r["region"], r["time"], r["usage_user"], r["usage_system"]) for r in ROWS[:N_HOSTS]
    ]


def test_asyncpg_prepared_statement(pgsrv):
    async def body(conn):
        stmt = await conn.prepare(
            "SELECT count(*), sum(usage_user), sum(usage_system) FROM cpu WHERE hostname = $1"
        )
        got = {}
        for h in ("host_0", "host_5", "host_9"):
            got[h] = tuple(await stmt.fetchrow(h))
        cols = [a.name for a in stmt.get_attributes()]
        return got, cols

    got, cols = _asyncpg(pgsrv, body)
    assert got == {h: ALL_BY_HOST[h] for h in ("host_0", "host_5", "host_9")}
    assert len(cols) == 3


def test_asyncpg_cursor(pgsrv):
    """A cursor in a transaction: the rows arrive in batches of `prefetch` (Execute with a row
    limit on one portal)."""

    async def body(conn):
        n, total = 0, 0.0
        async with conn.transaction():
            async for rec in conn.cursor("SELECT usage_user FROM cpu WHERE hostname = $1", "host_4", prefetch=100):
                n += 1
                total += rec["usage_user"]
        return n, total

    assert _asyncpg(pgsrv, body) == ALL_BY_HOST["host_4"][:2]


def test_asyncpg_copy_from_query(pgsrv):
    _check_copy(*_copy_csv(
        pgsrv, "SELECT hostname, usage_user FROM cpu WHERE time >= '2024-03-01 08:00:00' ORDER BY time, hostname"))


def test_asyncpg_copy_from_table(pgsrv):
    async def body(conn):
        out = io.BytesIO()
        status = await conn.copy_from_table(
            "cpu", columns=["hostname", "region", "usage_system"], output=out, format="csv", header=True
        )
        return status, out.getvalue().decode()

    status, text = _asyncpg(pgsrv, body)
    rows = list(csv.reader(io.StringIO(text)))
    assert status == f"COPY {N_ROWS}"
    assert rows[0] == ["hostname", "region", "usage_system"]
    assert len(rows) == N_ROWS + 1
    assert sum(float(r[2]) for r in rows[1:]) == TOTAL_SYSTEM
    assert {(r[0], r[1]) for r in rows[1:]} == {(f"host_{h}", _region(h)) for h in range(N_HOSTS)}


def _check_copy(status: str, text: str):
    rows = list(csv.reader(io.StringIO(text)))
    after = [r for r in ROWS if r["time"] >= CUTOFF]
    assert status == f"COPY {len(after)}"
    assert len(rows) == len(after)
    assert rows[0] == ["host_0", repr(after[0]["usage_user"])]
    assert sum(float(r[1]) for r in rows) == sum(r["usage_user"] for r in after)


# -- Polars with connectorx -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [None, "cursor", "simple"])
def test_polars_read_database_uri(pgsrv, protocol):
    import polars as pl

    kw = {"protocol": protocol} if protocol else {}
    df = pl.read_database_uri(
        "SELECT hostname, count(*) AS n, sum(usage_user) AS u, sum(usage_system) AS s FROM cpu "
        "GROUP BY hostname ORDER BY hostname",
        _uri(pgsrv),
        engine="connectorx",
        **kw,
    )
    assert df.columns == ["hostname", "n", "u", "s"]
    assert {r[0]: tuple(r[1:]) for r in df.iter_rows()} == ALL_BY_HOST


@pytest.mark.parametrize("protocol", [None, "cursor"])
def test_polars_read_database_uri_whole_table(pgsrv, protocol):
    import polars as pl

    kw = {"protocol": protocol} if protocol else {}
    df = pl.read_database_uri(
        "SELECT hostname, region, time, usage_user, usage_system FROM cpu", _uri(pgsrv), engine="connectorx", **kw
    )
    assert df.height == N_ROWS
    assert df["usage_user"].sum() == TOTAL_USER
    assert df["usage_system"].sum() == TOTAL_SYSTEM
    assert df["time"].min() == T0
    assert df["time"].max() == ROWS[-1]["time"]


def test_polars_read_database_sqlalchemy(engine_for):
    """pl.read_database over a SQLAlchemy engine (psycopg2), with a bound parameter."""
    import polars as pl
    import sqlalchemy as sa

    df = pl.read_database(
        sa.text("SELECT hostname, count(*) AS n, sum(usage_user) AS u, sum(usage_system) AS s FROM cpu "
                "WHERE time >= :since GROUP BY hostname ORDER BY hostname"),
        engine_for("psycopg2"),
        execute_options={"parameters": {"since": CUTOFF}},
    )
    assert {r[0]: tuple(r[1:]) for r in df.iter_rows()} == AFTER_BY_HOST


# -- pgcli ----------------------------------------------------------------------------------------


def _pgcli(pgsrv, tmp_path: Path, *commands: str) -> subprocess.CompletedProcess:
    host, port = pgsrv
    exe = Path(sys.executable).with_name("pgcli")
    assert exe.is_file(), f"no pgcli next to {sys.executable}: run scripts/install-test-deps.sh"
    args = [str(exe), "-h", host, "-p", str(port), "-U", "hg", "-d", DB, "-w", "--less-chatty", "--timeout", "10"]
    for c in commands:
        args += ["-c", c]
    # pgcli writes its config, history and log under $HOME (XDG): keep them in the test's folder.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "dumb",
        "LANG": "C.UTF-8",
    }
    return subprocess.run(args, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)


def test_pgcli_query(pgsrv, tmp_path):
    r = _pgcli(pgsrv, tmp_path, "SELECT hostname, count(*) AS n FROM cpu GROUP BY hostname ORDER BY hostname")
    assert r.returncode == 0, r.stdout + r.stderr
    for h, v in ALL_BY_HOST.items():
        assert any(h in line and str(v[0]) in line for line in r.stdout.splitlines()), r.stdout + r.stderr


# -- issue 23: the Inspector, streaming, parameter types, pgcli meta-commands ----------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_inspector_schema_names(engine_for, driver):
    import sqlalchemy as sa

    assert DB in sa.inspect(engine_for(driver)).get_schema_names()


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_inspector_columns(engine_for, driver):
    import sqlalchemy as sa

    cols = {c["name"]: c for c in sa.inspect(engine_for(driver)).get_columns("cpu")}
    assert {"hostname", "region", "time", "usage_user", "usage_system"} <= set(cols)
    assert isinstance(cols["hostname"]["type"], sa.String)
    assert isinstance(cols["time"]["type"], sa.DateTime)
    assert isinstance(cols["usage_user"]["type"], sa.Float)
    assert cols["time"]["nullable"] is False


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_table_reflection(engine_for, driver):
    import sqlalchemy as sa

    eng = engine_for(driver)
    cpu = sa.Table("cpu", sa.MetaData(), autoload_with=eng)
    q = (
        sa.select(cpu.c.region, sa.func.count().label("n"))
        .where(cpu.c.time >= CUTOFF)
        .group_by(cpu.c.region)
        .order_by(cpu.c.region)
    )
    with eng.connect() as conn:
        got = {r.region: r.n for r in conn.execute(q)}
    want: dict[str, int] = defaultdict(int)
    for r in ROWS:
        if r["time"] >= CUTOFF:
            want[r["region"]] += 1
    assert got == dict(want)


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_stream_results(engine_for, driver):
    """stream_results: a server-side cursor (DECLARE ... FETCH with psycopg and psycopg2) read
    in partitions."""
    import sqlalchemy as sa

    eng = engine_for(driver)
    with eng.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=500).execute(
            sa.text("SELECT hostname, usage_user FROM cpu WHERE time >= :since"), {"since": CUTOFF}
        )
        assert getattr(result.cursor, "name", None)  # a server-side cursor: DECLARE, then FETCH FORWARD n
        parts = [len(p) for p in result.partitions(500)]
    with eng.connect() as conn:
        total = sum(
            r.usage_user
            for r in conn.execution_options(stream_results=True, yield_per=500).execute(
                sa.text("SELECT usage_user FROM cpu WHERE time >= :since"), {"since": CUTOFF}
            )
        )
    n_after = sum(v[0] for v in AFTER_BY_HOST.values())
    assert sum(parts) == n_after and max(parts) == 500
    assert total == sum(v[1] for v in AFTER_BY_HOST.values())


@pytest.mark.parametrize("driver", DRIVERS)
def test_pandas_read_sql_table(engine_for, driver):
    import pandas as pd

    eng = engine_for(driver)
    df = pd.read_sql_table("cpu", eng)
    assert len(df) == N_ROWS
    assert {"hostname", "region", "time", "usage_user", "usage_system"} <= set(df.columns)
    assert df["usage_user"].sum() == TOTAL_USER
    assert df["usage_system"].sum() == TOTAL_SYSTEM
    assert df["time"].min() == pd.Timestamp(T0)
    assert df["time"].max() == pd.Timestamp(ROWS[-1]["time"])
    assert df.groupby("hostname").size().to_dict() == {h: v[0] for h, v in ALL_BY_HOST.items()}


def test_asyncpg_limit_param(pgsrv):
    async def body(conn):
        return await conn.fetch(
            "SELECT hostname, region, time, usage_user, usage_system FROM cpu ORDER BY time, hostname LIMIT $1", 3
        )

    assert [tuple(r) for r in _asyncpg(pgsrv, body)] == [
        (r["hostname"], r["region"], r["time"], r["usage_user"], r["usage_system"]) for r in ROWS[:3]
    ]


def test_asyncpg_timestamptz_param(pgsrv):
    since = CUTOFF.replace(tzinfo=dt.timezone.utc)

    async def body(conn):
        return await conn.fetchval("SELECT count(*) FROM cpu WHERE time >= $1::timestamptz", since)

    assert _asyncpg(pgsrv, body) == sum(v[0] for v in AFTER_BY_HOST.values())


def test_pgcli_list_tables(pgsrv, tmp_path):
    r = _pgcli(pgsrv, tmp_path, "\\dt")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line for line in r.stdout.splitlines() if "cpu" in line]
    assert lines and DB in lines[0] and "table" in lines[0], r.stdout + r.stderr


def test_pgcli_describe_table(pgsrv, tmp_path):
    r = _pgcli(pgsrv, tmp_path, "\\d cpu")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for col, typ in [("hostname", "text"), ("region", "text"), ("time", "timestamp"), ("usage_user", "double precision")]:
        assert any(col in line and typ in line for line in lines), r.stdout + r.stderr


@pytest.mark.parametrize("driver", DRIVERS)
def test_sqlalchemy_inspector_surface(engine_for, driver):
    """Every Inspector call a tool makes on connect or when it reflects a table answers what
    PostgreSQL would for a table without keys, indexes, comments or sequences."""
    import sqlalchemy as sa

    insp = sa.inspect(engine_for(driver))
    assert insp.get_table_names() == ["cpu"]
    assert insp.has_table("cpu") and not insp.has_table("nope")
    assert insp.has_schema(DB)
    assert insp.get_view_names() == [] and insp.get_materialized_view_names() == []
    assert insp.get_sequence_names() == [] and insp.get_temp_table_names() == []
    assert insp.get_foreign_table_names() == []
    assert insp.get_pk_constraint("cpu") == {"name": None, "constrained_columns": []}
    assert insp.get_foreign_keys("cpu") == []
    assert insp.get_indexes("cpu") == []
    assert insp.get_unique_constraints("cpu") == []
    assert insp.get_check_constraints("cpu") == []
    assert insp.get_table_comment("cpu") == {"text": None}
    assert insp.get_enums() == [] and insp.get_domains() == []
    assert isinstance(insp.get_table_options("cpu"), dict)
    multi = insp.get_multi_columns()
    [(key, columns)] = list(multi.items())
    assert key[1] == "cpu"
    assert [c["name"] for c in columns] == [c["name"] for c in insp.get_columns("cpu")]
    assert {"hostname", "region", "time", "usage_user", "usage_system"} <= {c["name"] for c in columns}
    assert all(c["default"] is None and c.get("identity") is None for c in columns)


_SCHEMAS_SQL = "SELECT schema_name FROM information_schema.schemata ORDER BY schema_name"
_TABLES_SQL = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = '" + DB + "' ORDER BY table_name"
)
_COLUMNS_SQL = (
    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '" + DB + "' "
    "AND table_name = 'cpu' ORDER BY ordinal_position"
)
_WANT_COLUMNS = {
    "hostname": "text",
    "region": "text",
    "time": "timestamp without time zone",
    "usage_user": "double precision",
    "usage_system": "double precision",
}


def _check_listing(schemas, tables, columns):
    assert DB in schemas and "pg_catalog" in schemas
    assert tables == ["cpu"]
    got = dict(columns)
    assert {k: got.get(k) for k in _WANT_COLUMNS} == _WANT_COLUMNS


def test_asyncpg_lists_schemas_tables_and_columns(pgsrv):
    async def body(conn):
        return (
            [r[0] for r in await conn.fetch(_SCHEMAS_SQL)],
            [r[0] for r in await conn.fetch(_TABLES_SQL)],
            [tuple(r) for r in await conn.fetch(_COLUMNS_SQL)],
        )

    _check_listing(*_asyncpg(pgsrv, body))


def test_polars_lists_schemas_tables_and_columns(pgsrv):
    import polars as pl

    def read(sql):
        return pl.read_database_uri(sql, _uri(pgsrv), engine="connectorx")

    _check_listing(
        read(_SCHEMAS_SQL)["schema_name"].to_list(),
        read(_TABLES_SQL)["table_name"].to_list(),
        list(read(_COLUMNS_SQL).iter_rows()),
    )
