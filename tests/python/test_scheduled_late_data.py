"""Scheduled queries exact under late data, against a real server (issue 18, item 5): a write
into a window a finished run read makes the scheduler rerun that window (trigger `LATE_DATA`)
and the target equals a recompute over the source; a write outside every window read reruns
nothing. And the server's late-data settings: `--late-data-delay-ms` (the rerun waits for it),
`--late-data-runs 0` (late data reruns nothing). The same semantics with a manual clock are in
`crates/hourglass-scheduler/tests/runs.rs`; this is the wiring through the binary, its flags,
WriteRecords and the Query API."""

from __future__ import annotations

import time

import pytest

from test_scheduled_queries import at, definition, query_rows, runs_table, timestream, wait_run

DB = "late"
HOSTS = ("h0", "h1", "h2")
# Ten minutes of 10-second data ending at RUNTIME_S (a minute, 10 minutes ago).
RUNTIME_S = (int(time.time()) // 60) * 60 - 600
START_S = RUNTIME_S - 600
ROLLUP_SQL = (f'SELECT host, bin(time, 1m) AS minute, avg(measure_value::double) AS avg_cpu, '
              f'count(*) AS n FROM "{DB}"."src" WHERE measure_name = \'cpu\' '
              f'AND time >= @scheduled_runtime - 10m AND time < @scheduled_runtime '
              f'GROUP BY host, bin(time, 1m)')
TARGET = {"DatabaseName": DB, "TableName": "dst", "TimeColumn": "minute",
          "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}],
          "MultiMeasureMappings": {"TargetMultiMeasureName": "rollup",
                                   "MultiMeasureAttributeMappings": [
                                       {"SourceColumn": "avg_cpu", "MeasureValueType": "DOUBLE"},
                                       {"SourceColumn": "n", "MeasureValueType": "BIGINT"}]}}


def record(host: str, seconds: float, value: float) -> dict:
    return {"Dimensions": [{"Name": "host", "Value": host}], "MeasureName": "cpu",
            "MeasureValue": repr(value), "MeasureValueType": "DOUBLE",
            "Time": str(int(seconds * 1000))}


def rollup_state(tsq) -> tuple[dict, dict]:
    """(target, recompute over the source): {(host, minute): (avg rounded, n)}."""
    target = {(r["host"], r["time"]): (round(float(r["avg_cpu"]), 9), int(r["n"]))
              for r in query_rows(tsq, f'SELECT host, time, avg_cpu, n FROM "{DB}"."dst"')}
    sql = ROLLUP_SQL.replace("@scheduled_runtime", f"from_milliseconds({RUNTIME_S * 1000})")
    recompute = {(r["host"], r["minute"]): (round(float(r["avg_cpu"]), 9), int(r["n"]))
                 for r in query_rows(tsq, sql)}
    return target, recompute


def late_data_runs(srv) -> list[dict]:
    return [r for r in runs_table(srv, "rollup") if r["trigger"] == "LATE_DATA"]


@pytest.mark.parametrize("case", ["default", "delay", "off"])
def test_a_late_write_reruns_the_window_it_lands_in_as_the_flags_say(server, case):
    interval_s = 1.0 if case == "default" else 0.5
    args = ["--maintenance-interval-ms", str(int(interval_s * 1000))]
    if case == "delay":
        args += ["--late-data-delay-ms", "4000"]
    if case == "off":
        args += ["--late-data-runs", "0"]
    srv = server(args=args)
    tsw, tsq = timestream(srv.url)
    tsw.create_database(DatabaseName=DB)
    retention = {"MemoryStoreRetentionPeriodInHours": 24, "MagneticStoreRetentionPeriodInDays": 7}
    for t in ("src", "dst"):
        tsw.create_table(DatabaseName=DB, TableName=t, RetentionProperties=retention)
    records = [record(h, START_S + s, float((s // 10 * 7 + i * 13) % 50))
               for i, h in enumerate(HOSTS) for s in range(0, 600, 10)]
    for k in range(0, len(records), 100):
        tsw.write_records(DatabaseName=DB, TableName="src", Records=records[k:k + 100])

    arn = tsq.create_scheduled_query(**definition("rollup", ROLLUP_SQL, target=TARGET,
                                                  ErrorReportConfiguration={"S3Configuration": {
                                                      "BucketName": "none"}}))["Arn"]
    tsq.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(RUNTIME_S))
    first = wait_run(tsq, arn, "MANUAL_TRIGGER_SUCCESS")
    assert first["ExecutionStats"]["RecordsIngested"] == 30
    target, recompute = rollup_state(tsq)
    assert len(target) == 30 and target == recompute

    # Outside every window read (an hour before it): nothing is rerun.
    tsw.write_records(DatabaseName=DB, TableName="src",
                      Records=[record("h1", START_S - 3600, 500.0)])
    time.sleep(4 * interval_s + 1)
    assert late_data_runs(srv) == []

    # Into minute 5 of the window, from a host the window has and from a new one.
    late_at = time.time()
    tsw.write_records(DatabaseName=DB, TableName="src",
                      Records=[record("h1", START_S + 303, 1000.0),
                               record("h9", START_S + 305, 2.0)])
    if case == "off":
        time.sleep(6 * interval_s + 2)
        assert late_data_runs(srv) == []
        target, recompute = rollup_state(tsq)
        assert target != recompute and len(target) == 30
        return

    rerun = wait_run(tsq, arn, "AUTO_TRIGGER_SUCCESS", timeout=60, after=late_at)
    waited = rerun["TriggerTime"].timestamp() - late_at
    delay = 4.0 if case == "delay" else interval_s
    # The rerun waits for the delay, then the scheduler (which checks at least every second,
    # and on each new mark) starts it; 3 s of slack for a loaded machine.
    assert delay - 0.1 <= waited <= delay + 1 + 3, (case, waited)
    assert rerun["InvocationTime"].timestamp() == RUNTIME_S
    assert rerun["ExecutionStats"]["RecordsIngested"] == 31
    runs = late_data_runs(srv)
    assert len(runs) == 1 and runs[0]["status"] == "AUTO_TRIGGER_SUCCESS", runs
    target, recompute = rollup_state(tsq)
    assert len(target) == 31 and target == recompute
    minute = at(START_S + 300).strftime("%Y-%m-%d %H:%M:%S")
    assert any(k[0] == "h9" for k in target) and target[("h1", minute + ".000000000")][1] == 7, \
        sorted(target)
    print(f"\n{case}: late write to rerun start {waited:.2f} s, rerun "
          f"{rerun['ExecutionStats']['ExecutionTimeInMillis']} ms")
