"""The magnetic store on S3 (a moto S3 server on loopback, `--object-store s3://BUCKET/hg`).

Covers: writes through the official influxdb-client, `/admin/flush` putting Parquet files and
`_manifest.json` objects under `hg/<db>/<table>/` in the bucket (and no Parquet file in the
local data directory), exact query results read back from S3, and the same results after a
SIGTERM restart and after a crash (SIGKILL) with later writes only in the WAL.
"""

from __future__ import annotations

import time

from influxdb_client import Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from hgtest import NS_PER_S

PREFIX = "hg"
DB = "s3db"
NO_MAINTENANCE = ["--maintenance-interval-ms", "3600000"]


def start(server, moto_s3, data_dir=None):
    return server(
        args=["--object-store", f"s3://{moto_s3.bucket}/{PREFIX}", *NO_MAINTENANCE],
        env=moto_s3.env,
        data_dir=data_dir,
    )


def write_points(srv, t0_s):
    points = [
        Point("cpu").tag("host", f"h{i % 3}").tag("dc", "eu west").field("usage", i + 0.5)
        .field("n", i).field("state", f"s{i}").field("up", i % 2 == 0).time(t0_s + i, WritePrecision.S)
        for i in range(30)
    ]
    points.append(Point("mem").tag("host", "h0").field("free", 1024).time(t0_s, WritePrecision.S))
    with srv.influx_client() as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket=DB, record=points)


def expected_cpu(t0_s):
    return [
        {"host": f"h{i % 3}", "dc": "eu west", "t": (t0_s + i) * NS_PER_S, "usage": i + 0.5, "n": i,
         "state": f"s{i}", "up": i % 2 == 0}
        for i in range(30)
    ]


CPU_Q = "SELECT host, dc, CAST(time AS BIGINT) AS t, usage, n, state, up FROM cpu ORDER BY time"


def test_flush_to_s3_and_query(server, moto_s3):
    t0_s = time.time_ns() // NS_PER_S - 3600
    srv = start(server, moto_s3)
    write_points(srv, t0_s)
    assert srv.rows(CPU_Q, db=DB) == expected_cpu(t0_s)

    report = srv.flush()
    assert report["rows_persisted"] == 31, report
    assert report["files_written"] >= 2, report

    keys = moto_s3.keys(f"{PREFIX}/")
    for table in ("cpu", "mem"):
        under = [k for k in keys if k.startswith(f"{PREFIX}/{DB}/{table}/")]
        assert any(k.endswith(".parquet") for k in under), keys
        assert any(k.rsplit("/", 1)[-1] == "_manifest.json" for k in under), keys
    assert all(k.startswith(f"{PREFIX}/{DB}/") for k in keys), keys
    for key in (k for k in keys if k.endswith(".parquet")):
        body = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read()
        assert body[:4] == b"PAR1" and body[-4:] == b"PAR1", key
    assert list(srv.data_dir.rglob("*.parquet")) == [], "Parquet files written locally, not to S3"

    assert srv.rows(CPU_Q, db=DB) == expected_cpu(t0_s)
    assert srv.rows("SELECT host, free FROM mem", db=DB) == [{"host": "h0", "free": 1024}]

    srv.restart()
    assert srv.rows(CPU_Q, db=DB) == expected_cpu(t0_s)
    assert srv.rows("SELECT host, free FROM mem", db=DB) == [{"host": "h0", "free": 1024}]


def test_s3_restart_after_crash(server, moto_s3):
    t0_s = time.time_ns() // NS_PER_S - 3600
    srv = start(server, moto_s3)
    write_points(srv, t0_s)
    assert srv.flush()["rows_persisted"] == 31
    # after the flush: a new row and an upsert of a persisted one, then a crash
    srv.write_ok(f"cpu,dc=eu\\ west,host=h9 usage=99.5,n=99i,state=\"late\",up=true {t0_s + 100}",
                 db=DB, precision="second")
    srv.write_ok(f"cpu,dc=eu\\ west,host=h0 usage=-1.5,n=-1i,state=\"new\",up=false {t0_s}",
                 db=DB, precision="second")
    srv.kill()
    srv.restart()
    expected = expected_cpu(t0_s)
    expected[0].update(usage=-1.5, n=-1, state="new", up=False)
    expected.append({"host": "h9", "dc": "eu west", "t": (t0_s + 100) * NS_PER_S, "usage": 99.5, "n": 99,
                     "state": "late", "up": True})
    assert srv.rows(CPU_Q, db=DB) == expected
    assert srv.flush()["rows_persisted"] == 2
    srv.restart()
    assert srv.rows(CPU_Q, db=DB) == expected
    manifests = [k for k in moto_s3.keys(f"{PREFIX}/{DB}/cpu/") if k.endswith("_manifest.json")]
    assert manifests, moto_s3.keys()
