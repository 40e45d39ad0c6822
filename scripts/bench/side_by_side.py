#!/usr/bin/env python3
"""Hourglass side by side with InfluxDB 1.x and DuckDB, on one machine, in one run.

    bash scripts/bench-deps.sh     # influxdb (apt-get); duckdb, pyarrow, numpy (the .venv-test venv)
    python3 scripts/bench/side_by_side.py [--deps] [--quick] [--hosts N] [--hours H] [--symbols S]
        [--market-minutes M] [--runs R] [--workers W] [--out docs/benchmarks-sbs.json] [--write-docs]
        [--require-peers] [--concurrency [--clients C] [--concurrency-seconds S]
        [--concurrency-ingest-rows R] [--concurrency-writers W]]
        [--cardinality [--cardinality-hosts N] [--cardinality-hours H]]

Python packages: the pinned ones of scripts/requirements-test.txt, in the test suite's virtual
environment .venv-test/ (scripts/python-env.sh). The test command runs this script with that
environment's python. Started with another python, it switches to that environment's python
(os.execv) when the packages do not import there and the environment exists; with --deps it first
runs scripts/bench-deps.sh (which makes the environment) and then always switches. Nothing that
needs numpy, pyarrow or duckdb is imported before that.

1. Generates TSBS cpu-only data (10 tags, 10 integer fields, 10 s interval, seeded) and a market
   data set (quotes and trades, random-walk mid per symbol) as line protocol files.
2. Loads each into Hourglass (`hourglass serve`, /api/v2/write) and InfluxDB 1.x (`influxd`,
   /write) on parallel connections, 10k lines per request; prints rows/s, bytes on disk per
   value and each server's peak RSS. Writes the same rows to Parquet (ZSTD, sorted by series then
   time) for DuckDB.
3. Runs the TSBS and finance query sets on each engine, checks that the answers agree (rows
   sorted, floats to 6 significant digits, timestamps as ns) and prints median latencies and the
   ratio of each peer to Hourglass.
4. Optional sections. --concurrency (scripts/bench/sbs_concurrency.py): on the loaded TSBS data, a
   writer ingests fresh rows at half the engine's load rate (or --concurrency-ingest-rows rows/s,
   over --concurrency-writers keep-alive connections, default 2) while --clients query clients
   (default 32) send single-groupby and one-host lastpoint queries for --concurrency-seconds
   (default 300): Hourglass over HTTP and the PostgreSQL wire, half each, InfluxDB over HTTP;
   queries/s, p50/p99 per query type, ingest sustained, errors, client and server CPU seconds.
   --cardinality (scripts/bench/sbs_cardinality.py): TSBS cpu-only at --cardinality-hosts hosts
   (default 100,000) over --cardinality-hours (default 0.5: 18 M rows) into fresh servers and
   Parquet: ingest rows/s (and Hourglass's ratio to its main-run rate), bytes/value, peak RSS,
   lastpoint of one host and the TSBS queries that make sense at that size, answers checked.
   With --quick their defaults shrink to 8 clients for 5 s and 2,000 hosts x 10 minutes.
5. Writes JSON (--out; the sections under "concurrency" and "cardinality") and markdown tables
   (printed; with --write-docs into docs/benchmarks.md between `<!-- sbs:begin -->` and
   `<!-- sbs:end -->`, the sections' tables included).

Exit status: 0 when every engine that ran agrees; 1 on a disagreement or a failure (in the
optional sections too: a concurrency query or write that failed or had the wrong column count).
InfluxDB is skipped (and said so) when `influxd` is not installed, DuckDB when the module does not
import; with --require-peers (the test command) either is a failure instead. Servers bind 127.0.0.1 and
are stopped at the end, also on failure.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SERVERS = []
# sbs_data, sbs_engines (as E) and sbs_queries import numpy and pyarrow: imported by
# import_modules(), after --deps has installed them.
sbs_data = E = sbs_queries = None


def switch_to_venv(reason):
    """Runs this script again, with the same arguments less --deps, under the python of the test
    suite's virtual environment (scripts/python-env.sh makes or checks it and prints its path)."""
    out = subprocess.run(["bash", os.path.join(REPO, "scripts", "python-env.sh")], stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"side_by_side: scripts/python-env.sh exited {out.returncode}")
    python = out.stdout.strip().splitlines()[-1]
    argv = [python, os.path.abspath(__file__)] + [x for x in sys.argv[1:] if x != "--deps"]
    log(f"side_by_side: {reason}: running again with {python}")
    sys.stdout.flush()
    os.execv(python, argv)


def import_modules():
    global sbs_data, E, sbs_queries
    try:
        import sbs_data as data
        import sbs_engines as engines
        import sbs_queries as queries
    except ImportError as e:
        venv_python = os.path.join(REPO, ".venv-test", "bin", "python")
        if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.dirname(os.path.dirname(venv_python))):
            switch_to_venv(f"{e} under {sys.executable}")
        raise SystemExit(f"side_by_side: {e}: run scripts/bench-deps.sh (or pass --deps), which makes "
                         "the .venv-test environment, or run this script with its python")
    sbs_data, E, sbs_queries = data, engines, queries


def stop_all():
    while SERVERS:
        s = SERVERS.pop()
        try:
            s.stop()
        except Exception:  # noqa: BLE001
            pass


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def machine():
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "memory_gib": round(mem / 2**30, 1), "cpu": cpu,
            "kernel": platform.release(), "loadavg": os.getloadavg()[0]}


def commit():
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except OSError:
        return "unknown"


def pick_binary(arg):
    if arg:
        return arg
    for p in ("target/release/hourglass", "target/debug/hourglass"):
        full = os.path.join(REPO, p)
        if os.path.exists(full):
            return full
    raise SystemExit("no hourglass binary: build it with cargo build --release -p hourglass")


SLOW_QUERY_S = 10.0


def run_query(engine, q, db, runs, handles):
    """Runs q on engine once for the answer and `runs` more times for the latency (once more
    when the answer took over SLOW_QUERY_S).
    Returns (normalised rows | None, median ms | None, note)."""
    if engine == "influx":
        text = q["influx"]
        if text is None:
            return None, None, "n/a"
        srv = handles["influx"]

        def once():
            return srv.query(db, text)

        def rows_of(content):
            return E.Influx.decode(content, q["influx_time"])
    elif engine == "hourglass":
        srv = handles["hourglass"]

        def once():
            return srv.query(db, q["hourglass"])

        def rows_of(content):
            return E.arrow_rows(E.Hourglass.decode(content), q["cols"], q["tcols"])
    else:
        con = handles["duckdb"]

        def once():
            return con.sql(q["duckdb"]).to_arrow_table()

        def rows_of(table):
            return E.arrow_rows(table, q["cols"], q["tcols"])
    try:
        t = time.perf_counter()
        first = once()
        first_s = time.perf_counter() - t
        rows = E.normalise(rows_of(first), q["cols"], q["tcols"])
        times = []
        # A query that takes more than SLOW_QUERY_S is timed once more, not `runs` times.
        for _ in range(runs if first_s < SLOW_QUERY_S else min(runs, 1)):
            t = time.perf_counter()
            once()
            times.append((time.perf_counter() - t) * 1000)
        return rows, statistics.median(times), ""
    except Exception as e:  # noqa: BLE001
        msg = str(e).splitlines()[0][:300] if str(e) else repr(e)
        return None, None, f"error: {msg}"


def rss(ing):
    v = ing.get("peak_rss_mb")
    return "–" if v is None else f"{v:,.0f}"


def md_tables(result):
    m = result["machine"]
    lines = []
    lines.append(f"Side by side, {result['date']}: {m['nproc']} cores, {m['memory_gib']} GiB "
                 f"({m['cpu']}), load average {m['loadavg']:.1f} at start; commit `{result['commit']}`; "
                 f"{result['mode']} mode, {result['runs']} timed runs per query (median; one run after an answer that took over {SLOW_QUERY_S:g} s).")
    lines.append("")
    lines.append("Versions: " + "; ".join(f"{k} `{v}`" for k, v in result["versions"].items()))
    if result.get("skipped"):
        lines.append("")
        lines.append("Skipped: " + "; ".join(result["skipped"]))
    lines.append("")
    lines.append("| data set | engine | rows | values | load s | rows/s | bytes on disk | bytes/value | peak RSS MiB |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for ing in result["ingest"]:
        lines.append(
            f"| {ing['dataset']} | {ing['engine']} | {ing['rows']:,} | {ing['values']:,} | "
            f"{ing['seconds']:.2f} | **{ing['rows_per_sec']:,.0f}** | {ing['disk_bytes']:,} | "
            f"**{ing['bytes_per_value']:.3f}** | {rss(ing)} |")
    lines.append("")
    engines = result["engines"]
    head = "| query | rows | Hourglass ms |" + "".join(
        f" {n} ms | {n} / Hourglass |" for n in engines if n != "Hourglass") + " answers |"
    lines.append(head)
    lines.append("|---|---|---|" + "---|---|" * (len(engines) - 1) + "---|")
    lines += E.query_rows(result["queries"], [n for n in engines if n != "Hourglass"])
    lines.append("")
    lines.append("A ratio above 1 means the peer is slower than Hourglass. Hourglass answers over "
                 "HTTP (`/api/v3/query_sql`, `format=arrow`, an Arrow IPC stream), InfluxDB in JSON over HTTP (`/query`, "
                 "`epoch=ns`), DuckDB in process over the Parquet files (Arrow result).")
    if result.get("concurrency"):
        import sbs_concurrency
        lines += sbs_concurrency.md(result["concurrency"])
    if result.get("cardinality"):
        import sbs_cardinality
        lines += sbs_cardinality.md(result["cardinality"])
    return "\n".join(lines)


def write_docs(md):
    path = os.path.join(REPO, "docs", "benchmarks.md")
    with open(path) as f:
        text = f.read()
    block = "<!-- sbs:begin -->\n" + md + "\n<!-- sbs:end -->"
    b, e = text.find("<!-- sbs:begin -->"), text.find("<!-- sbs:end -->")
    if b >= 0 and e > b:
        text = text[:b] + block + text[e + len("<!-- sbs:end -->"):]
    else:
        text = text.rstrip("\n") + "\n\n## Side by side: Hourglass, InfluxDB, DuckDB\n\n" \
            "```sh\nbash scripts/bench-deps.sh && python3 scripts/bench/side_by_side.py --write-docs\n```\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 hosts x 1 h, 20 symbols x 10 min (CI)")
    ap.add_argument("--hosts", type=int)
    ap.add_argument("--hours", type=float)
    ap.add_argument("--symbols", type=int, help="market data symbols (default 500; quick 20)")
    ap.add_argument("--market-minutes", type=float, help="market session length in minutes (default 390 = 09:30-16:00; quick 10)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4, help="parallel write connections per engine")
    ap.add_argument("--batch-lines", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--row-group-rows", type=int, default=122_880,
                    help="row group size of DuckDB's Parquet files (DuckDB's own row group size)")
    ap.add_argument("--out", default=None, help="JSON results (e.g. docs/benchmarks-sbs.json)")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--binary", help="hourglass binary (default target/release, else target/debug)")
    ap.add_argument("--no-influx", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--only", help="comma-separated query names to run")
    ap.add_argument("--deps", action="store_true",
                    help="run scripts/bench-deps.sh first (apt-get influxdb; the .venv-test environment) and "
                         "run again with that environment's python")
    ap.add_argument("--require-peers", action="store_true",
                    help="fail when InfluxDB or DuckDB is not installed or fails, instead of skipping it")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--tmp", help="parent of the temporary directory")
    ap.add_argument("--concurrency", action="store_true",
                    help="mixed-load section: ingest at half the load rate while query clients run dashboard queries")
    ap.add_argument("--clients", type=int, help="--concurrency query clients (default 32; quick 8)")
    ap.add_argument("--concurrency-seconds", type=float, help="--concurrency duration per engine (default 300; quick 5)")
    ap.add_argument("--concurrency-ingest-rows", type=float,
                    help="--concurrency writer rate in rows/s (default: half the engine's TSBS load rate)")
    ap.add_argument("--concurrency-writers", type=int, default=2, help="--concurrency writer connections")
    ap.add_argument("--cardinality", action="store_true", help="high-cardinality section: many hosts, short span")
    ap.add_argument("--cardinality-hosts", type=int, help="--cardinality hosts (default 100,000; quick 2,000)")
    ap.add_argument("--cardinality-hours", type=float,
                    help="--cardinality span in hours (default 0.5 = 18 M rows at 100,000 hosts; quick 1/6)")
    a = ap.parse_args()
    hosts = a.hosts or (20 if a.quick else 1000)
    hours = a.hours or (1.0 if a.quick else 24.0)
    symbols = a.symbols or (20 if a.quick else 500)
    minutes = a.market_minutes or (10.0 if a.quick else 390.0)

    if a.deps:
        rc = subprocess.run(["bash", os.path.join(REPO, "scripts", "bench-deps.sh")]).returncode
        if rc != 0:
            raise SystemExit(f"side_by_side: scripts/bench-deps.sh exited {rc}")
        switch_to_venv("--deps")
    import_modules()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(stop_all)

    binary = pick_binary(a.binary)
    tmp = tempfile.mkdtemp(prefix="hourglass-sbs-", dir=a.tmp)
    if not a.keep:
        atexit.register(lambda: shutil.rmtree(tmp, ignore_errors=True))
    log(f"side_by_side: temporary directory {tmp}; hourglass binary {binary}")

    skipped = []
    influx_ok = not a.no_influx and shutil.which("influxd") is not None
    if not influx_ok:
        skipped.append("InfluxDB (" + ("--no-influx" if a.no_influx else "influxd not installed: run scripts/bench-deps.sh") + ")")
    duck = None
    if not a.no_duckdb:
        try:
            import duckdb
            duck = duckdb
        except ImportError:
            skipped.append("DuckDB (python module duckdb not installed: run scripts/bench-deps.sh)")
    else:
        skipped.append("DuckDB (--no-duckdb)")
    for s in skipped:
        log(f"side_by_side: SKIPPED {s}")
    if a.require_peers and ((not influx_ok and not a.no_influx) or (duck is None and not a.no_duckdb)):
        log("side_by_side: --require-peers: a peer is missing (run scripts/install-test-deps.sh)")
        return 1

    # 1. Data.
    t0 = time.perf_counter()
    cpu_lp = os.path.join(tmp, "cpu.lp")
    cpu_table, cpu_bodies, cpu_meta = sbs_data.tsbs_cpu(hosts, hours, a.seed, cpu_lp, a.batch_lines)
    log(f"generated TSBS cpu-only: {hosts} hosts x {hours:g} h = {cpu_meta['rows']:,} rows, "
        f"{os.path.getsize(cpu_lp) / 2**20:.1f} MiB line protocol ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    q_lp, t_lp = os.path.join(tmp, "quotes.lp"), os.path.join(tmp, "trades.lp")
    quotes, trades, q_bodies, t_bodies, mk_meta = sbs_data.market(symbols, minutes, a.seed, q_lp, t_lp, a.batch_lines)
    log(f"generated market data: {symbols} symbols x {minutes:g} min = {mk_meta['quotes']:,} quotes, "
        f"{mk_meta['trades']:,} trades ({time.perf_counter() - t0:.1f} s)")

    # Generating wrote gigabytes of line protocol; let its writeback finish before any engine
    # fsyncs a write-ahead log, or the first engine loaded pays for it.
    t0 = time.perf_counter()
    os.sync()
    log(f"synced the generated files to disk ({time.perf_counter() - t0:.1f} s)")

    datasets = [
        ("TSBS cpu-only", "benchmark", [(cpu_lp, cpu_bodies)], cpu_meta["rows"], cpu_meta["values"]),
        ("market (quotes+trades)", "market", [(q_lp, q_bodies), (t_lp, t_bodies)], mk_meta["rows"], mk_meta["values"]),
    ]

    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "mode": "quick" if a.quick else "full", "machine": machine(), "commit": commit(),
              "params": {"hosts": hosts, "hours": hours, "symbols": symbols, "market_minutes": minutes,
                         "seed": a.seed, "workers": a.workers, "batch_lines": a.batch_lines,
                         "duckdb_row_group_rows": a.row_group_rows},
              "runs": a.runs, "versions": {}, "skipped": skipped, "ingest": [], "queries": []}
    handles = {}
    engines = ["Hourglass"]

    # 2. Servers and loads.
    hg = E.Hourglass(binary, os.path.join(tmp, "hourglass"), os.path.join(tmp, "hourglass.log"))
    SERVERS.append(hg)
    handles["hourglass"] = hg
    result["versions"]["hourglass"] = hg.version()
    prev = 0
    for label, db, files, rows, values in datasets:
        secs = retried = 0
        for path, bodies in files:
            s, r = E.load(hg, db, path, bodies, a.workers)
            secs += s
            retried += r
        hg.settle()
        size = hg.disk_bytes()
        ing = {"dataset": label, "engine": "Hourglass", "rows": rows, "values": values, "seconds": secs,
               "rows_per_sec": rows / secs, "retried_requests": retried, "disk_bytes": size - prev,
               "bytes_per_value": (size - prev) / values, "peak_rss_mb": hg.peak_rss_mb()}
        prev = size
        result["ingest"].append(ing)
        log(f"Hourglass {label}: {rows:,} rows in {secs:.2f} s = {rows / secs:,.0f} rows/s; "
            f"{ing['disk_bytes']:,} B Parquet = {ing['bytes_per_value']:.3f} B/value; peak RSS {ing['peak_rss_mb']:.0f} MiB")

    if influx_ok:
        try:
            ix = E.Influx(os.path.join(tmp, "influxdb"), os.path.join(tmp, "influxdb.log"))
            SERVERS.append(ix)
            handles["influx"] = ix
            result["versions"]["influxd"] = ix.version()
            engines.append("InfluxDB")
            for label, db, files, rows, values in datasets:
                ix.create_db(db)
                secs = retried = 0
                for path, bodies in files:
                    s, r = E.load(ix, db, path, bodies, a.workers)
                    secs += s
                    retried += r
                settled = ix.settle(db)
                size = ix.disk_bytes(db)
                ing = {"dataset": label, "engine": "InfluxDB", "rows": rows, "values": values, "seconds": secs,
                       "rows_per_sec": rows / secs, "retried_requests": retried, "disk_bytes": size,
                       "bytes_per_value": size / values, "peak_rss_mb": ix.peak_rss_mb(),
                       "tsm_settled": settled}
                result["ingest"].append(ing)
                log(f"InfluxDB {label}: {rows:,} rows in {secs:.2f} s = {rows / secs:,.0f} rows/s; "
                    f"{size:,} B data+wal = {ing['bytes_per_value']:.3f} B/value"
                    f"{'' if settled else ' (TSM not settled)'}; peak RSS {ing['peak_rss_mb']:.0f} MiB")
        except Exception as e:  # noqa: BLE001
            if a.require_peers:
                raise
            skipped.append(f"InfluxDB (failed: {e})")
            log(f"side_by_side: InfluxDB failed, skipped: {e}")
            handles.pop("influx", None)
            if "InfluxDB" in engines:
                engines.remove("InfluxDB")
            result["ingest"] = [i for i in result["ingest"] if i["engine"] != "InfluxDB"]

    if duck is not None:
        import pyarrow.parquet as pq
        result["versions"]["duckdb"] = duck.__version__
        engines.append("DuckDB")
        pdir = os.path.join(tmp, "parquet")
        os.makedirs(pdir)
        con = duck.connect()
        handles["duckdb"] = con
        for label, db, tables, keys in [
                ("TSBS cpu-only", "benchmark", {"cpu": cpu_table}, {"cpu": "hostname"}),
                ("market (quotes+trades)", "market", {"quotes": quotes, "trades": trades},
                 {"quotes": "symbol", "trades": "symbol"})]:
            t0 = time.perf_counter()
            size = 0
            for name, table in tables.items():
                # Sort by the series key (as text) then time, like a TSDB lays its files out.
                order = table.append_column("_k", table[keys[name]].cast("string")).sort_by(
                    [("_k", "ascending"), ("time", "ascending")]).drop_columns(["_k"])
                path = os.path.join(pdir, f"{name}.parquet")
                pq.write_table(order, path, compression="zstd", row_group_size=a.row_group_rows)
                size += os.path.getsize(path)
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
            secs = time.perf_counter() - t0
            rows = sum(t.num_rows for t in tables.values())
            values = cpu_meta["values"] if db == "benchmark" else mk_meta["values"]
            result["ingest"].append({"dataset": label, "engine": "DuckDB (Parquet via pyarrow)", "rows": rows,
                                     "values": values, "seconds": secs, "rows_per_sec": rows / secs,
                                     "disk_bytes": size, "bytes_per_value": size / values, "peak_rss_mb": None})
            log(f"Parquet for DuckDB {label}: {size:,} B = {size / values:.3f} B/value ({secs:.2f} s sort+write)")

    # 3. Queries.
    qs = [(q, "benchmark") for q in sbs_queries.tsbs_queries(cpu_meta, a.seed)] + \
         [(q, "market") for q in sbs_queries.finance_queries(mk_meta, a.seed)]
    if a.only:
        wanted = set(a.only.split(","))
        qs = [(q, db) for q, db in qs if q["name"] in wanted]
    keymap = {"Hourglass": "hourglass", "InfluxDB": "influx", "DuckDB": "duckdb"}
    disagreements = []
    errors = []
    for q, db in qs:
        answers, ms, notes = {}, {}, {}
        for eng in engines:
            rows, med, note = run_query(keymap[eng], q, db, a.runs, handles)
            if rows is not None:
                answers[eng] = rows
            ms[eng] = med
            if note:
                notes[eng] = note
                if note != "n/a":
                    errors.append(f"{q['name']} on {eng}: {note}")
        agreement = "agree"
        ref_name, diffs = E.differences(answers)
        if diffs:
            agreement = "**DISAGREE**"
            disagreements.append({"query": q["name"], "sql": q["hourglass"], "influxql": q["influx"],
                                  "duckdb": q["duckdb"], "diffs": diffs})
        elif len(answers) < 2:
            agreement = "unchecked"
        if any(n.startswith("error") for n in notes.values()):
            agreement += " (error)"
        nrows = len(answers[ref_name]) if ref_name else None
        result["queries"].append({"name": q["name"], "group": q["group"], "rows": nrows, "ms": ms,
                                  "notes": notes, "agreement": agreement,
                                  "text": {"hourglass": q["hourglass"], "duckdb": q["duckdb"], "influxql": q["influx"]}})
        log(f"  {q['name']:<24} rows {nrows!s:>7}  " + "  ".join(
            f"{e} {E.fmt_ms(ms[e])}{' (' + notes[e][:80] + ')' if e in notes else ''}" for e in engines) + f"  {agreement}")

    hg_rss = hg.peak_rss_mb()
    if "influx" in handles:
        result["ingest_peak_rss_after_queries"] = {"Hourglass": hg_rss, "InfluxDB": handles["influx"].peak_rss_mb()}
    tsbs_rates = {i["engine"]: i["rows_per_sec"] for i in result["ingest"] if i["dataset"] == "TSBS cpu-only"}
    if a.concurrency:
        import sbs_concurrency
        servers = [(n, handles[k]) for n, k in (("Hourglass", "hourglass"), ("InfluxDB", "influx")) if k in handles]
        result["concurrency"] = sbs_concurrency.run(
            servers, cpu_table, cpu_meta, "benchmark", a.clients or (8 if a.quick else 32),
            a.concurrency_seconds or (5.0 if a.quick else 300.0), a.concurrency_ingest_rows, tsbs_rates,
            a.concurrency_writers, a.batch_lines, a.seed, log)
        errors += sbs_concurrency.errors(result["concurrency"])
    stop_all()
    if a.cardinality:
        import sbs_cardinality
        result["cardinality"] = sbs_cardinality.run(
            binary, tmp, a.cardinality_hosts or (2000 if a.quick else 100_000),
            a.cardinality_hours or (10 / 60 if a.quick else 0.5), a.seed, a.workers, a.batch_lines,
            a.row_group_rows, a.runs, "influx" in handles, duck, tsbs_rates, hosts, SERVERS, run_query, log)
        disagreements += result["cardinality"]["disagreements"]
        errors += result["cardinality"]["errors"]

    result["engines"] = engines
    result["disagreements"] = disagreements
    result["errors"] = errors
    md = md_tables(result)
    print(md)
    if a.out:
        out = a.out if os.path.isabs(a.out) else os.path.join(os.getcwd(), a.out)
        res = dict(result)
        res["queries"] = [dict(q) for q in result["queries"]]
        with open(out, "w") as f:
            json.dump(res, f, indent=1, default=lambda o: sorted(o) if isinstance(o, set) else str(o))
        log(f"wrote {out}")
    if a.write_docs:
        write_docs(md)
        log("updated docs/benchmarks.md")
    if disagreements:
        print("\nANSWER DISAGREEMENTS:", file=sys.stderr)
        for d in disagreements:
            print(json.dumps(d, indent=1, default=str), file=sys.stderr)
    if errors:
        print("\nQUERY ERRORS:\n  " + "\n  ".join(errors), file=sys.stderr)
    return 1 if disagreements or errors else 0


if __name__ == "__main__":
    sys.exit(main())
