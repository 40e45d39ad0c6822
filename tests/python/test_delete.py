"""DELETE FROM db.table WHERE ...: records vanish from query results at once in both tiers
(memory store and Parquet), stay gone across restarts and SIGKILL (also in the middle of the
Parquet rewrite), leave no Parquet file holding them, need write permission, are audited, and
answer with the number of records deleted, over /api/v3/query_sql and the PostgreSQL wire."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from hgtest import pg_connector

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9


def now_ns() -> int:
    return time.time_ns() // 10**9 * 10**9


def parquet_values(root: Path, column: str) -> set:
    """Every value of `column` in every Parquet file under `root` (the magnetic store)."""
    seen = set()
    for f in root.rglob("*.parquet"):
        table = pq.read_table(f)
        if column in table.column_names:
            seen.update(v for v in table.column(column).to_pylist())
    return seen


def files_containing(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def delete(srv, sql: str, db: str = "testdb") -> int:
    r = srv.query(sql, db=db)
    assert r.status_code == 200, f"{sql}: {r.status_code} {r.text}"
    [row] = r.json()
    return row["rows_deleted"]


def lp_rows(hosts, days, per_day, t0, extra="") -> str:
    lines = []
    for d in range(days):
        for h in hosts:
            for i in range(per_day):
                t = t0 - d * DAY_NS - i * 60 * 10**9
                lines.append(f"cpu,host={h},dc=dc1{extra} usage={(i * 7 + d) % 100},n={i}i {t}")
    return "\n".join(lines) + "\n"


def test_delete_removes_records_from_memory_and_parquet_and_answers_the_count(server):
    srv = server()
    t0 = now_ns() - HOUR_NS
    srv.write_ok(lp_rows(["a", "b", "c"], 3, 20, t0))
    srv.flush()  # three days of files
    # Newer rows in memory, and rewrites of persisted records (their day becomes dirty).
    srv.write_ok(lp_rows(["a", "b", "c"], 1, 5, t0 + 30 * 60 * 10**9))
    srv.write_ok(f"cpu,host=b,dc=dc1 usage=99 {t0}\n")
    before = {r["host"]: r["n"] for r in srv.rows(
        "SELECT host, COUNT(*) AS n FROM cpu GROUP BY host ORDER BY host")}
    assert before == {"a": 65, "b": 65, "c": 65}

    assert delete(srv, "DELETE FROM testdb.cpu WHERE host = 'b'") == 65
    after = {r["host"]: r["n"] for r in srv.rows(
        "SELECT host, COUNT(*) AS n FROM cpu GROUP BY host ORDER BY host")}
    assert after == {"a": 65, "c": 65}
    # Nothing of 'b' left in any Parquet file the moment DELETE answered.
    assert "b" not in parquet_values(srv.data_dir / "magnetic", "host")
    # The other records are untouched, values included.
    assert srv.rows("SELECT usage, n FROM cpu WHERE host = 'a' ORDER BY time DESC LIMIT 2") == [
        {"usage": 0.0, "n": 0}, {"usage": 7.0, "n": 1}]

    # A second DELETE of the same predicate finds nothing; a time-range DELETE on another host.
    assert delete(srv, "DELETE FROM cpu WHERE host = 'b'") == 0
    cutoff = t0 - DAY_NS // 2
    expected = srv.rows(
        f"SELECT COUNT(*) AS n FROM cpu WHERE host = 'c' AND time < to_timestamp_nanos({cutoff})")[0]["n"]
    assert expected == 40
    assert delete(srv, f"DELETE FROM cpu WHERE host = 'c' AND time < to_timestamp_nanos({cutoff})") == 40
    assert srv.count("cpu") == 65 + 25

    srv.restart()
    after_restart = {r["host"]: r["n"] for r in srv.rows(
        "SELECT host, COUNT(*) AS n FROM cpu GROUP BY host ORDER BY host")}
    assert after_restart == {"a": 65, "c": 25}
    # Writes after the DELETE are kept: the key of a deleted record can be written again.
    srv.write_ok(f"cpu,host=b,dc=dc1 usage=5 {t0}\n")
    assert srv.rows("SELECT host, usage FROM cpu WHERE host = 'b'") == [{"host": "b", "usage": 5.0}]


def test_delete_matches_records_as_queries_see_them_and_removes_every_write(server):
    """A record written in two parts (line protocol merges fields) matches a predicate on both
    fields; both writes go, in memory and in Parquet."""
    srv = server()
    t = now_ns() - 2 * HOUR_NS
    srv.write_ok(f"m,host=a x=95 {t}\nm,host=a x=10 {t + 1}\n")
    srv.flush()
    srv.write_ok(f"m,host=a y=10 {t}\nm,host=a y=50 {t + 1}\n")
    assert srv.rows("SELECT x, y FROM m ORDER BY time") == [{"x": 95.0, "y": 10.0}, {"x": 10.0, "y": 50.0}]
    assert delete(srv, "DELETE FROM m WHERE x > 90 AND y < 20") == 1
    assert srv.rows("SELECT x, y FROM m ORDER BY time") == [{"x": 10.0, "y": 50.0}]
    srv.flush()
    srv.rows("SELECT 1")
    assert srv.rows("SELECT x, y FROM m ORDER BY time") == [{"x": 10.0, "y": 50.0}]
    srv.restart()
    assert srv.rows("SELECT x, y FROM m ORDER BY time") == [{"x": 10.0, "y": 50.0}]


def test_delete_errors_name_what_is_wrong(server):
    srv = server()
    srv.write_ok(f"cpu,host=a usage=1 {now_ns()}\n")
    for sql, status, text in [
        ("DELETE FROM testdb.nope WHERE host = 'a'", 404, "testdb.nope"),
        ("DELETE FROM cpu WHERE nosuchcolumn = 1", 400, "nosuchcolumn"),
        ("DELETE FROM cpu USING other WHERE cpu.host = other.host", 400, "USING"),
        ("DELETE FROM cpu WHERE host = 'a' RETURNING *", 400, "RETURNING"),
    ]:
        r = srv.query(sql)
        assert r.status_code == status, f"{sql}: {r.status_code} {r.text}"
        assert text in r.text, f"{sql}: {r.text}"
    assert srv.count("cpu") == 1


def test_delete_over_the_postgresql_wire_answers_its_command_tag(server):
    srv = server()
    t = now_ns() - HOUR_NS
    connect = pg_connector(srv, "pgdel", "".join(
        f"cpu,host=h{i % 4} usage={i} {t + i * 10**9}\n" for i in range(40)))
    with connect(autocommit=True) as conn:
        cur = conn.execute("DELETE FROM cpu WHERE host IN ('h1', 'h2') AND usage >= 10")
        assert cur.statusmessage == "DELETE 15"
        assert cur.rowcount == 15
        assert conn.execute("SELECT COUNT(*) FROM cpu").fetchone()[0] == 25
        # Extended protocol (server-side parameters are not part of DELETE: the literal form).
        cur = conn.execute("DELETE FROM pgdel.cpu WHERE host = 'h3'", prepare=True)
        assert cur.rowcount == 10
        assert conn.execute("SELECT COUNT(*) FROM cpu").fetchone()[0] == 15


def test_delete_needs_write_permission_and_is_audited(server):
    from sectest import add_user, query_sql, token_headers, write_lp

    srv = server(args=["--require-auth"])
    op = add_user(srv.binary, srv.data_dir, "op", ("*", "admin"))
    reader = add_user(srv.binary, srv.data_dir, "reader", ("authdb", "read"))
    rw = add_user(srv.binary, srv.data_dir, "rw", ("authdb", "read"), ("authdb", "write"))
    r = write_lp(srv.url, "authdb", f"cpu,host=a usage=1 {now_ns()}\ncpu,host=b usage=2 {now_ns()}\n",
                 headers=token_headers(op))
    assert r.status_code == 204, r.text
    r = query_sql(srv.url, "authdb", "DELETE FROM cpu WHERE host = 'a'", headers=token_headers(reader))
    assert r.status_code == 403, r.text
    assert "write permission" in r.text
    r = query_sql(srv.url, "authdb", "SELECT COUNT(*) AS n FROM cpu", headers=token_headers(reader))
    assert r.json() == [{"n": 2}]
    r = query_sql(srv.url, "authdb", "DELETE FROM cpu WHERE host = 'a'", headers=token_headers(rw))
    assert r.status_code == 200 and r.json() == [{"rows_deleted": 1}], r.text
    # Another database's table is out of reach of a grant on authdb.
    r = write_lp(srv.url, "otherdb", f"cpu,host=a usage=1 {now_ns()}\n", headers=token_headers(op))
    assert r.status_code == 204, r.text
    r = query_sql(srv.url, "authdb", "DELETE FROM otherdb.cpu", headers=token_headers(rw))
    assert r.status_code == 403, r.text
    audit = query_sql(srv.url, "authdb", 'SELECT "user", action, target, outcome FROM system.audit_log '
                      "WHERE action = 'Delete' ORDER BY time", headers=token_headers(op))
    assert audit.status_code == 200, audit.text
    rows = [(a["user"], a["target"], a["outcome"]) for a in audit.json()]
    assert rows == [("reader", "authdb.cpu", "error"), ("rw", "authdb.cpu", "ok"),
                    ("rw", "otherdb.cpu", "error")], rows


def test_delete_under_concurrent_writes_keeps_every_other_write(server):
    """Writers add rows of other series (and of the deleted series after it) while DELETE runs:
    every acknowledged row outside the deleted set is there afterwards."""
    srv = server()
    t = now_ns() - 3 * HOUR_NS
    srv.write_ok("".join(f"cpu,host=gone usage={i} {t + i * 10**9}\n" for i in range(2000)))
    srv.flush()
    srv.write_ok("".join(f"cpu,host=gone usage={i} {t + (2000 + i) * 10**9}\n" for i in range(2000)))
    acked = []
    stop = threading.Event()

    def writer(w: int):
        # Rows 1 ms apart: however long the DELETE takes on a loaded machine, the writers' times
        # stay far from the end of the ingestion window (1 s apart, 234 requests of 50 rows
        # reached it once).
        i = 0
        with requests.Session() as s:
            while not stop.is_set():
                body = "".join(f"cpu,host=w{w} usage={i + j} {t + (i + j) * 10**6}\n" for j in range(50))
                r = s.post(f"{srv.url}/api/v3/write_lp?db=testdb", data=body, timeout=30)
                assert r.status_code == 204, r.text
                acked.append((w, i))
                i += 50

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for th in threads:
        th.start()
    time.sleep(0.3)
    deleted = delete(srv, "DELETE FROM cpu WHERE host = 'gone'")
    time.sleep(0.3)
    stop.set()
    for th in threads:
        th.join()
    assert deleted == 4000
    counts = {r["host"]: r["n"] for r in srv.rows("SELECT host, COUNT(*) AS n FROM cpu GROUP BY host")}
    assert "gone" not in counts
    for w in range(2):
        assert counts.get(f"w{w}", 0) == 50 * sum(1 for a in acked if a[0] == w)


@pytest.mark.parametrize("delay_s", [0.0, 0.15, 0.4, 1.0])
def test_delete_is_all_or_nothing_under_sigkill_during_the_rewrite(server, delay_s):
    """SIGKILL while DELETE rewrites 30 days of Parquet files: after restart the records are
    either all gone (the WAL had the deletion) or all there, never some; every other record is
    intact; once gone, no Parquet file holds them and no replaced file is left behind."""
    srv = server()
    t0 = now_ns() - HOUR_NS
    srv.write_ok(lp_rows(["keep", "secret-7f3a9c"], 30, 30, t0))
    srv.flush()
    srv.write_ok(lp_rows(["keep", "secret-7f3a9c"], 1, 3, t0 + 20 * 60 * 10**9))  # memory too
    total = srv.count("cpu")
    answers = []

    def run_delete():
        try:
            answers.append(srv.query("DELETE FROM cpu WHERE host = 'secret-7f3a9c'").status_code)
        except requests.RequestException as e:
            answers.append(type(e).__name__)

    th = threading.Thread(target=run_delete)
    th.start()
    time.sleep(delay_s)
    srv.kill()
    th.join()
    srv.start()
    secret = srv.rows("SELECT COUNT(*) AS n FROM cpu WHERE host = 'secret-7f3a9c'")[0]["n"]
    keep = srv.rows("SELECT COUNT(*) AS n FROM cpu WHERE host = 'keep'")[0]["n"]
    assert keep == total // 2
    assert secret in (0, total // 2), f"a partial delete: {secret} of {total // 2} left"
    if answers == [200]:
        assert secret == 0, "an acknowledged DELETE was lost"
    if secret:
        assert delete(srv, "DELETE FROM cpu WHERE host = 'secret-7f3a9c'") == total // 2
    magnetic = srv.data_dir / "magnetic"
    assert "secret-7f3a9c" not in parquet_values(magnetic, "host")
    # No file the manifest does not name (a replaced file a crash left behind).
    manifest = json.loads((magnetic / "testdb" / "cpu" / "_manifest.json").read_text())
    named = {f["path"] for f in manifest["files"]} | {f["last_rows"] for f in manifest["files"] if f.get("last_rows")}
    on_disk = {str(p.relative_to(magnetic)) for p in magnetic.rglob("*.parquet")}
    assert on_disk == named
    # Once the memory store is persisted the WAL segments holding the writes are retired: the
    # value is in no file of the data directory at all.
    srv.flush()
    srv.flush()
    assert files_containing(srv.data_dir, b"secret-7f3a9c") == []
