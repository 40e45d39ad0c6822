#!/usr/bin/env python3
"""Soak test: sustained line-protocol ingest at a fraction of the measured maximum, with
concurrent queries, for a long time.

    python3 scripts/reliability/soak.py --binary target/release/hourglass --minutes 10 \
        [--max-rows-per-s N] [--fraction 0.7] [--write-docs docs/reliability.md]

1. Starts `hourglass serve` on a fresh data directory (default flags: memory budget 256 MiB,
   maintenance every 2 s, so persistence and compaction run during the soak).
2. Unless --max-rows-per-s is given, measures the maximum for --measure-seconds (writers as fast
   as they can).
3. Ingests at --fraction of it for --minutes from --writers threads (batches of --batch lines,
   paced), while --queriers threads run aggregate queries in a loop.
4. Records acknowledgement latency (p50/p99/max of each write request), RSS every 10 s (from
   /proc), query latency; at the end every acknowledged row is counted (lost must be 0).

Prints the figures; with --write-docs, replaces the "## Soak" section of that Markdown file with
them (machine, commit, command). Exits 1 if any row was lost or the server died.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

import hgserver

REPO = Path(__file__).resolve().parents[2]
NS = 1_000_000_000
DB = "soak"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class ThreadGroup:
    """`n` daemon threads running `self.run(i)` until `stop` is set."""

    JOIN_TIMEOUT_S = 120

    def __init__(self, n: int):
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.errors = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(n)]

    def run(self, i: int):
        raise NotImplementedError

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=self.JOIN_TIMEOUT_S)


class Writers(ThreadGroup):
    def __init__(self, url: str, n: int, batch: int, rows_per_s: float | None, t0: int):
        self.url, self.n, self.batch, self.rows_per_s, self.t0 = url, n, batch, rows_per_s, t0
        self.lock = threading.Lock()
        self.acked = 0
        self.refused = 0
        self.seq = [0] * n
        super().__init__(n)

    def run(self, w: int):
        sess = requests.Session()
        interval = (self.batch * self.n / self.rows_per_s) if self.rows_per_s else 0.0
        next_at = time.monotonic()
        while not self.stop.is_set():
            seq = self.seq[w]
            # 1000 series per writer, one row per series per step; times increase.
            body = "\n".join(
                f"cpu,host=h{w}-{(seq + i) % 1000},region=r{(seq + i) % 7} "
                f"usage={((seq + i) * 7919) % 1000 / 10},n={seq + i}i "
                f"{self.t0 + (seq + i) * 1000 + w}"
                for i in range(self.batch))
            started = time.monotonic()
            try:
                r = sess.post(f"{self.url}/api/v3/write_lp", params={"db": DB}, data=body, timeout=120)
                status = r.status_code
            except requests.RequestException:
                status = -1
            took = time.monotonic() - started
            with self.lock:
                if status == 204:
                    self.acked += self.batch
                    self.latencies.append(took)
                    self.seq[w] = seq + self.batch
                elif status == 503:
                    self.refused += 1
                else:
                    self.errors += 1
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -5 * interval:
                    next_at = time.monotonic()  # fell behind: do not burst


class Queriers(ThreadGroup):
    QUERIES = [
        "SELECT region, COUNT(*) AS n, AVG(usage) AS u FROM cpu WHERE time > now() - INTERVAL '5 minutes' GROUP BY region",
        "SELECT host, MAX(n) FROM cpu WHERE host = 'h0-7' GROUP BY host",
        "SELECT date_bin(INTERVAL '1 minute', time) AS m, COUNT(*) FROM cpu GROUP BY 1 ORDER BY 1 DESC LIMIT 5",
    ]

    JOIN_TIMEOUT_S = 300

    def __init__(self, url: str, n: int):
        self.url = url
        super().__init__(n)

    def run(self, q: int):
        i = q
        while not self.stop.is_set():
            sql = self.QUERIES[i % len(self.QUERIES)]
            i += 1
            started = time.monotonic()
            try:
                r = requests.get(f"{self.url}/api/v3/query_sql", params={"db": DB, "q": sql}, timeout=300)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                self.latencies.append(time.monotonic() - started)
            else:
                self.errors += 1
            time.sleep(0.5)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "target/release/hourglass"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--max-rows-per-s", type=float)
    ap.add_argument("--measure-seconds", type=float, default=20)
    ap.add_argument("--fraction", type=float, default=0.7)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--queriers", type=int, default=2)
    ap.add_argument("--memory-budget-mb", type=int, default=256)
    ap.add_argument("--write-docs", help="Markdown file whose '## Soak' section gets the figures")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hourglass-soak-"))
    data = work / "data"
    proc, url = hgserver.start(args.binary, data, ["--memory-budget-mb", str(args.memory_budget_mb)],
                               data.parent / "stderr.log")
    t0 = time.time_ns() - 3600 * NS
    print(f"soak: server {url} (pid {proc.pid}), data {data}", flush=True)
    try:
        max_rate = args.max_rows_per_s
        total_acked = 0
        if not max_rate:
            w = Writers(url, args.writers, args.batch, None, t0)
            start = time.monotonic()
            w.start()
            time.sleep(args.measure_seconds)
            w.finish()
            max_rate = w.acked / (time.monotonic() - start)
            total_acked += w.acked
            print(f"soak: measured maximum {max_rate:,.0f} rows/s over {args.measure_seconds:.0f} s", flush=True)
            t0 += (w.acked // args.writers + args.batch) * 1000 * 2  # fresh times after the measurement
        target = max_rate * args.fraction
        print(f"soak: ingesting {target:,.0f} rows/s for {args.minutes} min with {args.queriers} queriers", flush=True)
        writers = Writers(url, args.writers, args.batch, target, t0)
        queriers = Queriers(url, args.queriers)
        rss: list[tuple[int, float]] = []
        start = time.monotonic()
        writers.start()
        queriers.start()
        end = start + args.minutes * 60
        while time.monotonic() < end:
            if proc.poll() is not None:
                print("soak: the server died", flush=True)
                return 1
            rss.append((int(time.monotonic() - start), rss_mb(proc.pid)))
            print(f"soak: t={rss[-1][0]:4d}s RSS {rss[-1][1]:7.1f} MiB acked {writers.acked:,} "
                  f"refused {writers.refused} query p50 {pct(queriers.latencies, 50) * 1000:.0f} ms", flush=True)
            time.sleep(min(10, max(0, end - time.monotonic())))
        writers.finish()
        queriers.finish()
        elapsed = time.monotonic() - start
        total_acked += writers.acked
        r = requests.get(f"{url}/api/v3/query_sql", params={"db": DB, "q": "SELECT COUNT(*) AS n FROM cpu"},
                         timeout=600)
        counted = r.json()[0]["n"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
    lat = writers.latencies
    figures = {
        "max_rate": max_rate,
        "target": target,
        "achieved": writers.acked / elapsed,
        "acked": total_acked,
        "counted": counted,
        "lost": total_acked - counted,
        "refused": writers.refused,
        "errors": writers.errors,
        "p50": pct(lat, 50) * 1000,
        "p99": pct(lat, 99) * 1000,
        "max": max(lat) * 1000 if lat else float("nan"),
        "q_p50": pct(queriers.latencies, 50) * 1000,
        "q_p99": pct(queriers.latencies, 99) * 1000,
        "queries": len(queriers.latencies),
        "q_errors": queriers.errors,
        "rss": rss,
        "minutes": args.minutes,
    }
    report = render(figures, args)
    print(report)
    if args.write_docs:
        update_docs(Path(args.write_docs), report)
    return 0 if figures["lost"] == 0 and figures["errors"] == 0 else 1


def render(f: dict, args) -> str:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = "?"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rss_vals = [v for _, v in f["rss"]]
    rss_line = ", ".join(f"{t}s {v:.0f}" for t, v in f["rss"])
    return f"""## Soak

Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()},
commit `{commit}`, binary `{args.binary}`, shared with other builds (nice'd):

```
python3 scripts/reliability/soak.py --binary {args.binary} --minutes {args.minutes:g} --writers {args.writers} --batch {args.batch} --queriers {args.queriers} --fraction {args.fraction:g}{f' --max-rows-per-s {args.max_rows_per_s:g}' if args.max_rows_per_s else ''}
```

| figure | value |
|---|---|
| measured maximum (line protocol, {args.writers} writers x {args.batch} lines) | {f['max_rate']:,.0f} rows/s |
| target ({args.fraction:.0%}) / achieved | {f['target']:,.0f} / {f['achieved']:,.0f} rows/s for {f['minutes']:g} min |
| rows acknowledged / counted / lost | {f['acked']:,} / {f['counted']:,} / {f['lost']:,} |
| writes refused (503) / failed | {f['refused']} / {f['errors']} |
| ack latency p50 / p99 / max | {f['p50']:.1f} / {f['p99']:.1f} / {f['max']:.1f} ms |
| queries run / failed, latency p50 / p99 | {f['queries']} / {f['q_errors']}, {f['q_p50']:.0f} / {f['q_p99']:.0f} ms |
| RSS min / max / last | {min(rss_vals):.0f} / {max(rss_vals):.0f} / {rss_vals[-1]:.0f} MiB |

RSS every 10 s (MiB): {rss_line}
"""


def update_docs(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Reliability\n"
    pattern = re.compile(r"^## Soak\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
