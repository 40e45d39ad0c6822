#!/usr/bin/env python3
"""Scheduled-query rollup benchmark: one day of TSBS cpu-only rolled up to 1-minute averages by
one run, and the cost of a late-data rerun of one window against a full rerun.

    python3 scripts/bench/scheduled_rollup.py [--bin target/release/hourglass] [--hosts 1000]
        [--hours 24] [--data-dir DIR (reuse a loaded directory)] [--no-full-rerun]

1. Loads TSBS cpu-only (`hourglass bench ingest`: --hosts hosts x 10-s rows over --hours, 10
   measures, from 2016-01-01T00:00Z) into a data directory (skipped when --data-dir already
   holds it), then starts `hourglass serve` on it.
2. Creates two scheduled queries writing 1-minute averages of the 10 measures per host into
   `benchmark.rollup_day` / `benchmark.rollup_hour`: DAY reads the whole day before
   @scheduled_runtime, HOUR the hour before it.
3. Runs DAY once (ExecuteScheduledQuery at the end of the data): the one-run rollup, timed.
   Runs the same query without writing (`SELECT count(*) FROM (<query>)` through the Query API)
   to split the run into query and target writes.
4. Runs HOUR for one window (the hour from --hours/2, hour 12 of 24), then disables DAY and writes one late row into hour 12:
   HOUR is rerun (trigger LATE_DATA) by the scheduler; the rerun's duration and the delay from
   the late write to the rerun's end are printed.
5. Unless --no-full-rerun: enables DAY again; its stale run (the same late row) is rerun in
   full: the full rerun's duration.

Durations are the runs' own (`system.scheduled_query_runs.execution_time_ms`). Measure a
release build (`cargo build --release -p hourglass`); a debug build is many times slower.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

from hg_server import start_server, stop_server

TARGET_QUERY = "Timestream_20181101."
HEADERS = {"Content-Type": "application/x-amz-json-1.0"}
START_NS = 1_451_606_400_000_000_000  # 2016-01-01T00:00:00Z, as TSBS
HOUR_NS = 3_600_000_000_000
MEASURES = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
            "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"]


def call(url: str, op: str, body: dict) -> dict:
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    conn.request("POST", "/", body=json.dumps(body).encode(),
                 headers={**HEADERS, "X-Amz-Target": TARGET_QUERY + op})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"{op}: HTTP {r.status}: {data[:500]!r}")
    return json.loads(data) if data else {}


def query(url: str, sql: str) -> list[list[str]]:
    rows, token = [], None
    while True:
        body = {"QueryString": sql}
        if token:
            body["NextToken"] = token
        out = call(url, "Query", body)
        rows += [[d.get("ScalarValue") for d in r["Data"]] for r in out.get("Rows", [])]
        token = out.get("NextToken")
        if not token:
            return rows


def line_write(url: str, body: str) -> None:
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("POST", "/api/v2/write?org=bench&bucket=benchmark&precision=ns", body=body.encode())
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError(f"line protocol write: HTTP {r.status}: {data!r}")


def rollup_sql(window: str) -> str:
    avgs = ", ".join(f"avg({m}) AS {m}" for m in MEASURES)
    return (f'SELECT hostname, bin(time, 1m) AS minute, {avgs} FROM "benchmark"."cpu" '
            f"WHERE time >= @scheduled_runtime - {window} AND time < @scheduled_runtime "
            f"GROUP BY hostname, bin(time, 1m)")


def create(url: str, name: str, table: str, sql: str) -> str:
    call(url, "CreateTable", {
        "DatabaseName": "benchmark", "TableName": table,
        "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 6,
                                "MagneticStoreRetentionPeriodInDays": 73000},
        "MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": True},
    })
    out = call(url, "CreateScheduledQuery", {
        "Name": name,
        "QueryString": sql,
        "ScheduleConfiguration": {"ScheduleExpression": "rate(1 day)"},
        "NotificationConfiguration": {"SnsConfiguration": {"TopicArn": "arn:aws:sns:us-east-1:000000000000:bench"}},
        "ScheduledQueryExecutionRoleArn": "arn:aws:iam::000000000000:role/bench",
        "ErrorReportConfiguration": {"S3Configuration": {"BucketName": "bench-reports"}},
        "TargetConfiguration": {"TimestreamConfiguration": {
            "DatabaseName": "benchmark", "TableName": table, "TimeColumn": "minute",
            "DimensionMappings": [{"Name": "hostname", "DimensionValueType": "VARCHAR"}],
            "MultiMeasureMappings": {
                "TargetMultiMeasureName": "rollup",
                "MultiMeasureAttributeMappings": [
                    {"SourceColumn": m, "MeasureValueType": "DOUBLE"} for m in MEASURES]},
        }},
    })
    return out["Arn"]


def runs(url: str, arn: str) -> list[dict]:
    rows = query(url, "SELECT invocation_time, trigger, status, execution_time_ms, "
                      "records_ingested, query_result_rows, error, to_milliseconds(trigger_time) "
                      f"FROM system.scheduled_query_runs WHERE arn = '{arn}' ORDER BY trigger_time")
    keys = ["invocation", "trigger", "status", "ms", "records", "rows", "error", "trigger_ms"]
    return [dict(zip(keys, r)) for r in rows]


def wait_for_run(url: str, arn: str, count: int, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = runs(url, arn)
        if len(r) >= count:
            run = r[count - 1]
            if not run["status"].endswith("SUCCESS"):
                raise RuntimeError(f"run failed: {run}")
            return run
        time.sleep(0.5)
    raise RuntimeError(f"no run #{count} of {arn} within {timeout} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=None)
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-full-rerun", action="store_true")
    args = p.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    binary = args.bin
    if binary is None:
        release = os.path.join(root, "target", "release", "hourglass")
        binary = release if os.path.exists(release) else os.path.join(root, "target", "debug", "hourglass")
    print(f"binary: {binary}")

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="hourglass-sq-bench-")
    marker = os.path.join(data_dir, ".scheduled_rollup_loaded")
    if not os.path.exists(marker):
        t = time.time()
        subprocess.run([binary, "bench", "ingest", "--hosts", str(args.hosts), "--hours", str(args.hours),
                        "--data-dir", data_dir], check=True, stdout=subprocess.DEVNULL)
        open(marker, "w").close()
        print(f"loaded {args.hosts} hosts x {args.hours * 360} rows in {time.time() - t:.0f} s")
    proc, url, _ = start_server(binary, data_dir)
    try:
        end = START_NS + args.hours * HOUR_NS
        total = query(url, f'SELECT count(*) FROM "benchmark"."cpu" WHERE time < from_nanoseconds({end})')
        print(f"source rows: {total[0][0]}")
        day = create(url, "rollup-day", "rollup_day", rollup_sql(f"{args.hours}h"))
        hour = create(url, "rollup-hour", "rollup_hour", rollup_sql("1h"))

        # Query alone (no target writes), for the split.
        t = time.time()
        bound = rollup_sql(f"{args.hours}h").replace("@scheduled_runtime", f"from_nanoseconds({end})")
        n = query(url, f"SELECT count(*) FROM ({bound})")[0][0]
        query_s = time.time() - t
        print(f"query alone: {n} rollup rows in {query_s:.1f} s")

        call(url, "ExecuteScheduledQuery", {"ScheduledQueryArn": day, "InvocationTime": end / 1e9})
        run = wait_for_run(url, day, 1, 7200)
        day_s = int(run["ms"]) / 1000
        print(f"one run, {args.hours} h -> 1 min: {run['rows']} rows, {run['records']} records "
              f"in {day_s:.1f} s ({int(run['records']) / day_s:,.0f} records/s); "
              f"query {query_s:.1f} s, target writes ~{day_s - query_s:.1f} s")

        window_end = START_NS + (args.hours // 2 + 1) * HOUR_NS
        call(url, "ExecuteScheduledQuery", {"ScheduledQueryArn": hour, "InvocationTime": window_end / 1e9})
        run = wait_for_run(url, hour, 1, 3600)
        print(f"one window (1 h): {run['rows']} rows in {int(run['ms']) / 1000:.2f} s")

        call(url, "UpdateScheduledQuery", {"ScheduledQueryArn": day, "State": "DISABLED"})
        late_ns = window_end - 30 * 60 * 1_000_000_000 + 1
        fields = ",".join(f"{m}=1i" for m in MEASURES)
        written = time.time()
        line_write(url, f"cpu,hostname=host_0 {fields} {late_ns}\n")
        run = wait_for_run(url, hour, 2, 3600)
        assert run["trigger"] == "LATE_DATA", run
        rerun_s = int(run["ms"]) / 1000
        print(f"late-data rerun of one window: {rerun_s:.2f} s "
              f"(write to rerun end: {time.time() - written:.1f} s)")

        if not args.no_full_rerun:
            call(url, "UpdateScheduledQuery", {"ScheduledQueryArn": day, "State": "ENABLED"})
            run = wait_for_run(url, day, 2, 7200)
            assert run["trigger"] == "LATE_DATA", run
            full_s = int(run["ms"]) / 1000
            print(f"late-data rerun of the whole day (full rerun): {full_s:.1f} s "
                  f"= {full_s / rerun_s:.0f}x the one-window rerun")
    finally:
        stop_server(proc)
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
