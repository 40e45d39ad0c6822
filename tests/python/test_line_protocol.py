"""Line protocol ingestion through real clients, read back by SQL with exact values.

Covers: the official `influxdb-client` package writing Points and raw line protocol to
`/api/v2/write` (every field type, tags/measurement/field keys needing escapes, string escapes,
each precision, gzip, its error reporting); InfluxDB v1 `/write` and InfluxDB 3
`/api/v3/write_lp` through `requests` (precisions, gzip, server-assigned timestamps, partial
writes, accept_partial=false, type conflicts, missing database, bad precision); grammar details
as InfluxDB's parser tests state them (backslash runs, duplicate tags, newlines in string values
and line numbers after them, control characters, server time truncated to the precision).
"""

from __future__ import annotations

import json
import time

import pytest
from influxdb_client import Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from hgtest import NS_PER_S, iso, ns, parse_time

T0 = ns("2024-01-01T00:00:00")  # 1704067200 s
T0_S = T0 // NS_PER_S


def typeof(srv, db, table, column):
    rows = srv.rows(f'SELECT arrow_typeof("{column}") AS t FROM "{table}" LIMIT 1', db=db)
    return rows[0]["t"]


# -- influxdb-client (v2) -------------------------------------------------------------------------


def test_client_points_every_field_type(shared_server, db):
    srv = shared_server
    p1 = Point.from_dict(
        {
            "measurement": "weather",
            "tags": {"station": "north", "region": "eu"},
            "fields": {"temp": 21.5, "count": 42, "hits": 7, "note": "calm", "ok": True},
            "time": T0 + 123_456_789,
        },
        write_precision=WritePrecision.NS,
        field_types={"count": "int", "hits": "uint"},
    )
    p2 = (
        Point("weather")
        .tag("station", "south")
        .tag("region", "us")
        .field("temp", -3.25)
        .field("count", -9_223_372_036_854_775_807)
        .field("note", 'said "hi" \\ and left')
        .field("ok", False)
        .time(T0 + 2 * NS_PER_S, WritePrecision.NS)
    )
    p3 = Point.from_dict(
        {"measurement": "weather", "tags": {"station": "south", "region": "us"},
         "fields": {"hits": 18_446_744_073_709_551_615}, "time": T0 + 3 * NS_PER_S},
        write_precision=WritePrecision.NS,
        field_types={"hits": "uint"},
    )
    with srv.influx_client() as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket=db, record=[p1, p2, p3])

    rows = srv.rows(
        "SELECT station, region, measure_name, CAST(time AS BIGINT) AS t, time, temp, count, hits, "
        "note, ok FROM weather ORDER BY t",
        db=db,
    )
    assert rows == [
        {"station": "north", "region": "eu", "measure_name": "weather", "t": T0 + 123_456_789,
         "time": "2024-01-01T00:00:00.123456789", "temp": 21.5, "count": 42, "hits": 7,
         "note": "calm", "ok": True},
        {"station": "south", "region": "us", "measure_name": "weather", "t": T0 + 2 * NS_PER_S,
         "time": "2024-01-01T00:00:02", "temp": -3.25, "count": -9_223_372_036_854_775_807,
         "note": 'said "hi" \\ and left', "ok": False},
        {"station": "south", "region": "us", "measure_name": "weather", "t": T0 + 3 * NS_PER_S,
         "time": "2024-01-01T00:00:03", "hits": 18_446_744_073_709_551_615},
    ]
    types = {c: typeof(srv, db, "weather", c) for c in
             ("station", "region", "measure_name", "time", "temp", "count", "hits", "note", "ok")}
    assert "Dictionary" in types["station"] and "Utf8" in types["station"], types
    assert "Dictionary" in types["region"] and "Utf8" in types["region"], types
    assert types["temp"] == "Float64", types
    assert types["count"] == "Int64", types
    assert types["hits"] == "UInt64", types
    assert "Utf8" in types["note"] and "Dictionary" not in types["note"], types
    assert types["ok"] == "Boolean", types
    assert types["time"].startswith("Timestamp(") and ("Nanosecond" in types["time"] or "ns" in types["time"]), types


def test_client_escaped_names_and_values(shared_server, db):
    srv = shared_server
    point = (
        Point("my meas,x")
        .tag("host name", "web 01,eu=1")
        .tag("k=v,x", "a b")
        .field("field one=1", 1.0)
        .field("s", "a,b=c d \"q\"")
        .time(T0_S, WritePrecision.S)
    )
    raw = r'my\ meas\,x,host\ name=web\ 02,k\=v\,x=c\=d field\ one\=1=2.5,s="x\\y" ' + str(T0_S + 1)
    with srv.influx_client() as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        api.write(bucket=db, record=point, write_precision=WritePrecision.S)
        api.write(bucket=db, record=raw, write_precision=WritePrecision.S)
    rows = srv.rows(
        'SELECT "host name", "k=v,x", measure_name, time, "field one=1", s FROM "my meas,x" ORDER BY time',
        db=db,
    )
    assert rows == [
        {"host name": "web 01,eu=1", "k=v,x": "a b", "measure_name": "my meas,x",
         "time": "2024-01-01T00:00:00", "field one=1": 1.0, "s": 'a,b=c d "q"'},
        {"host name": "web 02", "k=v,x": "c=d", "measure_name": "my meas,x",
         "time": "2024-01-01T00:00:01", "field one=1": 2.5, "s": "x\\y"},
    ]


@pytest.mark.parametrize(
    "precision,value,expected_ns",
    [
        (WritePrecision.S, T0_S + 5, T0 + 5 * NS_PER_S),
        (WritePrecision.MS, T0_S * 1000 + 5_123, T0 + 5_123_000_000),
        (WritePrecision.US, T0_S * 1_000_000 + 5_123_456, T0 + 5_123_456_000),
        (WritePrecision.NS, T0 + 5_123_456_789, T0 + 5_123_456_789),
    ],
)
def test_client_raw_line_protocol_precisions(shared_server, db, precision, value, expected_ns):
    srv = shared_server
    with srv.influx_client() as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket=db, record=f"cpu,host=h1 usage=0.5,n=3i {value}", write_precision=precision
        )
        # a Point carries its own precision, which the client sends as the request's precision
        point = Point("cpu").tag("host", "h2").field("usage", 1.5).time(value, precision)
        client.write_api(write_options=SYNCHRONOUS).write(bucket=db, record=point)
    rows = srv.rows("SELECT host, usage, n, CAST(time AS BIGINT) AS t FROM cpu ORDER BY host", db=db)
    assert rows == [
        {"host": "h1", "usage": 0.5, "n": 3, "t": expected_ns},
        {"host": "h2", "usage": 1.5, "t": expected_ns},
    ]


def test_client_gzip_batch(shared_server, db):
    srv = shared_server
    lines = [f"mem,host=h{i % 3} used={i}i,free={100 - i}.5 {T0 + i * NS_PER_S}" for i in range(300)]
    with srv.influx_client(enable_gzip=True) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket=db, record=lines)
    rows = srv.rows("SELECT COUNT(*) AS n, SUM(used) AS s, MIN(free) AS lo, MAX(time) AS last FROM mem", db=db)
    assert rows == [{"n": 300, "s": sum(range(300)), "lo": -199.5, "last": iso(T0 + 299 * NS_PER_S)}]
    per_host = srv.rows("SELECT host, COUNT(*) AS n FROM mem GROUP BY host ORDER BY host", db=db)
    assert per_host == [{"host": "h0", "n": 100}, {"host": "h1", "n": 100}, {"host": "h2", "n": 100}]


def test_client_partial_write_reports_line(shared_server, db):
    srv = shared_server
    body = "\n".join([
        f"disk,dev=a free=1i {T0}",
        "disk,dev=b free=",  # no field value
        f"disk,dev=c free=3i {T0}",
    ])
    with srv.influx_client() as client:
        with pytest.raises(ApiException) as info:
            client.write_api(write_options=SYNCHRONOUS).write(bucket=db, record=body)
    assert info.value.status == 400

    err = json.loads(info.value.body)
    assert err["code"] == "invalid", err
    assert "line 2" in err["message"], err
    assert srv.rows("SELECT dev, free FROM disk ORDER BY dev", db=db) == [
        {"dev": "a", "free": 1},
        {"dev": "c", "free": 3},
    ]


# -- v1 /write ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "precision,value,expected_ns",
    [
        (None, T0 + 7, T0 + 7),
        ("n", T0 + 7, T0 + 7),
        ("u", T0 // 1000 + 7, T0 + 7_000),
        ("ms", T0 // 1_000_000 + 7, T0 + 7_000_000),
        ("s", T0_S + 7, T0 + 7 * NS_PER_S),
        ("m", T0_S // 60 + 7, T0 + 7 * 60 * NS_PER_S),
        ("h", T0_S // 3600 + 7, T0 + 7 * 3600 * NS_PER_S),
    ],
)
def test_v1_precisions(shared_server, db, precision, value, expected_ns):
    srv = shared_server
    srv.write_ok(f"temp,room=k c=20.5 {value}", db=db, precision=precision, api="v1")
    assert srv.rows("SELECT room, c, CAST(time AS BIGINT) AS t FROM temp", db=db) == [
        {"room": "k", "c": 20.5, "t": expected_ns}
    ]


def test_v1_gzip_and_several_measurements(shared_server, db):
    srv = shared_server
    body = "\n".join(
        [f"a,t=x v={i}i {T0 + i}" for i in range(50)] + [f'b,t=y s="n{i}" {T0 + i}' for i in range(20)]
    ) + "\n"
    srv.write_ok(body, db=db, api="v1", gzip=True)
    assert srv.rows("SELECT COUNT(*) AS n, SUM(v) AS s FROM a", db=db) == [{"n": 50, "s": sum(range(50))}]
    assert srv.rows("SELECT s FROM b ORDER BY time DESC LIMIT 2", db=db) == [{"s": "n19"}, {"s": "n18"}]


def test_v1_missing_timestamp_uses_server_time(shared_server, db):
    srv = shared_server
    before = time.time_ns()
    srv.write_ok("now_v1,h=a v=1", db=db, api="v1")
    srv.write_ok("now_v3,h=a v=1", db=db, api="v3")
    after = time.time_ns()
    for table in ("now_v1", "now_v3"):
        rows = srv.rows(f"SELECT CAST(time AS BIGINT) AS t, time FROM {table}", db=db)
        assert len(rows) == 1, rows
        t = rows[0]["t"]
        assert before - 5 * NS_PER_S <= t <= after + 5 * NS_PER_S, (before, t, after)
        assert parse_time(rows[0]["time"]) == t


def test_v1_partial_write(shared_server, db):
    srv = shared_server
    body = f"pw,k=a v=1 {T0}\npw,k=b v=oops {T0}\npw,k=c v=3 {T0}\n"
    r = srv.write_v1(body, db=db)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "line 2" in err, err
    assert "1 lines rejected" in err and "2 rows written" in err, err
    assert srv.rows("SELECT k, v FROM pw ORDER BY k", db=db) == [{"k": "a", "v": 1.0}, {"k": "c", "v": 3.0}]


def test_v1_accepts_credentials_and_rp_params(shared_server, db):
    srv = shared_server
    r = srv.write_v1(f"cred,h=a v=1i {T0}", db=db, precision="ns", u="user", p="secret", rp="autogen")
    assert r.status_code == 204, r.text
    assert srv.rows("SELECT h, v FROM cred", db=db) == [{"h": "a", "v": 1}]


def test_v2_bucket_with_retention_policy_names_database(shared_server, db):
    srv = shared_server
    with srv.influx_client() as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket=f"{db}/autogen", record=f"rp,h=a v=2i {T0}"
        )
    assert srv.rows("SELECT h, v FROM rp", db=db) == [{"h": "a", "v": 2}]


def test_missing_database_is_400(shared_server):
    srv = shared_server
    line = f"x v=1 {T0}"
    r = srv.write_v1(line, db=None)
    assert r.status_code == 400, r.text
    assert "db" in r.json()["error"]
    r = srv.write_v2(line, bucket=None)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid" and "bucket" in r.json()["message"]
    r = srv.write_v3(line, db=None)
    assert r.status_code == 400, r.text
    assert "db" in r.json()["error"]
    r = srv.write_v1(line, db="")
    assert r.status_code == 400, r.text


def test_invalid_precision_is_400(shared_server, db):
    r = shared_server.write_v1(f"x v=1 {T0}", db=db, precision="fortnight")
    assert r.status_code == 400, r.text
    assert "precision" in r.json()["error"]


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
def test_type_conflict_names_both_types(shared_server, db, api):
    srv = shared_server
    srv.write_ok(f"conf,h=a x=1.5 {T0}", db=db, api=api)
    body = f"conf,h=b x=2i {T0}"
    if api == "v1":
        r = srv.write_v1(body, db=db)
        msg = r.json()["error"]
    elif api == "v2":
        r = srv.write_v2(body, bucket=db)
        msg = r.json()["message"]
    else:
        r = srv.write_v3(body, db=db)
        msg = r.json()["data"][0]["error_message"]
        assert r.json()["data"][0]["line_number"] == 1
    assert r.status_code == 400, r.text
    assert "'x'" in msg and "integer" in msg and "float" in msg, msg
    assert srv.rows("SELECT h, x FROM conf", db=db) == [{"h": "a", "x": 1.5}]


# -- v3 /api/v3/write_lp --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "precision,value,expected_ns",
    [
        ("nanosecond", T0 + 11, T0 + 11),
        ("microsecond", T0 // 1000 + 11, T0 + 11_000),
        ("millisecond", T0 // 1_000_000 + 11, T0 + 11_000_000),
        ("second", T0_S + 11, T0 + 11 * NS_PER_S),
        ("auto", T0 + 11, T0 + 11),
    ],
)
def test_v3_precisions(shared_server, db, precision, value, expected_ns):
    srv = shared_server
    srv.write_ok(f"p3,s=z v=1u {value}", db=db, precision=precision, api="v3")
    assert srv.rows("SELECT s, v, CAST(time AS BIGINT) AS t FROM p3", db=db) == [
        {"s": "z", "v": 1, "t": expected_ns}
    ]


def test_v3_gzip(shared_server, db):
    srv = shared_server
    body = "".join(f"g3,id={i % 4} v={i}i,f={i}.25 {T0 + i * 1000}\n" for i in range(1000))
    srv.write_ok(body, db=db, api="v3", gzip=True)
    rows = srv.rows("SELECT id, COUNT(*) AS n, SUM(v) AS s FROM g3 GROUP BY id ORDER BY id", db=db)
    assert rows == [
        {"id": str(k), "n": 250, "s": sum(i for i in range(1000) if i % 4 == k)} for k in range(4)
    ]


@pytest.mark.parametrize("accept_partial", [None, True])
def test_v3_partial_write(shared_server, db, accept_partial):
    srv = shared_server
    bad = f"pw3,k=b v=1 {T0} extra"
    body = f"pw3,k=a v=1 {T0}\n{bad}\npw3,k=c v=3 {T0}\npw3,k=d {T0}\n"
    r = srv.write_v3(body, db=db, accept_partial=accept_partial)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error"] == "partial write of line protocol occurred", err
    assert [d["line_number"] for d in err["data"]] == [2, 4], err
    assert err["data"][0]["original_line"] == bad, err
    assert err["data"][1]["original_line"] == f"pw3,k=d {T0}", err
    assert all(d["error_message"] for d in err["data"]), err
    assert srv.rows("SELECT k, v FROM pw3 ORDER BY k", db=db) == [{"k": "a", "v": 1.0}, {"k": "c", "v": 3.0}]


def test_v3_accept_partial_false_writes_nothing(shared_server, db):
    srv = shared_server
    srv.write_ok(f"ap,k=pre v=0 {T0 - NS_PER_S}", db=db, api="v3")
    body = f"ap,k=a v=1 {T0}\nap,k=b v=\nap,k=c v=3 {T0}\nnewtable,k=a v=1 {T0}\n"
    r = srv.write_v3(body, db=db, accept_partial=False)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error"] == "parsing failed for write_lp endpoint", err
    assert [d["line_number"] for d in err["data"]] == [2], err
    assert err["data"][0]["original_line"] == "ap,k=b v=", err
    assert srv.rows("SELECT k, v FROM ap", db=db) == [{"k": "pre", "v": 0.0}]
    r = srv.query("SELECT * FROM newtable", db=db)
    assert r.status_code == 400 and "newtable" in r.json()["error"], r.text


def test_v3_all_lines_bad(shared_server, db):
    srv = shared_server
    r = srv.write_v3("nofields\nalso bad\n", db=db)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error"] == "parsing failed for write_lp endpoint", err
    assert [d["line_number"] for d in err["data"]] == [1, 2], err
    assert [d["original_line"] for d in err["data"]] == ["nofields", "also bad"], err


# -- grammar details, as InfluxDB's own parser tests state them -----------------------------------


def test_backslash_runs_and_duplicate_tags(shared_server, db):
    srv = shared_server
    body = "\n".join([
        rf"bs,tag=two\\ words v=1 {T0}",  # `\\ ` is a literal backslash and an escaped space
        f"bs,tag=a,tag=b v=2 {T0 + 1}",  # duplicate tag key: rejected, the rest is kept
        rf"bs,tag=\\,\,\=east v=3 {T0 + 2}",
    ])
    r = srv.write_v1(body, db=db)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "line 2" in err and "duplicate tag key 'tag'" in err, err
    assert "1 lines rejected" in err and "2 rows written" in err, err
    assert srv.rows("SELECT tag, v FROM bs ORDER BY v", db=db) == [
        {"tag": "two\\ words", "v": 1.0},
        {"tag": "\\,,=east", "v": 3.0},
    ]


def test_newline_in_string_value_and_line_numbers(shared_server, db):
    srv = shared_server
    body = (
        f'nl,k=a s="one\ntwo",n=1i {T0}\n'
        f'nl,k=b s="crlf\r\nkept" {T0}\r\n'
        f"nl,k=c s= {T0}\n"  # physical line 5
        f'nl,k=d s="x" {T0}\n'
    )
    r = srv.write_v3(body, db=db)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error"] == "partial write of line protocol occurred", err
    assert [d["line_number"] for d in err["data"]] == [5], err
    assert err["data"][0]["original_line"] == f"nl,k=c s= {T0}", err
    assert srv.rows("SELECT k, s FROM nl ORDER BY k", db=db) == [
        {"k": "a", "s": "one\ntwo"},
        {"k": "b", "s": "crlf\r\nkept"},
        {"k": "d", "s": "x"},
    ]


def test_control_characters_rejected_in_names_and_tag_values(shared_server, db):
    srv = shared_server
    body = f"cc,k=a\x01b v=1 {T0}\ncc,k=ok f\x7f=1 {T0}\ncc,k=ok v=2,s=\"tab\there\" {T0}\n"
    r = srv.write_v1(body, db=db)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "line 1: control character U+0001 in the value of tag 'k'" in err, err
    assert "line 2: control character U+007F in a field key" in err, err
    assert srv.rows("SELECT k, v, s FROM cc", db=db) == [{"k": "ok", "v": 2.0, "s": "tab\there"}]


@pytest.mark.parametrize(
    "api,precision,unit",
    [("v1", "s", NS_PER_S), ("v2", "ms", 1_000_000), ("v3", "second", NS_PER_S)],
)
def test_missing_timestamp_is_truncated_to_precision(shared_server, db, api, precision, unit):
    srv = shared_server
    # Start early in a second, so that both writes most likely fall into the same one.
    while time.time() % 1 > 0.3:
        time.sleep(0.02)
    before = time.time_ns()
    srv.write_ok("trunc,h=a v=1", db=db, precision=precision, api=api)
    srv.write_ok("trunc,h=a v=2", db=db, precision=precision, api=api)
    after = time.time_ns()
    rows = srv.rows("SELECT CAST(time AS BIGINT) AS t, v FROM trunc ORDER BY t", db=db)
    assert all(r["t"] % unit == 0 for r in rows), rows
    assert before - 5 * NS_PER_S <= rows[0]["t"] <= after + 5 * NS_PER_S, (before, rows, after)
    if before // unit == after // unit:
        # Both writes within one unit of time: one point, the later value winning (as InfluxDB).
        assert len(rows) == 1 and rows[0]["v"] == 2.0, rows
    else:
        assert len(rows) in (1, 2), rows
