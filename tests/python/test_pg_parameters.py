"""Bound parameters typed as PostgreSQL types them, and the functions drivers use to inline
them: `LIMIT $1` / `OFFSET $2` are int8 (asyncpg sends Python ints), `$1::timestamptz` is
timestamptz (an aware datetime in any zone is the instant it names), `col = ANY($1)` is an array
of the column's type (asyncpg's binary arrays, psycopg 3's text array literals), asyncpg's
`copy_from_query` with arguments (`quote_literal($1::pg_catalog.<type>::text)`), and
`quote_literal` / `quote_nullable` / `current_user` (the authenticated user with
`--require-auth`). Every test checks real values against what was written (the `cpu` table of
tests/python/test_pg_clients.py)."""

from __future__ import annotations

import asyncio
import datetime as dt

import psycopg
import pytest

from sectest import add_user
from test_pg_clients import (  # noqa: F401  (fixtures are found by name)
    pgsrv,
    _asyncpg,
    _check_copy,
    _copy_csv,
    DB,
    ROWS,
    CUTOFF,
    ALL_BY_HOST,
    AFTER_BY_HOST,
)

UTC = dt.timezone.utc
#: 08:00 UTC written as 10:00 at +02:00.
CUTOFF_PLUS_2 = CUTOFF.replace(tzinfo=UTC).astimezone(dt.timezone(dt.timedelta(hours=2)))
N_AFTER = sum(v[0] for v in AFTER_BY_HOST.values())


def _psycopg(pgsrv) -> psycopg.Connection:
    host, port = pgsrv
    return psycopg.connect(host=host, port=port, user="hg", dbname=DB, connect_timeout=10, autocommit=True)


def _ordered(rows):
    return sorted(rows, key=lambda r: (r["time"], r["hostname"]))


# -- LIMIT / OFFSET ---------------------------------------------------------------------------


def test_asyncpg_limit_and_offset_are_int8(pgsrv):
    sql = (
        "SELECT hostname, time, usage_user FROM cpu ORDER BY time, hostname LIMIT $1 OFFSET $2"
    )

    async def body(conn):
        stmt = await conn.prepare(sql)
        types = [t.name for t in stmt.get_parameters()]
        return types, await stmt.fetch(4, 7), await conn.fetch(sql, 0, 3)

    types, rows, none = _asyncpg(pgsrv, body)
    assert types == ["int8", "int8"]
    want = _ordered(ROWS)[7:11]
    assert [tuple(r) for r in rows] == [(r["hostname"], r["time"], r["usage_user"]) for r in want]
    assert none == []


def test_psycopg_limit_as_text(pgsrv):
    with _psycopg(pgsrv) as conn:
        rows = conn.execute(
            "SELECT hostname, usage_user FROM cpu ORDER BY time, hostname LIMIT %s OFFSET %s", (3, 10)
        ).fetchall()
    want = _ordered(ROWS)[10:13]
    assert rows == [(r["hostname"], r["usage_user"]) for r in want]


# -- = ANY($1) ---------------------------------------------------------------------------------

HOSTS = ["host_1", "host_3", "no such host"]
SYSTEM = [0.5, 3.0, 6.0, 99.0]


def _want_hosts(hosts):
    return (sum(ALL_BY_HOST[h][0] for h in hosts if h in ALL_BY_HOST),
            sum(ALL_BY_HOST[h][1] for h in hosts if h in ALL_BY_HOST))


def _want_system(values):
    return sum(1 for r in ROWS if r["usage_system"] in values)


def test_asyncpg_any_text_and_float_arrays(pgsrv):
    async def body(conn):
        stmt = await conn.prepare(
            "SELECT count(*), sum(usage_user) FROM cpu WHERE hostname = ANY($1)"
        )
        types = [t.name for t in stmt.get_parameters()]
        hosts = tuple(await stmt.fetchrow(HOSTS))
        empty = await stmt.fetchval([])
        system = await conn.fetchval("SELECT count(*) FROM cpu WHERE usage_system = ANY($1)", SYSTEM)
        both = await conn.fetchval(
            "SELECT count(*) FROM cpu WHERE region = ANY($1) AND usage_system = ANY($2)",
            ["us-west", None],
            SYSTEM,
        )
        return types, hosts, empty, system, both

    types, hosts, empty, system, both = _asyncpg(pgsrv, body)
    assert types == ["text[]"]
    assert hosts == _want_hosts(HOSTS)
    assert empty == 0
    assert system == _want_system(SYSTEM)
    assert both == sum(1 for r in ROWS if r["region"] == "us-west" and r["usage_system"] in SYSTEM)


def test_psycopg_any_lists(pgsrv):
    with _psycopg(pgsrv) as conn:
        hosts = conn.execute(
            "SELECT count(*), sum(usage_user) FROM cpu WHERE hostname = ANY(%s)", (HOSTS,)
        ).fetchone()
        system = conn.execute(
            "SELECT count(*) FROM cpu WHERE usage_system = ANY(%s)", (SYSTEM,)
        ).fetchone()[0]
        # Quoting in the text array literal: a comma, quotes, a backslash, braces, NULL.
        odd = conn.execute(
            "SELECT count(*) FROM cpu WHERE hostname = ANY(%s)",
            (["host_2", 'a,"b"\\c{d}', None, "NULL", ""],),
        ).fetchone()[0]
    assert tuple(hosts) == _want_hosts(HOSTS)
    assert system == _want_system(SYSTEM)
    assert odd == ALL_BY_HOST["host_2"][0]


def test_psycopg_any_literal_list(pgsrv):
    """`sql.Literal` of a list of strings is `'{a,b}'` (pgcli's `\\dt`): typed from the ANY."""
    from psycopg import sql

    with _psycopg(pgsrv) as conn:
        q = sql.SQL("SELECT count(*) FROM cpu WHERE hostname = ANY({})").format(sql.Literal(HOSTS))
        n = conn.execute(q).fetchone()[0]
        q = sql.SQL("SELECT count(*) FROM cpu WHERE usage_system = ANY({})").format(sql.Literal(SYSTEM))
        m = conn.execute(q).fetchone()[0]
    assert n == _want_hosts(HOSTS)[0]
    assert m == _want_system(SYSTEM)


# -- timestamptz -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM cpu WHERE time >= $1::timestamptz",
        "SELECT count(*) FROM cpu WHERE time >= CAST($1 AS TIMESTAMP WITH TIME ZONE)",
        "SELECT count(*) FROM cpu WHERE time >= $1::pg_catalog.timestamptz",
    ],
)
def test_asyncpg_timestamptz_in_another_zone(pgsrv, sql):
    async def body(conn):
        stmt = await conn.prepare(sql)
        return [t.name for t in stmt.get_parameters()], await stmt.fetchval(CUTOFF_PLUS_2)

    types, n = _asyncpg(pgsrv, body)
    assert types == ["timestamptz"]
    assert n == N_AFTER


def test_psycopg_timestamptz_in_another_zone(pgsrv):
    with _psycopg(pgsrv) as conn:
        n = conn.execute("SELECT count(*) FROM cpu WHERE time >= %s::timestamptz", (CUTOFF_PLUS_2,)).fetchone()[0]
        first = conn.execute(
            "SELECT min(time) FROM cpu WHERE time >= %s::timestamptz", (CUTOFF_PLUS_2,)
        ).fetchone()[0]
    assert n == N_AFTER
    assert first.replace(tzinfo=None) == CUTOFF


# -- asyncpg copy_from_query with arguments ----------------------------------------------------


@pytest.mark.parametrize(
    "sql, arg",
    [
        ("SELECT hostname, usage_user FROM cpu WHERE time >= $1 ORDER BY time, hostname", CUTOFF),
        ("SELECT hostname, usage_user FROM cpu WHERE time >= $1::timestamptz ORDER BY time, hostname",
         CUTOFF_PLUS_2),
    ],
)
def test_asyncpg_copy_from_query_with_arguments(pgsrv, sql, arg):
    _check_copy(*_copy_csv(pgsrv, sql, arg))


def test_asyncpg_copy_from_query_with_text_and_int_arguments(pgsrv):
    status, text = _copy_csv(
        pgsrv,
        "SELECT hostname, usage_user FROM cpu WHERE hostname = $1 AND usage_user < $2 "
        "ORDER BY time, hostname LIMIT 5",
        "host_1",
        200,
    )
    want = [r for r in _ordered(ROWS) if r["hostname"] == "host_1"][:5]
    assert status == "COPY 5"
    assert text.splitlines() == [f"host_1,{r['usage_user']!r}" for r in want]


# -- quote_literal, quote_nullable, current_user -------------------------------------------------


def test_quote_literal_and_quote_nullable(pgsrv):
    with _psycopg(pgsrv) as conn:
        row = conn.execute(
            "SELECT quote_literal(%s), quote_literal(%s), quote_literal(CAST(NULL AS TEXT)), "
            "quote_nullable(CAST(NULL AS TEXT)), quote_nullable(%s), quote_literal(42), "
            "quote_literal('a''b')",
            ("O'Neil", "a\\b", "x"),
        ).fetchone()
        hosts = conn.execute(
            "SELECT DISTINCT quote_literal(hostname) FROM cpu ORDER BY 1"
        ).fetchall()
    assert row == ("'O''Neil'", "E'a\\\\b'", None, "NULL", "'x'", "'42'", "'a''b'")
    assert [h for (h,) in hosts] == [f"'{h}'" for h in sorted(ALL_BY_HOST)]


def test_asyncpg_quote_literal_of_typed_parameters(pgsrv):
    """What asyncpg's `_mogrify` sends: each argument cast to its `pg_catalog` type, then text."""

    async def body(conn):
        return tuple(
            await conn.fetchrow(
                'SELECT quote_literal($1::"pg_catalog"."int8"::text), '
                'quote_literal($2::"pg_catalog"."text"::text), '
                'quote_literal($3::"pg_catalog"."float8"::text)',
                7,
                "it's",
                2.5,
            )
        )

    assert _asyncpg(pgsrv, body) == ("'7'", "'it''s'", "'2.5'")


def test_current_user_with_trust_is_the_startup_user(pgsrv):
    with _psycopg(pgsrv) as conn:
        assert conn.execute("SELECT current_user, session_user, user").fetchone() == ("hg", "hg", "hg")


def test_current_user_is_the_authenticated_user(hourglass_bin, module_server):
    srv = module_server(args=["--require-auth"])
    alice = add_user(hourglass_bin, srv.data_dir, "alice", ("*", "read"))
    host, port = srv.pg_addr
    with psycopg.connect(host=host, port=port, user="alice", password=alice["password"], dbname="pdb",
                         connect_timeout=10, autocommit=True) as conn:
        assert conn.execute("SELECT current_user, session_user, user").fetchone() == ("alice", "alice", "alice")

    async def main():
        import asyncpg

        conn = await asyncpg.connect(host=host, port=port, user="alice", password=alice["password"],
                                     database="pdb", timeout=10, ssl=False)
        try:
            return await conn.fetchval("SELECT current_user")
        finally:
            await conn.close()

    assert asyncio.run(main()) == "alice"
