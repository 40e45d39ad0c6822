"""Query sets of the side-by-side benchmark, in each engine's language.

TSBS cpu-only (timescale/tsbs cmd/tsbs_generate_queries/uses/devops): windows and hosts are drawn
from a seeded RNG; a window longer than the data (quick mode) is clamped to the data's span.
Hourglass gets DataFusion SQL (date_bin), DuckDB SQL (time_bucket), InfluxDB InfluxQL (None where
InfluxQL cannot express the query). Each query names its result columns (`cols`) and which of
them are timestamps (`tcols`); InfluxDB's `time` column is renamed to `influx_time`.
"""

import random

from sbs_data import FIELDS

NS = 1_000_000_000
HOUR = 3600 * NS


def ts_sql(ns):
    s, frac = divmod(ns, NS)
    import datetime
    d = datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"TIMESTAMP '{d}'" if frac == 0 else f"TIMESTAMP '{d}.{frac:09d}'"


def bucket(engine, interval, col="time"):
    if engine == "hourglass":
        return f"date_bin(INTERVAL '{interval}', {col})"
    return f"time_bucket(INTERVAL '{interval}', {col})"


def Q(name, cols, tcols, hg, duck, influx, influx_time=None, group="tsbs"):
    return {"name": name, "cols": cols, "tcols": set(tcols), "hourglass": hg, "duckdb": duck,
            "influx": influx, "influx_time": influx_time or (tcols[0] if tcols else "time"),
            "group": group}


def tsbs_queries(meta, seed):
    rng = random.Random(seed)
    start, end = meta["start_ns"], meta["end_ns"]
    span = end - start
    hosts = meta["hostnames"]

    def window(dur):
        d = min(dur, span)
        off = rng.randint(0, (span - d) // NS) * NS
        return start + off, start + off + d

    def pick(n):
        return rng.sample(hosts, min(n, len(hosts)))

    def time_where(a, b):
        return f"time >= {ts_sql(a)} AND time < {ts_sql(b)}"

    def influx_time(a, b):
        return f"time >= {a} AND time < {b}"

    out = []

    def groupby(name, metrics, hs, a, b, interval, influx_interval, agg="max"):
        fs = FIELDS[:metrics]
        alias = [f"{agg}_{f}" for f in fs]
        sel = ", ".join(f"{agg}({f}) AS {al}" for f, al in zip(fs, alias))
        hosts_in = ", ".join(f"'{h}'" for h in hs)
        sqls = {}
        for eng in ("hourglass", "duckdb"):
            sqls[eng] = (f"SELECT {bucket(eng, interval)} AS bucket, {sel} FROM cpu "
                         f"WHERE hostname IN ({hosts_in}) AND {time_where(a, b)} GROUP BY 1 ORDER BY 1")
        ors = " OR ".join(f"hostname = '{h}'" for h in hs)
        iq = (f"SELECT {sel} FROM cpu WHERE ({ors}) AND {influx_time(a, b)} "
              f"GROUP BY time({influx_interval}) fill(none)")
        out.append(Q(name, ["bucket"] + alias, ["bucket"], sqls["hourglass"], sqls["duckdb"], iq))

    for m, h, t in [(1, 1, 1), (1, 1, 12), (1, 8, 1), (5, 1, 1), (5, 1, 12), (5, 8, 1)]:
        a, b = window(t * HOUR)
        groupby(f"single-groupby-{m}-{h}-{t}", m, pick(h), a, b, "1 minute", "1m")
    for h in (1, 8):
        a, b = window(8 * HOUR)
        groupby(f"cpu-max-all-{h}", 10, pick(h), a, b, "1 hour", "1h")

    for n, label in [(1, "1"), (5, "5"), (10, "all")]:
        a, b = window(12 * HOUR)
        fs = FIELDS[:n]
        alias = [f"mean_{f}" for f in fs]
        sel = ", ".join(f"avg({f}) AS {al}" for f, al in zip(fs, alias))
        isel = ", ".join(f"mean({f}) AS {al}" for f, al in zip(fs, alias))
        sqls = {eng: (f"SELECT {bucket(eng, '1 hour')} AS bucket, hostname, {sel} FROM cpu "
                      f"WHERE {time_where(a, b)} GROUP BY 1, 2 ORDER BY 1, 2") for eng in ("hourglass", "duckdb")}
        iq = f"SELECT {isel} FROM cpu WHERE {influx_time(a, b)} GROUP BY time(1h), hostname fill(none)"
        out.append(Q(f"double-groupby-{label}", ["bucket", "hostname"] + alias, ["bucket"],
                     sqls["hourglass"], sqls["duckdb"], iq))

    for label, n in [("1", 1), ("all", 0)]:
        a, b = window(12 * HOUR)
        cols = ", ".join(FIELDS)
        hw = f" AND hostname = '{pick(1)[0]}'" if n else ""
        sql = f"SELECT time, hostname, {cols} FROM cpu WHERE usage_user > 90 AND {time_where(a, b)}{hw}"
        iq = f"SELECT hostname, {cols} FROM cpu WHERE usage_user > 90 AND {influx_time(a, b)}{hw}"
        out.append(Q(f"high-cpu-{label}", ["time", "hostname"] + FIELDS, ["time"], sql, sql, iq))

    cols = ", ".join(FIELDS)
    sql = f"SELECT DISTINCT ON (hostname) hostname, time, {cols} FROM cpu ORDER BY hostname, time DESC"
    iq = f"SELECT {cols} FROM cpu GROUP BY hostname ORDER BY time DESC LIMIT 1"
    out.append(Q("lastpoint", ["hostname", "time"] + FIELDS, ["time"], sql, sql, iq))

    # groupby-orderby-limit: the window's end is random (TSBS: RandWindow(1h).End).
    _, e = window(1 * HOUR)
    sqls = {eng: (f"SELECT {bucket(eng, '1 minute')} AS bucket, max(usage_user) AS max_usage_user FROM cpu "
                  f"WHERE time < {ts_sql(e)} GROUP BY 1 ORDER BY 1 DESC LIMIT 5") for eng in ("hourglass", "duckdb")}
    # InfluxQL needs a lower bound for GROUP BY time(); the data's start changes nothing.
    iq = (f"SELECT max(usage_user) AS max_usage_user FROM cpu WHERE time >= {start} AND time < {e} "
          f"GROUP BY time(1m) fill(none) ORDER BY time DESC LIMIT 5")
    out.append(Q("groupby-orderby-limit", ["bucket", "max_usage_user"], ["bucket"],
                 sqls["hourglass"], sqls["duckdb"], iq))
    return out


def finance_queries(meta, seed):
    rng = random.Random(seed + 7)
    start, end = meta["start_ns"], meta["end_ns"]
    tw = f"time >= {start} AND time < {end}"
    out = []

    ohlcv = {
        "hourglass": (f"SELECT symbol, {bucket('hourglass', '1 minute')} AS bucket, "
                      "first_value(price ORDER BY time) AS open, max(price) AS high, min(price) AS low, "
                      "last_value(price ORDER BY time) AS close, sum(size) AS volume "
                      "FROM trades GROUP BY 1, 2 ORDER BY 1, 2"),
        "duckdb": (f"SELECT symbol, {bucket('duckdb', '1 minute')} AS bucket, arg_min(price, time) AS open, "
                   "max(price) AS high, min(price) AS low, arg_max(price, time) AS close, sum(size) AS volume "
                   "FROM trades GROUP BY 1, 2 ORDER BY 1, 2"),
    }
    out.append(Q("ohlcv-1m", ["symbol", "bucket", "open", "high", "low", "close", "volume"], ["bucket"],
                 ohlcv["hourglass"], ohlcv["duckdb"],
                 "SELECT first(price) AS open, max(price) AS high, min(price) AS low, last(price) AS close, "
                 f"sum(size) AS volume FROM trades WHERE {tw} GROUP BY time(1m), symbol fill(none)",
                 group="finance"))

    vw = {eng: (f"SELECT symbol, {bucket(eng, '5 minutes')} AS bucket, sum(price * size) / sum(size) AS vwap, "
                "sum(size) AS volume FROM trades GROUP BY 1, 2 ORDER BY 1, 2") for eng in ("hourglass", "duckdb")}
    out.append(Q("vwap-5m", ["symbol", "bucket", "vwap", "volume"], ["bucket"], vw["hourglass"], vw["duckdb"],
                 f"SELECT sum(pv) / sum(size) AS vwap, sum(size) AS volume FROM "
                 f"(SELECT price * size AS pv, size FROM trades WHERE {tw} GROUP BY symbol) "
                 f"WHERE {tw} GROUP BY time(5m), symbol fill(none)", group="finance"))

    lq = ("SELECT DISTINCT ON (symbol) symbol, time, exchange, bid, ask, bid_size, ask_size FROM quotes "
          "ORDER BY symbol, time DESC")
    out.append(Q("last-quote", ["symbol", "time", "exchange", "bid", "ask", "bid_size", "ask_size"], ["time"],
                 lq, lq, "SELECT exchange, bid, ask, bid_size, ask_size FROM quotes GROUP BY symbol "
                 "ORDER BY time DESC LIMIT 1", group="finance"))

    sp = {eng: (f"SELECT symbol, {bucket(eng, '1 hour')} AS bucket, avg(ask - bid) AS avg_spread, "
                "min(ask - bid) AS min_spread, max(ask - bid) AS max_spread, count(*) AS quotes "
                "FROM quotes GROUP BY 1, 2 ORDER BY 1, 2") for eng in ("hourglass", "duckdb")}
    out.append(Q("spread-1h", ["symbol", "bucket", "avg_spread", "min_spread", "max_spread", "quotes"], ["bucket"],
                 sp["hourglass"], sp["duckdb"],
                 "SELECT mean(spread) AS avg_spread, min(spread) AS min_spread, max(spread) AS max_spread, "
                 f"count(spread) AS quotes FROM (SELECT ask - bid AS spread FROM quotes WHERE {tw} GROUP BY symbol) "
                 f"WHERE {tw} GROUP BY time(1h), symbol fill(none)", group="finance"))

    sym = rng.choice(meta["symbols"])
    # Hourglass's ASOF JOIN (Snowflake's syntax) and DuckDB's say the same thing.
    hg_asof = (
        f"SELECT t.time, t.price, t.size, q.bid, q.ask FROM (SELECT time, price, size FROM trades WHERE symbol = '{sym}') t "
        f"ASOF JOIN (SELECT time, bid, ask FROM quotes WHERE symbol = '{sym}') q MATCH_CONDITION (t.time >= q.time) "
        "ORDER BY t.time")
    duck_asof = (
        f"SELECT t.time, t.price, t.size, q.bid, q.ask FROM (SELECT * FROM trades WHERE symbol = '{sym}') t "
        f"ASOF LEFT JOIN (SELECT * FROM quotes WHERE symbol = '{sym}') q ON t.time >= q.time ORDER BY t.time")
    out.append(Q("asof-trades-quotes", ["time", "price", "size", "bid", "ask"], ["time"], hg_asof, duck_asof, None,
                 group="finance"))
    return out
