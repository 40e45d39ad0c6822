"""Cardinality section of the side-by-side benchmark (`side_by_side.py --cardinality`): TSBS
cpu-only with many hosts over a short span, loaded into fresh Hourglass and InfluxDB 1.x servers
and written to Parquet for DuckDB like the main load, then the query set.

Size: --cardinality-hosts (default 100,000 hosts, one series each) over --cardinality-hours
(default 0.5: 180 rows per host at 10 s, 18 M rows, 180 M values; one hour at 100,000 hosts would
be 36 M rows, too long for a routine run). Quick mode: 2,000 hosts x 10 minutes.

Reported: per engine ingest rows/s, bytes on disk per value and peak RSS (servers started for this
section alone, so their peak is this load's); the ratio of Hourglass's rows/s here to its rows/s
in the main run's TSBS load (issue 22's target: within 20 %, a ratio of at least 0.8); then the
TSBS queries that make sense at this size, each checked for agreement as in the main run:
lastpoint-1-host (one random host's last row, median of 20 runs), every single-groupby,
cpu-max-all-1 and -8, double-groupby-1, high-cpu-1, lastpoint (every host) and
groupby-orderby-limit. Left out: double-groupby-5 and -all and high-cpu-all, whose answers
(hosts x hours rows of 5 or 10 aggregates; every row over 90 % CPU, about 1 M rows) would time
the transfer of the answer more than the engine.
"""

import os
import time

from sbs_engines import fmt_ms, query_rows

QUERIES = ["single-groupby-1-1-1", "single-groupby-1-1-12", "single-groupby-1-8-1", "single-groupby-5-1-1",
           "single-groupby-5-1-12", "single-groupby-5-8-1", "cpu-max-all-1", "cpu-max-all-8",
           "double-groupby-1", "high-cpu-1", "lastpoint", "groupby-orderby-limit"]
LASTPOINT_RUNS = 20


def lastpoint_one(meta, seed):
    """One random host's last row, in the shapes of the query set's lastpoint."""
    import random
    from sbs_data import FIELDS
    from sbs_queries import Q
    host = random.Random(seed + 22).choice(meta["hostnames"])
    cols = ", ".join(FIELDS)
    sql = (f"SELECT DISTINCT ON (hostname) hostname, time, {cols} FROM cpu WHERE hostname = '{host}' "
           "ORDER BY hostname, time DESC")
    iq = f"SELECT {cols} FROM cpu WHERE hostname = '{host}' GROUP BY hostname ORDER BY time DESC LIMIT 1"
    return Q("lastpoint-1-host", ["hostname", "time"] + FIELDS, ["time"], sql, sql, iq)


def compare(name, q, answers):
    """The main run's agreement check: (agreement label, disagreement record or None)."""
    import sbs_engines as E
    _ref_name, diffs = E.differences(answers)
    if diffs:
        return "**DISAGREE**", {"query": f"cardinality {name}", "sql": q["hourglass"], "influxql": q["influx"],
                                "duckdb": q["duckdb"], "diffs": diffs}
    return ("agree" if len(answers) >= 2 else "unchecked"), None


def run(binary, tmp, hosts, hours, seed, workers, batch_lines, row_group_rows, runs, influx, duck,
        main_rates, main_hosts, servers, run_query, log):
    """Generates, loads and queries; servers is the caller's list of servers to stop on exit
    (ours are added to it and stopped before returning); run_query is side_by_side.run_query;
    influx: whether to run InfluxDB; duck: the duckdb module or None; main_rates: {engine: rows/s
    of the main run's TSBS load}; main_hosts: its host count. Returns the section's result (result["cardinality"])."""
    import sbs_data
    import sbs_engines as E
    import sbs_queries

    d = os.path.join(tmp, "cardinality")
    os.makedirs(d)
    t0 = time.perf_counter()
    lp = os.path.join(d, "cpu.lp")
    table, bodies, meta = sbs_data.tsbs_cpu(hosts, hours, seed, lp, batch_lines)
    os.sync()
    log(f"cardinality: generated TSBS cpu-only {hosts:,} hosts x {span(hours)} = {meta['rows']:,} rows, "
        f"{os.path.getsize(lp) / 2**20:.1f} MiB line protocol ({time.perf_counter() - t0:.1f} s)")
    rows, values = meta["rows"], meta["values"]
    out = {"hosts": hosts, "hours": hours, "rows": rows, "values": values, "ingest": [], "queries": [],
           "engines": [], "disagreements": [], "errors": [], "skipped": []}
    handles = {}

    def ingest_entry(engine, secs, size, rss, **extra):
        e = {"engine": engine, "rows": rows, "values": values, "seconds": secs, "rows_per_sec": rows / secs,
             "disk_bytes": size, "bytes_per_value": size / values, "peak_rss_mb": rss, **extra}
        out["ingest"].append(e)
        log(f"cardinality {engine}: {rows:,} rows in {secs:.2f} s = {rows / secs:,.0f} rows/s; "
            f"{size / values:.3f} B/value" + ("" if rss is None else f"; peak RSS {rss:,.0f} MiB"))
        return e

    try:
        hg = E.Hourglass(binary, os.path.join(d, "hourglass"), os.path.join(d, "hourglass.log"))
        servers.append(hg)
        secs, retried = E.load(hg, "benchmark", lp, bodies, workers)
        hg.settle()
        e = ingest_entry("Hourglass", secs, hg.disk_bytes(), hg.peak_rss_mb(), retried_requests=retried)
        handles["hourglass"] = hg
        out["engines"].append("Hourglass")
        main = main_rates.get("Hourglass")
        if main:
            out["hourglass_rate_main"] = main
            out["main_hosts"] = main_hosts
            out["hourglass_rate_ratio"] = e["rows_per_sec"] / main
            log(f"cardinality: Hourglass ingest at {hosts:,} hosts / at {main_hosts:,} (main run) = "
                f"{e['rows_per_sec']:,.0f} / {main:,.0f} = {out['hourglass_rate_ratio']:.2f} (target >= 0.80)")

        if influx:
            try:
                ix = E.Influx(os.path.join(d, "influxdb"), os.path.join(d, "influxdb.log"))
                servers.append(ix)
                ix.create_db("benchmark")
                secs, retried = E.load(ix, "benchmark", lp, bodies, workers)
                settled = ix.settle("benchmark")
                ingest_entry("InfluxDB", secs, ix.disk_bytes("benchmark"), ix.peak_rss_mb(),
                             retried_requests=retried, tsm_settled=settled)
                handles["influx"] = ix
                out["engines"].append("InfluxDB")
            except Exception as ex:  # noqa: BLE001
                out["skipped"].append(f"InfluxDB (failed: {ex})")
                out["errors"].append(f"cardinality InfluxDB: {ex}")
                log(f"cardinality: InfluxDB failed: {ex}")

        if duck is not None:
            import pyarrow.parquet as pq
            t0 = time.perf_counter()
            order = table.append_column("_k", table["hostname"].cast("string")).sort_by(
                [("_k", "ascending"), ("time", "ascending")]).drop_columns(["_k"])
            path = os.path.join(d, "cpu.parquet")
            pq.write_table(order, path, compression="zstd", row_group_size=row_group_rows)
            del order
            con = duck.connect()
            con.execute(f"CREATE VIEW cpu AS SELECT * FROM read_parquet('{path}')")
            ingest_entry("DuckDB (Parquet via pyarrow)", time.perf_counter() - t0, os.path.getsize(path), None)
            handles["duckdb"] = con
            out["engines"].append("DuckDB")
        del table

        qs = {q["name"]: q for q in sbs_queries.tsbs_queries(meta, seed)}
        plan = [(lastpoint_one(meta, seed), LASTPOINT_RUNS)] + [(qs[n], runs) for n in QUERIES if n in qs]
        keymap = {"Hourglass": "hourglass", "InfluxDB": "influx", "DuckDB": "duckdb"}
        for q, n_runs in plan:
            answers, ms, notes = {}, {}, {}
            for eng in out["engines"]:
                got, med, note = run_query(keymap[eng], q, "benchmark", n_runs, handles)
                if got is not None:
                    answers[eng] = got
                ms[eng] = med
                if note:
                    notes[eng] = note
                    if note != "n/a":
                        out["errors"].append(f"cardinality {q['name']} on {eng}: {note}")
            agreement, dis = compare(q["name"], q, answers)
            if dis:
                out["disagreements"].append(dis)
            if any(x.startswith("error") for x in notes.values()):
                agreement += " (error)"
            ref = "Hourglass" if "Hourglass" in answers else next(iter(answers), None)
            nrows = len(answers[ref]) if ref else None
            out["queries"].append({"name": q["name"], "rows": nrows, "runs": n_runs, "ms": ms, "notes": notes,
                                   "agreement": agreement,
                                   "text": {"hourglass": q["hourglass"], "duckdb": q["duckdb"], "influxql": q["influx"]}})
            log(f"  cardinality {q['name']:<24} rows {nrows!s:>7}  " + "  ".join(
                f"{e} {fmt_ms(ms[e])}{' (' + notes[e][:80] + ')' if e in notes else ''}" for e in out["engines"])
                + f"  {agreement}")
        if "hourglass" in handles:
            out["hourglass_peak_rss_after_queries"] = handles["hourglass"].peak_rss_mb()
    finally:
        for key in ("influx", "hourglass"):
            srv = handles.get(key)
            if srv is not None:
                srv.stop()
                if srv in servers:
                    servers.remove(srv)
        if "duckdb" in handles:
            handles["duckdb"].close()
        os.remove(lp)
    return out


def span(hours):
    return f"{hours:g} h" if hours >= 1 else f"{hours * 60:g} min"


def md(section):
    """Markdown tables of the section."""
    lines = ["", f"High cardinality: TSBS cpu-only, {section['hosts']:,} hosts x {span(section['hours'])} = "
             f"{section['rows']:,} rows, fresh servers; lastpoint-1-host is the median of {LASTPOINT_RUNS} runs."]
    if "hourglass_rate_ratio" in section:
        lines[-1] += (f" Hourglass ingest at {section['hosts']:,} hosts / at the main run's "
                      f"{section['main_hosts']:,}: {section['ingest'][0]['rows_per_sec']:,.0f} / "
                      f"{section['hourglass_rate_main']:,.0f} rows/s = **{section['hourglass_rate_ratio']:.2f}** "
                      "(target ≥ 0.80).")
    if section["skipped"]:
        lines.append("")
        lines.append("Skipped: " + "; ".join(section["skipped"]))
    lines.append("")
    lines.append("| engine | rows | load s | rows/s | bytes on disk | bytes/value | peak RSS MiB |")
    lines.append("|---|---|---|---|---|---|---|")
    for i in section["ingest"]:
        rss = "–" if i["peak_rss_mb"] is None else f"{i['peak_rss_mb']:,.0f}"
        lines.append(f"| {i['engine']} | {i['rows']:,} | {i['seconds']:.2f} | **{i['rows_per_sec']:,.0f}** | "
                     f"{i['disk_bytes']:,} | **{i['bytes_per_value']:.3f}** | {rss} |")
    lines.append("")
    engines = section["engines"]
    peers = [n for n in engines if n != "Hourglass"]
    lines.append("| query | rows | Hourglass ms |" + "".join(f" {n} ms | {n} / Hourglass |" for n in peers) + " answers |")
    lines.append("|---|---|---|" + "---|---|" * len(peers) + "---|")
    lines += query_rows(section["queries"], peers)
    return lines
