"""The anomaly example of docs/alerts.md on the side-by-side market data: trades from
`sbs_data.market` (the generator and seed of scripts/bench/side_by_side.py), a price beyond 4σ of
the trailing 5 minutes found in SQL with `zscore`, then the same condition as an alert rule that
must fire.

    .venv-test/bin/python scripts/bench/market_anomaly.py --binary target/release/hourglass \
        [--symbols 50] [--minutes 390] [--seed 42]

Prints: rows loaded, the number of 4σ trades per symbol (the SQL's answer, checked against the
same z-scores computed here in Python from the loaded rows), the query's time, and the rule's
state after its first evaluations (it must be firing, one instance per symbol with a 4σ trade in
the last 10 minutes of the session). The server is started on 127.0.0.1 with a temporary data
directory and stopped at the end; the temporary directory (data, line protocol) is removed
unless --keep.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sbs_data  # noqa: E402
import sbs_engines  # noqa: E402

DB = "market"
NS = 1_000_000_000
WINDOW_NS = 5 * 60 * NS

ZSCORE_SQL = """
SELECT symbol, time, price, z FROM (
  SELECT symbol, time, price,
         zscore(price) OVER (PARTITION BY symbol ORDER BY time
             RANGE BETWEEN INTERVAL '5' MINUTE PRECEDING AND CURRENT ROW) AS z
  FROM trades
  WHERE time >= {lo} AND time < {hi})
WHERE abs(z) > 4
ORDER BY symbol, time
"""

RULE_SQL = """
SELECT symbol, max(abs(z)) AS value FROM (
  SELECT symbol, time,
         zscore(price) OVER (PARTITION BY symbol ORDER BY time
             RANGE BETWEEN INTERVAL '5' MINUTE PRECEDING AND CURRENT ROW) AS z
  FROM trades
  WHERE time >= {lo} AND time < {hi})
WHERE time >= {check_from}
GROUP BY symbol
"""


def ts(ns: int) -> str:
    return f"to_timestamp_nanos({ns})"


def query(url: str, sql: str) -> list[dict]:
    r = requests.post(f"{url}/api/v3/query_sql", json={"db": DB, "q": sql, "format": "json"}, timeout=3600)
    if r.status_code != 200:
        raise RuntimeError(f"query failed: HTTP {r.status_code} {r.text[:1000]}")
    return r.json()


def python_hits(rows: list[dict], since: int = 0) -> list[tuple[str, int]]:
    """(symbol, time) of every trade at or after `since` beyond 4σ, by the definition of
    docs/anomaly.md: the trade against the trades of the 5 minutes before it (RANGE frame: from
    time − 5 min inclusive), sample standard deviation, no score with fewer than two baseline
    values or none of spread. Rows at one time are RANGE peers sharing one frame, scored as its
    last row (the function scores the frame's last row), so they share one score."""
    by_symbol: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        by_symbol[r["symbol"]].append((r["t"], r["price"]))
    hits: list[tuple[str, int]] = []
    for sym, pts in by_symbol.items():
        pts.sort()
        lo = 0
        i = 0
        while i < len(pts):
            t = pts[i][0]
            j = i
            while j + 1 < len(pts) and pts[j + 1][0] == t:
                j += 1
            while pts[lo][0] < t - WINDOW_NS:
                lo += 1
            frame = pts[lo:j + 1]
            last = frame[-1][1]
            base = [p for _, p in frame[:-1]]
            if t >= since and len(base) >= 2:
                mean = sum(base) / len(base)
                var = sum((b - mean) ** 2 for b in base) / (len(base) - 1)
                if var > 0 and abs((last - mean) / math.sqrt(var)) > 4:
                    hits.extend((sym, t) for _ in range(j - i + 1))
            i = j + 1
    return hits


def per_symbol(hits) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for sym, _ in hits:
        out[sym] += 1
    return dict(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/hourglass")
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=390.0)
    ap.add_argument("--seed", type=int, default=42, help="side_by_side.py's default seed")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="hg-market-anomaly-")
    try:
        return run(a, work)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(a, work: str) -> int:
    q_lp, t_lp = os.path.join(work, "quotes.lp"), os.path.join(work, "trades.lp")
    _, trades, _, t_bodies, meta = sbs_data.market(a.symbols, a.minutes, a.seed, q_lp, t_lp)
    lo, hi = meta["start_ns"], meta["end_ns"]
    print(f"market data: {a.symbols} symbols x {a.minutes:g} min, {trades.num_rows:,} trades "
          f"({time.strftime('%Y-%m-%d %H:%M', time.gmtime(lo / NS))} UTC onwards)")

    server = sbs_engines.Hourglass(a.binary, os.path.join(work, "data"), os.path.join(work, "hourglass.log"))
    try:
        seconds, _ = sbs_engines.load(server, DB, t_lp, t_bodies, workers=2)
        print(f"loaded {trades.num_rows:,} trades in {seconds:.1f} s")

        started = time.perf_counter()
        hits = query(server.url, ZSCORE_SQL.format(lo=ts(lo), hi=ts(hi)))
        elapsed = time.perf_counter() - started
        found = per_symbol((h["symbol"], 0) for h in hits)
        print(f"4σ trades: {len(hits):,} in {len(found)} of {a.symbols} symbols "
              f"(query over the whole session: {elapsed:.2f} s)")
        for h in hits[:5]:
            print(f"  {h['symbol']} {h['time']} price {h['price']} z {h['z']:.2f}")

        rows = query(server.url, f"SELECT symbol, CAST(time AS BIGINT) AS t, price FROM trades "
                                 f"WHERE time >= {ts(lo)} AND time < {ts(hi)}")
        expected = per_symbol(python_hits(rows))
        if found != expected:
            diff = {s: (found.get(s), expected.get(s))
                    for s in set(found) | set(expected) if found.get(s) != expected.get(s)}
            print(f"MISMATCH with the Python computation (symbol: (SQL, Python)): {diff}")
            return 1
        print("the SQL's answer equals the Python computation of the same definition")

        # The rule: the last 10 minutes of the session (with 5 minutes of history before them).
        check_from = hi - 10 * 60 * NS
        rule = {
            "name": "PriceJump4Sigma",
            "database": DB,
            "query": RULE_SQL.format(lo=ts(check_from - WINDOW_NS), hi=ts(hi), check_from=ts(check_from)),
            "condition": "value > 4",
            "interval": "1s",
            "for": "0s",
            "labels": {"severity": "page"},
            "annotations": {"summary": "{{ $labels.symbol }} moved {{ $value | printf \"%.1f\" }}σ from its trailing 5 minutes"},
        }
        r = requests.post(f"{server.url}/api/v3/alert_rules", json=rule, timeout=60)
        if r.status_code not in (200, 201):
            print(f"creating the rule failed: HTTP {r.status_code} {r.text[:500]}")
            return 1
        deadline = time.monotonic() + 120
        state = None
        while time.monotonic() < deadline:
            state = requests.get(f"{server.url}/api/v3/alert_rules/{rule['name']}", timeout=60).json()
            if state.get("lastEvaluation") and state.get("health") != "unknown":
                break
            time.sleep(0.5)
        firing = [x for x in state.get("alerts", []) if x.get("state") == "firing"]
        window_rows = [r for r in rows if r["t"] >= check_from - WINDOW_NS]
        expected_firing = {sym for sym, _ in python_hits(window_rows, since=check_from)}
        print(f"rule {rule['name']}: health {state.get('health')}, {len(firing)} firing instance(s)"
              f"{', error ' + state['lastError'] if state.get('lastError') else ''}")
        for x in firing[:5]:
            print(f"  {x['labels'].get('symbol')}: value {x.get('value')}: {x['annotations'].get('summary')}")
        if state.get("health") != "ok" or not firing:
            print("the rule did not fire")
            return 1
        # The instances are exactly the symbols with a 4σ trade inside the checked 10 minutes.
        in_window = {x["labels"]["symbol"] for x in firing}
        print(f"firing for {len(in_window)} symbols; symbols with a 4σ trade in the last 10 minutes "
              f"(Python): {len(expected_firing)}")
        if in_window != expected_firing:
            print(f"MISMATCH: firing only {sorted(in_window - expected_firing)}, "
                  f"expected only {sorted(expected_firing - in_window)}")
            return 1
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
