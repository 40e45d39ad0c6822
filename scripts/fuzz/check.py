"""Running one query on every engine, classifying the outcome, and shrinking a failing case
(query parts first, then the data's lines)."""

from __future__ import annotations

import copy
import itertools
import re
import time
from dataclasses import dataclass, field

from . import sql as S
from .data import Dataset, Model, Phase
from .engines import Duck, QueryError, compare

_db_counter = itertools.count()


@dataclass
class Outcome:
    sql_hg: str
    sql_duck: str
    ordered: bool
    hg: object = None        # pa.Table or QueryError
    off: object = None
    duck: object = None
    kinds: list = field(default_factory=list)   # findings, see classify
    diff: dict = field(default_factory=dict)
    server_errors: list = field(default_factory=list)   # 5xx answers (retried once)

    def ok(self, name):
        v = getattr(self, name)
        return v is not None and not isinstance(v, Exception)


def run(server, db, duck: Duck | None, sel: S.Select, disabled: str | None) -> Outcome:
    o = Outcome(sel.render("hg"), sel.render("duck"), sel.ordered())

    def attempt(f):
        try:
            return f()
        except QueryError as e:
            return e

    def hg(rules):
        r = attempt(lambda: server.query(db, o.sql_hg, rules))
        if isinstance(r, QueryError) and r.status >= 500:   # once more: transient?
            o.server_errors.append(str(r))
            r = attempt(lambda: server.query(db, o.sql_hg, rules))
        return r

    o.hg = hg(None)
    if disabled:
        o.off = hg(disabled)
    if duck is not None:
        o.duck = attempt(lambda: duck.query(o.sql_duck))
    classify(o, disabled is not None, duck is not None)
    return o


def classify(o: Outcome, have_off: bool, have_duck: bool):
    """Findings: wrong answers `wrong:rules_off` (rules on vs off) and `wrong:duckdb` (rules
    on vs DuckDB); errors on one side only: `error:rules_on_only` (a rule breaks a query the
    plain plan runs), `error:rules_off_only`, `error:hourglass_only` (both Hourglass plans fail,
    DuckDB answers: usually SQL Hourglass does not speak), `error:duckdb_only`; `both_error`
    (skipped)."""
    k = o.kinds
    if o.server_errors:
        k.append("error:server_5xx")
    if have_off:
        if o.ok("hg") and o.ok("off"):
            d = compare(o.hg, o.off, o.ordered)
            if d:
                k.append("wrong:rules_off")
                o.diff["rules_off"] = d
        elif o.ok("off"):
            k.append("error:rules_on_only")
        elif o.ok("hg"):
            k.append("error:rules_off_only")
    if have_duck:
        if o.ok("hg") and o.ok("duck"):
            d = compare(o.hg, o.duck, o.ordered)
            if d:
                k.append("wrong:duckdb")
                o.diff["duckdb"] = d
        elif o.ok("duck"):
            if not have_off or not o.ok("off"):
                k.append("error:hourglass_only")
        elif o.ok("hg"):
            k.append("error:duckdb_only")
    if not (o.ok("hg") or o.ok("off") or o.ok("duck")):
        k.append("both_error")


def oracle_of(kind: str) -> str:
    return "rules_off" if kind in ("wrong:rules_off", "error:rules_on_only") else "duckdb"


def reproduces(server, db, duck, sel, disabled, kind) -> bool:
    o = run(server, db, duck if oracle_of(kind) == "duckdb" else None, sel,
            disabled if oracle_of(kind) == "rules_off" else None)
    return kind in o.kinds


def shrink_query(server, db, duck, sel, disabled, kind, budget_s: float, log=print):
    """Greedy delta debugging over the query's parts: take the first smaller query that still
    shows the finding, start again from it; stop at a fixpoint or when the budget is spent."""
    deadline = time.monotonic() + budget_s
    cur = sel
    checks = 0
    progress = True
    while progress and time.monotonic() < deadline:
        progress = False
        for cand in S.reductions(cur):
            if time.monotonic() >= deadline:
                break
            try:
                cand.render("hg"), cand.render("duck")
            except Exception:
                continue
            checks += 1
            if reproduces(server, db, duck, cand, disabled, kind):
                cur = cand
                progress = True
                break
    log(f"    query shrunk in {checks} checks: {cur.render('hg')}")
    return cur


def tables_in(sql_text: str, model: Model) -> set:
    return {t for t in model.tables() if re.search(rf"\b{t}\b", sql_text)}


def shrink_data(server, ds: Dataset, sel, disabled, kind, budget_s, workdir, log=print):
    """Delta debugging over the written lines (their phases kept), each candidate loaded
    into a fresh database; first tries the .slt harness's loading (one body; one body then a
    flush). Returns (phases, mode)."""
    deadline = time.monotonic() + budget_s
    sql_text = sel.render("hg")
    used = tables_in(sql_text, ds.model)
    phases = [Phase([l for l in p.lines if l[0] in used], p.wait_persist) for p in ds.phases]
    checks = [0]

    def test(phs, mode):
        checks[0] += 1
        db = f"fuzzmin{next(_db_counter)}"
        lines = [l for p in phs for l in p.lines]
        if not lines:
            return False
        server.load(db, phs, mode)
        duck = None
        if oracle_of(kind) == "duckdb":
            duck = Duck(Model.from_lines(ds.specs, lines), workdir)
        try:
            return reproduces(server, db, duck, sel, disabled, kind)
        finally:
            if duck:
                duck.close()

    mode = "phased"
    for m in ("single", "flush"):
        if test(phases, m):
            mode = m
            break
    else:
        if not test(phases, "phased"):
            log("    data shrink: the finding does not reproduce on a fresh database; keeping all lines")
            return phases, "phased", False
    # ddmin over the lines, phase structure kept
    flat = [(i, l) for i, p in enumerate(phases) for l in p.lines]

    def build(items):
        out = [Phase([], p.wait_persist) for p in phases]
        for i, l in items:
            out[i].lines.append(l)
        return out

    n = 2
    while len(flat) >= 2 and time.monotonic() < deadline:
        size = max(1, len(flat) // n)
        chunks = [flat[i:i + size] for i in range(0, len(flat), size)]
        reduced = False
        for ci in range(len(chunks)):
            if time.monotonic() >= deadline:
                break
            rest = [x for cj, c in enumerate(chunks) if cj != ci for x in c]
            if rest and test(build(rest), mode):
                flat = rest
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if size == 1:
                break
            n = min(len(flat), n * 2)
    log(f"    data shrunk to {len(flat)} lines ({mode} load) in {checks[0]} loads")
    return build(flat), mode, True
