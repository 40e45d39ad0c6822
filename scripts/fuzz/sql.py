"""A small SQL tree the fuzzer generates, renders per engine and shrinks.

Two renderings: `hg` (Hourglass: DataFusion SQL plus Snowflake's ASOF JOIN) and `duck`
(DuckDB). In DuckDB every time value is a BIGINT of nanoseconds (the tables are views that
apply `epoch_ns(time)`), so time functions render as exact integer arithmetic and literals as
integers; Hourglass's timestamps are compared as nanosecond integers too.
"""

from __future__ import annotations

import copy
import datetime as _dt
from dataclasses import dataclass, field, fields, is_dataclass

NS = 1_000_000_000
UNITS = {"second": NS, "minute": 60 * NS, "hour": 3600 * NS, "day": 86400 * NS}


def iso(ns: int) -> str:
    sec, frac = divmod(ns, NS)
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=sec)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:09d}" if frac else "")


def ident(name: str, d: str) -> str:
    return f'"{name}"' if d == "duck" else name


def q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Expr:
    kind = "?"

    def render(self, d: str) -> str:
        raise NotImplementedError


@dataclass
class Col(Expr):
    name: str
    kind: str
    qual: str | None = None

    def render(self, d):
        c = ident(self.name, d)
        return f"{ident(self.qual, d)}.{c}" if self.qual else c


@dataclass
class Lit(Expr):
    value: object
    kind: str

    def render(self, d):
        if self.value is None:
            return "NULL"
        if self.kind == "bool":
            return "true" if self.value else "false"
        if self.kind in ("str", "tag"):
            return q(self.value)
        return repr(self.value)


@dataclass
class TimeLit(Expr):
    ns: int
    style: str = "ts"          # ts: TIMESTAMP '...'; str: '...Z' (coerced)
    kind: str = "time"

    def render(self, d):
        if d == "duck":
            return str(self.ns)
        if self.style == "str":
            return q(iso(self.ns) + "Z")
        return f"TIMESTAMP {q(iso(self.ns))}"


@dataclass
class DateLit(Expr):
    days: int
    kind: str = "date"

    def render(self, d):
        if d == "duck":
            return str(self.days)
        return f"DATE {q(iso(self.days * UNITS['day'])[:10])}"


@dataclass
class TimeFn(Expr):
    """fn: 'bin' (date_bin with a stride of `n` ns), 'trunc' (date_trunc to `unit`),
    'sec' (CAST AS TIMESTAMP(0)), 'date' (CAST AS DATE)."""
    fn: str
    arg: Expr
    unit: str = ""
    n: int = 0

    @property
    def kind(self):
        return "date" if self.fn == "date" else "time"

    def render(self, d):
        a = self.arg.render(d)
        if d == "duck":
            step = {"bin": self.n, "trunc": UNITS.get(self.unit), "sec": NS,
                    "date": UNITS["day"]}[self.fn]
            return f"({a} // {step})" if self.fn == "date" else f"(({a} // {step}) * {step})"
        if self.fn == "bin":
            return f"date_bin(INTERVAL {q(interval_text(self.n))}, {a})"
        if self.fn == "trunc":
            return f"date_trunc({q(self.unit)}, {a})"
        if self.fn == "sec":
            return f"CAST({a} AS TIMESTAMP(0))"
        return f"CAST({a} AS DATE)"


def interval_text(n: int) -> str:
    for unit, size in (("day", UNITS["day"]), ("hour", UNITS["hour"]),
                       ("minute", UNITS["minute"]), ("second", NS)):
        if n % size == 0:
            k = n // size
            return f"{k} {unit}{'s' if k != 1 else ''}"
    raise ValueError(n)


@dataclass
class Bin(Expr):
    op: str
    l: Expr
    r: Expr

    @property
    def kind(self):
        if self.op in ("AND", "OR", "=", "<>", "<", "<=", ">", ">="):
            return "bool"
        return self.l.kind

    def render(self, d):
        return f"({self.l.render(d)} {self.op} {self.r.render(d)})"


@dataclass
class Not(Expr):
    e: Expr
    kind: str = "bool"

    def render(self, d):
        return f"(NOT {self.e.render(d)})"


@dataclass
class IsNull(Expr):
    e: Expr
    neg: bool = False
    kind: str = "bool"

    def render(self, d):
        return f"({self.e.render(d)} IS {'NOT ' if self.neg else ''}NULL)"


@dataclass
class Between(Expr):
    e: Expr
    lo: Expr
    hi: Expr
    neg: bool = False
    kind: str = "bool"

    def render(self, d):
        return (f"({self.e.render(d)} {'NOT ' if self.neg else ''}BETWEEN "
                f"{self.lo.render(d)} AND {self.hi.render(d)})")


@dataclass
class InList(Expr):
    e: Expr
    values: list
    neg: bool = False
    kind: str = "bool"

    def render(self, d):
        vals = ", ".join(v.render(d) for v in self.values)
        return f"({self.e.render(d)} {'NOT ' if self.neg else ''}IN ({vals}))"


@dataclass
class InSub(Expr):
    e: Expr
    sub: "Select"
    neg: bool = False
    kind: str = "bool"

    def render(self, d):
        return f"({self.e.render(d)} {'NOT ' if self.neg else ''}IN ({self.sub.render(d)}))"


@dataclass
class ScalarSub(Expr):
    """A scalar subquery `(SELECT …)`; the fuzzer keys the correlated ones so that at most one
    row qualifies (PostgreSQL and DuckDB refuse two)."""
    sub: "Select"
    kind: str = "float"

    def render(self, d):
        return f"({self.sub.render(d)})"


@dataclass
class ArraySub(Expr):
    """`ARRAY(SELECT …)` read as a scalar both engines print alike: its length (`0` for no rows,
    where NULL would mean the array was) or its first element (NULL for no rows)."""
    sub: "Select"
    op: str = "len"              # len | first
    elem: str = "int"

    @property
    def kind(self):
        return "int" if self.op == "len" else self.elem

    def render(self, d):
        a = f"ARRAY({self.sub.render(d)})"
        if self.op == "first":
            return f"({a})[1]"
        return f"{'cardinality' if d == 'hg' else 'len'}({a})"


@dataclass
class Like(Expr):
    """`e [NOT] [I]LIKE 'pattern' ESCAPE 'c'` (both engines read the escape character alike)."""
    e: Expr
    pattern: str
    escape: str = "#"
    neg: bool = False
    ilike: bool = False
    kind: str = "bool"

    def render(self, d):
        op = ("NOT " if self.neg else "") + ("ILIKE" if self.ilike else "LIKE")
        return f"({self.e.render(d)} {op} {q(self.pattern)} ESCAPE {q(self.escape)})"


@dataclass
class Agg(Expr):
    fn: str                      # count sum avg min max bool_and bool_or first last
    arg: Expr | None = None
    distinct: bool = False
    order: Expr | None = None    # first/last: ORDER BY this
    desc: bool = False

    @property
    def kind(self):
        if self.fn == "count":
            return "int"
        if self.fn == "avg":
            return "float"
        if self.fn in ("bool_and", "bool_or"):
            return "bool"
        return self.arg.kind

    def render(self, d):
        if self.arg is None:
            return "count(*)"
        a = self.arg.render(d)
        if self.fn in ("first", "last"):
            name = (self.fn + "_value") if d == "hg" else self.fn
            return f"{name}({a} ORDER BY {self.order.render(d)}{' DESC' if self.desc else ''})"
        return f"{self.fn}({'DISTINCT ' if self.distinct else ''}{a})"


@dataclass
class OrderItem:
    e: Expr
    desc: bool = False
    nulls_first: bool = True

    def render(self, d):
        return (f"{self.e.render(d)} {'DESC' if self.desc else 'ASC'} "
                f"NULLS {'FIRST' if self.nulls_first else 'LAST'}")


@dataclass
class Win(Expr):
    fn: str                      # row_number rank lag lead sum count min max avg first_value
    args: list
    partition: list
    order: list                  # OrderItem
    frame: str = ""

    @property
    def kind(self):
        if self.fn in ("row_number", "rank", "count"):
            return "int"
        if self.fn == "avg":
            return "float"
        return self.args[0].kind

    def render(self, d):
        args = ", ".join(a.render(d) for a in self.args)
        parts = []
        if self.partition:
            parts.append("PARTITION BY " + ", ".join(p.render(d) for p in self.partition))
        if self.order:
            parts.append("ORDER BY " + ", ".join(o.render(d) for o in self.order))
        if self.frame:
            parts.append(self.frame)
        return f"{self.fn}({args}) OVER ({' '.join(parts)})"


@dataclass
class Join:
    kind: str                    # inner | left | asof
    rel: str
    alias: str
    on: list                     # conditions (equalities for asof)
    match: Expr | None = None    # asof: the MATCH_CONDITION


@dataclass
class Item:
    e: Expr
    alias: str | None = None


@dataclass
class Select:
    items: list
    rel: str
    alias: str | None = None
    ctes: list = field(default_factory=list)        # (name, Select)
    joins: list = field(default_factory=list)
    where: list = field(default_factory=list)
    group_by: list = field(default_factory=list)
    having: list = field(default_factory=list)
    order_by: list = field(default_factory=list)
    limit: int | None = None
    distinct_on: list | None = None
    distinct: bool = False
    total_order: bool = False    # ORDER BY fixes the order of every output row
    shape: str = ""

    def render(self, d: str) -> str:
        out = []
        if self.ctes:
            out.append("WITH " + ", ".join(f"{ident(n, d)} AS ({s.render(d)})" for n, s in self.ctes))
        sel = "SELECT "
        if self.distinct_on:
            sel += "DISTINCT ON (" + ", ".join(e.render(d) for e in self.distinct_on) + ") "
        elif self.distinct:
            sel += "DISTINCT "
        sel += ", ".join(it.e.render(d) + (f" AS {ident(it.alias, d)}" if it.alias else "")
                         for it in self.items)
        out.append(sel)
        frm = "FROM " + ident(self.rel, d) + (f" {ident(self.alias, d)}" if self.alias else "")
        for j in self.joins:
            target = ident(j.rel, d) + (f" {ident(j.alias, d)}" if j.alias != j.rel else "")
            on = list(j.on)
            if j.kind == "asof":
                if d == "hg":
                    frm += f" ASOF JOIN {target} MATCH_CONDITION ({j.match.render(d)})"
                    if on:
                        frm += " ON " + " AND ".join(c.render(d) for c in on)
                else:
                    frm += f" ASOF LEFT JOIN {target} ON " + " AND ".join(
                        c.render(d) for c in on + [j.match])
            else:
                frm += f" {'LEFT ' if j.kind == 'left' else ''}JOIN {target} ON " + \
                    (" AND ".join(c.render(d) for c in on) if on else "true")
        out.append(frm)
        if self.where:
            out.append("WHERE " + " AND ".join(c.render(d) for c in self.where))
        if self.group_by:
            out.append("GROUP BY " + ", ".join(e.render(d) for e in self.group_by))
        if self.having:
            out.append("HAVING " + " AND ".join(c.render(d) for c in self.having))
        if self.order_by:
            out.append("ORDER BY " + ", ".join(o.render(d) for o in self.order_by))
        if self.limit is not None:
            out.append(f"LIMIT {self.limit}")
        return " ".join(out)

    def ordered(self) -> bool:
        return self.total_order and bool(self.order_by)


# ---- shrinking -------------------------------------------------------------------------------

LIST_MIN = {"items": 1, "distinct_on": 1}


def _walk_selects(sel: Select, path=()):
    yield path, sel
    for i, (_, s) in enumerate(sel.ctes):
        yield from _walk_selects(s, path + (("cte", i),))
    for i, c in enumerate(sel.where):
        if isinstance(c, InSub):
            yield from _walk_selects(c.sub, path + (("insub", i),))


def _get(sel: Select, path):
    for step, i in path:
        sel = sel.ctes[i][1] if step == "cte" else sel.where[i].sub
    return sel


def _simpler_exprs(e):
    """Simpler replacements of a condition or expression."""
    if isinstance(e, Bin) and e.op in ("AND", "OR"):
        yield e.l
        yield e.r
    if isinstance(e, Not):
        yield e.e
    if isinstance(e, (InList,)) and len(e.values) > 1:
        yield InList(e.e, e.values[:1], e.neg)
    if isinstance(e, Agg) and e.arg is not None:
        yield Agg("count")
        if e.distinct:
            yield Agg(e.fn, e.arg)
    if isinstance(e, TimeLit) and e.style == "str":
        yield TimeLit(e.ns)
    if isinstance(e, Win) and e.frame:
        yield Win(e.fn, e.args, e.partition, e.order)


def reductions(root: Select):
    """Candidate smaller queries, biggest cuts first. Invalid ones are fine: the check rejects
    them (an error is not the mismatch being kept)."""
    paths = list(_walk_selects(root))
    # drop whole CTEs and joins first
    for path, sel in paths:
        for attr in ("ctes", "joins"):
            for i in range(len(getattr(sel, attr))):
                r = copy.deepcopy(root)
                del getattr(_get(r, path), attr)[i]
                yield r
        if sel.limit is not None:
            r = copy.deepcopy(root)
            _get(r, path).limit = None
            yield r
        if sel.distinct_on is not None:
            r = copy.deepcopy(root)
            _get(r, path).distinct_on = None
            yield r
    for path, sel in paths:
        for attr in ("where", "having", "items", "group_by", "order_by", "distinct_on"):
            lst = getattr(sel, attr)
            if lst is None:
                continue
            if attr == "order_by" and sel.limit is not None:
                continue
            for i in range(len(lst)):
                if len(lst) - 1 < LIST_MIN.get(attr, 0):
                    continue
                r = copy.deepcopy(root)
                s = _get(r, path)
                del getattr(s, attr)[i]
                if attr == "order_by":
                    s.total_order = False
                yield r
    for path, sel in paths:
        for attr in ("where", "having"):
            for i, c in enumerate(getattr(sel, attr)):
                for simpler in _simpler_exprs(c):
                    r = copy.deepcopy(root)
                    getattr(_get(r, path), attr)[i] = copy.deepcopy(simpler)
                    yield r
        for i, it in enumerate(sel.items):
            for simpler in _simpler_exprs(it.e):
                r = copy.deepcopy(root)
                _get(r, path).items[i].e = copy.deepcopy(simpler)
                yield r
        for ji, j in enumerate(sel.joins):
            for i in range(len(j.on)):
                r = copy.deepcopy(root)
                del _get(r, path).joins[ji].on[i]
                yield r


@dataclass
class CreateTimeSeries(Expr):
    """Timestream's create_time_series(time, value) aggregate (a list of {time, value} in time
    order, rows with a NULL value left out); DuckDB: list({'time': ..., 'value': ...} ORDER BY
    time) FILTER (WHERE value IS NOT NULL)."""
    time: Expr
    value: Expr
    kind: str = "timeseries"

    def render(self, d):
        t, v = self.time.render(d), self.value.render(d)
        if d == "hg":
            return f"create_time_series({t}, {v})"
        return f"list({{'time': {t}, 'value': {v}}} ORDER BY {t}) FILTER (WHERE {v} IS NOT NULL)"


@dataclass
class Unnest(Expr):
    e: Expr
    kind: str = "point"

    def render(self, d):
        return f"unnest({self.e.render(d)})"


@dataclass
class GetField(Expr):
    e: Expr
    name: str
    kind: str = "float"

    def render(self, d):
        return f"{self.e.render(d)}[{q(self.name)}]"
