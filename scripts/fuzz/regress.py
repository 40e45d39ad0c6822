"""Saving a shrunk finding as a golden test: tests/slt/fuzz_<hash>.slt with its .lp data, the
expected rows being the oracle's answer, spelled as crates/hourglass/tests/it/slt.rs spells
Arrow values (ArrayFormatter: ryu floats, chrono ISO timestamps, NULL, (empty))."""

from __future__ import annotations

import datetime
import hashlib
import re
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from .engines import rows_of
from .sql import iso


def ryu(x: float) -> str:
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    sign, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    d = "".join(map(str, digits))
    kk = len(d) + exp          # position of the decimal point
    s = "-" if sign else ""
    if 0 <= exp and kk <= 16:
        return s + d + "0" * exp + ".0"
    if 0 < kk <= 16:
        return s + d[:kk] + "." + d[kk:]
    if -5 < kk <= 0:
        return s + "0." + "0" * (-kk) + d
    e = kk - 1
    return s + (d if len(d) == 1 else d[0] + "." + d[1:]) + f"e{e}"


def arrow_ts(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    base = iso(sec * 1_000_000_000)
    if not frac:
        return base
    f = f"{frac:09d}".rstrip("0")
    width = -(-len(f) // 3) * 3
    return f"{base}.{f.ljust(width, '0')}"


def fmt(value, t: pa.DataType) -> str:
    if value is None:
        return "NULL"
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_timestamp(t):
        return arrow_ts(int(value)) + ("Z" if t.tz in ("UTC", "+00:00", "Z") else "")
    if pa.types.is_date32(t):
        return iso(int(value))[:10]
    if pa.types.is_floating(t):
        return ryu(float(value))
    if pa.types.is_boolean(t):
        return "true" if value else "false"
    s = str(value)
    return s if s else "(empty)"


def type_letter(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "I"
    if pa.types.is_floating(t):
        return "R"
    return "T"


def save(dirpath: Path, *, sql: str, lines: list[str], expected: pa.Table, schema: pa.Schema,
         ordered: bool, header: list[str]) -> Path:
    data = "\n".join(lines) + "\n"
    h = hashlib.sha1((sql + "\n" + data).encode()).hexdigest()[:10]
    dirpath.mkdir(parents=True, exist_ok=True)
    base = dirpath / f"fuzz_{h}"
    rows = rows_of(expected)
    types = [f.type for f in schema]
    letters = "".join(type_letter(t) for t in types)
    body = []
    for r in rows:
        body.append(" ".join(fmt(v, t) for v, t in zip(r, types)))
    comment = "\n".join("# " + l if l else "#" for h_ in header
                        for l in (textwrap.wrap(h_, 96, break_long_words=False,
                                                break_on_hyphens=False) or [""]))
    slt = (f"{comment}\n\nquery {letters}{'' if ordered else ' rowsort'}\n{sql}\n----\n"
           + "".join(b + "\n" for b in body))
    slt, lp = into_harness_window(slt, lines)
    base.with_suffix(".slt").write_text(slt)
    base.with_suffix(".lp").write_text(f"# Data of {base.name}.slt (written by scripts/fuzz_queries.py)\n" + lp)
    return base.with_suffix(".slt")


# The golden-test harness's clock (crates/hourglass/tests/it/harness.rs): 2024-01-02T00:00Z; its
# server refuses rows more than 15 minutes ahead of it.
HARNESS_FIRST_DAY = datetime.date(2024, 1, 1)


def into_harness_window(slt: str, lines: list[str]) -> tuple[str, str]:
    """Moves a finding's data and every date in its SQL and answer back by whole days, so its
    newest row falls on or before the harness's day (whole days keep every bin, date and
    second the same)."""
    times = [int(l.rsplit(" ", 1)[1]) for l in lines if l.strip() and not l.startswith("#")]
    if not times:
        return slt, "\n".join(lines) + "\n"
    newest = datetime.datetime.fromtimestamp(max(times) / 1e9, datetime.timezone.utc).date()
    days = max(0, (newest - HARNESS_FIRST_DAY).days)
    shift = days * 86_400 * 1_000_000_000
    out = []
    for l in lines:
        if l.strip() and not l.startswith("#"):
            head, t = l.rsplit(" ", 1)
            l = f"{head} {int(t) - shift}"
        out.append(l)

    def earlier(m):
        return (datetime.date.fromisoformat(m.group(1)) - datetime.timedelta(days=days)).isoformat()

    slt = re.sub(r"(\d{4}-\d{2}-\d{2})(?=[T '])", earlier, slt)
    if days:
        slt = f"# Dates moved {days} days earlier than found, into the golden-test clock's window.\n" + slt
    return slt, "\n".join(out) + "\n"
