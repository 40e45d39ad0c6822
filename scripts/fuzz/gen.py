"""Random queries over a dataset (see sql.py for the tree), weighted toward what Hourglass adds
on top of DataFusion: GROUP BY on dimensions, aggregate CTEs joined back to their table,
latest-value queries, first/last values, date_bin/date_trunc buckets, time filters (also through
casts and functions of time) with literals at and next to real row times, and ASOF joins."""

from __future__ import annotations

import random

from .sql import (NS, UNITS, CreateTimeSeries, GetField, Unnest, Agg, Between, Bin, Col, DateLit, InList, InSub, IsNull, Item, Join,
                  Like, Lit, Not, OrderItem, ScalarSub, Select, ArraySub, TimeFn, TimeLit, Win)
from .data import STRINGS, Dataset

CMP = ["=", "<>", "<", "<=", ">", ">="]
NUMERIC = ("float", "int")

SHAPES = [
    ("scan", 10), ("agg", 18), ("cte_join", 14), ("agg_of_agg", 6), ("window", 9),
    ("latest", 12), ("bucket", 10), ("cast_filter", 10), ("asof", 8), ("join_buckets", 4),
    ("in_sub", 4), ("unnest", 5), ("scalar_sub", 6), ("like", 4),
    ("array_sub", 5),
]


class Gen:
    def __init__(self, ds: Dataset, rng: random.Random, sub_second_casts: bool = False):
        self.sub_second_casts = sub_second_casts
        self.ds = ds
        self.m = ds.model
        self.rng = rng
        self.tables = self.m.tables()

    # ---- helpers ---------------------------------------------------------------------------
    def cols(self, table, kinds=None, qual=None):
        return [Col(n, k, qual) for n, k in self.m.columns(table).items()
                if kinds is None or k in kinds]

    def tags(self, table, qual=None):
        return self.cols(table, ("tag",), qual)

    def pick_time(self, table) -> int:
        rng = self.rng
        rewritten = sorted(self.ds.rewritten.get(table, ()), key=lambda k: k[1])
        if rewritten and rng.random() < 0.45:
            t = rng.choice(rewritten)[1]
        else:
            t = rng.choice(list(self.m.rows[table]))[1]
        delta = rng.choice([0, 0, 0, 1, -1, NS // 2, -NS // 2, NS, -NS, 3600 * NS, None, None])
        if delta is None:        # onto a second / hour / day boundary near the row
            unit = rng.choice([NS, NS, 60 * NS, 3600 * NS, UNITS["day"]])
            return t // unit * unit
        return t + delta

    def time_lit(self, table, truncate=None) -> TimeLit:
        t = self.pick_time(table)
        if truncate:
            t = t // truncate * truncate
        return TimeLit(t, "str" if self.rng.random() < 0.1 else "ts")

    def time_cond(self, table, qual=None):
        rng = self.rng
        time = Col("time", "time", qual)
        form = rng.choice(["plain", "plain", "between", "sec", "sec", "trunc", "bin", "date"])
        op = rng.choice(CMP)
        if form == "plain":
            return Bin(op, time, self.time_lit(table))
        if form == "between":
            a, b = sorted([self.pick_time(table), self.pick_time(table)])
            return Between(time, TimeLit(a), TimeLit(b), neg=rng.random() < 0.15)
        if form == "sec":
            # whole seconds: DataFusion casts a sub-second literal compared with a
            # Timestamp(s) to seconds (truncating), which DuckDB does not model
            lit = self.time_lit(table, None if self.sub_second_casts and rng.random() < 0.4 else NS)
            e = TimeFn("sec", time)
            return Bin(op, e, lit) if rng.random() < 0.8 else Bin(_swap(op), lit, e)
        if form == "trunc":
            unit = rng.choice(["second", "minute", "hour", "hour", "day"])
            lit = self.time_lit(table, UNITS[unit] if rng.random() < 0.7 else None)
            return Bin(op, TimeFn("trunc", time, unit=unit), lit)
        if form == "bin":
            n = rng.choice([NS, 60 * NS, 15 * 60 * NS, 3600 * NS, 86400 * NS])
            lit = self.time_lit(table, n if rng.random() < 0.7 else None)
            return Bin(op, TimeFn("bin", time, n=n), lit)
        days = self.pick_time(table) // UNITS["day"]
        return Bin(rng.choice(["=", "=", "<=", ">"]), TimeFn("date", time), DateLit(days))

    def value_cond(self, table, qual=None):
        rng = self.rng
        spec = self.ds.specs[table]
        c = rng.choice(self.cols(table, ("tag", "float", "int", "bool", "str"), qual))
        r = rng.random()
        if r < 0.12:
            return IsNull(c, neg=rng.random() < 0.5)
        if c.kind == "tag":
            vals = spec.tag_values[c.name]
            if r < 0.4:
                return InList(c, [Lit(v, "tag") for v in _sample(rng, vals, min(len(vals), rng.randint(1, 3)))],
                              neg=rng.random() < 0.2)
            return Bin(rng.choice(["=", "=", "<>", "<", ">="]), c, Lit(rng.choice(vals), "tag"))
        if c.kind == "float":
            return Bin(rng.choice(CMP[2:]), c, Lit(rng.randint(-100, 3000) / 4, "float"))
        if c.kind == "int":
            return Bin(rng.choice(CMP), c, Lit(rng.randint(0, 100_000), "int"))
        if c.kind == "bool":
            return Bin("=", c, Lit(rng.random() < 0.5, "bool"))
        return Bin(rng.choice(["=", "<>", "<"]), c, Lit(rng.choice(STRINGS), "str"))

    def cond(self, table, qual=None):
        rng = self.rng
        c = self.time_cond(table, qual) if rng.random() < 0.6 else self.value_cond(table, qual)
        r = rng.random()
        if r < 0.1:
            return Bin("OR", c, self.cond(table, qual))
        if r < 0.14:
            return Not(c)
        return c

    def where(self, table, qual=None, maxn=3, p_none=0.25):
        if self.rng.random() < p_none:
            return []
        return [self.cond(table, qual) for _ in range(self.rng.randint(1, maxn))]

    def agg(self, table, qual=None):
        rng = self.rng
        cols = self.m.columns(table)
        choices = [("count", None)]
        for n, k in cols.items():
            c = Col(n, k, qual)
            if k in NUMERIC:
                choices += [("sum", c), ("avg", c), ("min", c), ("max", c), ("count", c)]
            elif k == "time":
                choices += [("min", c), ("max", c)]
            elif k == "str":
                choices += [("min", c), ("max", c), ("count_d", c)]
            elif k == "tag":
                choices += [("count_d", c)]
            elif k == "bool":
                choices += [("bool_and", c), ("bool_or", c), ("count", c)]
        fn, c = rng.choice(choices)
        if fn == "count_d":
            return Agg("count", c, distinct=True)
        if c is not None and rng.random() < 0.08 and c.kind in NUMERIC + ("str",):
            return Agg(rng.choice(["first", "last"]), c, order=Col("time", "time", qual),
                       desc=rng.random() < 0.3)
        return Agg(fn, c)

    def having(self, agg_table, qual=None):
        if self.rng.random() < 0.7:
            return []
        a = self.agg(agg_table, qual)
        if a.kind in NUMERIC:
            return [Bin(self.rng.choice([">", ">=", "<"]), a, Lit(self.rng.choice([1, 2, 5, 100]), "int"))]
        return [IsNull(a, neg=True)]

    def group_keys(self, table, qual=None, allow_bucket=True):
        rng = self.rng
        tags = self.tags(table, qual)
        keys = _sample(rng, tags, min(len(tags), rng.choice([1, 1, 1, 2, 2, 3])))
        if allow_bucket and rng.random() < 0.25:
            keys.append(self.bucket(qual))
        return keys

    def bucket(self, qual=None):
        rng = self.rng
        time = Col("time", "time", qual)
        if rng.random() < 0.6:
            return TimeFn("bin", time, n=rng.choice([60 * NS, 15 * 60 * NS, 3600 * NS, 6 * 3600 * NS, 86400 * NS]))
        return TimeFn("trunc", time, unit=rng.choice(["minute", "hour", "day"]))

    def order_keys(self, exprs):
        return [OrderItem(e, self.rng.random() < 0.3, self.rng.random() < 0.5) for e in exprs]

    # ---- shapes ----------------------------------------------------------------------------
    def query(self) -> Select:
        shape = self.rng.choices([s for s, _ in SHAPES], [w for _, w in SHAPES])[0]
        sel = getattr(self, "q_" + shape)()
        sel.shape = shape
        for _, s in _selects(sel):
            _alias_duplicates(s)
        return sel

    def table(self):
        return self.rng.choice(self.tables)

    def q_scan(self):
        rng = self.rng
        t = self.table()
        cols = self.cols(t)
        items = [Item(c) for c in _sample(rng, cols, min(len(cols), rng.randint(1, 4)))]
        if rng.random() < 0.6:
            items.insert(0, Item(Col("time", "time")))
        sel = Select(items, t, where=self.where(t, maxn=3, p_none=0.1))
        if rng.random() < 0.4:
            sel.order_by = [OrderItem(Col("time", "time"), rng.random() < 0.5)]
            sel.total_order = True
            sel.limit = rng.choice([None, 1, 5, 20])
        return sel

    def q_agg(self):
        rng = self.rng
        t = self.table()
        keys = self.group_keys(t) if rng.random() < 0.85 else []
        aggs = [Item(self.agg(t)) for _ in range(rng.randint(1, 3))]
        sel = Select([Item(k) for k in keys] + aggs, t, where=self.where(t),
                     group_by=list(keys), having=self.having(t) if keys else [])
        if keys and rng.random() < 0.3:
            sel.order_by = self.order_keys(keys)
            sel.total_order = True
            sel.limit = rng.choice([None, 3, 10])
        return sel

    def q_bucket(self):
        rng = self.rng
        t = self.table()
        keys = [self.bucket()] + _sample(rng, self.tags(t), rng.choice([0, 1, 1]))
        aggs = [Item(self.agg(t)) for _ in range(rng.randint(1, 3))]
        return Select([Item(k) for k in keys] + aggs, t, where=self.where(t), group_by=keys,
                      having=self.having(t))

    def q_cast_filter(self):
        """Known-bug shape 2: CAST(time AS TIMESTAMP(0)) <op> literal, literals on rewritten
        rows' times."""
        rng = self.rng
        t = self.table()
        time = Col("time", "time")
        lit = self.time_lit(t, NS)      # whole seconds, see time_cond
        conds = [Bin(rng.choice(["<=", "=", ">=", "<", ">", "<="]), TimeFn("sec", time), lit)]
        if rng.random() < 0.3:
            conds.append(self.time_cond(t))
        if rng.random() < 0.3:
            conds.append(self.value_cond(t))
        keys = _sample(rng, self.tags(t), rng.choice([0, 0, 1]))
        items = [Item(k) for k in keys]
        r = rng.random()
        if r < 0.6:
            items += [Item(Agg("count")), Item(self.agg(t))]
            return Select(items, t, where=conds, group_by=list(keys))
        items = [Item(time)] + [Item(c) for c in _sample(rng, self.cols(t, ("float", "int", "str", "bool", "tag")), 2)]
        return Select(items, t, where=conds)

    def q_cte_join(self):
        """Known-bug shape 1: a table joined with an aggregate CTE grouped by a dimension,
        feeding an outer aggregate."""
        rng = self.rng
        t = self.table()
        t2 = t if rng.random() < 0.7 else self.table()
        tags1 = {c.name for c in self.tags(t)}
        shared = [c for c in self.tags(t2) if c.name in tags1]
        if not shared:
            t2, shared = t, self.tags(t)
        dims = [c.name for c in _sample(rng, shared, 1 if rng.random() < 0.75 or len(shared) < 2 else 2)]
        inner_agg = rng.choice([
            Agg("min", Col("time", "time")), Agg("max", Col("time", "time")), Agg("count"),
            Agg("avg", Col("v", "float")), Agg("max", Col("v", "float"))])
        ph = Select([Item(Col(d, "tag")) for d in dims] + [Item(inner_agg, "mn")], t,
                    where=self.where(t, maxn=1, p_none=0.7), group_by=[Col(d, "tag") for d in dims])
        on = [Bin("=", Col(d, "tag", "m"), Col(d, "tag", "ph")) for d in dims]
        r = rng.random()
        if inner_agg.kind == "time" and r < 0.4:
            on.append(Bin(rng.choice([">=", "=", ">", "<="]), Col("time", "time", "m"), Col("mn", "time", "ph")))
        elif inner_agg.kind == "float" and r < 0.3:
            on.append(Bin(rng.choice([">=", "<"]), Col("v", "float", "m"), Col("mn", "float", "ph")))
        a = self.agg(t2, "m")
        it_items = [Item(Col(d, "tag", "m"), d if rng.random() < 0.5 else None) for d in dims] + [Item(a, "a")]
        with_c = rng.random() < 0.6
        if with_c:
            it_items.append(Item(Agg("count"), "c"))
        it = Select(it_items, t2, alias="m", joins=[Join("inner", "ph", "ph", on)],
                    where=self.where(t2, "m", maxn=1, p_none=0.7),
                    group_by=[Col(d, "tag", "m") for d in dims])
        outer_aggs = [Item(Agg(rng.choice(["avg", "sum", "max", "min", "count"]), Col("a", a.kind)))
                      if a.kind in NUMERIC else Item(Agg("count", Col("a", a.kind)))]
        if with_c:
            outer_aggs.append(Item(Agg(rng.choice(["sum", "count", "max"]), Col("c", "int"))))
        if rng.random() < 0.2:
            outer_aggs.append(Item(Agg("count")))
        if rng.random() < 0.7:
            keys = [Col(dims[0], "tag")]
            sel = Select([Item(k) for k in keys] + outer_aggs, "it", group_by=keys)
        else:
            sel = Select(outer_aggs, "it")
        sel.ctes = [("ph", ph), ("it", it)]
        if rng.random() < 0.15:     # the join's rows straight into the outer aggregate
            sel = Select([Item(Col(dims[0], "tag", "ph")), Item(Agg("count")), Item(Agg("sum", Col("mn", inner_agg.kind, "ph")) if inner_agg.kind in NUMERIC else Agg("count", Col("mn", "time", "ph")))],
                         t2, alias="m", joins=[Join("inner", "ph", "ph", on)],
                         group_by=[Col(dims[0], "tag", "ph")], ctes=[("ph", ph)])
        return sel

    def q_agg_of_agg(self):
        rng = self.rng
        t = self.table()
        keys = self.group_keys(t)
        inner = Select([Item(k, f"k{i}") for i, k in enumerate(keys)] +
                       [Item(Agg("count"), "c"), Item(self.agg(t), "x"), Item(Agg("max", Col("time", "time")), "mt")],
                       t, where=self.where(t), group_by=list(keys))
        xk = inner.items[len(keys) + 1].e.kind
        outer = [Item(Agg("count")), Item(Agg("sum", Col("c", "int"))), Item(Agg("min", Col("mt", "time")))]
        if xk in NUMERIC:
            outer.append(Item(Agg(rng.choice(["sum", "max", "avg"]), Col("x", xk))))
        where = [Bin(">", Col("c", "int"), Lit(rng.choice([1, 2, 5]), "int"))] if rng.random() < 0.4 else []
        sel = Select(outer, "g", where=where, ctes=[("g", inner)])
        if len(keys) > 1 and rng.random() < 0.6:
            sel.items.insert(0, Item(Col("k0", keys[0].kind)))
            sel.group_by = [Col("k0", keys[0].kind)]
        return sel

    def q_window(self):
        rng = self.rng
        t = self.table()
        tags = self.tags(t)
        part = _sample(rng, tags, rng.choice([1, 1, 2])) if tags else []
        time = Col("time", "time")
        nums = self.cols(t, NUMERIC)
        v = rng.choice(nums) if nums else time
        fn = rng.choice(["row_number", "rank", "lag", "lead", "sum", "count", "min", "max", "first_value"])
        desc = rng.random() < 0.3
        order = [OrderItem(time, desc)]
        args = [] if fn in ("row_number", "rank") else [v]
        frame = ""
        if fn in ("sum", "count", "min", "max") and rng.random() < 0.4:
            frame = rng.choice(["ROWS BETWEEN 2 PRECEDING AND CURRENT ROW",
                                "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
                                "ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING"])
        w = Win(fn, args, part, order, frame)
        items = [Item(c) for c in part] + [Item(time), Item(v), Item(w, "w")]
        inner = Select(items, t, where=self.where(t, maxn=2))
        if rng.random() < 0.4 and fn == "row_number":
            # latest row per partition through a window
            outer = Select([Item(Col(c.name, c.kind)) for c in part] +
                           [Item(Col("time", "time")), Item(Col(v.name, v.kind))], "w0",
                           where=[Bin("=", Col("w", "int"), Lit(1, "int"))], ctes=[("w0", inner)])
            return outer
        return inner

    def q_latest(self):
        rng = self.rng
        t = self.table()
        tags = self.tags(t)
        on = _sample(rng, tags, rng.choice([1, 1, 2])) if tags else []
        time = Col("time", "time")
        r = rng.random()
        if r < 0.55 and on:
            others = [c for c in self.cols(t) if c.name not in {o.name for o in on} and c.name != "time"]
            items = [Item(c) for c in on] + [Item(time)] + [Item(c) for c in _sample(rng, others, min(len(others), rng.randint(0, 3)))]
            where = []
            if rng.random() < 0.4:
                where.append(Bin(rng.choice([">=", ">"]), time, self.time_lit(t)))
            if rng.random() < 0.3:
                c = rng.choice(tags)
                vals = self.ds.specs[t].tag_values[c.name]
                where.append(InList(c, [Lit(v, "tag") for v in _sample(rng, vals, min(len(vals), rng.choice([1, 1, 2, 3])))]))
            if rng.random() < 0.15:
                where.append(self.cond(t))
            sel = Select(items, t, distinct_on=list(on), where=where,
                         order_by=[OrderItem(c, False, rng.random() < 0.5) for c in on] + [OrderItem(time, True)],
                         total_order=True)
            if rng.random() < 0.2:
                sel.limit = rng.choice([1, 3])
            return sel
        if r < 0.8 or not on:
            nums = self.cols(t, NUMERIC + ("str",))
            items = [Item(c) for c in on] + [Item(Agg("max", time))]
            for c in _sample(rng, nums, min(len(nums), rng.randint(1, 2))):
                items.append(Item(Agg(rng.choice(["first", "last"]), c, order=time, desc=rng.random() < 0.3)))
            return Select(items, t, where=self.where(t, maxn=1, p_none=0.6), group_by=list(on))
        # the latest row per dimension by a join with max(time)
        d = on[0].name
        l = Select([Item(Col(d, "tag")), Item(Agg("max", time), "mt")], t,
                   where=self.where(t, maxn=1, p_none=0.6), group_by=[Col(d, "tag")])
        nums = self.cols(t, NUMERIC)
        items = [Item(Col(d, "tag", "x")), Item(Col("time", "time", "x"))] + [Item(Col(c.name, c.kind, "x")) for c in nums[:2]]
        return Select(items, t, alias="x", ctes=[("l", l)],
                      joins=[Join("inner", "l", "l", [Bin("=", Col(d, "tag", "x"), Col(d, "tag", "l")),
                                                      Bin("=", Col("time", "time", "x"), Col("mt", "time", "l"))])])

    def q_asof(self):
        rng = self.rng
        a, b = self.table(), self.table()
        shared = [c.name for c in self.tags(a) if c.name in {x.name for x in self.tags(b)}]
        keys = _sample(rng, shared, min(len(shared), rng.choice([0, 1, 1, 1, 2])))
        op = rng.choice([">=", ">=", ">", "<=", "<"])
        ta, tb = Col("time", "time", "a"), Col("time", "time", "b")
        match = Bin(op, ta, tb) if rng.random() < 0.8 else Bin(_swap(op), tb, ta)
        on = [Bin("=", Col(k, "tag", "a"), Col(k, "tag", "b")) for k in keys]
        bv = rng.choice(self.cols(b, NUMERIC + ("str", "bool")) or [tb])
        bv = Col(bv.name, bv.kind, "b")
        join = Join("asof", b, "b", on, match)
        where = self.where(a, "a", maxn=2, p_none=0.4)
        if rng.random() < 0.6:
            items = [Item(Col(k, "tag", "a")) for k in keys] + [Item(ta), Item(tb), Item(bv)]
            return Select(items, a, alias="a", joins=[join], where=where)
        key = Col(keys[0], "tag", "a") if keys else None
        aggs = [Item(Agg("count")), Item(Agg("count", tb)), Item(Agg("max", tb))]
        if bv.kind in NUMERIC:
            aggs.append(Item(Agg("sum", bv)))
        return Select(([Item(key)] if key else []) + aggs, a, alias="a", joins=[join], where=where,
                      group_by=[key] if key else [])

    def q_join_buckets(self):
        rng = self.rng
        a, b = self.table(), self.table()
        shared = [c.name for c in self.tags(a) if c.name in {x.name for x in self.tags(b)}] or ["host"]
        d = shared[0] if "host" not in shared else "host"
        bk = self.bucket()
        def side(t):
            return Select([Item(Col(d, "tag"), "d"), Item(bk, "b"), Item(Agg("count"), "c"),
                           Item(Agg("avg", Col("v", "float")), "x")], t,
                          where=self.where(t, maxn=1, p_none=0.6), group_by=[Col(d, "tag"), bk])
        on = [Bin("=", Col("d", "tag", "p"), Col("d", "tag", "q")), Bin("=", Col("b", "time", "p"), Col("b", "time", "q"))]
        return Select([Item(Col("d", "tag", "p")), Item(Agg("count")), Item(Agg("sum", Col("c", "int", "q"))),
                       Item(Agg("max", Col("x", "float", "p")))], "pa", alias="p", ctes=[("pa", side(a)), ("qa", side(b))],
                      joins=[Join(rng.choice(["inner", "inner", "left"]), "qa", "q", on)],
                      group_by=[Col("d", "tag", "p")])

    def q_in_sub(self):
        rng = self.rng
        a, b = self.table(), self.table()
        shared = [c.name for c in self.tags(a) if c.name in {x.name for x in self.tags(b)}] or ["host"]
        d = rng.choice(shared)
        sub = Select([Item(Col(d, "tag"))], b, where=self.where(b, maxn=2, p_none=0.2))
        keys = [Col(d, "tag")]
        return Select([Item(keys[0]), Item(Agg("count")), Item(self.agg(a))], a,
                      where=[InSub(Col(d, "tag"), sub, neg=rng.random() < 0.2)] + self.where(a, maxn=1, p_none=0.6),
                      group_by=keys)


def _q_scalar_sub(self):
    """A correlated scalar subquery that is not aggregated (DataFusion refuses it; the
    `scalar_subquery` rewrite plans it), keyed so at most one row qualifies: the same table on
    time (a table's times are all distinct), or a per-dimension aggregate CTE on its dimension.
    Sometimes with a WHERE conjunct over the outer row only, or outer columns in the projected
    expression."""
    rng = self.rng
    t = self.table()
    time_m, time_s = Col("time", "time", "m"), Col("time", "time", "i")
    vals = self.cols(t, NUMERIC + ("str", "bool", "tag"))
    ctes = []
    if rng.random() < 0.65 or not self.tags(t):
        v = rng.choice(vals)
        key = [Bin("=", time_s, time_m)]
        if rng.random() < 0.3 and self.tags(t):
            c = rng.choice(self.tags(t))
            key.append(Bin("=", Col(c.name, "tag", "i"), Col(c.name, "tag", "m")))
        inner_rel, inner_v = t, Col(v.name, v.kind, "i")
    else:
        d = rng.choice(self.tags(t))
        nums = self.cols(t, NUMERIC)
        a = Agg(rng.choice(["max", "min", "sum", "count"]), rng.choice(nums)) if nums else Agg("count")
        ctes = [("ph", Select([Item(Col(d.name, "tag")), Item(a, "a")], t,
                              where=self.where(t, maxn=1, p_none=0.7), group_by=[Col(d.name, "tag")]))]
        key = [Bin("=", Col(d.name, "tag", "i"), Col(d.name, "tag", "m"))]
        inner_rel, inner_v = "ph", Col("a", a.kind, "i")
    projected = inner_v
    if rng.random() < 0.3:
        outer_nums = self.cols(t, NUMERIC, "m")
        if inner_v.kind in NUMERIC and outer_nums:
            projected = Bin(rng.choice(["+", "-"]), inner_v, rng.choice(outer_nums))
        elif rng.random() < 0.5:
            projected = rng.choice(self.cols(t, NUMERIC + ("str", "tag"), "m"))
    where = list(key)
    if rng.random() < 0.35:
        where.insert(rng.randint(0, len(where)), self.value_cond(t, "m"))
    if inner_rel == t and rng.random() < 0.2:
        where.append(self.value_cond(t, "i"))
    sub = Select([Item(projected)], inner_rel, alias="i", where=where)
    items = [Item(time_m)] + [Item(c) for c in _sample(rng, self.cols(t, ("tag",), "m"), 1)]
    items.append(Item(ScalarSub(sub, projected.kind), "x"))
    outer_where = self.where(t, "m", maxn=1, p_none=0.5)
    if rng.random() < 0.5:
        return Select(items, t, alias="m", where=outer_where, ctes=ctes)
    # in an aggregate, or in WHERE
    if rng.random() < 0.5:
        # aggregated over a CTE (DataFusion plans no scalar subquery inside an aggregate's
        # argument, rewritten or not)
        q = Select(items, t, alias="m", where=outer_where)
        return Select([Item(Agg("count")), Item(Agg("count", Col("x", projected.kind)))], "q",
                      ctes=ctes + [("q", q)])
    return Select(items[:-1], t, alias="m", ctes=ctes,
                  where=outer_where + [IsNull(ScalarSub(sub, projected.kind), neg=rng.random() < 0.5)])


def _like_pattern(rng) -> str:
    """A LIKE pattern with escape character '#' near one of the data's strings."""
    base = rng.choice(STRINGS + ["alpha", "beta"])
    out = []
    for ch in base:
        r = rng.random()
        if r < 0.15:
            out.append("_")
        elif r < 0.22:
            out.append("%")
        elif r < 0.27:
            continue
        else:
            out.append(ch)
        if rng.random() < 0.05:
            out.append(rng.choice(["#%", "#_", "##", "\\"]))
    if rng.random() < 0.4:
        out.insert(0, "%")
    if rng.random() < 0.4:
        out.append("%")
    return "".join(out)


def _q_like(self):
    """LIKE / NOT LIKE / ILIKE with ESCAPE '#' (DataFusion refuses escape characters other than
    the backslash; the `like_escape` rewrite plans them) over strings and dimensions."""
    rng = self.rng
    t = self.table()
    cols = self.cols(t, ("str", "tag"))
    if not cols:
        return self.q_scan()
    conds = []
    for _ in range(rng.randint(1, 2)):
        c = rng.choice(cols)
        conds.append(Like(c, _like_pattern(rng), neg=rng.random() < 0.3, ilike=rng.random() < 0.3))
    if rng.random() < 0.3:
        conds.append(self.cond(t))
    if rng.random() < 0.5:
        return Select([Item(Agg("count"))] + [Item(Agg("count", c)) for c in cols[:1]], t, where=conds)
    items = [Item(Col("time", "time"))] + [Item(c) for c in cols]
    return Select(items, t, where=conds)


def _q_array_sub(self):
    """`ARRAY(SELECT v FROM t AS i [WHERE i.d = m.d AND …] [ORDER BY v …])` (DataFusion cannot
    plan it; the `array_subquery` rewrite makes it an aggregated subquery with the empty array
    for no rows), correlated on a dimension or on time, or not; read as its length or, ordered,
    its first element."""
    rng = self.rng
    t = self.table()
    vals = self.cols(t, NUMERIC + ("str", "bool"), "i")
    if not vals:
        return self.q_scan()
    v = rng.choice(vals)
    where = []
    r = rng.random()
    if r < 0.45 and self.tags(t):
        c = rng.choice(self.tags(t))
        where.append(Bin("=", Col(c.name, "tag", "i"), Col(c.name, "tag", "m")))
    elif r < 0.7:
        where.append(Bin("=", Col("time", "time", "i"), Col("time", "time", "m")))
    if rng.random() < 0.5:
        where.append(self.value_cond(t, "i"))
    op = "first" if rng.random() < 0.5 else "len"
    order = []
    if op == "first":
        order = [OrderItem(v, desc=rng.random() < 0.5, nulls_first=rng.random() < 0.5)]
    sub = Select([Item(v)], t, alias="i", where=where, order_by=order)
    arr = ArraySub(sub, op, v.kind)
    items = [Item(Col("time", "time", "m"))] + [Item(c) for c in _sample(rng, self.cols(t, ("tag",), "m"), 1)]
    items.append(Item(arr, "x"))
    outer_where = self.where(t, "m", maxn=1, p_none=0.5)
    if rng.random() < 0.6:
        return Select(items, t, alias="m", where=outer_where)
    q = Select(items, t, alias="m", where=outer_where)
    return Select([Item(Agg("count")), Item(Agg("count", Col("x", arr.kind)))], "q", ctes=[("q", q)])


Gen.q_scalar_sub = _q_scalar_sub
Gen.q_like = _q_like
Gen.q_array_sub = _q_array_sub


def _q_unnest(self):
    """create_time_series per dimension, unnested again (the Timestream dialect's time series
    functions are registered on the SQL endpoint too)."""
    rng = self.rng
    t = self.table()
    d = rng.choice(self.tags(t))
    v = rng.choice(self.cols(t, NUMERIC))
    x = Select([Item(Col(d.name, "tag")), Item(CreateTimeSeries(Col("time", "time"), v), "ts")], t,
               where=self.where(t, maxn=1, p_none=0.5), group_by=[Col(d.name, "tag")])
    head = []
    if rng.random() < 0.5:
        # Known-bug shape 1: the series built over a join of the table with an aggregate of
        # itself on the dimension (DataFusion's functional dependencies then reach the unnest).
        ph = Select([Item(Col(d.name, "tag")), Item(Agg("min", Col("time", "time")), "mn")], t,
                    group_by=[Col(d.name, "tag")])
        x = Select([Item(Col(d.name, "tag", "m"), d.name),
                    Item(CreateTimeSeries(Col("time", "time", "m"), Col(v.name, v.kind, "m")), "ts")],
                   t, alias="m",
                   joins=[Join("inner", "ph", "ph", [Bin("=", Col(d.name, "tag", "m"), Col(d.name, "tag", "ph"))])],
                   group_by=[Col(d.name, "tag", "m")])
        head = [("ph", ph)]
    u = Select([Item(Col(d.name, "tag")), Item(Unnest(Col("ts", "timeseries")), "p")], "x")
    if rng.random() < 0.4:
        u.ctes = head + [("x", x)]
        return u
    p = Col("p", "point")
    return Select([Item(Col(d.name, "tag")), Item(Agg("count")),
                   Item(Agg("sum", GetField(p, "value", v.kind)), "sv"),
                   Item(Agg("min", GetField(p, "time", "time")), "mt")],
                  "u", ctes=head + [("x", x), ("u", u)], group_by=[Col(d.name, "tag")],
                  where=[Bin(">", GetField(p, "time", "time"), self.time_lit(t))] if rng.random() < 0.4 else [])


Gen.q_unnest = _q_unnest


def _swap(op):
    return {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}[op]


def _sample(rng, population, k):
    population = list(population)
    return rng.sample(population, max(0, min(k, len(population))))


def _selects(sel):
    yield None, sel
    for _, c in sel.ctes:
        yield from _selects(c)
    for c in sel.where:
        if isinstance(c, InSub):
            yield from _selects(c.sub)


def _df_name(e):
    """Roughly the name DataFusion gives an unaliased select item (a cast is named after its
    column), to alias items whose names would collide ("Projections require unique
    expression names")."""
    if isinstance(e, Col):
        return e.name
    if isinstance(e, TimeFn) and e.fn in ("sec", "date"):
        return _df_name(e.arg)
    return e.render("hg")


def _alias_duplicates(sel):
    seen = set()
    for i, it in enumerate(sel.items):
        name = it.alias or _df_name(it.e)
        if name in seen:
            it.alias = f"x{i}"
            name = it.alias
        seen.add(name)
