#!/usr/bin/env python3
"""Crash test: nothing acknowledged is lost or duplicated across SIGKILLs.

    python3 scripts/reliability/crash_test.py --binary target/debug/hourglass --cycles 50

Each cycle starts `hourglass serve` on one data directory (maintenance every 100 ms, every row
past memory retention persisted at once, compaction from 2 files), drives load from several
client threads, and kills the server with SIGKILL at a random moment: plain, shortly after an
`/admin/flush` (persistence) or `/admin/compact` (compaction) started, or while retention is
deleting the files of a short-retention table. The next cycle restarts it on the same data.

Load:
  * line protocol writers (`crash,w=<writer> v=<id>i,c=<cycle>i <time>`), rows older than the
    memory retention so tiering persists them constantly;
  * WriteRecords writers (AWS JSON 1.0, plain HTTP) into table `kept` (long retention) with
    multi-measure records (`v` BIGINT), also old enough to be persisted;
  * a WriteRecords writer into table `expiring` (1 day magnetic retention, rows written ~1 day
    old) so retention deletes its files every few seconds. Its rows are not checked.

A row counts as acknowledged only when its request got a 2xx. Every row has its own key (series,
time) and value. After every `--verify-every` cycles and at the end, with the server up, each
checked table is read back: an acknowledged key missing is *lost*, a key seen more than once is
*duplicated*, a value differing is *wrong*, a key never attempted is *phantom*. Finally every
Parquet file under the data directory must open with pyarrow (and every file a manifest names
must exist). Prints the figures; exits 1 unless lost, duplicated, wrong, phantom and unreadable
are all 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

import hgserver

REPO = Path(__file__).resolve().parents[2]
DB = "crashdb"
NS = 1_000_000_000
TS_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}
SERVER_FLAGS = [
    "--maintenance-interval-ms", "100",
    "--persist-min-bytes", "1",
    "--persist-max-wait-ms", "0",
    "--compaction-min-files", "2",
    "--default-memory-retention-hours", "1",
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Server:
    def __init__(self, binary: str, data_dir: Path, log_dir: Path):
        self.binary, self.data_dir, self.log_dir = binary, data_dir, log_dir
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.proc, self.url = hgserver.start(self.binary, self.data_dir, SERVER_FLAGS,
                                             self.log_dir / f"stderr-{self.starts}.log")

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=60)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None


def ts_call(url: str, op: str, body: dict, timeout: float = 30) -> requests.Response:
    headers = dict(TS_HEADERS)
    headers["X-Amz-Target"] = f"Timestream_20181101.{op}"
    return requests.post(url + "/", data=json.dumps(body), headers=headers, timeout=timeout)


class Ledger:
    """What every writer attempted and what was acknowledged: key -> value, per table."""

    def __init__(self, log_dir: Path):
        self.lock = threading.Lock()
        self.acked: dict[str, dict[tuple, int]] = {"crash": {}, "kept": {}}
        self.attempted: dict[str, dict[tuple, int]] = {"crash": {}, "kept": {}}
        self.log = open(log_dir / "acked.jsonl", "a")
        self.requests_ok = 0
        self.requests_failed = 0

    def attempt(self, table: str, rows: dict[tuple, int]) -> None:
        with self.lock:
            self.attempted[table].update(rows)

    def ack(self, table: str, rows: dict[tuple, int]) -> None:
        with self.lock:
            self.acked[table].update(rows)
            self.requests_ok += 1
            for k, v in rows.items():
                self.log.write(json.dumps([table, *k, v]) + "\n")

    def fail(self) -> None:
        with self.lock:
            self.requests_failed += 1


class Load:
    """Writer threads for one cycle; stopped when the server dies (or `stop` is set)."""

    def __init__(self, url: str, cycle: int, t0: int, ledger: Ledger, rng: random.Random,
                 lp_writers: int, ts_writers: int):
        self.url, self.cycle, self.t0, self.ledger = url, cycle, t0, ledger
        self.stop = threading.Event()
        self.threads = []
        seeds = [rng.randrange(1 << 30) for _ in range(lp_writers + ts_writers + 1)]
        for w in range(lp_writers):
            self.threads.append(threading.Thread(target=self.lp_writer, args=(w, seeds[w]), daemon=True))
        for w in range(ts_writers):
            self.threads.append(threading.Thread(target=self.ts_writer, args=(w, seeds[lp_writers + w]), daemon=True))
        self.threads.append(threading.Thread(target=self.expiring_writer, daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def key_time(self, writer: int, seq: int) -> int:
        # Unique per (cycle, writer, seq) and increasing within a writer's series across cycles.
        return self.t0 + ((self.cycle * 64 + writer) * 1_000_000 + seq) * 1000

    def lp_writer(self, w: int, seed: int):
        rng = random.Random(seed)
        seq = 0
        session = requests.Session()
        while not self.stop.is_set():
            n = rng.choice([1, 10, 100, 500])
            rows = {}
            lines = []
            for _ in range(n):
                t = self.key_time(w, seq)
                v = self.cycle * 10_000_000 + seq
                rows[(str(w), t)] = v
                lines.append(f"crash,w={w} v={v}i,c={self.cycle}i {t}")
                seq += 1
            self.ledger.attempt("crash", rows)
            try:
                r = session.post(f"{self.url}/api/v3/write_lp", params={"db": DB},
                                 data="\n".join(lines).encode(), timeout=30)
            except requests.RequestException:
                self.ledger.fail()
                return  # the server died
            if 200 <= r.status_code < 300:
                self.ledger.ack("crash", rows)
            else:
                self.ledger.fail()
                time.sleep(0.05)

    def ts_writer(self, w: int, seed: int):
        rng = random.Random(seed)
        writer = 32 + w  # separate time range from the line protocol writers
        seq = 0
        session = requests.Session()
        while not self.stop.is_set():
            n = rng.choice([1, 20, 100])
            rows = {}
            records = []
            for _ in range(n):
                t = self.key_time(writer, seq)
                v = self.cycle * 10_000_000 + seq
                rows[(str(w), t)] = v
                records.append({"Time": str(t), "MeasureValues": [{"Name": "v", "Value": str(v), "Type": "BIGINT"}]})
                seq += 1
            body = {"DatabaseName": DB, "TableName": "kept",
                    "CommonAttributes": {"Dimensions": [{"Name": "w", "Value": str(w)}], "MeasureName": "m",
                                         "MeasureValueType": "MULTI", "TimeUnit": "NANOSECONDS"},
                    "Records": records}
            self.ledger.attempt("kept", rows)
            try:
                headers = dict(TS_HEADERS, **{"X-Amz-Target": "Timestream_20181101.WriteRecords"})
                r = session.post(self.url + "/", data=json.dumps(body), headers=headers, timeout=30)
            except requests.RequestException:
                self.ledger.fail()
                return
            if 200 <= r.status_code < 300:
                self.ledger.ack("kept", rows)
            else:
                self.ledger.fail()
                time.sleep(0.05)

    def expiring_writer(self):
        seq = 0
        while not self.stop.is_set():
            # About one day old: past the 1-day magnetic retention within seconds.
            base = time.time_ns() - 86_400 * NS + 3 * NS
            records = [{"Dimensions": [{"Name": "k", "Value": str(i % 7)}], "MeasureName": "m",
                        "MeasureValue": str(seq + i), "MeasureValueType": "BIGINT",
                        "Time": str(base + i * 1000), "TimeUnit": "NANOSECONDS"} for i in range(50)]
            seq += 50
            try:
                ts_call(self.url, "WriteRecords", {"DatabaseName": DB, "TableName": "expiring", "Records": records})
            except requests.RequestException:
                return
            time.sleep(0.05)


def setup_tables(url: str) -> None:
    r = ts_call(url, "CreateDatabase", {"DatabaseName": DB})
    assert r.status_code == 200 or "ConflictException" in r.text, r.text
    for table, memory_h, magnetic_d in (("kept", 1, 3650), ("expiring", 1, 1)):
        r = ts_call(url, "CreateTable", {
            "DatabaseName": DB, "TableName": table,
            "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": memory_h,
                                    "MagneticStoreRetentionPeriodInDays": magnetic_d},
            "MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": True}})
        assert r.status_code == 200 or "ConflictException" in r.text, r.text


def read_table(url: str, sql: str) -> list[tuple[str, int, int]]:
    r = requests.get(f"{url}/api/v3/query_sql", params={"db": DB, "q": sql, "format": "csv"}, timeout=600)
    if r.status_code == 404 or "not found" in r.text.lower() and r.status_code >= 400:
        return []
    if r.status_code != 200:
        raise RuntimeError(f"query {sql!r} failed: {r.status_code} {r.text[:2000]}")
    out = []
    for row in csv.DictReader(io.StringIO(r.text)):
        out.append((row["w"], int(row["t"]), int(row["v"])))
    return out


def verify(url: str, ledger: Ledger) -> dict:
    figures = {"acked": 0, "lost": 0, "duplicated": 0, "wrong": 0, "phantom": 0, "found": 0}
    queries = {
        "crash": 'SELECT w, CAST(time AS BIGINT) AS t, v FROM "crash"',
        "kept": 'SELECT w, CAST(time AS BIGINT) AS t, v FROM "kept"',
    }
    examples = []
    for table, sql in queries.items():
        rows = read_table(url, sql)
        seen: dict[tuple, list[int]] = {}
        for w, t, v in rows:
            seen.setdefault((w, t), []).append(v)
        with ledger.lock:
            acked = dict(ledger.acked[table])
            attempted = dict(ledger.attempted[table])
        figures["acked"] += len(acked)
        figures["found"] += len(rows)
        for key, v in acked.items():
            got = seen.get(key)
            if not got:
                figures["lost"] += 1
                if len(examples) < 5:
                    examples.append(f"lost {table} {key}")
            elif got != [v] and len(got) == 1:
                figures["wrong"] += 1
                examples.append(f"wrong {table} {key}: {got} != {v}")
        for key, vs in seen.items():
            if len(vs) > 1:
                figures["duplicated"] += 1
                if len(examples) < 10:
                    examples.append(f"duplicated {table} {key}: {vs}")
            if key not in attempted:
                figures["phantom"] += 1
            elif key not in acked and vs[0] != attempted[key]:
                figures["wrong"] += 1
    figures["examples"] = examples
    return figures


def check_parquet(data_dir: Path) -> dict:
    import pyarrow.parquet as pq

    files = sorted(data_dir.rglob("*.parquet"))
    bad = []
    rows = 0
    for f in files:
        try:
            rows += pq.read_table(f).num_rows
        except Exception as e:  # noqa: BLE001 - any failure to read is what we count
            bad.append(f"{f}: {e}")
    missing = []
    for m in data_dir.rglob("_manifest.json"):
        manifest = json.loads(m.read_text())
        root = m.parent.parent.parent
        for entry in manifest["files"]:
            if not (root / entry["path"]).is_file():
                missing.append(entry["path"])
    return {"parquet_files": len(files), "parquet_rows": rows, "unreadable": bad, "missing": missing}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "target/debug/hourglass"))
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration-per-cycle", type=float, default=4.0,
                    help="longest load phase of a cycle, seconds (each cycle picks 0.3..this)")
    ap.add_argument("--lp-writers", type=int, default=3)
    ap.add_argument("--ts-writers", type=int, default=2)
    ap.add_argument("--verify-every", type=int, default=10)
    ap.add_argument("--data-dir", help="default: a new temporary directory (removed on success)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    work = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="hourglass-crash-"))
    data_dir, log_dir = work / "data", work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(log_dir)
    server = Server(args.binary, data_dir, log_dir)
    t0 = (time.time_ns() - 3 * 3600 * NS) // NS * NS  # rows 3 h old: past memory retention
    kinds: dict[str, int] = {}
    failures: list[str] = []
    totals = {}
    started = time.monotonic()
    try:
        server.start()
        setup_tables(server.url)
        # The first write creates table `crash` (line protocol creates tables).
        for cycle in range(args.cycles):
            load = Load(server.url, cycle, t0, ledger, rng, args.lp_writers, args.ts_writers)
            load.start()
            kind = rng.choice(["plain", "plain", "flush", "compact", "retention"])
            kinds[kind] = kinds.get(kind, 0) + 1
            time.sleep(rng.uniform(0.3, args.duration_per_cycle))
            if kind in ("flush", "compact"):
                url = server.url
                threading.Thread(target=lambda: _post_quiet(f"{url}/admin/{kind}"), daemon=True).start()
                time.sleep(rng.uniform(0.0, 0.3))
            elif kind == "retention":
                time.sleep(rng.uniform(0.0, 0.2))  # maintenance (every 100 ms) deletes expired files
            server.kill()
            load.join()
            server.start()
            if (cycle + 1) % args.verify_every == 0 or cycle + 1 == args.cycles:
                figures = verify(server.url, ledger)
                log(f"cycle {cycle + 1}/{args.cycles}: acked {figures['acked']} lost {figures['lost']} "
                    f"duplicated {figures['duplicated']} wrong {figures['wrong']} phantom {figures['phantom']}")
                totals = figures
                if figures["lost"] or figures["duplicated"] or figures["wrong"] or figures["phantom"]:
                    failures.append(f"after cycle {cycle + 1}: {figures['examples']}")
                    break
            else:
                log(f"cycle {cycle + 1}/{args.cycles} ({kind}) restarted; {ledger.requests_ok} requests acked so far")
        # A clean stop, then the files as a reader finds them.
        server.stop()
        pq = check_parquet(data_dir)
    finally:
        server.kill()
    elapsed = time.monotonic() - started
    print()
    print("crash test results")
    print(f"  cycles:               {args.cycles} (kill moments: {kinds})")
    print(f"  seed:                 {args.seed}")
    print(f"  elapsed:              {elapsed:.0f} s")
    print(f"  requests acked:       {ledger.requests_ok} (failed/unanswered: {ledger.requests_failed})")
    print(f"  rows acknowledged:    {totals.get('acked', 0)}")
    print(f"  rows found:           {totals.get('found', 0)}")
    print(f"  rows lost:            {totals.get('lost', 0)}")
    print(f"  rows duplicated:      {totals.get('duplicated', 0)}")
    print(f"  rows wrong value:     {totals.get('wrong', 0)}")
    print(f"  rows never written:   {totals.get('phantom', 0)}")
    print(f"  parquet files:        {pq['parquet_files']} ({pq['parquet_rows']} rows), "
          f"unreadable {len(pq['unreadable'])}, named but missing {len(pq['missing'])}")
    for f in failures:
        print(f"  FAILURE {f}")
    for b in pq["unreadable"][:10]:
        print(f"  UNREADABLE {b}")
    for m in pq["missing"][:10]:
        print(f"  MISSING {m}")
    ok = (not failures and not pq["unreadable"] and not pq["missing"] and totals.get("acked", 0) > 0)
    if ok and not args.data_dir:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"  data and logs kept in {work}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _post_quiet(url: str) -> None:
    try:
        requests.post(url, timeout=60)
    except requests.RequestException:
        pass


if __name__ == "__main__":
    sys.exit(main())
