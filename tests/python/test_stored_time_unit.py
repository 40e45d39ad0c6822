"""Parquet files store `time` in the coarsest unit that holds it (milliseconds, microseconds or
nanoseconds: `hourglass-storage/src/stored_time_unit.rs`), and queries read nanoseconds from
them: comparisons with constants one nanosecond and half a unit beside the stored times answer as
the written times say, with the rule `stored_time_unit` on (comparisons in the stored unit, which
prune pages) and off (conversion first), and a narrow time range on one series prunes pages
only with the rule on."""

from __future__ import annotations

import glob
import os
import random
import re
import time

import pyarrow.parquet as pq
import requests

from hgtest import parse_time

HOSTS = ["h0", "h1", "h2"]
ROWS_PER_HOST = 30_000
GRAINS = {"ms_t": 1_000_000, "us_t": 1_000, "ns_t": 1}
ARROW_UNIT = {"ms_t": "ms", "us_t": "us", "ns_t": "ns"}


def written_times(grain: int, start: int, seed: int) -> dict[str, list[int]]:
    """Per host, increasing times in whole `grain`s, irregularly 1 to 500 ms apart."""
    rng = random.Random(seed)
    out = {}
    for h in HOSTS:
        t, times = start, []
        for _ in range(ROWS_PER_HOST):
            t += rng.randint(1, 499) * 1_000_000 // grain * grain + rng.randint(0, 3) * grain
            times.append(t)
        out[h] = times
    return out


def ts(nanos: int) -> str:
    secs, frac = divmod(nanos, 10**9)
    return "TIMESTAMP '" + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs)) + f".{frac:09d}'"


def rows(srv, db: str, sql: str, rules: str | None = None) -> list:
    params = {"db": db, "q": sql, "format": "json"}
    if rules is not None:
        params["disabled_rules"] = rules
    r = requests.get(f"{srv.url}/api/v3/query_sql", params=params, timeout=60)
    assert r.status_code == 200, f"{sql}: {r.text}"
    return r.json()


def test_times_stored_coarser_read_back_exactly_and_prune(server):
    srv = server()
    db = "tu"
    start = (time.time_ns() // 3_600_000_000_000 - 3) * 3_600_000_000_000 + 123_000_000
    data = {}
    for i, (table, grain) in enumerate(GRAINS.items()):
        data[table] = written_times(grain, start, i)
        lines = [f"{table},host={h} v={k}i {t}"
                 for h, times in data[table].items() for k, t in enumerate(times)]
        for at in range(0, len(lines), 10_000):
            srv.write_ok("\n".join(lines[at:at + 10_000]) + "\n", db=db)
    srv.flush()

    # The files' `time` columns are in the table's grain.
    for table in GRAINS:
        files = [f for f in glob.glob(os.path.join(srv.data_dir, "magnetic", db, table, "*", "*.parquet"))]
        assert files, f"no Parquet files for {table}"
        for f in files:
            unit = pq.read_schema(f).field("time").type.unit
            assert unit == ARROW_UNIT[table], (f, unit)

    rng = random.Random(7)
    for table, by_host in data.items():
        grain = GRAINS[table]
        everything = sorted(t for times in by_host.values() for t in times)
        # Read back whole: the same nanoseconds.
        got = rows(srv, db, f"SELECT time FROM {table} WHERE host = 'h1' ORDER BY time")
        assert [parse_time(r["time"]) for r in got] == by_host["h1"]
        for _ in range(12):
            t = rng.choice(everything)
            for c in {t - grain - 1, t - 1, t, t + 1, t + grain // 2, t + grain - 1}:
                expected = {
                    "<": sum(x < c for x in everything), "<=": sum(x <= c for x in everything),
                    ">": sum(x > c for x in everything), ">=": sum(x >= c for x in everything),
                    "=": sum(x == c for x in everything), "<>": sum(x != c for x in everything),
                }
                for op, n in expected.items():
                    sql = f"SELECT count(*) AS n FROM {table} WHERE time {op} {ts(c)}"
                    assert rows(srv, db, sql) == [{"n": n}], (sql, table)
                    assert rows(srv, db, sql, "stored_time_unit") == [{"n": n}], (sql, table)
                flipped = f"SELECT count(*) AS n FROM {table} WHERE {ts(c)} > time"
                assert rows(srv, db, flipped) == [{"n": expected["<"]}], flipped
        # A range, one series, first and last rows inside it.
        lo, hi = sorted(rng.sample(by_host["h2"], 2))
        sql = (f"SELECT count(*) AS n, min(time) AS a, max(time) AS b FROM {table} "
               f"WHERE host = 'h2' AND time BETWEEN {ts(lo)} AND {ts(hi + 1)}")
        inside = [x for x in by_host["h2"] if lo <= x <= hi + 1]
        for rules in (None, "stored_time_unit"):
            [r] = rows(srv, db, sql, rules)
            assert (r["n"], parse_time(r["a"]), parse_time(r["b"])) == (len(inside), inside[0], inside[-1])

    # Pruning: one host's narrow range reads a page or two of its 30,000 rows with the rule on,
    # and every page of the host with it off (the stored times are converted before comparing).
    h = data["ms_t"]["h0"]
    lo, hi = h[9_000], h[9_100]
    sql = f"SELECT count(*) AS n FROM ms_t WHERE host = 'h0' AND time >= {ts(lo - 1)} AND time < {ts(hi + 1)}"
    assert rows(srv, db, sql) == [{"n": 101}]

    def pages_matched(rules: str | None) -> int:
        params = {"db": db, "q": "EXPLAIN ANALYZE " + sql, "format": "csv"}
        if rules:
            params["disabled_rules"] = rules
        text = requests.get(f"{srv.url}/api/v3/query_sql", params=params, timeout=60).text
        m = re.search(r"page_index_pages_pruned=[^,\]]*?(\d+) matched", text)
        assert m, text
        return int(m.group(1))

    on, off = pages_matched(None), pages_matched("stored_time_unit")
    assert on <= 2 < off, (on, off)
