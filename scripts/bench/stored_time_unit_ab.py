#!/usr/bin/env python3
"""Queries over Parquet files whose `time` is stored in milliseconds against the same rows stored
in nanoseconds, on identical file layouts.

    .venv-test/bin/python scripts/bench/stored_time_unit_ab.py --bin target/release/hourglass \
        [--hosts 1000] [--hours 24] [--symbols 50] [--rounds 6] [--tmp /tmp] [--keep]

Loads the side-by-side data sets (scripts/bench/sbs_data.py) into two data directories, one with
`HOURGLASS_STORED_TIME_UNIT=nanosecond` (the format before `stored_time_unit.rs`), flushes, and
rewrites every day by series (`HOURGLASS_REWRITE_DAYS_BY_SERIES`, `/admin/compact`) so both hold
the same rows in the same files; the default persist cuts a day into time slices whose number
depends on timing, which moves single queries by ±30 % between loads on a 2-core machine. Then,
for `--rounds` rounds, starts a server on each directory in turn and times each query's median
of 25 over one keep-alive connection (after 3 unmeasured), and prints each query's range of
medians per unit, the change of their median and of their minimum (the round least disturbed by
the rest of the machine), and whether both answered the same.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbs_data as D  # noqa: E402
import sbs_engines as E  # noqa: E402

QUERIES = {
    "one host, 1 h, by minute": ("benchmark",
        "SELECT date_bin(INTERVAL '1 minute', time) AS m, max(usage_user) AS u FROM cpu "
        "WHERE hostname IN ('host_274') AND time >= TIMESTAMP '2016-01-01 01:54:23' "
        "AND time < TIMESTAMP '2016-01-01 02:54:23' GROUP BY 1 ORDER BY 1"),
    "one host, 8 h, by minute": ("benchmark",
        "SELECT date_bin(INTERVAL '1 minute', time) AS m, max(usage_user) AS u FROM cpu "
        "WHERE hostname IN ('host_274') AND time >= TIMESTAMP '2016-01-01 05:54:23' "
        "AND time < TIMESTAMP '2016-01-01 13:54:23' GROUP BY 1 ORDER BY 1"),
    "8 hosts, 8 h, 10 fields by hour": ("benchmark",
        "SELECT date_bin(INTERVAL '1 hour', time) AS h, " + ", ".join(
            f"max({f})" for f in ["usage_user", "usage_system", "usage_idle", "usage_nice",
                                  "usage_iowait", "usage_irq", "usage_softirq", "usage_steal",
                                  "usage_guest", "usage_guest_nice"]) +
        " FROM cpu WHERE hostname IN ('host_1','host_22','host_333','host_444','host_555',"
        "'host_666','host_777','host_888') AND time >= TIMESTAMP '2016-01-01 03:00:00' "
        "AND time < TIMESTAMP '2016-01-01 11:00:00' GROUP BY 1 ORDER BY 1"),
    "every host, 12 h, by hour": ("benchmark",
        "SELECT date_bin(INTERVAL '1 hour', time) AS h, hostname, avg(usage_user) FROM cpu "
        "WHERE time >= TIMESTAMP '2016-01-01 00:00:00' AND time < TIMESTAMP '2016-01-01 12:00:00' "
        "GROUP BY 1, 2 ORDER BY 1, 2"),
    "trades by symbol and minute": ("market",
        "SELECT symbol, date_bin(INTERVAL '1 minute', time) AS m, min(price), max(price), "
        "sum(size) FROM trades GROUP BY 1, 2 ORDER BY 1, 2"),
    "quotes by symbol and hour": ("market",
        "SELECT symbol, date_bin(INTERVAL '1 hour', time) AS h, count(*), max(ask) FROM quotes "
        "GROUP BY 1, 2 ORDER BY 1, 2"),
    "quotes over 10 min, sub-second bounds": ("market",
        "SELECT symbol, count(*), max(bid) FROM quotes WHERE time >= TIMESTAMP "
        "'2016-01-01 15:00:00.5' AND time < TIMESTAMP '2016-01-01 15:10:00.25' "
        "GROUP BY 1 ORDER BY 1"),
}


def serve(binary, data_dir, log, env):
    p = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--http-addr", "127.0.0.1:0",
         "--pg-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, env=dict(os.environ, HOURGLASS_LOG="warn", **env))
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stdout.readline().decode(errors="replace")
        if line.startswith("http listening on "):
            return p, "http://" + line.split("on ", 1)[1].strip()
        if not line:
            break
    p.kill()
    raise RuntimeError("hourglass did not start")


def stop(p):
    p.terminate()
    p.wait(60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/hourglass")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the two data directories")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="hg-time-unit-", dir=a.tmp)
    log = open(f"{tmp}/hourglass.log", "ab")
    units = {"nanoseconds": {"HOURGLASS_STORED_TIME_UNIT": "nanosecond"}, "milliseconds": {}}
    try:
        tsbs, tsbs_bodies, _ = D.tsbs_cpu(a.hosts, a.hours, 1, f"{tmp}/tsbs.lp")
        _, _, qb, tb, _ = D.market(a.symbols, 390, 1, f"{tmp}/q.lp", f"{tmp}/t.lp")
        for unit, env in units.items():
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                hg = E.Hourglass(binary, f"{tmp}/{unit}", f"{tmp}/hourglass.log")
                for db, path, bodies in [("benchmark", f"{tmp}/tsbs.lp", tsbs_bodies),
                                         ("market", f"{tmp}/q.lp", qb), ("market", f"{tmp}/t.lp", tb)]:
                    E.load(hg, db, path, bodies, 2)
                hg.settle()
                hg.stop()
            finally:
                for k, v in saved.items():
                    os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            p, url = serve(binary, f"{tmp}/{unit}", log,
                           dict(env, HOURGLASS_REWRITE_DAYS_BY_SERIES="true"))
            r = requests.post(f"{url}/admin/compact", timeout=600)
            print(f"{unit}: rewritten by series: {r.status_code} {r.text}", flush=True)
            stop(p)
        medians = {u: {q: [] for q in QUERIES} for u in units}
        answers = {u: {} for u in units}
        for _ in range(a.rounds):
            for unit in units:
                p, url = serve(binary, f"{tmp}/{unit}", log, {})
                s = requests.Session()
                for name, (db, sql) in QUERIES.items():
                    params = {"db": db, "q": sql, "format": "json"}
                    for _ in range(3):
                        r = s.get(f"{url}/api/v3/query_sql", params=params, timeout=60)
                        assert r.status_code == 200, r.text
                    answers[unit][name] = r.json()
                    times = []
                    for _ in range(25):
                        t0 = time.perf_counter()
                        s.get(f"{url}/api/v3/query_sql", params=params, timeout=60)
                        times.append(time.perf_counter() - t0)
                    medians[unit][name].append(statistics.median(times) * 1000)
                stop(p)
        print("| query | rows | nanoseconds ms | milliseconds ms | change: median | minimum "
              "| same answers |")
        print("|---|---|---|---|---|---|---|")
        for name in QUERIES:
            ns, ms = medians["nanoseconds"][name], medians["milliseconds"][name]
            same = answers["nanoseconds"][name] == answers["milliseconds"][name]
            change = 100 * (statistics.median(ms) / statistics.median(ns) - 1)
            best = 100 * (min(ms) / min(ns) - 1)
            print(f"| {name} | {len(answers['milliseconds'][name])} | {min(ns):.2f}–{max(ns):.2f} | "
                  f"{min(ms):.2f}–{max(ms):.2f} | {change:+.0f} % | {best:+.0f} % | {same} |")
    finally:
        log.close()
        if a.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
