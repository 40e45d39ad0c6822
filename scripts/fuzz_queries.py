#!/usr/bin/env python3
"""Differential query fuzzer for Hourglass (issue 16, item 7; docs/reliability.md).

Random tables written by line protocol (both storage tiers, rewrites of persisted rows), random
queries from a grammar aimed at Hourglass's plan rules, each answered by Hourglass and checked
against two oracles: the same server with its plan rules off (`disabled_rules`) and DuckDB over
the logical rows exported to Parquet. A mismatch is shrunk (query parts, then data lines) and
saved as tests/slt/fuzz_<hash>.slt/.lp.

    scripts/fuzz_queries.sh --minutes 30 [--seed S] [--binary PATH]
    scripts/fuzz_queries.sh --quick            # CI: fixed seed, about 90 s
Exit status: 0 no wrong answer, 1 a wrong answer (or rules-on-only error), 2 setup failure.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from fuzz import check, data, engines, gen, regress  # noqa: E402
from fuzz.engines import QueryError  # noqa: E402

WRONG = ("wrong:rules_off", "wrong:duckdb", "error:rules_on_only")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="run time (query phase and shrinking)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: from the clock; printed)")
    p.add_argument("--binary", default=str(REPO / "target/debug/hourglass"))
    p.add_argument("--quick", action="store_true",
                   help="CI mode: seed 1, small tables, <= ~100 s, query shrinking only")
    p.add_argument("--queries-per-dataset", type=int, default=250)
    p.add_argument("--disabled-rules", default="all", help="value of disabled_rules for oracle (a)")
    p.add_argument("--no-duckdb", action="store_true")
    p.add_argument("--no-shrink", action="store_true")
    p.add_argument("--shrink-seconds", type=float, default=240, help="budget per finding")
    p.add_argument("--max-findings", type=int, default=6, help="findings shrunk and saved per run")
    p.add_argument("--save-dir", default=None,
                   help="where regressions go (default tests/slt; quick mode saves only when given)")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--sub-second-casts", action="store_true",
                   help="also compare CAST(time AS TIMESTAMP(0)) with sub-second literals (DataFusion "
                        "truncates such a literal to seconds; off by default)")
    p.add_argument("--self-test", action="store_true",
                   help="plant a wrong answer (rules on drop the last row of queries joining an "
                        "aggregate CTE) to exercise shrinking and saving; use with --save-dir")
    p.add_argument("--verbose", "-v", action="store_true")
    return p.parse_args()


def rules_off_active(server, db, table, disabled) -> bool:
    """Whether the server honours disabled_rules: the plan of a GROUP BY on a dimension (which
    the dictionary-group-keys rule rewrites) or of a latest-value query differs with the rules
    off. When the check itself fails (e.g. a transient server error) the oracle is kept: a
    server that ignores the parameter only makes it agree."""
    probes = [f"EXPLAIN SELECT host, count(*) FROM {table} GROUP BY host",
              f"EXPLAIN SELECT DISTINCT ON (host) host, time FROM {table} ORDER BY host, time DESC"]
    for attempt in range(3):
        try:
            return any(engines.rows_of(server.query(db, sql)) !=
                       engines.rows_of(server.query(db, sql, disabled)) for sql in probes)
        except QueryError as e:
            err = e
            time.sleep(0.5)
    print(f"oracle (a): could not check whether disabled_rules is honoured ({err}); kept", flush=True)
    return True


def main() -> int:
    a = parse_args()
    if a.quick:
        a.seed = 1 if a.seed is None else a.seed
        a.minutes = min(a.minutes, 1.25) if a.minutes != 5.0 else 1.25
        a.queries_per_dataset = 220
        a.shrink_seconds = 20
        a.max_findings = 2
        if a.save_dir is None:
            a.no_save = True
    if a.save_dir is None:
        a.save_dir = str(REPO / "tests/slt")
    seed = a.seed if a.seed is not None else int(time.time()) % 1_000_000
    if not Path(a.binary).exists():
        print(f"fuzz_queries: no server binary at {a.binary} (cargo build -p hourglass)", file=sys.stderr)
        return 2
    started = time.monotonic()
    deadline = started + a.minutes * 60
    a.deadline = deadline
    workdir = Path(tempfile.mkdtemp(prefix="hgfuzz-run-"))

    def cleanup():
        engines.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(cleanup)

    def on_signal(signum, _frame):
        cleanup()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print(f"fuzz_queries: seed {seed}, {a.minutes:g} min, binary {a.binary}"
          f"{' (quick mode)' if a.quick else ''}", flush=True)
    server = engines.Server(a.binary, workdir)
    if a.self_test:
        def plant(sql_text, rules, table):
            if rules is None and " JOIN ph " in sql_text and table.num_rows > 0:
                return table.slice(0, table.num_rows - 1)
            return table
        server.inject = plant
    counts = collections.Counter()
    by_shape = collections.Counter()
    error_samples: dict[str, list] = collections.defaultdict(list)
    findings = []
    shrunk_signatures = set()
    saved = []
    rules_off = None
    query_seconds = 0.0
    anchor = int(time.time()) // 60 * 60 * 1_000_000_000
    ds_index = 0
    try:
        while time.monotonic() < deadline:
            ds_seed = seed * 1000 + ds_index
            ds = data.generate(ds_seed, anchor, "quick" if a.quick else "normal")
            db = "fuzz" if ds_index == 0 else f"fuzz{ds_index}"
            files0 = server.metric("hourglass_magnetic_files")
            info = server.load(db, ds.phases)
            files1 = server.metric("hourglass_magnetic_files")
            mem = server.metric("hourglass_memory_store_chunks")
            counts["tables"] += len(ds.model.tables())
            counts["rows"] += sum(len(r) for r in ds.model.rows.values())
            counts["lines"] += len(ds.all_lines())
            print(f"dataset {ds_index} (seed {ds_seed}): tables "
                  + ", ".join(f"{t}[{len(ds.model.rows[t])} rows, {len(ds.rewritten[t])} rewritten, "
                              f"tags {','.join(c for c, k in ds.model.columns(t).items() if k == 'tag')}]"
                              for t in ds.model.tables())
                  + f"; magnetic files {files0:g} -> {files1:g}, memory chunks {mem:g}"
                  + (f"; {info['persist_timeouts']} persist waits timed out" if info["persist_timeouts"] else ""),
                  flush=True)
            if rules_off is None:
                rules_off = rules_off_active(server, db, ds.model.tables()[0], a.disabled_rules)
                print(f"oracle (a) rules off via disabled_rules={a.disabled_rules}: "
                      f"{'active' if rules_off else 'NOT honoured by this server (skipped)'}", flush=True)
            disabled = a.disabled_rules if rules_off else None
            duck = None if a.no_duckdb else engines.Duck(ds.model, workdir)
            g = gen.Gen(ds, random.Random(ds_seed), a.sub_second_casts)
            for qi in range(a.queries_per_dataset):
                if time.monotonic() >= deadline:
                    break
                sel = g.query()
                t0 = time.monotonic()
                try:
                    o = check.run(server, db, duck, sel, disabled)
                except RuntimeError as e:      # server died
                    print(f"FATAL: {e}\n  query: {sel.render('hg')}", flush=True)
                    counts["server_died"] += 1
                    return 1
                query_seconds += time.monotonic() - t0
                counts["queries"] += 1
                by_shape[sel.shape] += 1
                for k in o.kinds:
                    counts[k] += 1
                    if k.startswith("error:") and len(error_samples[k]) < 5:
                        err = o.server_errors[0] if k == "error:server_5xx" else \
                            next((x for x in (o.hg, o.off, o.duck) if isinstance(x, Exception)), None)
                        error_samples[k].append((sel.shape, str(err)[:300], o.sql_hg))
                if a.verbose:
                    print(f"  [{sel.shape}] {o.kinds or 'ok'}: {o.sql_hg}", flush=True)
                wrong = [k for k in o.kinds if k in WRONG]
                if not wrong:
                    continue
                kind = wrong[0]
                f = report_finding(o, sel, kind, ds_seed, qi)
                findings.append(f)
                sig = (kind, sel.shape)
                if a.no_shrink or sig in shrunk_signatures or len(shrunk_signatures) >= a.max_findings:
                    continue
                shrunk_signatures.add(sig)
                path = shrink_and_save(a, server, db, duck, ds, sel, kind, disabled, o, seed, ds_seed,
                                       qi, workdir)
                if path:
                    saved.append(path)
            if duck:
                duck.close()
            ds_index += 1
    finally:
        elapsed = time.monotonic() - started
        print_summary(counts, by_shape, error_samples, findings, saved, elapsed, query_seconds, rules_off)
        engines.stop_all()
    return 1 if findings else 0


def report_finding(o, sel, kind, ds_seed, qi):
    print(f"\n*** {kind} (dataset seed {ds_seed}, query {qi}, shape {sel.shape})", flush=True)
    print(f"    hourglass: {o.sql_hg}")
    if kind == "wrong:duckdb":
        print(f"    duckdb:    {o.sql_duck}")
    print(f"    difference: {o.diff.get(check.oracle_of(kind), '')}")
    print(f"    rules on:  {engines.preview(o.hg) if not isinstance(o.hg, Exception) else o.hg}")
    oracle = o.off if check.oracle_of(kind) == "rules_off" else o.duck
    print(f"    oracle:    {engines.preview(oracle) if not isinstance(oracle, Exception) else oracle}",
          flush=True)
    return {"kind": kind, "sql": o.sql_hg, "shape": sel.shape, "seed": ds_seed}


def shrink_and_save(a, server, db, duck, ds, sel, kind, disabled, o, seed, ds_seed, qi, workdir):
    budget = a.shrink_seconds
    if a.quick:     # quick mode stays within its wall-time budget
        budget = min(budget, max(5.0, a.deadline - time.monotonic() + 10))
    t0 = time.monotonic()
    small = check.shrink_query(server, db, duck, sel, disabled, kind, budget * 0.35)
    phases, mode, reproduced = ds.phases, "phased", True
    if not a.quick:
        phases, mode, reproduced = check.shrink_data(server, ds, small, disabled, kind,
                                                     max(10.0, budget - (time.monotonic() - t0)), workdir)
    lines = [l for p in phases for _, l in p.lines]
    # the final answers, on the shrunk data
    fdb = f"fuzzfinal{qi}_{ds_seed}"
    server.load(fdb, phases, mode)
    fduck = engines.Duck(data.Model.from_lines(ds.specs, [l for p in phases for l in p.lines]), workdir)
    try:
        fo = check.run(server, fdb, fduck, small, disabled)
    finally:
        fduck.close()
    oracle_name = check.oracle_of(kind)
    expected = fo.off if oracle_name == "rules_off" else fo.duck
    got = fo.hg
    print(f"    minimised ({len(lines)} lines, {mode} load, {'reproduces' if kind in fo.kinds else 'DOES NOT reproduce'}"
          f" there): {fo.sql_hg}")
    print(f"      hourglass: {engines.preview(got) if not isinstance(got, Exception) else got}")
    print(f"      {oracle_name}: {engines.preview(expected) if not isinstance(expected, Exception) else expected}",
          flush=True)
    if a.no_save or isinstance(expected, Exception) or expected is None:
        return None
    schema = got.schema if got is not None and not isinstance(got, Exception) else expected.schema
    if len(schema) != expected.num_columns:
        schema = expected.schema
    header = [
        f"Found by scripts/fuzz_queries.py (run seed {seed}, dataset seed {ds_seed}, query {qi}, "
        f"shape {sel.shape}): {kind}. Expected rows are the answer of the oracle "
        f"{'Hourglass with disabled_rules=' + str(disabled) if oracle_name == 'rules_off' else 'DuckDB over the same logical rows'}.",
        f"Hourglass answered: {engines.preview(got, 4) if not isinstance(got, Exception) else got}",
        f"Data: shrunk to {len(lines)} lines; when found they were written in phases with the "
        f"magnetic store persisting rows past memory retention in between; the shrunk case "
        f"{'reproduced' if kind in fo.kinds else 'did not reproduce'} with the {mode} load "
        f"({'one body, as this harness loads it' if mode == 'single' else 'one body then /admin/flush' if mode == 'flush' else 'phased writes'}).",
        "Original query:",
        o.sql_hg,
    ]
    path = regress.save(Path(a.save_dir), sql=fo.sql_hg, lines=lines, expected=expected, schema=schema,
                        ordered=small.ordered(), header=header)
    print(f"    saved {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)
    return path


def print_summary(counts, by_shape, error_samples, findings, saved, elapsed, query_seconds, rules_off):
    q = counts["queries"]
    print("\n==== fuzz_queries summary ====")
    print(f"elapsed {elapsed:.0f} s; datasets: tables {counts['tables']}, logical rows {counts['rows']}, "
          f"lines written {counts['lines']}")
    print(f"queries {q} ({q / max(query_seconds, 1e-9) * 60:.0f}/min while querying, "
          f"{q / max(elapsed, 1e-9) * 60:.0f}/min overall); by shape: "
          + ", ".join(f"{s} {n}" for s, n in sorted(by_shape.items())))
    print(f"oracle (a) rules off: {'active' if rules_off else 'inactive'}")
    print(f"wrong answers: vs rules off {counts['wrong:rules_off']}, vs duckdb {counts['wrong:duckdb']}; "
          f"error with rules on only {counts['error:rules_on_only']}")
    print(f"errors on one side: rules off only {counts['error:rules_off_only']}, hourglass only "
          f"{counts['error:hourglass_only']}, duckdb only {counts['error:duckdb_only']}; "
          f"server errors (5xx, retried once) {counts['error:server_5xx']}; "
          f"both error (skipped) {counts['both_error']}")
    for k, samples in sorted(error_samples.items()):
        for shape, err, sql_text in samples[:2]:
            print(f"  {k} [{shape}]: {err}\n      {sql_text[:400]}")
    print(f"findings {len(findings)}; regressions saved {len(saved)}: "
          + ", ".join(str(p.name) for p in saved))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
