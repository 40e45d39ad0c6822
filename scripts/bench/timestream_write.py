#!/usr/bin/env python3
"""WriteRecords throughput against a running Hourglass (or anything speaking the Timestream API).

    python3 scripts/bench/timestream_write.py --url http://127.0.0.1:8086 [--workers 4]
        [--duration 20] [--records 100] [--multi] [--versioned] [--boto3]

Each worker process holds one keep-alive HTTP connection and sends WriteRecords requests of
`--records` records (default 100, Timestream's maximum) as fast as the server answers: one
timestamp per request, one record per host (each worker writes its own hosts), so every record is
new (`--versioned` gives them Version = their time in ms, the usual upsert pattern, which
makes the server log versions). Requests are plain AWS JSON 1.0 POSTs (Hourglass does not check signatures); `--boto3` sends
them through boto3's timestream-write client instead (slower client, same server work).
Creates the database and table first (ignoring "already exists"). Prints records/s, requests/s
and latency percentiles; exits non-zero if any request failed.

Measure a release build (`cargo build --release`); a debug build is many times slower.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import sys
import time
import urllib.parse

TARGET = "Timestream_20181101."
HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


def call(conn: http.client.HTTPConnection, op: str, body: bytes):
    conn.request("POST", "/", body=body, headers={**HEADERS, "X-Amz-Target": TARGET + op})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def connect(url: str) -> http.client.HTTPConnection:
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


def body_parts(args, worker: int) -> tuple[bytes, bytes]:
    """The request body around its `Time` value: prefix + time + suffix."""
    records = []
    for i in range(args.records):
        r = {"Dimensions": [{"Name": "host", "Value": f"host-{worker:03d}-{i:04d}"},
                            {"Name": "rack", "Value": f"rack-{i % 10}"}]}
        if args.multi:
            r["MeasureValues"] = [
                {"Name": "usage_user", "Value": f"{(i * 7) % 100}.5", "Type": "DOUBLE"},
                {"Name": "usage_system", "Value": f"{(i * 3) % 100}.25", "Type": "DOUBLE"},
                {"Name": "procs", "Value": str(i), "Type": "BIGINT"},
            ]
        else:
            r["MeasureValue"] = f"{(i * 7) % 100}.5"
        records.append(r)
    common = {"Dimensions": [{"Name": "region", "Value": f"region-{worker % 4}"}],
              "MeasureName": "cpu", "MeasureValueType": "MULTI" if args.multi else "DOUBLE",
              "Time": "@@TIME@@"}
    if args.versioned:
        common["Version"] = 1234567890123  # replaced by the time below
    body = json.dumps({"DatabaseName": args.database, "TableName": args.table,
                       "CommonAttributes": common, "Records": records}, separators=(",", ":"))
    body = body.replace("1234567890123", "@@TIME@@")
    prefix, middle, suffix = (body.split("@@TIME@@") + [""])[:3]
    if args.versioned:
        return prefix.encode(), middle.encode(), suffix.encode()
    return prefix.encode(), b"", middle.encode()


def worker(args, index: int, start_at: float, out: mp.Queue):
    prefix, middle, suffix = body_parts(args, index)
    latencies = []
    failures = 0
    sent = 0
    last_time = 0
    if args.boto3:
        import boto3

        client = boto3.client("timestream-write", endpoint_url=args.url, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        payload = json.loads((prefix + b"0" + (middle + b"0" if middle else b"") + suffix).decode())
    else:
        conn = connect(args.url)
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + args.duration
    while True:
        now = time.time()
        if now >= deadline:
            break
        t = max(int(now * 1000), last_time + 1)
        last_time = t
        t0 = time.perf_counter()
        if args.boto3:
            payload["CommonAttributes"]["Time"] = str(t)
            if args.versioned:
                payload["CommonAttributes"]["Version"] = t
            try:
                client.write_records(**payload)
                ok = True
            except Exception as e:  # noqa: BLE001 - count and report
                ok = False
                if failures == 0:
                    print(f"worker {index}: {e}", file=sys.stderr)
        else:
            try:
                ts = str(t).encode()
                body = prefix + ts + (middle + ts if middle else b"") + suffix
                status, data = call(conn, "WriteRecords", body)
            except (OSError, http.client.HTTPException) as e:
                status, data = 0, str(e).encode()
                conn = connect(args.url)
            ok = status == 200
            if not ok and failures == 0:
                print(f"worker {index}: HTTP {status}: {data[:300]!r}", file=sys.stderr)
        latencies.append(time.perf_counter() - t0)
        sent += 1
        if not ok:
            failures += 1
    out.put((sent, failures, latencies))


def ensure_table(args):
    conn = connect(args.url)
    for op, body in (("CreateDatabase", {"DatabaseName": args.database}),
                     ("CreateTable", {"DatabaseName": args.database, "TableName": args.table,
                                      "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 24,
                                                              "MagneticStoreRetentionPeriodInDays": 7}})):
        status, data = call(conn, op, json.dumps(body).encode())
        if status != 200 and b"ConflictException" not in data:
            sys.exit(f"{op} failed: HTTP {status} {data[:300]!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8086")
    p.add_argument("--database", default="bench")
    p.add_argument("--table", default="cpu")
    p.add_argument("--workers", type=int, default=4, help="processes, one connection each")
    p.add_argument("--duration", type=float, default=20.0, help="seconds")
    p.add_argument("--records", type=int, default=100, help="records per request (max 100)")
    p.add_argument("--multi", action="store_true", help="multi-measure records (3 measures)")
    p.add_argument("--versioned", action="store_true", help="records carry Version = their time (ms)")
    p.add_argument("--boto3", action="store_true", help="send through boto3 instead of raw HTTP")
    args = p.parse_args()

    ensure_table(args)
    out: mp.Queue = mp.Queue()
    start_at = time.time() + 1.0
    procs = [mp.Process(target=worker, args=(args, i, start_at, out)) for i in range(args.workers)]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    sent = sum(r[0] for r in results)
    failures = sum(r[1] for r in results)
    latencies = sorted(x for r in results for x in r[2])
    ok = sent - failures
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0
    print(f"workers={args.workers} records/request={args.records} multi={args.multi} versioned={args.versioned} "
          f"client={'boto3' if args.boto3 else 'http'} duration={args.duration:.0f}s")
    print(f"requests: {sent} ({failures} failed), {ok / args.duration:,.0f} requests/s")
    print(f"records/s: {ok * args.records / args.duration:,.0f}")
    print(f"latency ms: p50 {pct(0.5):.1f}  p90 {pct(0.9):.1f}  p99 {pct(0.99):.1f}  max {pct(1.0):.1f}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
