"""Random tables for the query fuzzer: a write history in line protocol, in phases, and the
logical rows it leaves (the oracle's copy).

Line protocol is last-write-wins per field: a later line for the same series (tag set) and time
overrides only the fields it names. `Model.apply` reproduces exactly that.

Times are chosen so that each table's times are distinct across all of its rows (a minute grid
point + a fraction + the series' index in the table's grain): `ORDER BY time` is then a
total order within a table, so first/last values, `DISTINCT ON`, window functions and as-of
matches have one right answer. A table's grain is nanoseconds, microseconds or milliseconds:
the server stores a Parquet file's `time` in the coarsest unit that holds it, and the queries'
time literals fall next to the rows' times (one nanosecond, half a second away), so comparisons
in the stored unit are checked at their rounding edges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NS = 1_000_000_000
MINUTE = 60 * NS
HOUR = 60 * MINUTE
DAY = 24 * HOUR

FIELD_KINDS = {"v": "float", "n": "int", "ok": "bool", "s": "str"}
STRINGS = ["alpha", "beta", "gamma", "delta x", "", "eps,1"]
# sub-minute parts per grain (ns per grain unit, fractions): multiples of 1000 grain units, so
# the series index (< 1000) in grain units added to them keeps every time of a table distinct
GRAINS = {
    "ns": (1, [0, 0, 500_000_000, 999_000_000, 250_000_000, 123_456_000, 1_000]),
    "us": (1_000, [0, 0, 500_000_000, 999_000_000, 250_000_000, 123_000_000, 1_000_000]),
    "ms": (1_000_000, [0, 0, NS, 30 * NS, 59 * NS, 17 * NS]),
}
# The share of datasets whose memory tier is written clean, in time order, in MEMORY_BODIES
# bodies (more than the 32 chunks the server merges into a block of last rows).
CLEAN_MEMORY_SHARE = 0.35
MEMORY_BODIES = 40


@dataclass
class TableSpec:
    name: str
    tags: list[str]                      # dimension columns, in a fixed order
    tag_values: dict[str, list[str]]
    tag_missing: dict[str, float]
    fields: list[str]                    # measure columns (keys of FIELD_KINDS)
    field_missing: float


@dataclass
class Phase:
    """Lines written in one body; `wait_persist` waits afterwards until the magnetic store
    holds more files than before (the rows past memory retention were persisted)."""
    lines: list[tuple[str, str]]         # (table, line)
    wait_persist: bool = False


@dataclass
class Dataset:
    seed: int
    anchor: int                          # ns; rows newer than anchor - 6 h stay in memory
    specs: dict[str, TableSpec]
    phases: list[Phase]
    model: "Model" = None
    rewritten: dict[str, set] = field(default_factory=dict)  # table -> {(tags, time)}

    def all_lines(self) -> list[tuple[str, str]]:
        return [l for p in self.phases for l in p.lines]


def fmt_value(kind: str, value) -> str:
    if kind == "float":
        return repr(float(value))
    if kind == "int":
        return f"{value}i"
    if kind == "bool":
        return "true" if value else "false"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lp_line(table: str, spec: TableSpec, tags: tuple, time: int, fields: dict) -> str:
    tag_part = "".join(f",{k}={v}" for k, v in zip(spec.tags, tags) if v is not None)
    field_part = ",".join(f"{k}={fmt_value(FIELD_KINDS[k], v)}" for k, v in fields.items())
    return f"{table}{tag_part} {field_part} {time}"


def parse_line(line: str):
    """Parses a line this module wrote: (table, {tag: value}, {field: value}, time)."""
    head, rest = line.split(" ", 1)
    fields_part, time = rest.rsplit(" ", 1)
    parts = head.split(",")
    table = parts[0]
    tags = dict(p.split("=", 1) for p in parts[1:])
    fields = {}
    i = 0
    while i < len(fields_part):
        eq = fields_part.index("=", i)
        key = fields_part[i:eq]
        j = eq + 1
        if fields_part[j] == '"':
            k = j + 1
            out = []
            while fields_part[k] != '"':
                if fields_part[k] == "\\":
                    k += 1
                out.append(fields_part[k])
                k += 1
            fields[key] = "".join(out)
            j = k + 1
        else:
            k = fields_part.find(",", j)
            k = len(fields_part) if k < 0 else k
            raw = fields_part[j:k]
            kind = FIELD_KINDS[key]
            fields[key] = (int(raw[:-1]) if kind == "int" else raw == "true" if kind == "bool"
                           else float(raw))
            j = k
        i = j + 1
    return table, tags, fields, int(time)


class Model:
    """The logical rows: per table, (tags tuple, time) -> {field: value}."""

    def __init__(self, specs: dict[str, TableSpec]):
        self.specs = specs
        self.rows: dict[str, dict] = {t: {} for t in specs}
        self.seen_tags: dict[str, set] = {t: set() for t in specs}
        self.seen_fields: dict[str, set] = {t: set() for t in specs}

    def apply(self, line: str):
        table, tags, fields, time = parse_line(line)
        spec = self.specs[table]
        key = (tuple(tags.get(t) for t in spec.tags), time)
        self.rows[table].setdefault(key, {}).update(fields)
        self.seen_tags[table].update(tags)
        self.seen_fields[table].update(fields)

    @classmethod
    def from_lines(cls, specs, lines):
        m = cls(specs)
        for _, line in lines:
            m.apply(line)
        return m

    def tables(self) -> list[str]:
        return [t for t in self.specs if self.rows[t]]

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> kind ('tag', 'mname', 'time', or a field kind) of the table as
        Hourglass creates it (only tags and fields some line named)."""
        spec = self.specs[table]
        cols = {t: "tag" for t in spec.tags if t in self.seen_tags[table]}
        cols["measure_name"] = "mname"
        cols["time"] = "time"
        for f in spec.fields:
            if f in self.seen_fields[table]:
                cols[f] = FIELD_KINDS[f]
        return cols

    def arrow_table(self, table: str):
        import pyarrow as pa
        spec = self.specs[table]
        cols = self.columns(table)
        items = sorted(self.rows[table].items(), key=lambda kv: kv[0][1])
        arrays, names = [], []
        types = {"tag": pa.string(), "mname": pa.string(), "time": pa.timestamp("ns"),
                 "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}
        for name, kind in cols.items():
            if kind == "tag":
                i = spec.tags.index(name)
                vals = [k[0][i] for k, _ in items]
            elif kind == "mname":
                vals = [table] * len(items)
            elif kind == "time":
                vals = [k[1] for k, _ in items]
            else:
                vals = [f.get(name) for _, f in items]
            if kind == "time":
                arrays.append(pa.array(vals, type=pa.int64()).cast(pa.timestamp("ns")))
            else:
                arrays.append(pa.array(vals, type=types[kind]))
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)

    def row_times(self, table: str) -> list[int]:
        return sorted(k[1] for k in self.rows[table])


def _random_fields(rng: random.Random, spec: TableSpec, force_all=False) -> dict:
    out = {}
    for f in spec.fields:
        if not force_all and rng.random() < spec.field_missing:
            continue
        kind = FIELD_KINDS[f]
        if kind == "float":
            out[f] = rng.randint(-400, 4000) / 4      # quarters: every sum is exact
        elif kind == "int":
            out[f] = rng.randint(-1000, 100_000)
        elif kind == "bool":
            out[f] = rng.random() < 0.5
        else:
            out[f] = rng.choice(STRINGS)
    if not out:
        f = rng.choice(spec.fields)
        out = {k: v for k, v in _random_fields(rng, spec, True).items() if k == f}
    return out


def generate(seed: int, anchor: int, size: str = "normal") -> Dataset:
    """A random dataset. `anchor` (ns, the current time rounded down) separates the tiers:
    rows older than anchor - 6 h are past the default memory retention."""
    rng = random.Random(seed)
    ntables = rng.choice([1, 2, 2, 3, 3])
    names = ["cpu", "mem", "net"][:ntables]
    hosts_all = [f"h{i:02d}" for i in range(80)]
    specs = {}
    for name in names:
        nhost = rng.choice([3, 5, 5, 8, 60])
        tags = ["host"]
        values = {"host": hosts_all[:nhost]}
        missing = {"host": rng.choice([0.0, 0.0, 0.03])}
        if rng.random() < 0.75:
            tags.append("region")
            values["region"] = ["us", "eu", "ap"][:rng.choice([2, 3])]
            missing["region"] = rng.choice([0.0, 0.1, 0.2])
        if rng.random() < 0.3:
            tags.append("dc")
            values["dc"] = ["a", "b", "c"]
            missing["dc"] = 0.1
        fields = ["v"] + [f for f in ["n", "ok", "s"] if rng.random() < 0.7]
        specs[name] = TableSpec(name, tags, values, missing, fields,
                                rng.choice([0.0, 0.1, 0.2]))

    grains = {name: rng.choice(["ns", "ns", "us", "ms", "ms"]) for name in specs}
    span_days = rng.choice([2, 3, 4])
    per_table = {"quick": (150, 500), "normal": (300, 1500)}[size]
    old_lines, new_lines, dup_lines = [], [], []
    keys: dict[str, list] = {}
    for name, spec in specs.items():
        nrows = rng.randint(*per_table)
        grain, fractions = GRAINS[grains[name]]
        # series: tag tuples; the series index offsets times by nanoseconds
        series = {}
        rows = []
        used = set()
        while len(rows) < nrows:
            tags = tuple(None if rng.random() < spec.tag_missing[t] else rng.choice(spec.tag_values[t])
                         for t in spec.tags)
            if all(t is None for t in tags):
                tags = (spec.tag_values["host"][0],) + tags[1:]
            sidx = series.setdefault(tags, len(series))
            assert sidx < 1000
            if rng.random() < 0.5:
                minute = anchor // MINUTE - rng.randint(0, 5 * 60 + 40)      # memory tier
            else:
                minute = anchor // MINUTE - rng.randint(7 * 60, span_days * 24 * 60)
            frac = rng.choice(fractions)
            if (tags, minute) in used:
                continue
            used.add((tags, minute))
            t = minute * MINUTE + frac + sidx * grain
            rows.append((tags, t))
        keys[name] = rows
        for tags, t in rows:
            line = lp_line(name, spec, tags, t, _random_fields(rng, spec))
            (old_lines if t < anchor - 6 * HOUR else new_lines).append((name, line))
            if rng.random() < 0.04:          # a rewrite in the same body
                dup_lines.append((name, lp_line(name, spec, tags, t, _random_fields(rng, spec))))
    rng.shuffle(old_lines)
    rewritten = {n: set() for n in specs}

    def rewrites(frac_old, frac_new, count):
        out = []
        for name, rows in keys.items():
            spec = specs[name]
            olds = [r for r in rows if r[1] < anchor - 6 * HOUR]
            news = [r for r in rows if r[1] >= anchor - 6 * HOUR]
            # rewrites cluster on a few days, so those days hold many of them
            picks = rng.sample(olds, min(len(olds), int(len(olds) * frac_old))) + \
                rng.sample(news, min(len(news), int(len(news) * frac_new)))
            for tags, t in picks[:count]:
                rewritten[name].add((tags, t))
                out.append((name, lp_line(name, spec, tags, t, _random_fields(rng, spec))))
        rng.shuffle(out)
        return out

    def line_time(line):
        return int(line[1].rsplit(" ", 1)[1])

    if random.Random(seed * 7919 + 1).random() < CLEAN_MEMORY_SHARE:
        # The memory tier without rewrites, written in time order over many bodies: many clean
        # chunks per table, whose last rows latest-value queries merge in blocks.
        memory_day = (anchor - 6 * HOUR) // DAY * DAY
        dup_lines = [l for l in dup_lines if line_time(l) < memory_day]
        new_lines.sort(key=line_time)
        # contiguous slices of the sorted lines: each series' times increase from body to body
        step = -(-len(new_lines) // MEMORY_BODIES) or 1
        bodies = [new_lines[i:i + step] for i in range(0, len(new_lines), step)]
        # rewrites() picks from `keys`: keep it off the memory day
        keys = {n: [r for r in rows if r[1] < memory_day] for n, rows in keys.items()}
        phases = [
            Phase(old_lines + dup_lines, wait_persist=True),
            Phase(rewrites(0.12, 0.0, 10_000), wait_persist=True),
            *[Phase(b) for b in bodies],
            Phase(rewrites(0.05, 0.0, 10_000)),
        ]
    else:
        phases = [
            Phase(old_lines + [l for l in dup_lines if line_time(l) < anchor - 6 * HOUR],
                  wait_persist=True),
            Phase(new_lines + [l for l in dup_lines if line_time(l) >= anchor - 6 * HOUR]
                  + rewrites(0.12, 0.05, 10_000), wait_persist=True),
            Phase(rewrites(0.05, 0.1, 10_000), wait_persist=False),
        ]
    for name, line in dup_lines:
        _, tags, _, t = parse_line(line)
        spec = specs[name]
        rewritten[name].add((tuple(tags.get(x) for x in spec.tags), t))
    ds = Dataset(seed, anchor, specs, phases, rewritten=rewritten)
    ds.model = Model.from_lines(specs, ds.all_lines())
    for name, rows in ds.model.rows.items():
        times = [k[1] for k in rows]
        assert len(times) == len(set(times)), f"times of {name} not distinct"
    return ds
