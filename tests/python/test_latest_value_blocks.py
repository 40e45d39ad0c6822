"""Latest-value queries over many memory chunks: the chunks' last rows are merged in blocks kept
across queries (`hourglass-storage/src/chunk_last_rows.rs`). The answers stay those of the rule
`latest_value` switched off (a full scan) while writes add chunks, a DELETE replaces some and a
persist moves the oldest to Parquet; and the blocks are used (fewer candidate rows examined)."""

from __future__ import annotations

import time

import requests

HOSTS = [f"h{i}" for i in range(6)]
MINUTE_NS = 60 * 10**9


def write_bodies(srv, db: str, t0: int, bodies: int, first: int = 0) -> None:
    """`bodies` write requests, body k holding one row per host at minute first + k (host h5
    only in the first ten bodies, so some newest rows are in old chunks)."""
    for k in range(first, first + bodies):
        hosts = HOSTS if k < 10 else HOSTS[:5]
        lines = [f"cpu,host={h},region={'us' if i % 2 else 'eu'} usage={k * 10 + i},n={k}i "
                 f"{t0 + k * MINUTE_NS + i}" for i, h in enumerate(hosts)]
        srv.write_ok("\n".join(lines) + "\n", db=db)


def rows(srv, db: str, sql: str, rules: str | None = None) -> list:
    params = {"db": db, "q": sql, "format": "json"}
    if rules is not None:
        params["disabled_rules"] = rules
    r = requests.get(f"{srv.url}/api/v3/query_sql", params=params, timeout=30)
    assert r.status_code == 200, f"{sql}: {r.text}"
    return r.json()


def candidate_rows(srv) -> int:
    text = requests.get(f"{srv.url}/metrics", timeout=10).text
    [line] = [l for l in text.splitlines()
              if l.startswith("hourglass_latest_value_candidate_rows_total ")]
    return int(line.split()[1])


QUERIES = [
    "SELECT DISTINCT ON (host) host, time, usage, n FROM cpu ORDER BY host, time DESC",
    "SELECT DISTINCT ON (host) host, usage FROM cpu WHERE host = 'h3' ORDER BY host, time DESC",
    "SELECT DISTINCT ON (host) host, usage FROM cpu WHERE host IN ('h5', 'h1') "
    "ORDER BY host, time DESC",
    "SELECT DISTINCT ON (region) region, host, usage FROM cpu ORDER BY region, time DESC",
]


def assert_same_as_scan(srv, db: str, time_floor: int) -> None:
    floor = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_floor // 10**9)) + "Z"
    narrow = ("SELECT DISTINCT ON (host) host, usage FROM cpu "
              f"WHERE time >= '{floor}' ORDER BY host, time DESC")
    for sql in QUERIES + [narrow]:
        assert rows(srv, db, sql) == rows(srv, db, sql, "latest_value"), sql


def test_latest_values_over_many_chunks_use_blocks_and_match_a_scan(server):
    srv = server()
    db = "blocks"
    t0 = (time.time_ns() // MINUTE_NS - 200) * MINUTE_NS
    write_bodies(srv, db, t0, 70)
    assert_same_as_scan(srv, db, t0 + 40 * MINUTE_NS)

    # Read twice more: the second read examines the two blocks of 32 chunks and the 6 chunks
    # left over, not one batch per chunk (70 chunks x 5-6 rows).
    sql = QUERIES[0]
    before = candidate_rows(srv)
    got = rows(srv, db, sql)
    examined = candidate_rows(srv) - before
    assert examined < 70 * 5, examined
    assert {r["host"] for r in got} == set(HOSTS)
    assert [r["n"] for r in got if r["host"] == "h5"] == [9]

    # More chunks, and a DELETE that replaces every chunk holding h4's rows of minute 3.
    write_bodies(srv, db, t0, 40, first=70)
    r = srv.query("DELETE FROM cpu WHERE host = 'h5' AND n >= 5", db=db)
    assert r.status_code == 200 and r.json() == [{"rows_deleted": 5}], r.text
    assert_same_as_scan(srv, db, t0 + 90 * MINUTE_NS)
    [h5] = [r for r in rows(srv, db, sql) if r["host"] == "h5"]
    assert h5["n"] == 4

    # The oldest chunks persisted to Parquet.
    srv.flush()
    write_bodies(srv, db, t0, 35, first=110)
    assert_same_as_scan(srv, db, t0 + 120 * MINUTE_NS)
