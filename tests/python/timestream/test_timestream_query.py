"""The Query API through boto3's timestream-query client.

Covers: pagination over 10,000+ rows with MaxRows (manual NextToken loop and botocore's
paginator), the same token answering the same page, tokens bound to their query string, empty
results; ColumnInfo types and value encodings checked exactly (VARCHAR, BIGINT, INTEGER, DOUBLE,
BOOLEAN, TIMESTAMP with 9 fractional digits, DATE, TIME, INTERVAL_DAY_TO_SECOND, NullValue,
arrays and rows); QueryId and QueryStatus; query errors as ValidationException; CancelQuery and
polling a cancelled query (ConflictException); PrepareQuery with ValidateOnly; Timestream-only
syntax (`ago`, `bin`, `1h` literals, `measure_value::double` unquoted, `create_time_series`,
SHOW/DESCRIBE), and Hourglass's ASOF JOIN over records written with boto3. Integer literals are
INTEGER, as Timestream types them.
"""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from tshelpers import error_of, now_ms, query_all, rec, scalars



@pytest.fixture
def big_table(tsw, tsdb):
    """10,050 records: 201 requests of 50 hosts, one millisecond apart."""
    tsw.create_table(DatabaseName=tsdb, TableName="big")
    t0 = now_ms() - 3_600_000
    for i in range(201):
        tsw.write_records(DatabaseName=tsdb, TableName="big",
                          CommonAttributes={"MeasureName": "cpu", "Time": str(t0 + i)},
                          Records=[{"Dimensions": [{"Name": "host", "Value": f"h{h:03d}"}],
                                    "MeasureValue": str(i * 100 + h)} for h in range(50)])
    return tsdb, t0


def test_pagination_over_ten_thousand_rows(tsq, big_table):
    db, t0 = big_table
    sql = f'SELECT host, time, "measure_value::double" AS v FROM "{db}"."big" ORDER BY time, host'
    columns, rows, pages = query_all(tsq, sql, MaxRows=1000)
    assert len(rows) == 10_050
    assert pages >= 11
    values = [float(r[2]) for r in scalars(rows)]
    assert values == sorted(values) == [float(i * 100 + h) for i in range(201) for h in range(50)]
    assert [c["Name"] for c in columns] == ["host", "time", "v"]

    # Pages never exceed MaxRows; botocore's paginator follows NextToken the same way.
    paginator = tsq.get_paginator("query")
    seen = 0
    for page in paginator.paginate(QueryString=sql, PaginationConfig={"PageSize": 777}):
        assert len(page["Rows"]) <= 777
        assert page["ColumnInfo"] == columns
        seen += len(page["Rows"])
    assert seen == 10_050


def test_next_token_rules(tsq, big_table):
    db, _ = big_table
    sql = f'SELECT host, "measure_value::double" FROM "{db}"."big" ORDER BY time, host'
    first = tsq.query(QueryString=sql, MaxRows=100)
    assert len(first["Rows"]) == 100
    assert re.fullmatch(r"[a-zA-Z0-9]{1,64}", first["QueryId"])
    token = first["NextToken"]
    second = tsq.query(QueryString=sql, MaxRows=100, NextToken=token)
    again = tsq.query(QueryString=sql, MaxRows=100, NextToken=token)
    assert second["Rows"] == again["Rows"] and second["NextToken"] == again["NextToken"]
    assert second["QueryId"] == first["QueryId"]
    assert second["Rows"] != first["Rows"]
    with pytest.raises(ClientError) as e:
        tsq.query(QueryString="SELECT 1", NextToken=token)
    assert error_of(e)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        tsq.query(QueryString=sql, NextToken="garbage")
    assert error_of(e)[0] == "ValidationException"
    # Moving on invalidates the older token.
    tsq.query(QueryString=sql, MaxRows=100, NextToken=second["NextToken"])
    with pytest.raises(ClientError) as e:
        tsq.query(QueryString=sql, MaxRows=100, NextToken=token)
    assert error_of(e)[0] == "ValidationException"


def test_query_status_and_empty_results(tsq, tsw, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="empty")
    out = tsq.query(QueryString=f'SELECT * FROM "{tsdb}"."empty"')
    assert out["Rows"] == []
    assert "NextToken" not in out
    assert [c["Name"] for c in out["ColumnInfo"]] == ["measure_name", "time"]
    status = out["QueryStatus"]
    assert status["ProgressPercentage"] == 100.0
    assert status["CumulativeBytesMetered"] >= 10_000_000
    assert status["CumulativeBytesScanned"] >= 0
    insights = tsq.query(QueryString=f'SELECT * FROM "{tsdb}"."empty"',
                         QueryInsights={"Mode": "ENABLED_WITH_RATE_CONTROL"})
    assert insights["QueryInsightsResponse"]["OutputRows"] == 0


def test_column_info_and_values_of_a_table(tsq, tsw, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="enc")
    t = 1_700_000_000_123  # 2023-11-14 22:13:20.123
    tsw.write_records(DatabaseName=tsdb, TableName="enc", Records=[
        rec("a", "12.5", now_ms(), "d") | {"Time": str(now_ms())},
    ])
    tsw.create_table(DatabaseName=tsdb, TableName="multi",
                     MagneticStoreWriteProperties={"EnableMagneticStoreWrites": True})
    tsw.write_records(DatabaseName=tsdb, TableName="multi", Records=[
        {"Dimensions": [{"Name": "host", "Value": "a"}, {"Name": "az", "Value": "1a"}], "MeasureName": "m",
         "MeasureValueType": "MULTI", "Time": str(t),
         "MeasureValues": [{"Name": "d", "Value": "1e7", "Type": "DOUBLE"},
                           {"Name": "b", "Value": "9007199254740993", "Type": "BIGINT"},
                           {"Name": "v", "Value": "x\ny", "Type": "VARCHAR"},
                           {"Name": "o", "Value": "TRUE", "Type": "BOOLEAN"},
                           {"Name": "ts", "Value": "0", "Type": "TIMESTAMP"}]},
        {"Dimensions": [{"Name": "host", "Value": "b"}], "MeasureName": "m", "MeasureValueType": "MULTI",
         "Time": str(t + 1), "MeasureValues": [{"Name": "d", "Value": "0.1", "Type": "DOUBLE"}]},
    ])
    out = tsq.query(QueryString=f'SELECT * FROM "{tsdb}"."multi" ORDER BY time')
    assert out["ColumnInfo"] == [
        {"Name": "host", "Type": {"ScalarType": "VARCHAR"}},
        {"Name": "az", "Type": {"ScalarType": "VARCHAR"}},
        {"Name": "measure_name", "Type": {"ScalarType": "VARCHAR"}},
        {"Name": "time", "Type": {"ScalarType": "TIMESTAMP"}},
        {"Name": "d", "Type": {"ScalarType": "DOUBLE"}},
        {"Name": "b", "Type": {"ScalarType": "BIGINT"}},
        {"Name": "v", "Type": {"ScalarType": "VARCHAR"}},
        {"Name": "o", "Type": {"ScalarType": "BOOLEAN"}},
        {"Name": "ts", "Type": {"ScalarType": "TIMESTAMP"}},
    ]
    assert out["Rows"] == [
        {"Data": [{"ScalarValue": "a"}, {"ScalarValue": "1a"}, {"ScalarValue": "m"},
                  {"ScalarValue": "2023-11-14 22:13:20.123000000"}, {"ScalarValue": "1.0E7"},
                  {"ScalarValue": "9007199254740993"}, {"ScalarValue": "x\ny"}, {"ScalarValue": "true"},
                  {"ScalarValue": "1970-01-01 00:00:00.000000000"}]},
        {"Data": [{"ScalarValue": "b"}, {"NullValue": True}, {"ScalarValue": "m"},
                  {"ScalarValue": "2023-11-14 22:13:20.124000000"}, {"ScalarValue": "0.1"},
                  {"NullValue": True}, {"NullValue": True}, {"NullValue": True}, {"NullValue": True}]},
    ]


def test_scalar_types_of_expressions(tsq):
    out = tsq.query(QueryString=(
        "SELECT CAST(1 AS INTEGER) AS i, CAST(2 AS BIGINT) AS b, CAST(1.5 AS DOUBLE) AS d, "
        "CAST('x' AS VARCHAR) AS v, true AS t, NULL AS n, "
        "CAST('2020-08-08 01:00:00' AS TIMESTAMP) AS ts, CAST('2020-08-08' AS DATE) AS dt, "
        "CAST('01:00:00' AS TIME) AS tm"))
    assert [(c["Name"], c["Type"]) for c in out["ColumnInfo"]] == [
        ("i", {"ScalarType": "INTEGER"}), ("b", {"ScalarType": "BIGINT"}), ("d", {"ScalarType": "DOUBLE"}),
        ("v", {"ScalarType": "VARCHAR"}), ("t", {"ScalarType": "BOOLEAN"}),
        ("n", {"ScalarType": "UNKNOWN"}), ("ts", {"ScalarType": "TIMESTAMP"}), ("dt", {"ScalarType": "DATE"}),
        ("tm", {"ScalarType": "TIME"})]
    assert out["Rows"][0]["Data"] == [
        {"ScalarValue": "1"}, {"ScalarValue": "2"}, {"ScalarValue": "1.5"}, {"ScalarValue": "x"},
        {"ScalarValue": "true"}, {"NullValue": True}, {"ScalarValue": "2020-08-08 01:00:00.000000000"},
        {"ScalarValue": "2020-08-08"}, {"ScalarValue": "01:00:00.000000000"}]


def test_interval_day_to_second(tsq):
    out = tsq.query(QueryString=(
        "SELECT CAST('2020-08-09 22:00:00' AS TIMESTAMP) - CAST('2020-08-08 01:00:00' AS TIMESTAMP) AS i"))
    assert out["ColumnInfo"] == [{"Name": "i", "Type": {"ScalarType": "INTERVAL_DAY_TO_SECOND"}}]
    assert out["Rows"][0]["Data"] == [{"ScalarValue": "1 21:00:00.000000000"}]


def test_array_and_row_values(tsq):
    out = tsq.query(QueryString="SELECT ARRAY[1, 2, NULL] AS a, ROW(1, 'x') AS r")
    assert out["ColumnInfo"][0] == {"Name": "a", "Type": {"ArrayColumnInfo": {"Type": {"ScalarType": "INTEGER"}}}}
    assert out["Rows"][0]["Data"][0] == {"ArrayValue": [{"ScalarValue": "1"}, {"ScalarValue": "2"}, {"NullValue": True}]}
    assert out["Rows"][0]["Data"][1] == {"RowValue": {"Data": [{"ScalarValue": "1"}, {"ScalarValue": "x"}]}}
    assert "RowColumnInfo" in out["ColumnInfo"][1]["Type"]


def test_query_errors_are_validation_exceptions(tsq, tsdb):
    for sql in ("SELEC 1", f'SELECT * FROM "{tsdb}"."no_such_table"', "SELECT no_such_column"):
        with pytest.raises(ClientError) as e:
            tsq.query(QueryString=sql)
        code, status, message = error_of(e)
        assert (code, status) == ("ValidationException", 400), message
        assert message


def test_cancel_query(tsq, big_table):
    db, _ = big_table
    sql = f'SELECT host FROM "{db}"."big" ORDER BY time, host'
    first = tsq.query(QueryString=sql, MaxRows=10)
    out = tsq.cancel_query(QueryId=first["QueryId"])
    assert out["CancellationMessage"]
    assert tsq.cancel_query(QueryId=first["QueryId"])["CancellationMessage"]  # idempotent
    with pytest.raises(ClientError) as e:
        tsq.query(QueryString=sql, NextToken=first["NextToken"])
    assert error_of(e)[:2] == ("ConflictException", 409)
    with pytest.raises(ClientError) as e:
        tsq.cancel_query(QueryId="not-valid!")
    assert error_of(e)[0] == "ValidationException"


def test_prepare_query(tsq, tsw, tsdb):
    tsw.create_table(DatabaseName=tsdb, TableName="prep")
    tsw.write_records(DatabaseName=tsdb, TableName="prep", Records=[rec("a", 1, now_ms())])
    out = tsq.prepare_query(
        QueryString=f'SELECT host AS h, time, "measure_value::double" FROM "{tsdb}"."prep" WHERE time > @scheduled_runtime',
        ValidateOnly=True)
    cols = {c["Name"]: c for c in out["Columns"]}
    assert cols["h"]["Type"] == {"ScalarType": "VARCHAR"} and cols["h"]["Aliased"] is True
    assert cols["time"]["Type"] == {"ScalarType": "TIMESTAMP"} and cols["time"]["Aliased"] is False
    assert cols["time"]["TableName"] == "prep" and cols["time"]["DatabaseName"] == tsdb
    assert out["Parameters"] == [{"Name": "@scheduled_runtime", "Type": {"ScalarType": "TIMESTAMP"}}]
    with pytest.raises(ClientError) as e:
        tsq.prepare_query(QueryString="SELEC", ValidateOnly=True)
    assert error_of(e)[0] == "ValidationException"


def test_timestream_functions_and_literals(tsq, big_table):
    db, _ = big_table
    out = tsq.query(QueryString=(
        f"SELECT bin(time, 1m) AS b, count(*) AS n FROM \"{db}\".\"big\" "
        f"WHERE time > ago(2h) AND measure_name = 'cpu' AND measure_value::double >= 0 GROUP BY 1"))
    assert sum(int(r["Data"][1]["ScalarValue"]) for r in out["Rows"]) == 10_050
    assert out["ColumnInfo"][0]["Type"] == {"ScalarType": "TIMESTAMP"}


def test_timeseries_values(tsq, big_table):
    db, _ = big_table
    out = tsq.query(QueryString=(
        f"SELECT host, CREATE_TIME_SERIES(time, measure_value::double) AS series FROM \"{db}\".\"big\" "
        f"WHERE host = 'h000' GROUP BY host"))
    assert out["ColumnInfo"][1]["Type"] == {
        "TimeSeriesMeasureValueColumnInfo": {"Type": {"ScalarType": "DOUBLE"}}}
    points = out["Rows"][0]["Data"][1]["TimeSeriesValue"]
    assert len(points) == 201
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}", points[0]["Time"])
    assert points[0]["Value"] == {"ScalarValue": "0.0"}


def test_show_and_describe(tsq, big_table):
    db, _ = big_table
    tables = tsq.query(QueryString=f'SHOW TABLES FROM "{db}"')
    assert scalars(tables["Rows"]) == [["big"]]
    desc = tsq.query(QueryString=f'DESCRIBE "{db}"."big"')
    assert ["host", "varchar", "dimension"] in [[v.lower() for v in r] for r in scalars(desc["Rows"])]


def test_asof_join_through_the_query_api(tsq, tsw, tsdb):
    """Hourglass's ASOF JOIN in the Timestream dialect, written and read with boto3: each trade
    with the quote prevailing at its time, NULL before a symbol's first quote."""
    t0 = now_ms() - 600_000

    def records(table, measure, rows):
        tsw.create_table(DatabaseName=tsdb, TableName=table)
        tsw.write_records(DatabaseName=tsdb, TableName=table, Records=[
            {"Dimensions": [{"Name": "symbol", "Value": sym}], "MeasureName": measure,
             "MeasureValue": str(v), "MeasureValueType": "DOUBLE", "Time": str(t0 + ms)}
            for sym, ms, v in rows])

    records("quotes", "bid", [("A", 1000, 10.0), ("A", 3000, 11.0), ("B", 2000, 20.0)])
    records("trades", "price", [("A", 500, 9.9), ("A", 3000, 11.1), ("A", 4000, 11.2),
                                ("B", 2500, 20.1), ("C", 2500, 30.0)])
    sql = (f'SELECT t.symbol, t.price, q.bid FROM '
           f'(SELECT symbol, time, measure_value::double AS price FROM "{tsdb}"."trades") t '
           f'ASOF JOIN (SELECT symbol, time, measure_value::double AS bid FROM "{tsdb}"."quotes") q '
           f'MATCH_CONDITION (t.time >= q.time) ON t.symbol = q.symbol '
           f'ORDER BY t.symbol, t.time')
    _, rows, _ = query_all(tsq, sql)
    assert scalars(rows) == [["A", "9.9", None], ["A", "11.1", "11.0"], ["A", "11.2", "11.0"],
                             ["B", "20.1", "20.0"], ["C", "30.0", None]]
    with pytest.raises(ClientError) as e:
        tsq.query(QueryString=sql.replace(">=", "="))
    code, status, message = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    assert "MATCH_CONDITION must compare" in message
