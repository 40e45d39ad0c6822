"""Telegraf's `outputs.timestream` keeps working: its WriteRecords request shapes, replayed with
boto3 exactly as the plugin builds them (plugins/outputs/timestream/timestream.go): records
grouped by measurement, tag set and time under `CommonAttributes` (dimensions, the coarsest exact
`TimeUnit`), one single-measure record per field (BIGINT/DOUBLE/BOOLEAN/VARCHAR) or one `MULTI`
record (`use_multi_measure_records`), a table per measurement (`multi-table`) or one table with
the measurement as a dimension (`single-table`), at most 100 records per call,
`DescribeDatabase` on start and `CreateTable` (retention + tags) after a ResourceNotFound, then
the write retried. Every value is read back through the Query API."""

from __future__ import annotations

import time

import botocore.exceptions
import pytest

from tshelpers import error_of, query_all, scalars

MAX_RECORDS_PER_CALL = 100


def _type_and_text(value):
    """convertValue: Go field value -> (MeasureValue, MeasureValueType)."""
    if isinstance(value, bool):
        return ("true" if value else "false"), "BOOLEAN"
    if isinstance(value, int):
        return str(value), "BIGINT"
    if isinstance(value, float):
        return repr(value), "DOUBLE"
    return value, "VARCHAR"


def _time(ns: int) -> tuple[str, str]:
    """getTimestreamTime: the coarsest unit that keeps the time exact."""
    for unit, div in (("SECONDS", 10**9), ("MILLISECONDS", 10**6), ("MICROSECONDS", 10**3)):
        if ns % div == 0:
            return unit, str(ns // div)
    return "NANOSECONDS", str(ns)


def transform(metrics, *, mode, db, single_table=None, name_dim=None, multi=False, multi_name=None):
    """TransformMetrics: Telegraf metrics (name, tags, fields, ns) -> WriteRecords inputs."""
    requests: dict = {}
    for name, tags, fields, ns in metrics:
        if multi:
            values = [dict(zip(("Value", "Type"), _type_and_text(v)), Name=k) for k, v in fields.items()]
            records = [{"MeasureName": multi_name or name, "MeasureValueType": "MULTI", "MeasureValues": values}]
        else:
            records = []
            for k, v in fields.items():
                text, vtype = _type_and_text(v)
                records.append({"MeasureName": k, "MeasureValueType": vtype, "MeasureValue": text})
        key = (name, tuple(sorted(tags.items())), ns)
        if key in requests:
            requests[key]["Records"].extend(records)
            continue
        dims = [{"Name": k, "Value": v} for k, v in tags.items()]
        if mode == "single-table":
            dims.append({"Name": name_dim, "Value": name})
        unit, value = _time(ns)
        requests[key] = {
            "DatabaseName": db,
            "TableName": single_table if mode == "single-table" else name,
            "Records": records,
            "CommonAttributes": {"Dimensions": dims, "Time": value, "TimeUnit": unit},
        }
    out = []
    for req in requests.values():
        recs = req["Records"]
        for i in range(0, len(recs), MAX_RECORDS_PER_CALL):
            out.append({**req, "Records": recs[i:i + MAX_RECORDS_PER_CALL]})
    return out


def telegraf_write(tsw, inputs, *, create_tables=True):
    """writeToTimestream with CreateTableIfNotExists: on ResourceNotFound create and retry once."""
    created = []
    for wr in inputs:
        try:
            tsw.write_records(**wr)
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException" or not create_tables:
                raise
            try:
                tsw.create_table(
                    DatabaseName=wr["DatabaseName"], TableName=wr["TableName"],
                    RetentionProperties={"MagneticStoreRetentionPeriodInDays": 365,
                                         "MemoryStoreRetentionPeriodInHours": 12},
                    Tags=[{"Key": "source", "Value": "telegraf"}],
                )
                created.append(wr["TableName"])
            except botocore.exceptions.ClientError as ce:
                if ce.response["Error"]["Code"] != "ConflictException":
                    raise
            tsw.write_records(**wr)
    return created


def _metrics(now_ns: int):
    t_s = now_ns // 10**9 * 10**9  # whole seconds -> SECONDS
    t_ms = t_s - 1_500_000_000 + 123_000_000  # milliseconds
    t_ns = t_s - 3_000_000_000 + 123_456_789  # nanoseconds
    return [
        ("cpu", {"host": "a", "cpu": "cpu0"}, {"usage_user": 12.5, "usage_idle": 80.25, "cores": 8}, t_s),
        ("cpu", {"host": "b", "cpu": "cpu0"}, {"usage_user": 1.0, "usage_idle": 99.0, "cores": 4}, t_ms),
        ("mem", {"host": "a"}, {"used": 1024, "ok": True, "state": "normal"}, t_ns),
        ("mem", {"host": "b"}, {"used": 2048, "ok": False, "state": "swap storm"}, t_s),
    ]


def test_describe_database_on_start_and_a_missing_database(tsw, tsdb):
    assert tsw.describe_database(DatabaseName=tsdb)["Database"]["DatabaseName"] == tsdb
    with pytest.raises(botocore.exceptions.ClientError) as e:
        tsw.describe_database(DatabaseName=tsdb + "_missing")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_multi_table_single_measure_records(tsw, tsq, tsdb):
    metrics = _metrics(time.time_ns())
    inputs = transform(metrics, mode="multi-table", db=tsdb)
    assert {i["CommonAttributes"]["TimeUnit"] for i in inputs} == {"SECONDS", "MILLISECONDS", "NANOSECONDS"}
    created = telegraf_write(tsw, inputs)
    assert sorted(set(created)) == ["cpu", "mem"], "the first write of each table hit ResourceNotFound"
    table = tsw.describe_table(DatabaseName=tsdb, TableName="cpu")["Table"]
    assert table["RetentionProperties"] == {"MemoryStoreRetentionPeriodInHours": 12,
                                            "MagneticStoreRetentionPeriodInDays": 365}
    _, rows, _ = query_all(tsq, f'SELECT host, cpu, measure_name, measure_value::double, measure_value::bigint, '
                                f'to_nanoseconds(time) FROM "{tsdb}"."cpu" ORDER BY host, measure_name')
    by = {(r[0], r[2]): r for r in scalars(rows)}
    assert len(by) == 6
    assert by[("a", "usage_user")][3] == "12.5" and by[("a", "usage_idle")][3] == "80.25"
    assert by[("a", "cores")][4] == "8" and by[("b", "cores")][4] == "4"
    assert int(by[("a", "cores")][5]) == metrics[0][3] and int(by[("b", "usage_user")][5]) == metrics[1][3]
    _, rows, _ = query_all(tsq, f'SELECT host, measure_name, measure_value::bigint, measure_value::boolean, '
                                f'measure_value::varchar, to_nanoseconds(time) FROM "{tsdb}"."mem" ORDER BY host, measure_name')
    got = scalars(rows)
    assert [r[:5] for r in got] == [
        ["a", "ok", None, "true", None], ["a", "state", None, None, "normal"], ["a", "used", "1024", None, None],
        ["b", "ok", None, "false", None], ["b", "state", None, None, "swap storm"], ["b", "used", "2048", None, None],
    ]
    assert int(got[0][5]) == metrics[2][3], "nanosecond time kept"


def test_single_table_with_the_measurement_as_a_dimension(tsw, tsq, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="telegraf")
    metrics = _metrics(time.time_ns())
    inputs = transform(metrics, mode="single-table", db=tsdb, single_table="telegraf", name_dim="namespace")
    assert telegraf_write(tsw, inputs) == []
    _, rows, _ = query_all(tsq, f'SELECT namespace, host, count(*) FROM "{tsdb}"."telegraf" '
                                f'GROUP BY namespace, host ORDER BY namespace, host')
    assert scalars(rows) == [["cpu", "a", "3"], ["cpu", "b", "3"], ["mem", "a", "3"], ["mem", "b", "3"]]


def test_multi_measure_records(tsw, tsq, tsdb):
    metrics = _metrics(time.time_ns())
    inputs = transform(metrics, mode="multi-table", db=tsdb, multi=True, multi_name="fields")
    assert all(r["MeasureValueType"] == "MULTI" for i in inputs for r in i["Records"])
    telegraf_write(tsw, inputs)
    _, rows, _ = query_all(tsq, f'SELECT host, measure_name, usage_user, usage_idle, cores FROM "{tsdb}"."cpu" ORDER BY host')
    assert scalars(rows) == [["a", "fields", "12.5", "80.25", "8"], ["b", "fields", "1.0", "99.0", "4"]]
    _, rows, _ = query_all(tsq, f'SELECT host, used, ok, state FROM "{tsdb}"."mem" ORDER BY host')
    assert scalars(rows) == [["a", "1024", "true", "normal"], ["b", "2048", "false", "swap storm"]]


def test_more_than_100_fields_are_split_into_calls_of_100(tsw, tsq, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="wide")
    ns = time.time_ns() // 10**9 * 10**9
    fields = {f"f{i:03d}": float(i) for i in range(250)}
    inputs = transform([("wide", {"host": "a"}, fields, ns)], mode="multi-table", db=tsdb)
    assert [len(i["Records"]) for i in inputs] == [100, 100, 50]
    telegraf_write(tsw, inputs)
    _, rows, _ = query_all(tsq, f'SELECT count(*), sum(measure_value::double) FROM "{tsdb}"."wide"')
    assert scalars(rows) == [["250", str(float(sum(range(250))))]]
