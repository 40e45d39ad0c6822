"""SQL over HTTP (`/api/v3/query_sql`) against data written by line protocol.

Covers: every output format (json, jsonl, csv, pretty, parquet and arrow — parsed with pyarrow
when it is importable, else checked for their magic bytes), GET and POST (JSON body), the default format,
`SELECT *` column order, NULLs omitted from json, time filters and aggregates, `table` and
`db.table` addressing (also across databases), and the 400 errors of bad SQL, unknown tables and
columns, a missing query and an unknown format.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from hgtest import NS_PER_S, ns, parse_time

T0 = ns("2024-03-01T12:00:00")

ROWS_LP = "\n".join([
    f'cpu,host=a,region=eu usage=1.5,count=1i,label="x" {T0}',
    f'cpu,host=b,region=us usage=2.5,count=2i,label="y, \\"quoted\\"" {T0 + NS_PER_S}',
    f"cpu,host=a,region=eu usage=3.5,count=3i {T0 + 2 * NS_PER_S + 250_000_000}",
]) + "\n"

# SELECT * ... ORDER BY time, as json (NULLs omitted).
EXPECTED = [
    {"host": "a", "region": "eu", "measure_name": "cpu", "time": "2024-03-01T12:00:00",
     "usage": 1.5, "count": 1, "label": "x"},
    {"host": "b", "region": "us", "measure_name": "cpu", "time": "2024-03-01T12:00:01",
     "usage": 2.5, "count": 2, "label": 'y, "quoted"'},
    {"host": "a", "region": "eu", "measure_name": "cpu", "time": "2024-03-01T12:00:02.250",
     "usage": 3.5, "count": 3},
]
DIMENSIONS = {"host", "region"}
MEASURES = {"usage", "count", "label"}


@pytest.fixture
def loaded(shared_server, db):
    shared_server.write_ok(ROWS_LP, db=db)
    return shared_server, db


def same_rows(got: list[dict], expected: list[dict]):
    """Rows equal, comparing `time` as an instant (the fraction's digits may be 3, 6 or 9)."""
    assert len(got) == len(expected), got
    for g, e in zip(got, expected):
        g2, e2 = dict(g), dict(e)
        assert parse_time(g2.pop("time")) == parse_time(e2.pop("time")), (g, e)
        assert g2 == e2, (g, e)


def check_column_order(columns: list[str]):
    """`SELECT *`: dimensions, measure_name, time, then measures."""
    n = len(DIMENSIONS)
    assert set(columns[:n]) == DIMENSIONS, columns
    assert columns[n:n + 2] == ["measure_name", "time"], columns
    assert set(columns[n + 2:]) == MEASURES, columns


def test_json_get(loaded):
    srv, db = loaded
    r = srv.query("SELECT * FROM cpu ORDER BY time", db=db, format="json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    rows = json.loads(r.text)
    same_rows(rows, EXPECTED)
    check_column_order(list(rows[0].keys()))
    assert "label" not in rows[2], rows[2]  # NULL omitted
    # whole seconds render without a fraction
    assert rows[0]["time"] == "2024-03-01T12:00:00" and rows[1]["time"] == "2024-03-01T12:00:01"


def test_default_format_is_json(loaded):
    srv, db = loaded
    r = srv.query("SELECT host, usage FROM cpu ORDER BY time", db=db, format=None)
    assert r.status_code == 200, r.text
    assert r.json() == [{"host": "a", "usage": 1.5}, {"host": "b", "usage": 2.5}, {"host": "a", "usage": 3.5}]


def test_post_json_body(loaded):
    srv, db = loaded
    r = srv.query("SELECT * FROM cpu ORDER BY time", db=db, format="json", method="POST")
    assert r.status_code == 200, r.text
    same_rows(r.json(), EXPECTED)
    r = srv.query("SELECT host, count FROM cpu WHERE count >= 2 ORDER BY count", db=db, format="csv", method="POST")
    assert r.status_code == 200, r.text
    assert r.text.splitlines() == ["host,count", "b,2", "a,3"]


def test_jsonl(loaded):
    srv, db = loaded
    r = srv.query("SELECT * FROM cpu ORDER BY time", db=db, format="jsonl")
    assert r.status_code == 200, r.text
    lines = [line for line in r.text.split("\n") if line]
    assert len(lines) == 3, r.text
    same_rows([json.loads(line) for line in lines], EXPECTED)


def test_csv(loaded):
    srv, db = loaded
    r = srv.query("SELECT * FROM cpu ORDER BY time", db=db, format="csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    header, body = table[0], table[1:]
    check_column_order(header)
    assert len(body) == 3, r.text
    got = [dict(zip(header, row)) for row in body]
    for g, e in zip(got, EXPECTED):
        assert parse_time(g["time"]) == parse_time(e["time"]), (g, e)
        assert g["host"] == e["host"] and g["region"] == e["region"] and g["measure_name"] == "cpu"
        assert float(g["usage"]) == e["usage"] and int(g["count"]) == e["count"]
        assert g["label"] == e.get("label", ""), (g, e)


def test_csv_empty_result_has_header(loaded):
    srv, db = loaded
    r = srv.query("SELECT host, usage FROM cpu WHERE usage > 100", db=db, format="csv")
    assert r.status_code == 200, r.text
    assert r.text.strip().splitlines() == ["host,usage"]
    r = srv.query("SELECT host, usage FROM cpu WHERE usage > 100", db=db, format="json")
    assert r.status_code == 200 and r.json() == [], r.text


def test_pretty(loaded):
    srv, db = loaded
    r = srv.query("SELECT host, region, usage, count FROM cpu ORDER BY time", db=db, format="pretty")
    assert r.status_code == 200, r.text
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("+") and lines[-1].startswith("+"), r.text
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    assert cells == [
        ["host", "region", "usage", "count"],
        ["a", "eu", "1.5", "1"],
        ["b", "us", "2.5", "2"],
        ["a", "eu", "3.5", "3"],
    ], r.text


def test_parquet(loaded):
    srv, db = loaded
    r = srv.query("SELECT * FROM cpu ORDER BY time", db=db, format="parquet")
    assert r.status_code == 200, r.text
    data = r.content
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1", data[:16]
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return
    table = pq.read_table(io.BytesIO(data))
    check_column_order(table.column_names)
    got = table.to_pylist()
    assert [row["host"] for row in got] == ["a", "b", "a"]
    assert [row["usage"] for row in got] == [1.5, 2.5, 3.5]
    assert [row["count"] for row in got] == [1, 2, 3]
    assert [row["label"] for row in got] == ["x", 'y, "quoted"', None]
    times = table.column("time").cast("int64").to_pylist()
    assert times == [T0, T0 + NS_PER_S, T0 + 2 * NS_PER_S + 250_000_000]


def test_arrow_stream(loaded):
    srv, db = loaded
    r = srv.query("SELECT * FROM cpu ORDER BY time", db=db, format="arrow")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    data = r.content
    assert data[:4] == b"\xff\xff\xff\xff", data[:16]  # IPC continuation marker
    assert data[-8:] == b"\xff\xff\xff\xff\x00\x00\x00\x00", data[-16:]  # end of stream
    try:
        import pyarrow.ipc as ipc
    except ImportError:
        return
    table = ipc.open_stream(data).read_all()
    check_column_order(table.column_names)
    got = table.to_pylist()
    assert [row["host"] for row in got] == ["a", "b", "a"]
    assert [row["usage"] for row in got] == [1.5, 2.5, 3.5]
    assert [row["label"] for row in got] == ["x", 'y, "quoted"', None]
    times = table.column("time").cast("int64").to_pylist()
    assert times == [T0, T0 + NS_PER_S, T0 + 2 * NS_PER_S + 250_000_000]
    # An empty result is a stream with a schema and no batches.
    r = srv.query("SELECT host, usage FROM cpu WHERE usage > 100", db=db, format="arrow")
    assert r.status_code == 200, r.text
    empty = ipc.open_stream(r.content).read_all()
    assert empty.num_rows == 0 and empty.column_names == ["host", "usage"]


def test_time_filter_and_aggregates(loaded):
    srv, db = loaded
    assert srv.rows(
        "SELECT host, usage FROM cpu WHERE time >= '2024-03-01T12:00:01' AND time < '2024-03-01T12:00:02.5' "
        "ORDER BY time",
        db=db,
    ) == [{"host": "b", "usage": 2.5}, {"host": "a", "usage": 3.5}]
    rows = srv.rows(
        "SELECT host, COUNT(*) AS n, SUM(usage) AS total, MAX(time) AS time FROM cpu GROUP BY host ORDER BY host",
        db=db,
    )
    same_rows(rows, [
        {"host": "a", "n": 2, "total": 5.0, "time": "2024-03-01T12:00:02.25"},
        {"host": "b", "n": 1, "total": 2.5, "time": "2024-03-01T12:00:01"},
    ])


def test_db_dot_table_addressing(shared_server, db):
    srv = shared_server
    other = db + "_other"
    srv.write_ok(f"cpu,host=a usage=1.5 {T0}", db=db)
    srv.write_ok(f"cpu,host=z usage=9.5 {T0}\nmem,host=z free=7i {T0}", db=other)
    assert srv.rows(f"SELECT host, usage FROM {db}.cpu", db=db) == [{"host": "a", "usage": 1.5}]
    # another database's tables, from a query whose default database is this one
    assert srv.rows(f"SELECT host, usage FROM {other}.cpu", db=db) == [{"host": "z", "usage": 9.5}]
    assert srv.rows(
        f"SELECT a.host AS h1, b.host AS h2, b.free FROM {db}.cpu a CROSS JOIN {other}.mem b", db=db
    ) == [{"h1": "a", "h2": "z", "free": 7}]
    # unqualified names resolve in the request's database
    assert srv.rows("SELECT host FROM cpu", db=other) == [{"host": "z"}]


def test_sql_syntax_error_is_400(loaded):
    srv, db = loaded
    for method in ("GET", "POST"):
        r = srv.query("SELEC host FRM cpu", db=db, method=method)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert isinstance(err, str) and err, r.text


def test_unknown_table_names_it(loaded):
    srv, db = loaded
    r = srv.query("SELECT * FROM no_such_table", db=db)
    assert r.status_code == 400, r.text
    assert "no_such_table" in r.json()["error"], r.text
    r = srv.query(f"SELECT * FROM {db}.no_such_table_either", db=db)
    assert r.status_code == 400, r.text
    assert "no_such_table_either" in r.json()["error"], r.text


def test_unknown_column_names_it(loaded):
    srv, db = loaded
    r = srv.query("SELECT no_such_column FROM cpu", db=db)
    assert r.status_code == 400, r.text
    assert "no_such_column" in r.json()["error"], r.text


def test_missing_query_and_bad_format_are_400(loaded):
    srv, db = loaded
    r = srv.query(None, db=db)
    assert r.status_code == 400, r.text
    assert "q" in r.json()["error"], r.text
    r = srv.query("SELECT 1", db=db, format="xml")
    assert r.status_code == 400, r.text
    assert "xml" in r.json()["error"], r.text


def test_large_result_over_files_and_memory(shared_server, db):
    """30 000 rows in three Parquet files plus memory-store upserts of every tenth row: every
    format returns each row once, with the latest values (results span many batches)."""
    srv = shared_server
    n = 30_000
    for part in range(3):
        srv.write_ok("".join(f"big,h=h{i % 7} v={i}i {T0 + i * 1000}\n" for i in range(part * n // 3, (part + 1) * n // 3)),
                     db=db)
        assert srv.flush()["rows_persisted"] >= n // 3
    srv.write_ok("".join(f"big,h=h{i % 7} v={-i}i {T0 + i * 1000}\n" for i in range(0, n, 10)), db=db)
    expected_v = [-i if i % 10 == 0 else i for i in range(n)]

    rows = srv.rows("SELECT * FROM big ORDER BY time", db=db)
    assert [r["v"] for r in rows] == expected_v
    assert [parse_time(r["time"]) for r in rows[:3]] == [T0, T0 + 1000, T0 + 2000]

    r = srv.query("SELECT h, v FROM big ORDER BY time", db=db, format="csv")
    assert r.status_code == 200, r.text[:500]
    lines = r.text.splitlines()
    assert lines[0] == "h,v" and len(lines) == n + 1, lines[:3]
    assert [int(line.split(",")[1]) for line in lines[1:]] == expected_v

    r = srv.query("SELECT v FROM big", db=db, format="jsonl")
    assert r.status_code == 200, r.text[:500]
    assert sorted(json.loads(line)["v"] for line in r.text.split("\n") if line) == sorted(expected_v)

    r = srv.query("SELECT v FROM big", db=db, format="parquet")
    assert r.status_code == 200 and r.content[:4] == b"PAR1" and r.content[-4:] == b"PAR1"

    r = srv.query("SELECT v FROM big ORDER BY time", db=db, format="arrow")
    assert r.status_code == 200, r.text[:500]
    try:
        import pyarrow.ipc as ipc
    except ImportError:
        return
    assert ipc.open_stream(r.content).read_all().column("v").to_pylist() == expected_v


def test_disabled_rules_switch_plan_rules_off_not_answers(loaded):
    """`disabled_rules` switches Hourglass's plan rules off for one query: the plan changes (no
    dictionary group keys), the answer does not; an unknown name is a 400 naming the known ones."""
    server, db = loaded
    import requests
    sql = "SELECT host, sum(usage) AS s FROM cpu GROUP BY host ORDER BY host"
    url = f"{server.url}/api/v3/query_sql"

    def run(q, rules=None):
        params = {"db": db, "q": q, "format": "json"}
        if rules is not None:
            params["disabled_rules"] = rules
        return requests.get(url, params=params, timeout=30)

    def plan(rules=None):
        r = run("EXPLAIN " + sql, rules)
        assert r.status_code == 200, r.text
        return " ".join(row["plan"] for row in r.json())

    assert "hourglass_dictionary_as_view" in plan()
    assert "hourglass_dictionary_as_view" not in plan("all")
    assert "hourglass_dictionary_as_view" not in plan("dictionary_group_keys, date_bin")
    assert "hourglass_dictionary_as_view" in plan("run_aggregate")
    on, off = run(sql), run(sql, "all")
    assert on.status_code == off.status_code == 200
    assert on.json() == off.json() == [{"host": "a", "s": 5.0}, {"host": "b", "s": 2.5}]
    bad = run(sql, "dictionary_group_keys,bogus")
    assert bad.status_code == 400
    assert "'bogus'" in bad.json()["error"] and "latest_value" in bad.json()["error"]
    post = requests.post(url, json={"db": db, "q": "EXPLAIN " + sql, "disabled_rules": "all"},
                         timeout=30)
    assert post.status_code == 200 and "hourglass_dictionary_as_view" not in post.text
