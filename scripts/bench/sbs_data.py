"""Data sets of the side-by-side benchmark (scripts/bench/side_by_side.py).

TSBS cpu-only (timescale/tsbs devops use case): per host 10 tags and 10 integer fields that are
clamped random walks (step N(0,1), clamp [0, 100], start U(0, 100)), one row per host every
interval, line protocol ordered by time then host. Market data: a regular session (09:30-16:00
New York, 14:30-21:00 UTC, 390 minutes by default); per symbol an activity weight (log-normal), a
random-walk mid, quotes (bid/ask/sizes) and trades at the prevailing bid or ask, arriving as
Poisson processes whose intensity bursts at the open and at the close (U-shaped: five times the
midday rate at the bell, decaying over the first and last 15 minutes). Rates are calibrated to
about 40,000 quotes and 10,000 trades per symbol per session (20 M quotes and 5 M trades for 500
symbols). Everything is deterministic from the seed (numpy PCG64).

Both produce an Arrow table (for the Parquet files DuckDB reads) and a line protocol file cut into
requests of `batch_lines` lines, described by (offset, length) pairs so that the ingest workers
can pread() them.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

START_NS = 1_451_606_400_000_000_000  # 2016-01-01T00:00:00Z, as TSBS

REGIONS = [
    ("us-east-1", ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"]),
    ("us-west-1", ["us-west-1a", "us-west-1b"]),
    ("us-west-2", ["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", ["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", ["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", ["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", ["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", ["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
]
OSES = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"]
ARCHES = ["x64", "x86"]
TEAMS = ["SF", "NYC", "LON", "CHI"]
ENVS = ["production", "staging", "test"]
TAGS = ["hostname", "region", "datacenter", "rack", "os", "arch", "team", "service",
        "service_version", "service_environment"]
FIELDS = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait", "usage_irq",
          "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"]
EXCHANGES = ["NYSE", "NASDAQ", "ARCA", "BATS", "IEX"]

CHUNK_ROWS = 500_000  # rows formatted at a time (keeps Arrow string offsets under 2 GiB)


def _lp_chunk(pieces):
    """Joins element-wise pieces (arrays or str scalars) into lines ending in '\\n'; returns bytes."""
    arr = pc.binary_join_element_wise(*pieces, "\n", "")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    return data.to_pybytes()[offsets[0]:offsets[-1]], offsets - offsets[0]


def _write_lp(f, table_pieces_fn, nrows, batch_lines):
    """Writes line protocol for rows [0, nrows) chunk by chunk; returns [(offset, length, lines)]."""
    bodies = []
    pos = f.tell()
    chunk = max(batch_lines, (CHUNK_ROWS // batch_lines) * batch_lines)
    for lo in range(0, nrows, chunk):
        hi = min(nrows, lo + chunk)
        data, offs = _lp_chunk(table_pieces_fn(lo, hi))
        f.write(data)
        for b in range(0, hi - lo, batch_lines):
            e = min(hi - lo, b + batch_lines)
            bodies.append((pos + int(offs[b]), int(offs[e] - offs[b]), e - b))
        pos += len(data)
    return bodies


def tsbs_cpu(hosts, hours, seed, lp_path, batch_lines=10_000, interval_s=10):
    rng = np.random.Generator(np.random.PCG64(seed))
    steps = int(round(hours * 3600 / interval_s))
    tag_values = {t: [] for t in TAGS}
    for i in range(hosts):
        region, zones = REGIONS[rng.integers(len(REGIONS))]
        tag_values["hostname"].append(f"host_{i}")
        tag_values["region"].append(region)
        tag_values["datacenter"].append(zones[rng.integers(len(zones))])
        tag_values["rack"].append(str(rng.integers(100)))
        tag_values["os"].append(OSES[rng.integers(3)])
        tag_values["arch"].append(ARCHES[rng.integers(2)])
        tag_values["team"].append(TEAMS[rng.integers(4)])
        tag_values["service"].append(str(rng.integers(20)))
        tag_values["service_version"].append(str(rng.integers(2)))
        tag_values["service_environment"].append(ENVS[rng.integers(3)])
    # Clamped random walks, rounded to integers: values[step, host, field] in 0..100.
    values = np.empty((steps, hosts, 10), dtype=np.int8)
    v = rng.uniform(0, 100, size=(hosts, 10))
    for s in range(steps):
        v += rng.standard_normal((hosts, 10))
        np.clip(v, 0, 100, out=v)
        values[s] = np.rint(v)
    n = steps * hosts
    host_idx = np.tile(np.arange(hosts, dtype=np.int32), steps)
    times = np.repeat(START_NS + np.arange(steps, dtype=np.int64) * interval_s * 1_000_000_000, hosts)
    flat = values.reshape(n, 10)
    cols = {}
    for t in TAGS:
        cols[t] = pa.DictionaryArray.from_arrays(pa.array(host_idx), pa.array(tag_values[t]))
    cols["time"] = pa.array(times, type=pa.timestamp("ns"))
    for j, fname in enumerate(FIELDS):
        cols[fname] = pa.array(flat[:, j].astype(np.int64))
    table = pa.table(cols)

    keys = pa.array([
        "cpu," + ",".join(f"{t}={tag_values[t][i]}" for t in TAGS) + " " for i in range(hosts)])
    time_str = pc.cast(pa.array(times), pa.string())

    def pieces(lo, hi):
        out = [keys.take(pa.array(host_idx[lo:hi]))]
        for j, fname in enumerate(FIELDS):
            out.append(("," if j else "") + fname + "=")
            out.append(pc.cast(cols[fname].slice(lo, hi - lo), pa.string()))
            out.append("i")
        out.append(" ")
        out.append(time_str.slice(lo, hi - lo))
        return out

    with open(lp_path, "wb") as f:
        bodies = _write_lp(f, pieces, n, batch_lines)
    meta = {"rows": n, "values": n * 10, "hosts": hosts, "steps": steps, "start_ns": START_NS,
            "end_ns": START_NS + steps * interval_s * 1_000_000_000, "interval_ns": interval_s * 10**9,
            "hostnames": tag_values["hostname"]}
    return table, bodies, meta


QUOTES_PER_SYMBOL_SESSION = 40_000   # per 390-minute session, scaled to the span asked for
TRADES_PER_SYMBOL_SESSION = 10_000
SESSION_MINUTES = 390
OPEN_OFFSET_NS = (14 * 3600 + 30 * 60) * 1_000_000_000  # 09:30 New York = 14:30 UTC
BURST = 4.0  # extra intensity at the bell, as a multiple of the midday rate


def _intensity_clock(span_ms):
    """Cumulative intensity of the U-shaped session profile on a 1-second grid, normalised to 1."""
    t = np.arange(0, span_ms + 1000, 1000, dtype=np.float64)
    tau = span_ms / 26.0  # 15 minutes of a 390-minute session
    lam = 1.0 + BURST * (np.exp(-t / tau) + np.exp(-(span_ms - t) / tau))
    cum = np.concatenate([[0.0], np.cumsum((lam[1:] + lam[:-1]) / 2)])
    return t, cum / cum[-1]


def _arrivals(rng, expected, clock, span_ms):
    """Strictly increasing ms times of a Poisson process with `expected` events over the session."""
    grid, cum = clock
    n = rng.poisson(expected)
    u = np.sort(rng.uniform(0.0, 1.0, n))
    t = np.floor(np.interp(u, cum, grid)).astype(np.int64)
    k = np.arange(len(t), dtype=np.int64)
    t = np.maximum.accumulate(t - k) + k  # at least 1 ms apart
    return t[t < span_ms]


def market(symbols, minutes, seed, quotes_path, trades_path, batch_lines=10_000):
    """Quotes and trades for `symbols` symbols over a session of `minutes` minutes (ms timestamps)."""
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    span_ms = int(minutes * 60_000)
    scale = minutes / SESSION_MINUTES
    clock = _intensity_clock(span_ms)
    activity = rng.lognormal(0.0, 0.5, symbols)
    activity /= activity.mean()
    q_parts, t_parts = [], []
    names = [f"SYM{i:04d}" for i in range(symbols)]
    for s in range(symbols):
        qt = _arrivals(rng, QUOTES_PER_SYMBOL_SESSION * scale * activity[s], clock, span_ms)
        if len(qt) < 2:
            qt = np.array([0, 1], dtype=np.int64)
        mid0 = rng.uniform(10, 500)
        mid = mid0 * np.exp(np.cumsum(rng.normal(0, 0.0002, len(qt))))
        spread = np.maximum(0.01, np.round(mid * 0.0005, 2))
        bid = np.round(mid - spread / 2, 2)
        ask = np.round(bid + spread, 2)
        bsz = rng.integers(1, 50, len(qt)) * 100
        asz = rng.integers(1, 50, len(qt)) * 100
        qex = rng.integers(len(EXCHANGES), size=len(qt))
        q_parts.append((np.full(len(qt), s, np.int32), qt, bid, ask, bsz, asz, qex))
        # Trades after the first quote, at the prevailing bid (sell) or ask (buy).
        tt = _arrivals(rng, TRADES_PER_SYMBOL_SESSION * scale * activity[s], clock, span_ms)
        tt = tt[tt > qt[0]]
        prevailing = np.searchsorted(qt, tt, side="right") - 1
        side = rng.integers(2, size=len(tt))  # 1 = buy
        price = np.where(side == 1, ask[prevailing], bid[prevailing])
        size = rng.integers(1, 20, len(tt)) * 100
        tex = rng.integers(len(EXCHANGES), size=len(tt))
        t_parts.append((np.full(len(tt), s, np.int32), tt, price, size, side, tex))

    def cat(parts, k):
        return np.concatenate([p[k] for p in parts])

    sym_dict = pa.array(names)
    ex_dict = pa.array(EXCHANGES)
    side_dict = pa.array(["sell", "buy"])

    # Quotes table ordered by time (then symbol), as a feed would deliver it.
    qs, qt = cat(q_parts, 0), cat(q_parts, 1)
    order = np.lexsort((qs, qt))
    qs, qt = qs[order], qt[order] * 1_000_000 + START_NS + OPEN_OFFSET_NS
    quotes = pa.table({
        "symbol": pa.DictionaryArray.from_arrays(pa.array(qs), sym_dict),
        "exchange": pa.DictionaryArray.from_arrays(pa.array(cat(q_parts, 6)[order].astype(np.int32)), ex_dict),
        "time": pa.array(qt, type=pa.timestamp("ns")),
        "bid": pa.array(cat(q_parts, 2)[order]),
        "ask": pa.array(cat(q_parts, 3)[order]),
        "bid_size": pa.array(cat(q_parts, 4)[order].astype(np.int64)),
        "ask_size": pa.array(cat(q_parts, 5)[order].astype(np.int64)),
    })
    ts, tt = cat(t_parts, 0), cat(t_parts, 1)
    order = np.lexsort((ts, tt))
    ts, tt = ts[order], tt[order] * 1_000_000 + START_NS + OPEN_OFFSET_NS
    trades = pa.table({
        "symbol": pa.DictionaryArray.from_arrays(pa.array(ts), sym_dict),
        "exchange": pa.DictionaryArray.from_arrays(pa.array(cat(t_parts, 5)[order].astype(np.int32)), ex_dict),
        "time": pa.array(tt, type=pa.timestamp("ns")),
        "price": pa.array(cat(t_parts, 2)[order]),
        "size": pa.array(cat(t_parts, 3)[order].astype(np.int64)),
        "side": pa.DictionaryArray.from_arrays(pa.array(cat(t_parts, 4)[order].astype(np.int32)), side_dict),
    })

    def s(col):
        return pc.cast(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col, pa.string())

    def q_pieces(lo, hi):
        t = quotes.slice(lo, hi - lo)
        return ["quotes,symbol=", s(t["symbol"]), ",exchange=", s(t["exchange"]),
                " bid=", s(t["bid"]), ",ask=", s(t["ask"]), ",bid_size=", s(t["bid_size"]),
                "i,ask_size=", s(t["ask_size"]), "i ", s(pc.cast(t["time"], pa.int64()))]

    def t_pieces(lo, hi):
        t = trades.slice(lo, hi - lo)
        return ["trades,symbol=", s(t["symbol"]), ",exchange=", s(t["exchange"]),
                " price=", s(t["price"]), ",size=", s(t["size"]), "i,side=\"", s(t["side"]),
                "\" ", s(pc.cast(t["time"], pa.int64()))]

    with open(quotes_path, "wb") as f:
        qb = _write_lp(f, q_pieces, quotes.num_rows, batch_lines)
    with open(trades_path, "wb") as f:
        tb = _write_lp(f, t_pieces, trades.num_rows, batch_lines)
    meta = {"quotes": quotes.num_rows, "trades": trades.num_rows, "symbols": names,
            "values": quotes.num_rows * 4 + trades.num_rows * 3,
            "rows": quotes.num_rows + trades.num_rows,
            "start_ns": START_NS + OPEN_OFFSET_NS,
            "end_ns": START_NS + OPEN_OFFSET_NS + span_ms * 1_000_000}
    return quotes, trades, qb, tb, meta
