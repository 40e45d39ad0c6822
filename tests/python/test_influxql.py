"""InfluxQL at `/query` (InfluxDB 1.x's query API): the API's shape — GET and POST (form body),
several statements in one `q`, `epoch`, RFC3339 times by default, `chunked`/`chunk_size`,
`pretty`, CSV on `Accept: application/csv`, parse errors worded as InfluxDB's with a 400,
statement errors inside the result, and authentication (`u`/`p`, `Authorization: Token`, a
caller seeing only the databases it may read). Whether the answers are InfluxDB's is the
differential test's job (tests/python/test_influxql_differential.py).
"""

from __future__ import annotations

import json

import pytest
import requests

from sectest import add_user, token_headers, write_lp

TIMEOUT_S = 30
T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z

LINES = "\n".join([
    f"cpu,host=a v=1.5,n=1i {T0}",
    f"cpu,host=b v=2.5,n=2i {T0 + 1_000_000_000}",
    f"cpu,host=a v=3.5,n=3i {T0 + 2_500_000_000}",
]) + "\n"


def q(url, query, method="GET", headers=None, **params):
    params = {"db": "idb", "q": query, **params}
    if method == "GET":
        return requests.get(f"{url}/query", params=params, headers=headers, timeout=TIMEOUT_S)
    return requests.post(f"{url}/query", data=params, headers=headers, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def srv(module_server):
    s = module_server()
    r = requests.post(f"{s.url}/write", params={"db": "idb"}, data=LINES, timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    return s


def test_select_json_shape_rfc3339_and_epoch(srv):
    r = q(srv.url, "SELECT v, host FROM cpu")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
    assert r.json() == {"results": [{"statement_id": 0, "series": [{
        "name": "cpu", "columns": ["time", "v", "host"],
        "values": [["2023-11-14T22:13:20Z", 1.5, "a"], ["2023-11-14T22:13:21Z", 2.5, "b"],
                   ["2023-11-14T22:13:22.5Z", 3.5, "a"]]}]}]}
    for epoch, div in (("ns", 1), ("u", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)):
        r = q(srv.url, "SELECT v FROM cpu LIMIT 1 OFFSET 2", epoch=epoch)
        assert r.json()["results"][0]["series"][0]["values"] == [[(T0 + 2_500_000_000) // div, 3.5]], (epoch, r.text)


def test_aggregates_group_by_and_several_statements_by_post(srv):
    r = q(srv.url, "SELECT count(v), sum(n) FROM cpu GROUP BY host; SHOW MEASUREMENTS; "
                   "SELECT mean(v) FROM cpu WHERE time >= '2023-11-14T22:13:20Z' AND time < '2023-11-14T22:13:23Z' "
                   "GROUP BY time(1s) fill(0)", method="POST")
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["statement_id"] for x in res] == [0, 1, 2]
    assert [(s["tags"], s["values"]) for s in res[0]["series"]] == [
        ({"host": "a"}, [["1970-01-01T00:00:00Z", 2, 4]]),
        ({"host": "b"}, [["1970-01-01T00:00:00Z", 1, 2]]),
    ]
    assert res[1]["series"] == [{"name": "measurements", "columns": ["name"], "values": [["cpu"]]}]
    assert res[2]["series"][0]["values"] == [
        ["2023-11-14T22:13:20Z", 1.5], ["2023-11-14T22:13:21Z", 2.5], ["2023-11-14T22:13:22Z", 3.5]]


def test_chunked_splits_series_into_documents(srv):
    r = q(srv.url, "SELECT v FROM cpu", chunked="true", chunk_size="2", epoch="s")
    docs = [json.loads(line) for line in r.text.splitlines() if line]
    assert len(docs) == 2, r.text
    first, last = docs[0]["results"][0], docs[1]["results"][0]
    assert first["partial"] is True and first["series"][0]["partial"] is True
    assert len(first["series"][0]["values"]) == 2
    assert "partial" not in last and last["series"][0]["values"] == [[1700000002, 3.5]]


def test_csv_and_pretty(srv):
    r = q(srv.url, "SELECT v FROM cpu GROUP BY host", headers={"Accept": "application/csv"})
    assert r.status_code == 200, r.text
    assert r.text.splitlines() == [
        "name,tags,time,v",
        f"cpu,host=a,{T0},1.5",
        f"cpu,host=a,{T0 + 2_500_000_000},3.5",
        f"cpu,host=b,{T0 + 1_000_000_000},2.5",
    ]
    r = q(srv.url, "SHOW DATABASES", pretty="true")
    assert "\n" in r.text.strip() and r.json()["results"][0]["series"][0]["values"] == [["idb"]]


def test_parse_and_statement_errors(srv):
    r = q(srv.url, "SELECT v FROM")
    assert r.status_code == 400
    assert r.json() == {"error": "error parsing query: found EOF, expected identifier at line 1, char 15"}
    r = q(srv.url, "SELCT v FROM cpu")
    assert r.status_code == 400 and r.json()["error"].startswith("error parsing query: found SELCT, expected SELECT"), r.text
    r = requests.get(f"{srv.url}/query", params={"db": "idb"}, timeout=TIMEOUT_S)
    assert r.status_code == 400 and r.json() == {"error": 'missing required parameter "q"'}
    r = q(srv.url, "SELECT v FROM cpu", db="nope")
    assert r.status_code == 200 and r.json() == {"results": [{"statement_id": 0, "error": "database not found: nope"}]}
    r = q(srv.url, "SELECT mean(v), host FROM cpu")
    assert r.json()["results"][0]["error"] == "mixing aggregate and non-aggregate queries is not supported"
    r = q(srv.url, "SELECT v FROM cpu", db="")
    assert r.json()["results"][0]["error"] == "database name required"


def test_auth_tokens_user_password_and_read_grants(module_server, hourglass_bin):
    s = module_server(args=["--require-auth"])
    op = add_user(hourglass_bin, s.data_dir, "op", ("*", "admin"))
    reader = add_user(hourglass_bin, s.data_dir, "reader", ("idb", "read"))
    for db in ("idb", "other"):
        r = write_lp(s.url, db, LINES, headers=token_headers(op))
        assert r.status_code == 204, r.text
    r = q(s.url, "SHOW DATABASES")
    assert r.status_code == 401 and set(r.json()) == {"error"}, r.text
    r = q(s.url, "SHOW DATABASES", headers={"Authorization": "Token hgt_wrong"})
    assert r.status_code == 401, r.text
    r = q(s.url, "SHOW DATABASES", u="reader", p=reader["token"])
    assert r.status_code == 200 and r.json()["results"][0]["series"][0]["values"] == [["idb"]], r.text
    r = q(s.url, "SHOW DATABASES", headers=token_headers(op))
    assert r.json()["results"][0]["series"][0]["values"] == [["idb"], ["other"]], r.text
    r = q(s.url, "SELECT count(v) FROM cpu", headers=token_headers(reader))
    assert r.json()["results"][0]["series"][0]["values"] == [["1970-01-01T00:00:00Z", 3]], r.text
    r = q(s.url, "SELECT count(v) FROM cpu", db="other", headers=token_headers(reader))
    err = r.json()["results"][0]["error"]
    assert "not authorized" in err and "series" not in r.json()["results"][0], r.text
    r = q(s.url, "CREATE DATABASE made", method="POST", headers=token_headers(reader))
    assert "not authorized" in r.json()["results"][0]["error"], r.text
