"""The session statements pools, ORMs and drivers send over the PostgreSQL endpoint (issue 23):
savepoints inside a (read-only) transaction block with the transaction status byte PostgreSQL
sends ('I', 'T', 'E'), `ROLLBACK TO` an unknown savepoint (3B001), a failed block refusing
statements (25P02) until `ROLLBACK` or `ROLLBACK TO`, and the statements connection pools reset a
connection with (asyncpg's `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`,
`DISCARD ALL`, `SET application_name`, `DEALLOCATE ALL`, `BEGIN READ ONLY`, ...), answered with
PostgreSQL's command tags."""

from __future__ import annotations

import shutil
import subprocess
import time

import psycopg
import pytest
from psycopg import pq

from hgtest import RssSampler, pg_connector

LP = (
    "cpu,host=a usage=1.5 1700000000000000000\n"
    "cpu,host=b usage=2.5 1700000060000000000\n"
    "cpu,host=c usage=4.0 1700000400000000000\n"
)

IDLE, INTRANS, INERROR = (
    pq.TransactionStatus.IDLE,
    pq.TransactionStatus.INTRANS,
    pq.TransactionStatus.INERROR,
)


@pytest.fixture
def pg(shared_server, db):
    """A database with three `cpu` rows and a psycopg connector."""
    return pg_connector(shared_server, db, LP)


def run(conn, sql: str):
    """Runs `sql` in the simple protocol (several statements allowed): the last result, or raises
    the error's SQLSTATE as `psycopg.Error`."""
    res = conn.pgconn.exec_(sql.encode())
    if res.status == pq.ExecStatus.FATAL_ERROR:
        state = res.error_field(pq.DiagnosticField.SQLSTATE)
        raise psycopg.Error((state or b"").decode() + " " + res.error_message.decode())
    return res


def simple(conn, sql: str):
    """`run`, answering the last result's command tag."""
    res = run(conn, sql)
    return res.command_status.decode() if res.command_status else None


def sqlstate_of(conn, sql: str) -> str:
    with pytest.raises(psycopg.Error) as e:
        simple(conn, sql)
    return str(e.value).split()[0]


def test_savepoints_in_a_transaction(pg):
    with pg(autocommit=True) as conn:
        assert conn.info.transaction_status == IDLE
        assert simple(conn, "BEGIN") == "BEGIN"
        assert conn.info.transaction_status == INTRANS
        assert simple(conn, "SAVEPOINT sp1") == "SAVEPOINT"
        assert simple(conn, 'SAVEPOINT "Sp 2"') == "SAVEPOINT"
        assert simple(conn, 'RELEASE SAVEPOINT "Sp 2"') == "RELEASE"
        assert simple(conn, "ROLLBACK TO SAVEPOINT sp1") == "ROLLBACK"
        assert simple(conn, "ROLLBACK TO sp1") == "ROLLBACK"
        assert simple(conn, "RELEASE sp1") == "RELEASE"
        assert conn.info.transaction_status == INTRANS
        # Released: gone.
        assert sqlstate_of(conn, "ROLLBACK TO sp1") == "3B001"
        assert conn.info.transaction_status == INERROR
        # A failed block refuses everything but ROLLBACK.
        assert sqlstate_of(conn, "SELECT 1") == "25P02"
        assert simple(conn, "COMMIT") == "ROLLBACK"
        assert conn.info.transaction_status == IDLE

        # ROLLBACK TO recovers a failed block.
        assert simple(conn, "BEGIN READ ONLY; SAVEPOINT a") == "SAVEPOINT"
        assert sqlstate_of(conn, "SELECT * FROM no_such_table") == "42P01"
        assert conn.info.transaction_status == INERROR
        assert simple(conn, "ROLLBACK TO SAVEPOINT a; RELEASE SAVEPOINT a") == "RELEASE"
        assert conn.info.transaction_status == INTRANS
        assert simple(conn, "SELECT host FROM cpu") == "SELECT 3"
        assert simple(conn, "COMMIT") == "COMMIT"
        assert conn.info.transaction_status == IDLE

        # Outside a block: 25P01, as PostgreSQL answers.
        assert sqlstate_of(conn, "SAVEPOINT x") == "25P01"
        assert sqlstate_of(conn, "RELEASE x") == "25P01"


def test_psycopg_nested_transactions(pg):
    """psycopg's `conn.transaction()` inside a transaction is a savepoint (SQLAlchemy's hstore
    lookup at connect does this); a failed inner block rolls back to it and the outer goes on."""
    with pg() as conn:
        assert conn.execute("SELECT count(*) FROM cpu").fetchone() == (3,)
        assert conn.info.transaction_status == INTRANS
        with conn.transaction():
            with conn.transaction():
                assert conn.execute("SELECT host FROM cpu ORDER BY host").fetchall()[0] == ("a",)
            with pytest.raises(psycopg.errors.UndefinedTable):
                with conn.transaction():
                    conn.execute("SELECT * FROM no_such_table")
            assert conn.info.transaction_status == INTRANS
            assert conn.execute("SELECT count(*) FROM cpu").fetchone() == (3,)
        conn.commit()
        assert conn.info.transaction_status == IDLE


def test_pool_reset_statements(pg):
    with pg(autocommit=True, application_name="startup-app") as conn:
        assert conn.execute("SHOW application_name").fetchone() == ("startup-app",)
        cases = [
            ("BEGIN READ ONLY", "BEGIN", INTRANS),
            ("COMMIT", "COMMIT", IDLE),
            ("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", "BEGIN", INTRANS),
            ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET", INTRANS),
            ("SET LOCAL statement_timeout = 0", "SET", INTRANS),
            ("ROLLBACK", "ROLLBACK", IDLE),
            ("START TRANSACTION READ ONLY", "START TRANSACTION", INTRANS),
            ("END", "COMMIT", IDLE),
            ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET", IDLE),
            ("SET application_name = 'my pool'", "SET", IDLE),
            ("DEALLOCATE ALL", "DEALLOCATE ALL", IDLE),
            ("DEALLOCATE PREPARE ALL", "DEALLOCATE ALL", IDLE),
            ("UNLISTEN *", "UNLISTEN", IDLE),
            ("SELECT pg_advisory_unlock_all()", "SELECT 1", IDLE),
            ("SELECT pg_advisory_lock(42)", "SELECT 1", IDLE),
            ("SELECT pg_try_advisory_lock(42)", "SELECT 1", IDLE),
            ("CLOSE ALL", "CLOSE CURSOR ALL", IDLE),
            # asyncpg's connection reset, one query string.
            ("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;", "RESET", IDLE),
            ("DISCARD ALL", "DISCARD ALL", IDLE),
        ]
        for sql, tag, status in cases:
            assert simple(conn, sql) == tag, sql
            assert conn.info.transaction_status == status, sql

        # SHOW answers what SET set; RESET and DISCARD ALL undo it.
        simple(conn, "SET application_name TO 'pool-1'")
        assert conn.execute("SHOW application_name").fetchone() == ("pool-1",)
        assert simple(conn, "RESET application_name") == "RESET"
        assert conn.execute("SHOW application_name").fetchone() == ("startup-app",)
        simple(conn, "SET SESSION application_name = 'pool-2'")
        assert conn.execute("SHOW application_name").fetchone() == ("pool-2",)
        assert simple(conn, "DISCARD ALL") == "DISCARD ALL"
        assert conn.execute("SHOW application_name").fetchone() == ("startup-app",)
        simple(conn, "SET application_name = 'pool-3'")
        assert simple(conn, "RESET ALL") == "RESET"
        assert conn.execute("SHOW application_name").fetchone() == ("startup-app",)


# -- cursors ----------------------------------------------------------------------------------

def write_series(server, db: str, n: int, batch: int = 50_000, pad: int = 0) -> None:
    """`n` rows of `series` (v = 0..n-1, one second apart), written in batches."""
    note = "x" * pad
    t0 = 1_700_000_000_000_000_000
    for start in range(0, n, batch):
        lines = [
            f'series,host=h{i % 4} v={i}i,note="{note}" {t0 + i * 1_000_000_000}'
            for i in range(start, min(n, start + batch))
        ]
        server.write_ok("\n".join(lines) + "\n", db=db)


def values(res) -> list[int]:
    return [int(res.get_value(i, 0)) for i in range(res.ntuples)]


def test_fetch_move_close(shared_server, db, pg):
    write_series(shared_server, db, 25)
    with pg(autocommit=True) as conn:
        assert sqlstate_of(conn, "DECLARE c CURSOR FOR SELECT v FROM series ORDER BY time") == "25P01"
        assert simple(conn, "BEGIN") == "BEGIN"
        assert simple(conn, "DECLARE c NO SCROLL CURSOR FOR SELECT v FROM series ORDER BY time") == (
            "DECLARE CURSOR"
        )
        res = run(conn, "FETCH 10 FROM c")
        assert res.command_status == b"FETCH 10" and values(res) == list(range(10))
        assert res.fname(0) == b"v" and res.ftype(0) == 20
        assert simple(conn, "MOVE 5 IN c") == "MOVE 5"
        res = run(conn, "FETCH NEXT FROM c")
        assert res.command_status == b"FETCH 1" and values(res) == [15]
        res = run(conn, "FETCH FORWARD 3 c")
        assert values(res) == [16, 17, 18]
        res = run(conn, "FETCH ALL FROM c")
        assert res.command_status == b"FETCH 6" and values(res) == list(range(19, 25))
        assert run(conn, "FETCH 1 FROM c").command_status == b"FETCH 0"
        assert simple(conn, "MOVE ALL IN c") == "MOVE 0"
        assert sqlstate_of(conn, "FETCH BACKWARD 1 FROM c") == "55000"
        simple(conn, "ROLLBACK")

        simple(conn, "BEGIN")
        simple(conn, 'DECLARE "Big C" CURSOR FOR SELECT v FROM series ORDER BY time')
        assert sqlstate_of(conn, 'DECLARE "Big C" CURSOR FOR SELECT 1') == "42P03"
        simple(conn, "ROLLBACK")
        simple(conn, "BEGIN")
        simple(conn, 'DECLARE "Big C" CURSOR FOR SELECT v FROM series ORDER BY time')
        assert values(run(conn, 'MOVE 20 FROM "Big C"; FETCH 2 FROM "Big C"')) == [20, 21]
        assert simple(conn, 'CLOSE "Big C"') == "CLOSE CURSOR"
        assert sqlstate_of(conn, 'FETCH 1 FROM "Big C"') == "34000"
        simple(conn, "ROLLBACK")

        # WITH HOLD outlives its transaction (and needs none); others close at its end.
        simple(conn, "DECLARE h CURSOR WITH HOLD FOR SELECT v FROM series ORDER BY time")
        simple(conn, "BEGIN")
        simple(conn, "DECLARE t CURSOR FOR SELECT v FROM series ORDER BY time")
        simple(conn, "COMMIT")
        assert sqlstate_of(conn, "FETCH 1 FROM t") == "34000"
        assert values(run(conn, "FETCH 2 FROM h")) == [0, 1]
        assert simple(conn, "CLOSE ALL") == "CLOSE CURSOR ALL"
        assert sqlstate_of(conn, "FETCH 1 FROM h") == "34000"

        # A bounded number per connection.
        simple(conn, "BEGIN")
        with pytest.raises(psycopg.Error) as e:
            for i in range(1000):
                simple(conn, f"DECLARE c{i} CURSOR FOR SELECT 1")
        assert str(e.value).startswith("54000")
        simple(conn, "ROLLBACK")


def test_psycopg_named_cursor(shared_server, db, pg):
    write_series(shared_server, db, 2_500)
    with pg() as conn:
        with conn.cursor(name="named") as cur:
            cur.execute("SELECT v, host FROM series WHERE v >= %s ORDER BY time", (100,))
            first = cur.fetchmany(7)
            assert first == [(i, f"h{i % 4}") for i in range(100, 107)]
            assert [d.name for d in cur.description] == ["v", "host"]
            rest = cur.fetchall()
        assert [r[0] for r in first + rest] == list(range(100, 2_500))
        conn.commit()
        # Binary results too.
        with conn.cursor(name="bin", binary=True) as cur:
            cur.execute("SELECT v FROM series ORDER BY time")
            cur.itersize = 1000
            assert sum(r[0] for r in cur) == sum(range(2_500))
        conn.rollback()


ROWS = 1_000_000
MIB = 1 << 20


def test_named_cursor_streams_in_bounded_memory(shared_server, db, pg):
    """1,000,000 rows of about 200 bytes through `FETCH FORWARD 10000`: the server's RSS grows by
    far less than the result's size."""
    t = time.monotonic()
    write_series(shared_server, db, ROWS, pad=150)
    wrote = time.monotonic() - t
    with pg() as conn:
        conn.execute("SELECT count(*) FROM series").fetchone()
        seen = 0
        total = 0
        with RssSampler(shared_server.proc.pid) as rss:
            with conn.cursor(name="big") as cur:
                cur.itersize = 10_000
                cur.execute("SELECT v, note FROM series")
                while True:
                    rows = cur.fetchmany(10_000)
                    if not rows:
                        break
                    seen += len(rows)
                    total += sum(r[0] for r in rows)
        conn.rollback()
    print(
        f"\n[rss] {ROWS} rows (~{ROWS * 200 // MIB} MiB of text) written in {wrote:.1f} s; "
        f"server VmRSS before {rss.base // MIB} MiB, peak while fetching {rss.peak // MIB} MiB "
        f"(+{rss.growth // MIB} MiB)"
    )
    assert seen == ROWS and total == sum(range(ROWS))
    assert rss.growth < 150 * MIB, (rss.base, rss.peak)


def test_psql_fetch_count(shared_server, db, pg):
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    write_series(shared_server, db, 2_500)
    args = [exe, "-h", "127.0.0.1", "-p", str(pg.port), "-d", db, "-U", "hg", "-X", "-A", "-t",
            "-v", "FETCH_COUNT=1000", "-v", "ON_ERROR_STOP=1",
            "-c", "SELECT v FROM series ORDER BY time"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120,
                       env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert [int(x) for x in r.stdout.split()] == list(range(2_500))


def test_cursor_under_the_query_time_limit(server, db):
    """A declared query runs under `--query-timeout-secs` like any query: past it, FETCH is
    canceled (57014)."""
    srv = server(args=["--query-timeout-secs", "1"])
    write_series(srv, db, 100)
    host, port = srv.pg_addr
    with psycopg.connect(host=host, port=port, dbname=db, user="hg", autocommit=True) as conn:
        simple(conn, "BEGIN")
        simple(conn, "DECLARE c CURSOR FOR SELECT v FROM series ORDER BY time")
        assert values(run(conn, "FETCH 2 FROM c")) == [0, 1]
        time.sleep(1.5)
        assert sqlstate_of(conn, "FETCH 2 FROM c") == "57014"
        simple(conn, "ROLLBACK")


def test_pg_cursors_lists_the_connections_open_cursors(pg):
    """pg_cursors shows this connection's cursors (psycopg asks it before closing a named cursor
    it never described) and forgets them when they close."""
    with pg(autocommit=True) as conn, pg(autocommit=True) as other:
        simple(conn, "BEGIN")
        simple(conn, "DECLARE a CURSOR FOR SELECT * FROM cpu")
        simple(conn, "DECLARE b BINARY CURSOR WITH HOLD FOR SELECT host FROM cpu")
        rows = conn.execute(
            "SELECT name, statement, is_holdable, is_binary, is_scrollable FROM pg_catalog.pg_cursors ORDER BY name"
        ).fetchall()
        assert rows == [
            ("a", "DECLARE a CURSOR FOR SELECT * FROM cpu", False, False, False),
            ("b", "DECLARE b BINARY CURSOR WITH HOLD FOR SELECT host FROM cpu", True, True, False),
        ]
        # Another connection sees only its own (none).
        assert other.execute("SELECT count(*) FROM pg_catalog.pg_cursors").fetchone() == (0,)
        simple(conn, "CLOSE a")
        assert conn.execute("SELECT name FROM pg_catalog.pg_cursors").fetchall() == [("b",)]
        simple(conn, "COMMIT")
        simple(conn, "CLOSE ALL")
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_cursors").fetchone() == (0,)
