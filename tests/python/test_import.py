"""`hourglass import`: every source kind (UNLOAD exports in Parquet and CSV, from a directory and
from moto's S3; Parquet; CSV with flags and with a Timestream DataModel; line protocol, plain and
gzip) into a data directory and into a running server; the rejects file; `--resume` after a
killed import; the data directory lock; the round trip (a table with every measure type, NULLs
and nanosecond times UNLOADed from one server and imported into a fresh one, every row equal);
and the progress bar as a real terminal (tmux) shows it."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.config import Config

from conftest import MotoS3, moto_server

REGION = "us-east-1"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
SRC_DB = "src"
T = "readings"
BUCKET = "exports"
N = 120
NOW_NS = time.time_ns() - 3600 * 10**9
# Everything the round trip compares: every column, every row, in one order.
ORDER = "ORDER BY time, host, region"


def run_import(hourglass_bin, *args, cwd=None, env=None, timeout=300):
    """Runs `hourglass import ARGS`; returns the completed process."""
    full_env = dict(os.environ)
    full_env.pop("HOURGLASS_URL", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [str(hourglass_bin), "import", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def ok(p):
    assert p.returncode == 0, f"import failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def summary_rows(p) -> int:
    line = [l for l in p.stdout.splitlines() if l.startswith("imported ")][-1]
    return int(line.split()[1])


@pytest.fixture(scope="module")
def src(module_server, tmp_path_factory):
    """A server holding `src.readings`: dimensions host/region (region NULL on some rows), a
    measure of each type (DOUBLE, BIGINT, VARCHAR, BOOLEAN, TIMESTAMP) with NULLs, nanosecond
    times, measure name `m` (not the table's name). UNLOAD goes to a directory (bucket
    `exports`) or to moto's S3 (any other bucket)."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        s3 = MotoS3(endpoint, "s3exports")
        s3.client.create_bucket(Bucket=s3.bucket)
        local = tmp_path_factory.mktemp("bucket")
        srv = module_server(args=["--unload-buckets", f"{BUCKET}={local}"], env=dict(s3.env))
        kw = dict(endpoint_url=srv.url, region_name=REGION, aws_access_key_id="testing",
                  aws_secret_access_key="testing", config=NO_RETRY)
        tsw = boto3.client("timestream-write", **kw)
        tsw.create_database(DatabaseName=SRC_DB)
        tsw.create_table(DatabaseName=SRC_DB, TableName=T)
        records = []
        for i in range(N):
            measures = [
                {"Name": "temp", "Value": repr(i * 0.5 - 7.25), "Type": "DOUBLE"},
                {"Name": "count", "Value": str(i * 1_000_000_007), "Type": "BIGINT"},
                {"Name": "note", "Value": ["ok", 'a,b "q"', "é/x=1\\", "two\nlines"][i % 4], "Type": "VARCHAR"},
                {"Name": "flag", "Value": "true" if i % 2 else "false", "Type": "BOOLEAN"},
                {"Name": "seen", "Value": str(NOW_NS - i * 999_999_937), "Type": "TIMESTAMP"},
            ]
            # NULLs: drop some measures on some rows.
            measures = [m for k, m in enumerate(measures) if (i + k) % 5 != 0]
            dims = [{"Name": "host", "Value": f"h{i % 3}"}]
            if i % 6:
                dims.append({"Name": "region", "Value": ["eu/west", "us east", "ap=1"][i % 3]})
            records.append({
                "Dimensions": dims, "MeasureName": "m", "MeasureValueType": "MULTI",
                "MeasureValues": measures, "Time": str(NOW_NS + i * 1_000_000_007 + 1),
                "TimeUnit": "NANOSECONDS"})
        for k in range(0, N, 100):
            r = tsw.write_records(DatabaseName=SRC_DB, TableName=T, Records=records[k:k + 100])
            assert r["RecordsIngested"]["Total"] == len(records[k:k + 100])
        yield srv, Path(local), s3


def source_rows(srv):
    rows = srv.rows(f"SELECT * FROM {T} {ORDER}", db=SRC_DB)
    assert len(rows) == N
    return rows


def unload(srv, to: str, options: str) -> dict:
    r = srv.query(f"UNLOAD (SELECT * FROM {T}) TO '{to}' WITH ({options})", db=SRC_DB)
    assert r.status_code == 200, r.text
    [row] = r.json()
    assert row["rows"] == N
    return row


def imported_server(server, data_dir):
    return server(data_dir=data_dir)


# -- the round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, options, extra",
    [
        ("parquet", "format = 'PARQUET', partitioned_by = ARRAY['host']", []),
        ("csv", "format = 'CSV', compression = 'GZIP', partitioned_by = ARRAY['host']",
         ["--measures", "note"]),
        ("csvheader", "format = 'CSV', compression = 'NONE', include_header = 'true'",
         ["--measures", "note"]),
    ],
)
def test_round_trip_unload_then_import(src, server, hourglass_bin, tmp_path, name, options, extra):
    srv, local, _ = src
    unload(srv, f"s3://{BUCKET}/{name}/", options)
    data = tmp_path / "data"
    p = ok(run_import(hourglass_bin, local / name, "--db", "dst", "--table", T,
                      "--data-dir", data, *extra, cwd=tmp_path))
    assert summary_rows(p) == N
    assert not (tmp_path / "dst.rejects.csv").exists()
    fresh = imported_server(server, data)
    assert fresh.rows(f"SELECT * FROM {T} {ORDER}", db="dst") == source_rows(srv)
    # Same column types, dimensions and measures.
    describe = lambda s, db: sorted(tuple(r.values()) for r in s.rows(f"DESCRIBE {T}", db=db))
    assert describe(fresh, "dst") == describe(srv, SRC_DB)


def test_round_trip_from_s3_into_a_server(src, server, hourglass_bin, tmp_path):
    """An export in (moto's) S3, imported into a running server over HTTP: the values of a
    table line protocol can carry (no TIMESTAMP measure; the measure name is the table's)."""
    srv, _, s3 = src
    cols = "host, region, time, temp, count, note, flag"
    r = srv.query(f"UNLOAD (SELECT {cols} FROM {T}) TO 's3://{s3.bucket}/x/' "
                  "WITH (format = 'PARQUET', partitioned_by = ARRAY['region'])", db=SRC_DB)
    assert r.status_code == 200, r.text
    dst = server()
    p = ok(run_import(hourglass_bin, f"s3://{s3.bucket}/x", "--db", "dst", "--table", "m",
                      "--server", dst.url, cwd=tmp_path, env=s3.env))
    assert summary_rows(p) == N
    want = srv.rows(f"SELECT {cols} FROM {T} {ORDER}", db=SRC_DB)
    assert dst.rows(f"SELECT {cols} FROM m {ORDER}", db="dst") == want


# -- each source kind, both targets ------------------------------------------------------------

def write_sources(d: Path):
    """One file of each kind, 50 rows each; times are nanoseconds near now."""
    d.mkdir(parents=True, exist_ok=True)
    t0 = NOW_NS
    n = 50
    pq.write_table(pa.table({
        "time": pa.array([t0 + i for i in range(n)], pa.timestamp("ns")),
        "host": [f"h{i % 5}" for i in range(n)],
        "usage": [i * 1.5 for i in range(n)],
        "jobs": pa.array(list(range(n)), pa.int64()),
    }), d / "cpu.parquet")
    with open(d / "mem.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "host", "used", "free"])
        for i in range(n):
            w.writerow([(t0 // 10**6) + i, f"h{i % 5}", i * 10, 0.5 + i])
    lines = "".join(f"disk,host=h{i % 5} used={i}i,pct={i / 100} {t0 + i}\n" for i in range(n))
    (d / "disk.lp").write_text(lines)
    with gzip.open(d / "net.lp.gz", "wt") as f:
        f.write(lines.replace("disk,", "net,"))
    return n


@pytest.mark.parametrize("mode", ["data-dir", "server"])
def test_every_source_kind(server, hourglass_bin, tmp_path, mode):
    n = write_sources(tmp_path / "in")
    if mode == "server":
        dst = server()
        target = ["--server", dst.url]
    else:
        target = ["--data-dir", tmp_path / "data"]
    args = ["--db", "k", *target]
    ok(run_import(hourglass_bin, tmp_path / "in" / "cpu.parquet", *args, cwd=tmp_path))
    ok(run_import(hourglass_bin, tmp_path / "in" / "mem.csv", *args, "--time-column", "ts",
                  "--time-unit", "ms", "--dimensions", "host", cwd=tmp_path))
    p = ok(run_import(hourglass_bin, tmp_path / "in" / "disk.lp", tmp_path / "in" / "net.lp.gz",
                      *args, cwd=tmp_path))
    assert summary_rows(p) == 2 * n
    if mode == "data-dir":
        dst = server(data_dir=tmp_path / "data")
    for table in ["cpu", "mem", "disk", "net"]:
        assert dst.count(table, db="k") == n, table
    [row] = dst.rows("SELECT host, usage, jobs, CAST(time AS BIGINT) AS t FROM cpu "
                     "ORDER BY time LIMIT 1 OFFSET 7", db="k")
    assert row == {"host": "h2", "usage": 10.5, "jobs": 7, "t": NOW_NS + 7}
    [row] = dst.rows("SELECT host, used, free FROM mem ORDER BY time LIMIT 1 OFFSET 3", db="k")
    assert row == {"host": "h3", "used": 30, "free": 3.5}
    types = {r["column_name"] if "column_name" in r else list(r.values())[0]: r
             for r in dst.rows("DESCRIBE mem", db="k")}
    assert "host" in types and "used" in types


def test_csv_with_a_data_model(server, hourglass_bin, tmp_path):
    model = {
        "TimeColumn": "when", "TimeUnit": "SECONDS",
        "DimensionMappings": [{"SourceColumn": "dev", "DestinationColumn": "device"}],
        "MultiMeasureMappings": {
            "TargetMultiMeasureName": "env",
            "MultiMeasureAttributeMappings": [
                {"SourceColumn": "t", "TargetMultiMeasureAttributeName": "temperature",
                 "MeasureValueType": "DOUBLE"},
                {"SourceColumn": "ok", "MeasureValueType": "BOOLEAN"},
            ]},
    }
    (tmp_path / "model.json").write_text(json.dumps(model))
    base = NOW_NS // 10**9
    (tmp_path / "env.csv").write_text(
        "when,dev,t,ok,ignored\n" + "".join(f"{base + i},d{i % 2},{i}.5,{'true' if i % 2 else 'false'},x\n"
                                             for i in range(10)))
    ok(run_import(hourglass_bin, tmp_path / "env.csv", "--db", "dm", "--data-model",
                  tmp_path / "model.json", "--data-dir", tmp_path / "data", cwd=tmp_path))
    dst = server(data_dir=tmp_path / "data")
    rows = dst.rows("SELECT device, measure_name, temperature, ok FROM env ORDER BY time", db="dm")
    assert rows[1] == {"device": "d1", "measure_name": "env", "temperature": 1.5, "ok": True}
    assert len(rows) == 10


# -- rejects -----------------------------------------------------------------------------------

def test_rejected_rows_are_listed_and_the_exit_code_says_so(server, hourglass_bin, tmp_path):
    ms = NOW_NS // 10**6
    (tmp_path / "bad.csv").write_text(
        "time,host,v\n"
        f"{ms},a,1.5\n"
        f"{ms + 1},b,not-a-number\n"
        f",c,2\n"
        f"{ms + 3},d\n"
        f"{ms + 4},e,4\n")
    (tmp_path / "bad.lp").write_text(f"cpu,host=a v=1 {NOW_NS}\ncpu,host=b v= {NOW_NS}\n")
    data = tmp_path / "data"
    p = run_import(hourglass_bin, tmp_path / "bad.csv", tmp_path / "bad.lp", "--db", "rj",
                   "--measures", "v:double", "--data-dir", data, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "4 rows rejected" in p.stderr and "rj.rejects.csv" in p.stderr
    assert summary_rows(p) == 3
    with open(tmp_path / "rj.rejects.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "row", "reason"]
    got = [(Path(r[0]).name, int(r[1]), r[2]) for r in rows[1:]]
    assert got[0] == ("bad.csv", 3, "column 'v': cannot read 'not-a-number' as DOUBLE")
    assert got[1] == ("bad.csv", 4, "column 'time': the time is empty")
    assert got[2][:2] == ("bad.csv", 5) and "expected 3 fields" in got[2][2]
    assert got[3][:2] == ("bad.lp", 2)
    # A clean import creates no rejects file.
    (tmp_path / "good.lp").write_text(f"cpu,host=z v=1 {NOW_NS}\n")
    ok(run_import(hourglass_bin, tmp_path / "good.lp", "--db", "fine", "--data-dir", data,
                  cwd=tmp_path))
    assert not (tmp_path / "fine.rejects.csv").exists()


def test_a_missing_column_is_a_clear_error(hourglass_bin, tmp_path):
    (tmp_path / "x.csv").write_text("ts,v\n1,2\n")
    p = run_import(hourglass_bin, tmp_path / "x.csv", "--db", "e", "--data-dir", tmp_path / "d",
                   cwd=tmp_path)
    assert p.returncode == 1
    assert "x.csv" in p.stderr and "no time column 'time'" in p.stderr


# -- the data directory lock -------------------------------------------------------------------

def test_a_data_dir_held_by_a_server_is_refused(server, hourglass_bin, tmp_path):
    srv = server()
    (tmp_path / "a.lp").write_text(f"cpu v=1 {NOW_NS}\n")
    p = run_import(hourglass_bin, tmp_path / "a.lp", "--db", "l", "--data-dir", srv.data_dir,
                   cwd=tmp_path)
    assert p.returncode == 1
    assert "is in use by another process" in p.stderr
    srv.stop()
    ok(run_import(hourglass_bin, tmp_path / "a.lp", "--db", "l", "--data-dir", srv.data_dir,
                  cwd=tmp_path))


# -- resume ------------------------------------------------------------------------------------

def test_resume_after_a_killed_import(server, hourglass_bin, tmp_path):
    n = 1_200_000
    t0 = NOW_NS - 10**12
    pq.write_table(pa.table({
        "time": pa.array(range(t0, t0 + n), pa.timestamp("ns")),
        "host": [f"h{i % 7}" for i in range(n)],
        "v": pa.array(range(n), pa.int64()),
    }), tmp_path / "big.parquet", row_group_size=20_000)
    data = tmp_path / "data"
    state = tmp_path / "r.import-state.json"
    # Small writes (one WAL fsync each) so the import runs long enough to be killed midway.
    args = [tmp_path / "big.parquet", "--db", "r", "--data-dir", data, "--batch-rows", "1000"]
    proc = subprocess.Popen([str(hourglass_bin), "import", *map(str, args)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    done_rows = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            files = json.loads(state.read_text())["files"]
            done_rows = next(iter(files.values()))["rows"]
        except (OSError, ValueError, StopIteration):
            done_rows = 0
        if done_rows > 0:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the import finished before it could be killed: make it bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    files = json.loads(state.read_text())["files"]
    [(_, fs)] = files.items()
    assert not fs["done"] and 0 < fs["rows"] < n
    p = ok(run_import(hourglass_bin, *args, "--resume", cwd=tmp_path))
    # Only what was not durable is loaded again.
    assert summary_rows(p) == n - fs["rows"]
    files = json.loads(state.read_text())["files"]
    assert next(iter(files.values()))["done"]
    # A second --resume finds nothing to do.
    p = ok(run_import(hourglass_bin, *args, "--resume", cwd=tmp_path))
    assert summary_rows(p) == 0
    dst = server(data_dir=data)
    assert dst.count("big", db="r") == n
    [row] = dst.rows("SELECT COUNT(DISTINCT v) AS d, SUM(v) AS s FROM big", db="r")
    assert row == {"d": n, "s": n * (n - 1) // 2}
    # Without --resume a run starts over (idempotent: still n rows).
    dst.stop()
    p = ok(run_import(hourglass_bin, *args, cwd=tmp_path))
    assert summary_rows(p) == n
    dst.start()
    assert dst.count("big", db="r") == n


# -- the progress bar in a real terminal --------------------------------------------------------

def test_progress_bar_in_tmux(hourglass_bin, tmp_path):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (scripts/install-test-deps.sh installs it)")
    n = 1_500_000
    t0 = NOW_NS - 10**12
    pq.write_table(pa.table({
        "time": pa.array(range(t0, t0 + n), pa.timestamp("ns")),
        "host": [f"h{i % 7}" for i in range(n)],
        "v": pa.array(range(n), pa.float64()),
    }), tmp_path / "p.parquet", row_group_size=50_000)
    session = f"hgimport{os.getpid()}"
    socket = tmp_path / "tmux.sock"
    cmd = (f"{hourglass_bin} import {tmp_path / 'p.parquet'} --db bar --data-dir {tmp_path / 'd'} "
           f"--batch-rows 5000; sleep 30")
    subprocess.run([tmux, "-S", str(socket), "new-session", "-d", "-s", session, "-x", "200",
                    "-y", "20", cmd], check=True, cwd=tmp_path)
    seen = ""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pane = subprocess.run([tmux, "-S", str(socket), "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout
            if "rows/s" in pane and "ETA" in pane and " rows," in pane:
                seen = pane
                break
            if "imported " in pane:
                break
            time.sleep(0.05)
    finally:
        subprocess.run([tmux, "-S", str(socket), "kill-server"], capture_output=True)
    assert seen, f"no progress bar seen in the pane:\n{pane}"
    bar = [l for l in seen.splitlines() if "rows/s" in l][0]
    assert "[" in bar and "ETA" in bar
    rows = int(bar.split(" rows,")[0].split()[-1].replace(",", ""))
    assert rows > 0
