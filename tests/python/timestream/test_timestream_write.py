"""WriteRecords through boto3's timestream-write client, read back through timestream-query.

Covers: every MeasureValueType (DOUBLE, BIGINT, VARCHAR, BOOLEAN, TIMESTAMP, MULTI) in its
column; every TimeUnit; CommonAttributes merging; RecordsIngested counts; partial success with
RejectedRecordsException (419) listing indexes and reasons; the memory-store window's reason text
and bounds; magnetic-store writes (counted under MagneticStore, queryable) and the ingestion
window of such tables; versioned upserts (idempotent rewrite, same version rejected with
ExistingVersion, higher version replaces, lower version rejected, same value at a higher version)
in memory, after a flush to Parquet and across a restart; whole-request validation errors
(record count, no dimensions, invalid time, Version 0, overlapping CommonAttributes, missing
table); measure type conflicts naming both types; concurrent writers of the same record.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from botocore.exceptions import ClientError

from tshelpers import WINDOW_RE, error_of, now_ms, query_all, rec, scalars, ts_clients

HOUR_MS = 3_600_000


def parse_ms(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
               .replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def rejections(excinfo) -> list[dict]:
    code, status, message = error_of(excinfo)
    assert (code, status) == ("RejectedRecordsException", 419), message
    assert message == "One or more records have been rejected. See RejectedRecords for details."
    return excinfo.value.response["RejectedRecords"]


def ts_text(ns: int) -> str:
    """A nanosecond time as Timestream renders TIMESTAMP values."""
    secs, frac = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(secs, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + f".{frac:09d}"


def test_every_measure_type_and_time_unit(tsw, tsq, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="all")
    base_ns = (now_ms() - 60_000) * 1_000_000
    t_ms, t_s = base_ns // 1_000_000, base_ns // 1_000_000_000
    out = tsw.write_records(
        DatabaseName=tsdb, TableName="all",
        CommonAttributes={"Dimensions": [{"Name": "region", "Value": "eu-west-1"}], "Time": str(t_ms)},
        Records=[
            rec("h1", 1.25, t_ms, "d"),                       # DOUBLE by default, MILLISECONDS
            rec("h1", -42, t_ms, "b", "BIGINT"),
            rec("h1", "héllo \"x\"", t_ms, "v", "VARCHAR"),
            rec("h1", "true", t_ms, "o", "BOOLEAN"),
            {"Dimensions": [{"Name": "host", "Value": "h1"}], "MeasureName": "ts", "MeasureValueType": "TIMESTAMP",
             "MeasureValue": str(t_s - 3600), "TimeUnit": "SECONDS", "Time": str(t_s)},
            {"Dimensions": [{"Name": "host", "Value": "h2"}], "MeasureName": "m", "MeasureValueType": "MULTI",
             "Time": str(base_ns + 123_456_789), "TimeUnit": "NANOSECONDS",
             "MeasureValues": [{"Name": "load", "Value": "0.5", "Type": "DOUBLE"},
                               {"Name": "procs", "Value": "12", "Type": "BIGINT"},
                               {"Name": "state", "Value": "ok", "Type": "VARCHAR"},
                               {"Name": "up", "Value": "false", "Type": "BOOLEAN"},
                               # TIMESTAMP measure values are in the record's TimeUnit (here ns).
                               {"Name": "since", "Value": str(base_ns - 5), "Type": "TIMESTAMP"}]},
            {"Dimensions": [{"Name": "host", "Value": "h3"}], "MeasureName": "d", "MeasureValue": "7",
             "TimeUnit": "MICROSECONDS", "Time": str(base_ns // 1000 + 1)},
        ])
    assert out["RecordsIngested"] == {"Total": 7, "MemoryStore": 7, "MagneticStore": 0}

    columns, rows, _ = query_all(tsq, (
        f'SELECT region, host, measure_name, time, "measure_value::double", "measure_value::bigint", '
        f'"measure_value::varchar", "measure_value::boolean", "measure_value::timestamp", '
        f'load, procs, state, up, since FROM "{tsdb}"."all" ORDER BY host, measure_name'))
    assert [(c["Name"], c["Type"]["ScalarType"]) for c in columns] == [
        ("region", "VARCHAR"), ("host", "VARCHAR"), ("measure_name", "VARCHAR"), ("time", "TIMESTAMP"),
        ("measure_value::double", "DOUBLE"), ("measure_value::bigint", "BIGINT"),
        ("measure_value::varchar", "VARCHAR"), ("measure_value::boolean", "BOOLEAN"),
        ("measure_value::timestamp", "TIMESTAMP"), ("load", "DOUBLE"), ("procs", "BIGINT"),
        ("state", "VARCHAR"), ("up", "BOOLEAN"), ("since", "TIMESTAMP")]
    ms_text = ts_text(t_ms * 1_000_000)
    n = None
    assert scalars(rows) == [
        ["eu-west-1", "h1", "b", ms_text, n, "-42", n, n, n, n, n, n, n, n],
        ["eu-west-1", "h1", "d", ms_text, "1.25", n, n, n, n, n, n, n, n, n],
        ["eu-west-1", "h1", "o", ms_text, n, n, n, "true", n, n, n, n, n, n],
        ["eu-west-1", "h1", "ts", ts_text(t_s * 1_000_000_000), n, n, n, n,
         ts_text((t_s - 3600) * 1_000_000_000), n, n, n, n, n],
        ["eu-west-1", "h1", "v", ms_text, n, n, 'héllo "x"', n, n, n, n, n, n, n],
        ["eu-west-1", "h2", "m", ts_text(base_ns + 123_456_789), n, n, n, n, n, "0.5", "12", "ok", "false",
         ts_text(base_ns - 5)],
        ["eu-west-1", "h3", "d", ts_text(base_ns + 1000), "7.0", n, n, n, n, n, n, n, n, n],
    ]


def test_partial_success_lists_rejected_records(tsw, tsq, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="t1")
    t = now_ms()
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="t1", Records=[
            rec("ok1", 1, t),
            rec("bad-value", "twelve", t),
            rec("too-old", 1, t - 7 * HOUR_MS),
            rec("ok2", 2, t),
            rec("too-new", 1, t + 20 * 60_000),
            rec("nan", "NaN", t),
            {"Dimensions": [{"Name": "host", "Value": "dup"}, {"Name": "host", "Value": "dup2"}],
             "MeasureName": "cpu", "MeasureValue": "1", "Time": str(t)},
            {"Dimensions": [{"Name": "h" * 61, "Value": "x"}], "MeasureName": "cpu", "MeasureValue": "1", "Time": str(t)},
            {"Dimensions": [{"Name": "host", "Value": "x" * 2000}], "MeasureName": "cpu", "MeasureValue": "1" * 100,
             "MeasureValueType": "VARCHAR", "Time": str(t)},
        ])
    rejected = rejections(e)
    assert [r["RecordIndex"] for r in rejected] == [1, 2, 4, 5, 6, 7, 8]
    by_index = {r["RecordIndex"]: r for r in rejected}
    assert "not a valid DOUBLE" in by_index[1]["Reason"]
    assert WINDOW_RE.match(by_index[2]["Reason"]), by_index[2]["Reason"]
    assert WINDOW_RE.match(by_index[4]["Reason"])
    assert "NaN" in by_index[5]["Reason"]
    assert "more than once" in by_index[6]["Reason"]
    assert "60" in by_index[7]["Reason"]
    assert "2 KB" in by_index[8]["Reason"]
    assert all("ExistingVersion" not in r for r in rejected)
    _, rows, _ = query_all(tsq, f'SELECT host FROM "{tsdb}"."t1" ORDER BY host')
    assert scalars(rows) == [["ok1"], ["ok2"]]


def test_memory_store_window_reason_text(tsw, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="win",
                     RetentionProperties={"MemoryStoreRetentionPeriodInHours": 2,
                                          "MagneticStoreRetentionPeriodInDays": 1})
    before = now_ms()
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="win", Records=[rec("h", 1, before - 3 * HOUR_MS)])
    after = now_ms()
    reason = rejections(e)[0]["Reason"]
    m = WINDOW_RE.match(reason)
    assert m, reason
    lower, upper, store = parse_ms(m.group(1)), parse_ms(m.group(2)), m.group(3)
    assert store == "memory store"
    assert before - 2 * HOUR_MS - 1000 <= lower <= after - 2 * HOUR_MS + 1000
    assert before + 15 * 60_000 - 1000 <= upper <= after + 15 * 60_000 + 1000
    # Just inside the window is accepted.
    tsw.write_records(DatabaseName=tsdb, TableName="win", Records=[rec("h", 1, now_ms() - 2 * HOUR_MS + 60_000)])


def test_magnetic_store_writes(tsw, tsq, tsdb):
    tsw.create_table(
        DatabaseName=tsdb, TableName="late",
        RetentionProperties={"MemoryStoreRetentionPeriodInHours": 1, "MagneticStoreRetentionPeriodInDays": 2},
        MagneticStoreWriteProperties={"EnableMagneticStoreWrites": True})
    t = now_ms()
    out = tsw.write_records(DatabaseName=tsdb, TableName="late", Records=[
        rec("old", 1, t - 5 * HOUR_MS), rec("older", 2, t - 30 * HOUR_MS), rec("new", 3, t)])
    assert out["RecordsIngested"] == {"Total": 3, "MemoryStore": 1, "MagneticStore": 2}
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="late", Records=[rec("ancient", 1, t - 3 * 24 * HOUR_MS)])
    m = WINDOW_RE.match(rejections(e)[0]["Reason"])
    assert m and m.group(3) == "data ingestion window"
    _, rows, _ = query_all(tsq, f'SELECT host, "measure_value::double" FROM "{tsdb}"."late" ORDER BY time')
    assert scalars(rows) == [["older", "2.0"], ["old", "1.0"], ["new", "3.0"]]
    # Without magnetic writes the same old record is refused.
    tsw.create_table(DatabaseName=tsdb, TableName="strict",
                     RetentionProperties={"MemoryStoreRetentionPeriodInHours": 1, "MagneticStoreRetentionPeriodInDays": 2})
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="strict", Records=[rec("old", 1, t - 5 * HOUR_MS)])
    assert WINDOW_RE.match(rejections(e)[0]["Reason"]).group(3) == "memory store"


def write_one(tsw, db, table, value, t, version=None, host="h1"):
    r = rec(host, value, t)
    if version is not None:
        r["Version"] = version
    return tsw.write_records(DatabaseName=db, TableName=table, Records=[r])


def value_of(tsq, db, table, host="h1"):
    _, rows, _ = query_all(tsq, f'SELECT "measure_value::double" FROM "{db}"."{table}" WHERE host = \'{host}\'')
    return scalars(rows)


SAME_VERSION = ("A record already exists with the same time, dimensions, measure name, and record version. "
                "A higher record version must be specified in order to update the measure value. "
                "Specifying record version is supported by the latest SDKs.")


def check_version_semantics(tsw, tsq, db, table, t):
    write_one(tsw, db, table, 1, t)
    assert write_one(tsw, db, table, 1, t)["RecordsIngested"]["Total"] == 1  # identical: accepted
    with pytest.raises(ClientError) as e:
        write_one(tsw, db, table, 2, t)
    [r] = rejections(e)
    assert r == {"RecordIndex": 0, "Reason": SAME_VERSION, "ExistingVersion": 1}
    write_one(tsw, db, table, 2, t, version=3)
    assert value_of(tsq, db, table) == [["2.0"]]
    with pytest.raises(ClientError) as e:
        write_one(tsw, db, table, 9, t, version=2)
    [r] = rejections(e)
    assert r == {"RecordIndex": 0, "ExistingVersion": 3, "Reason":
                 "The record version 2 is lower than the existing version 3. A higher version is required to update the measure value."}
    with pytest.raises(ClientError) as e:
        write_one(tsw, db, table, 9, t, version=3)
    assert rejections(e)[0]["ExistingVersion"] == 3
    # The same value at a higher version: accepted, only the version changes.
    write_one(tsw, db, table, 2, t, version=5)
    with pytest.raises(ClientError) as e:
        write_one(tsw, db, table, 8, t, version=4)
    assert rejections(e)[0]["ExistingVersion"] == 5
    assert value_of(tsq, db, table) == [["2.0"]]


def test_version_upserts_in_memory(tsw, tsq, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="v")
    check_version_semantics(tsw, tsq, tsdb, "v", now_ms() - 1000)


def test_version_upserts_in_one_request_and_across_series(tsw, tsq, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="v")
    t = now_ms()
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="v", Records=[
            rec("a", 1, t), rec("a", 1, t), rec("a", 2, t), dict(rec("a", 3, t), Version=2), rec("b", 5, t)])
    rejected = rejections(e)
    assert [(r["RecordIndex"], r.get("ExistingVersion")) for r in rejected] == [(2, 1)]
    _, rows, _ = query_all(tsq, f'SELECT host, "measure_value::double" FROM "{tsdb}"."v" ORDER BY host')
    assert scalars(rows) == [["a", "3.0"], ["b", "5.0"]]


def test_version_upserts_across_flush_and_restart(server):
    srv = server(args=["--maintenance-interval-ms", "3600000"])
    tsw, tsq = ts_clients(srv.url)
    tsw.create_database(DatabaseName="ver")
    tsw.create_table(DatabaseName="ver", TableName="flushed")
    tsw.create_table(DatabaseName="ver", TableName="restarted")
    t = now_ms() - 5000
    write_one(tsw, "ver", "flushed", 1, t, version=4)
    srv.flush()  # the record now lives in a Parquet file
    with pytest.raises(ClientError) as e:
        write_one(tsw, "ver", "flushed", 2, t, version=4)
    assert rejections(e)[0]["ExistingVersion"] == 4
    write_one(tsw, "ver", "flushed", 2, t, version=6)
    assert value_of(tsq, "ver", "flushed") == [["2.0"]]

    write_one(tsw, "ver", "restarted", 1, t)
    write_one(tsw, "ver", "restarted", 2, t, version=7)
    srv.restart()
    tsw, tsq = ts_clients(srv.url)
    for table, version in (("flushed", 6), ("restarted", 7)):
        assert write_one(tsw, "ver", table, 2, t)["RecordsIngested"]["Total"] == 1  # identical
        with pytest.raises(ClientError) as e:
            write_one(tsw, "ver", table, 3, t, version=version)
        assert rejections(e)[0]["ExistingVersion"] == version
        with pytest.raises(ClientError) as e:
            write_one(tsw, "ver", table, 3, t, version=2)
        assert rejections(e)[0]["ExistingVersion"] == version
        write_one(tsw, "ver", table, 3, t, version=version + 1)
        assert value_of(tsq, "ver", table) == [["3.0"]]
    # And after a crash (SIGKILL): versions were logged before the write was acknowledged.
    srv.kill()
    srv.start()
    tsw, tsq = ts_clients(srv.url)
    with pytest.raises(ClientError) as e:
        write_one(tsw, "ver", "restarted", 4, t, version=8)
    assert rejections(e)[0]["ExistingVersion"] == 8
    assert value_of(tsq, "ver", "restarted") == [["3.0"]]


def test_concurrent_writers_of_one_record(tsw, tsq, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="race")
    t = now_ms()
    outcomes = []

    def writer(value):
        try:
            write_one(tsw, tsdb, "race", value, t)
            outcomes.append(("ok", value))
        except ClientError as e:
            outcomes.append((e.response["Error"]["Code"], value))

    threads = [threading.Thread(target=writer, args=(v,)) for v in (1, 2, 3, 4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    accepted = [v for code, v in outcomes if code == "ok"]
    assert len(accepted) == 1, outcomes
    assert value_of(tsq, tsdb, "race") == [[f"{accepted[0]}.0"]]


def test_whole_request_validation(tsw, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="val")
    t = now_ms()

    def invalid(**kw):
        with pytest.raises(ClientError) as e:
            tsw.write_records(DatabaseName=tsdb, TableName="val", **kw)
        code, status, message = error_of(e)
        assert (code, status) == ("ValidationException", 400), message
        return message

    assert "100" in invalid(Records=[rec(f"h{i}", 1, t) for i in range(101)])
    assert invalid(Records=[{"MeasureName": "cpu", "MeasureValue": "1", "Time": str(t)}]) == \
        "At least one dimension is required for a record."
    assert invalid(Records=[rec("h", 1, 0) | {"Time": "yesterday"}]) == "Invalid time for record."
    assert "Version" in invalid(Records=[rec("h", 1, t) | {"Version": 0}])
    assert "overlap" in invalid(CommonAttributes={"Dimensions": [{"Name": "host", "Value": "c"}]},
                                Records=[rec("h", 1, t)])
    assert "MULTI" in invalid(Records=[rec("h", 1, t) | {"MeasureValueType": "MULTI"}])
    assert "measureValue" in invalid(Records=[rec("h", 1, t) | {"MeasureValue": "x" * 2049, "MeasureValueType": "VARCHAR"}])
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="missing", Records=[rec("h", 1, t)])
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb + "_nodb", TableName="val", Records=[rec("h", 1, t)])
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_measure_type_conflicts_name_both_types(tsw, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="types")
    t = now_ms()

    def multi(name, value, vtype, host="h"):
        return {"Dimensions": [{"Name": "host", "Value": host}], "MeasureName": "m", "MeasureValueType": "MULTI",
                "Time": str(t), "MeasureValues": [{"Name": name, "Value": value, "Type": vtype}]}

    tsw.write_records(DatabaseName=tsdb, TableName="types", Records=[multi("speed", "1.5", "DOUBLE")])
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="types", Records=[
            multi("speed", "2", "BIGINT", "h2"), multi("other", "x", "VARCHAR", "h3"), multi("other", "1", "BIGINT", "h4")])
    rejected = rejections(e)
    assert [r["RecordIndex"] for r in rejected] == [0, 2]
    assert "BIGINT" in rejected[0]["Reason"] and "DOUBLE" in rejected[0]["Reason"]
    assert "BIGINT" in rejected[1]["Reason"] and "VARCHAR" in rejected[1]["Reason"]
    # A dimension cannot become a measure.
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="types", Records=[multi("host2", "1", "DOUBLE") | {
            "Dimensions": [{"Name": "host", "Value": "h"}, {"Name": "speed", "Value": "fast"}]}])
    assert "speed" in rejections(e)[0]["Reason"]
