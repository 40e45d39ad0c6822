#!/usr/bin/env python3
"""Alert rule evaluation cost in the running server: --rules real SQL alert rules (default
1,000) every --interval (default 10 s) over live market data, against an idle baseline of the
same server without rules.

    .venv-test/bin/python scripts/bench/alert_rules_load.py [--bin target/release/hourglass]
        [--rules 1000] [--interval 10] [--duration 120] [--symbols 100] [--history-minutes 60]

1. Starts `hourglass serve` (--bin; default target/release/hourglass if it exists, else
   target/debug/hourglass) on a temporary data directory, HTTP on 127.0.0.1.
2. Loads --history-minutes of 1-s prices for --symbols symbols (`market.prices`, tag `symbol`,
   fields `price`, `volume`) ending now; a writer thread then adds one row per symbol every
   second for the rest of the run (an occasional 10σ jump, so that some 4σ rules fire).
3. Idle baseline for --duration: no rules; the server's CPU (utime+stime of /proc/PID/stat) and
   a probe query (lastpoint: the latest price per symbol over all data) every second.
4. Creates the rules (timed), a realistic mix per 10 rules: 6 per-symbol thresholds
   (`max(price)` over the last 5 minutes of one symbol), 1 per-symbol staleness check (`any row`
   when a symbol has fewer than 200 rows in the last 5 minutes), 2 group-by-all rules (100 rows
   each: latest price above a threshold a few symbols exceed; average volume over 1 minute), 1
   per-symbol 4σ window rule (docs/alerts.md's zscore example on one symbol). Waits one interval
   so that every rule has run once.
5. Load phase for --duration: the same CPU and probe measurements, plus GET /api/v3/alert_rules
   every interval/4: each change of a rule's `lastEvaluation` is one evaluation, its
   `evaluationTime` that evaluation's duration.

Prints a table: evaluations per second achieved vs due (rules / interval), rules behind
(`lastEvaluation` older than 2 intervals, or never evaluated) at the worst poll and at the end,
rules in error, evaluation durations (p50/p90/p99/max), server CPU per second (load, idle, net)
and net CPU per evaluation, RSS before and after, probe latency idle vs load, and the machine's
load average. The GET polls are part of the load phase's CPU (their own time is printed).

Exits 1 when the server dies or rules are not evaluated (no evaluation in the load phase, or a
rule never evaluated); falling behind is reported (BEHIND), not failed. The server is stopped
and the temporary directory removed at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hg_server import rss_bytes, start_server, stop_server  # noqa: E402

DB = "market"
TABLE = "prices"
NS = 1_000_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROBE_SQL = f"SELECT symbol, last_value(price ORDER BY time) AS price FROM {TABLE} GROUP BY symbol"


def base_price(i: int) -> float:
    return 50.0 + 5.0 * i


def symbol(i: int) -> str:
    return f"S{i:03d}"


class Prices:
    """A random walk per symbol (step 0.1% of its base price), one row a second."""

    def __init__(self, symbols: int, seed: int):
        self.rng = random.Random(seed)
        self.price = [base_price(i) for i in range(symbols)]

    def lines(self, t_ns: int, jumps: bool) -> list[str]:
        out = []
        for i, p in enumerate(self.price):
            step = self.rng.gauss(0, base_price(i) * 0.001)
            if jumps and self.rng.random() < 0.0005:
                step = base_price(i) * 0.01 * self.rng.choice((-1, 1))  # ~10σ
            p = max(1.0, p + step)
            self.price[i] = p
            out.append(f"{TABLE},symbol={symbol(i)} price={p:.4f},volume={self.rng.randint(1, 1000)}i {t_ns}")
        return out


def write(session: requests.Session, url: str, lines: list[str]) -> None:
    r = session.post(f"{url}/api/v2/write", params={"bucket": DB, "precision": "ns"},
                     data="\n".join(lines).encode(), timeout=120)
    if r.status_code not in (200, 204):
        raise RuntimeError(f"write to {DB}.{TABLE} failed: HTTP {r.status_code} {r.text[:300]}")


def rules(count: int, symbols: int, interval: int) -> list[dict]:
    """The rule mix of the module docstring; thresholds so that a few instances fire."""
    out = []
    five_min = "time > now() - INTERVAL '5 minutes'"
    for n in range(count):
        i = n % symbols
        s = symbol(i)
        kind = n % 10
        rule = {"name": f"r{n:05d}", "database": DB, "interval": f"{interval}s", "for": "30s",
                "labels": {"severity": "page" if n % 3 == 0 else "ticket"},
                "annotations": {"summary": "{{ $labels.symbol }} at {{ $value | humanize }}"}}
        if kind < 6:
            # Per symbol: one rule in twenty fires (threshold below the base price).
            threshold = base_price(i) * (0.9 if n % 20 == 0 else 1.05 + 0.01 * kind)
            rule.update(query=f"SELECT symbol, max(price) AS value FROM {TABLE} "
                              f"WHERE {five_min} AND symbol = '{s}' GROUP BY symbol",
                        condition=f"value > {threshold:.2f}")
        elif kind == 6:
            rule.update(query=f"SELECT symbol, count(*) AS value FROM {TABLE} "
                              f"WHERE {five_min} AND symbol = '{s}' GROUP BY symbol",
                        condition="value < 200")
        elif kind == 7:
            # All symbols: the top few exceed the threshold.
            threshold = base_price(symbols - 1 - (n // 10) % 5)
            rule.update(query=f"SELECT symbol, last_value(price ORDER BY time) AS value FROM {TABLE} "
                              f"WHERE {five_min} GROUP BY symbol",
                        condition=f"value > {threshold:.2f}")
        elif kind == 8:
            rule.update(query=f"SELECT symbol, avg(volume) AS value FROM {TABLE} "
                              f"WHERE time > now() - INTERVAL '1 minute' GROUP BY symbol",
                        condition="value > 650")
        else:
            rule.update(
                query=("SELECT symbol, max(abs(z)) AS value FROM (SELECT symbol, time, zscore(price) "
                       "OVER (PARTITION BY symbol ORDER BY time RANGE BETWEEN INTERVAL '5' MINUTE "
                       f"PRECEDING AND CURRENT ROW) AS z FROM {TABLE} WHERE time > now() - INTERVAL "
                       f"'15' MINUTE AND symbol = '{s}') WHERE time > now() - INTERVAL '10' MINUTE "
                       "GROUP BY symbol"),
                condition="value > 4", **{"for": "0s"})
        out.append(rule)
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


class Background:
    """The live writer (one row per symbol a second) and the probe query (every second), in
    threads until stopped; probe latencies go to the current phase's list."""

    def __init__(self, url: str, prices: Prices, proc):
        self.url, self.prices, self.proc = url, prices, proc
        self.stop = threading.Event()
        self.probes: list[float] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._writer, daemon=True),
                        threading.Thread(target=self._probe, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def _writer(self):
        s = requests.Session()
        while not self.stop.wait(1.0 - (time.time() % 1.0)):
            try:
                write(s, self.url, self.prices.lines(time.time_ns(), jumps=True))
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"writer: {e}")

    def _probe(self):
        s = requests.Session()
        while not self.stop.wait(1.0):
            started = time.perf_counter()
            try:
                r = s.post(f"{self.url}/api/v3/query_sql", json={"db": DB, "q": PROBE_SQL, "format": "json"},
                           timeout=120)
                if r.status_code != 200:
                    self.errors.append(f"probe: HTTP {r.status_code} {r.text[:200]}")
                    continue
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"probe: {e}")
                continue
            self.probes.append(time.perf_counter() - started)

    def take_probes(self) -> list[float]:
        out, self.probes = self.probes, []
        return out

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=130)


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def measure_idle(proc, bg: Background, duration: float) -> dict:
    bg.take_probes()
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    end = t0 + duration
    while time.monotonic() < end and proc.poll() is None:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    if proc.poll() is not None:
        raise SystemExit(f"FAIL: the server died during the idle phase (exit {proc.returncode})")
    return {"cpu": cpu_seconds(proc.pid) - cpu0, "seconds": time.monotonic() - t0, "probes": bg.take_probes()}


def measure_load(proc, url: str, bg: Background, duration: float, interval: int) -> dict:
    s = requests.Session()
    last: dict[str, str | None] = {}
    durations: list[float] = []
    evaluations = 0
    polls: list[float] = []
    worst_behind = 0
    final: list[dict] = []

    def poll() -> list[dict]:
        started = time.perf_counter()
        r = s.get(f"{url}/api/v3/alert_rules", timeout=120)
        polls.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise SystemExit(f"FAIL: GET /api/v3/alert_rules: HTTP {r.status_code} {r.text[:300]}")
        return r.json()["rules"]

    for rule in poll():
        last[rule["name"]] = rule.get("lastEvaluation")
    bg.take_probes()
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    end = t0 + duration
    step = interval / 4
    while True:
        time.sleep(max(0.0, min(step, end - time.monotonic())))
        if proc.poll() is not None:
            raise SystemExit(f"FAIL: the server died during the load phase (exit {proc.returncode})")
        final = poll()
        now = time.time()
        behind = 0
        for rule in final:
            at = rule.get("lastEvaluation")
            if at != last.get(rule["name"]):
                evaluations += 1
                if rule.get("evaluationTime") is not None:
                    durations.append(float(rule["evaluationTime"]))
                last[rule["name"]] = at
            seen = parse_time(at)
            if seen is None or now - seen > 2 * interval:
                behind += 1
        worst_behind = max(worst_behind, behind)
        if time.monotonic() >= end:
            break
    seconds = time.monotonic() - t0
    cpu = cpu_seconds(proc.pid) - cpu0
    return {"cpu": cpu, "seconds": seconds, "probes": bg.take_probes(), "evaluations": evaluations,
            "durations": durations, "polls": polls, "worst_behind": worst_behind, "behind": behind,
            "never": sum(1 for r in final if not r.get("lastEvaluation")),
            "errors": [(r["name"], r.get("lastError")) for r in final if r.get("health") == "err"],
            "firing": sum(1 for r in final for a in r.get("alerts", []) if a.get("state") == "firing"),
            "instances": sum(len(r.get("alerts", [])) for r in final)}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    release = os.path.join(root, "target", "release", "hourglass")
    default_bin = release if os.path.exists(release) else os.path.join(root, "target", "debug", "hourglass")
    ap.add_argument("--bin", default=default_bin)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=10, help="seconds")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds, per phase")
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--history-minutes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        print(f"FAIL: no server binary at {a.bin} (cargo build -p hourglass)")
        return 1
    work = tempfile.mkdtemp(prefix="hg-alert-load-")
    try:
        return run(a, work)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(a, work: str) -> int:
    load_before = os.getloadavg()
    proc, url, _ = start_server(a.bin, os.path.join(work, "data"))
    bg = None
    try:
        prices = Prices(a.symbols, a.seed)
        s = requests.Session()
        started = time.perf_counter()
        now = time.time_ns() // NS * NS
        seconds = a.history_minutes * 60
        batch: list[str] = []
        for k in range(seconds, 0, -1):
            batch.extend(prices.lines(now - k * NS, jumps=False))
            if len(batch) >= 50_000:
                write(s, url, batch)
                batch = []
        if batch:
            write(s, url, batch)
        rows = seconds * a.symbols
        print(f"binary {a.bin}; loaded {rows:,} rows ({a.symbols} symbols x {a.history_minutes} min at 1 s) "
              f"in {time.perf_counter() - started:.1f} s")

        bg = Background(url, prices, proc)
        bg.start()
        time.sleep(2)
        rss_idle = rss_bytes(proc.pid)
        print(f"idle phase: {a.duration:g} s without rules ...", flush=True)
        idle = measure_idle(proc, bg, a.duration)

        started = time.perf_counter()
        for rule in rules(a.rules, a.symbols, a.interval):
            r = s.post(f"{url}/api/v3/alert_rules", json=rule, timeout=120)
            if r.status_code != 201:
                print(f"FAIL: creating rule {rule['name']}: HTTP {r.status_code} {r.text[:300]}")
                return 1
        created = time.perf_counter() - started
        print(f"created {a.rules} rules in {created:.1f} s; warming up one interval ...", flush=True)
        time.sleep(a.interval)
        rss_before = rss_bytes(proc.pid)
        print(f"load phase: {a.duration:g} s ...", flush=True)
        load = measure_load(proc, url, bg, a.duration, a.interval)
        rss_after = rss_bytes(proc.pid)
        load_after = os.getloadavg()
    finally:
        if bg:
            bg.close()
        alive = proc.poll() is None
        stop_server(proc)
    if not alive:
        print(f"FAIL: the server died (exit {proc.returncode})")
        return 1

    due = a.rules / a.interval
    rate = load["evaluations"] / load["seconds"]
    idle_cpu = idle["cpu"] / idle["seconds"]
    load_cpu = load["cpu"] / load["seconds"]
    net_per_eval = (load_cpu - idle_cpu) / rate if rate else float("nan")
    d = load["durations"]
    rows = [
        ("rules / interval", f"{a.rules} / {a.interval} s"),
        ("rule creation (POST each)", f"{created:.1f} s ({created / a.rules * 1000:.1f} ms/rule)"),
        ("evaluations/s achieved vs due", f"{rate:.1f} vs {due:.1f} ({load['evaluations']} in {load['seconds']:.0f} s)"),
        ("rules behind (>2 intervals): worst poll, end", f"{load['worst_behind']}, {load['behind']}"),
        ("rules in error / never evaluated", f"{len(load['errors'])} / {load['never']}"),
        ("alert instances (firing)", f"{load['instances']} ({load['firing']})"),
        ("evaluation p50 / p90 / p99 / max",
         " / ".join(ms(pct(d, q)) for q in (50, 90, 99, 100)) + f" (n={len(d)})"),
        ("server CPU idle (no rules)", f"{idle_cpu * 100:.1f}% of a core"),
        ("server CPU with rules", f"{load_cpu * 100:.1f}% of a core"),
        ("net CPU per evaluation", ms(net_per_eval)),
        ("RSS idle / rules before / after", f"{rss_idle / 2**20:.0f} / {rss_before / 2**20:.0f} / {rss_after / 2**20:.0f} MiB"),
        ("probe lastpoint idle p50 / p90 / max",
         " / ".join(ms(pct(idle["probes"], q)) for q in (50, 90, 100)) + f" (n={len(idle['probes'])})"),
        ("probe lastpoint load p50 / p90 / max",
         " / ".join(ms(pct(load["probes"], q)) for q in (50, 90, 100)) + f" (n={len(load['probes'])})"),
        ("GET alert_rules poll p50 / max", f"{ms(pct(load['polls'], 50))} / {ms(pct(load['polls'], 100))} (n={len(load['polls'])})"),
        ("load average before / after", f"{load_before[0]:.2f} / {load_after[0]:.2f} ({os.cpu_count()} CPUs)"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    for name, error in load["errors"][:5]:
        print(f"  error: {name}: {error}")
    for e in (bg.errors if bg else [])[:5]:
        print(f"  client: {e}")

    if rate < 0.95 * due or load["behind"]:
        print(f"BEHIND: {rate:.1f} evaluations/s of {due:.1f} due, {load['behind']} rule(s) behind "
              "(missed evaluations are skipped; reported, not failed)")
    failed = []
    if not load["evaluations"]:
        failed.append("no rule was evaluated during the load phase")
    if load["never"]:
        failed.append(f"{load['never']} rule(s) never evaluated")
    for f in failed:
        print(f"FAIL: {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
