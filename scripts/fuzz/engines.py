"""The engines a query runs on: Hourglass over HTTP (rules on, and rules off through
`disabled_rules`) and DuckDB over the dataset's logical rows exported to Parquet; results
normalised into comparable Python rows."""

from __future__ import annotations

import decimal
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))
import hgserver  # noqa: E402

from .data import Dataset, Model  # noqa: E402

SERVER_FLAGS = ["--persist-min-bytes", "1", "--persist-max-wait-ms", "200",
                "--maintenance-interval-ms", "200", "--query-timeout-secs", "30",
                "--memory-budget-mb", "256"]
_LIVE: list = []


def stop_all():
    for s in list(_LIVE):
        s.stop()


class QueryError(Exception):
    def __init__(self, msg, status=0):
        super().__init__(msg)
        self.status = status


class Server:
    """One `hourglass serve` on ephemeral loopback ports in its own temp dir; always stopped
    (atexit/signals call stop_all)."""

    def __init__(self, binary: str, workdir: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="hgfuzz-", dir=workdir))
        self.proc, self.url = hgserver.start(binary, self.dir / "data", SERVER_FLAGS,
                                             self.dir / "stderr.log")
        self.http = requests.Session()
        _LIVE.append(self)

    def stop(self):
        if self in _LIVE:
            _LIVE.remove(self)
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except Exception:
                    self.proc.kill()
                    self.proc.wait(timeout=20)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def metric(self, name: str) -> float:
        text = self.http.get(f"{self.url}/metrics", timeout=10).text
        m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def write(self, db: str, lines: list[str]):
        if not lines:
            return
        body = "\n".join(lines) + "\n"
        r = self.http.post(f"{self.url}/api/v2/write", params={"bucket": db, "precision": "ns"},
                           data=body.encode(), timeout=60)
        if r.status_code != 204:
            raise RuntimeError(f"write failed {r.status_code}: {r.text[:500]}")

    def wait_persisted(self, files_before: float, timeout=10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # a persist adds files, a compaction right after it may remove some
            if self.metric("hourglass_magnetic_files") != files_before:
                time.sleep(0.3)          # let the other tables' persists land too
                return True
            time.sleep(0.1)
        return False

    def load(self, db: str, phases, mode: str = "phased") -> dict:
        """Writes a dataset's phases. mode 'phased': each phase in a body, waiting for the
        magnetic store after the ones that say so; 'single': one body (as the .slt harness);
        'flush': one body, then /admin/flush."""
        info = {"persist_waits": 0, "persist_timeouts": 0}
        if mode != "phased":
            self.write(db, [l for p in phases for _, l in p.lines])
            if mode == "flush":
                self.http.post(f"{self.url}/admin/flush", timeout=60)
            return info
        for p in phases:
            before = self.metric("hourglass_magnetic_files")
            self.write(db, [l for _, l in p.lines])
            if p.wait_persist:
                info["persist_waits"] += 1
                if not self.wait_persisted(before):
                    info["persist_timeouts"] += 1
        return info

    inject = None    # self-test: a function (sql, rules, table) -> table that plants a wrong answer

    def query(self, db: str, sql: str, disabled_rules: str | None = None) -> pa.Table:
        t = self._query(db, sql, disabled_rules)
        return self.inject(sql, disabled_rules, t) if self.inject else t

    def _query(self, db: str, sql: str, disabled_rules: str | None = None) -> pa.Table:
        params = {"disabled_rules": disabled_rules} if disabled_rules else {}
        body = {"db": db, "q": sql, "format": "arrow"}
        if disabled_rules:
            body["disabled_rules"] = disabled_rules
        try:
            r = self.http.post(f"{self.url}/api/v3/query_sql", params=params, json=body, timeout=90)
        except requests.RequestException as e:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server died (exit {self.proc.returncode}); see {self.dir}/stderr.log")
            raise QueryError(f"request failed: {e}")
        if r.status_code != 200:
            try:
                msg = r.json().get("error", r.text)
            except ValueError:
                msg = r.text
            raise QueryError(f"{r.status_code}: {msg}", r.status_code)
        try:
            return pa.ipc.open_stream(r.content).read_all()
        except Exception as e:
            raise QueryError(f"result stream cut: {e}")


class Duck:
    """DuckDB over the logical rows, one Parquet file per table; each table a view whose
    `time` is epoch nanoseconds (BIGINT)."""

    def __init__(self, model: Model, workdir: Path):
        import duckdb
        self.dir = Path(tempfile.mkdtemp(prefix="hgfuzz-duck-", dir=workdir))
        self.con = duckdb.connect()
        self.con.execute("SET threads TO 1")
        for t in model.tables():
            path = self.dir / f"{t}.parquet"
            pq.write_table(model.arrow_table(t), path)
            cols = ", ".join(f'epoch_ns("{c}") AS "time"' if c == "time" else f'"{c}"'
                             for c in model.columns(t))
            self.con.execute(f'CREATE VIEW "{t}" AS SELECT {cols} FROM read_parquet(\'{path}\')')

    def query(self, sql: str) -> pa.Table:
        import duckdb
        try:
            return self.con.sql(sql).to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(str(e).splitlines()[0][:500])

    def close(self):
        self.con.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- normalisation and comparison ------------------------------------------------------------

_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _no_timestamps(t: pa.DataType) -> pa.DataType:
    """The type with every timestamp inside lists and structs as int64 (nanoseconds after
    the cast below only when the unit is ns; other units are scaled in _scale)."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_dictionary(t):
        return _no_timestamps(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_no_timestamps(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _no_timestamps(f.type)) for f in t])
    return t


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple((k, _hashable(x)) for k, x in v.items())
    return v


def _column_values(col: pa.ChunkedArray) -> list:
    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t):
        return [_hashable(v) for v in col.cast(_no_timestamps(t)).to_pylist()]
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_timestamp(t):
        f = _UNIT_NS[t.unit]
        return [None if v is None else v * f for v in col.cast(pa.int64()).to_pylist()]
    if pa.types.is_date32(t):
        return [None if v is None else v * 86_400_000_000_000 for v in col.cast(pa.int32()).to_pylist()]
    if pa.types.is_string_view(t):
        col = col.cast(pa.string())
    out = []
    for v in col.to_pylist():
        if isinstance(v, decimal.Decimal):
            v = int(v) if v == v.to_integral_value() else float(v)
        out.append(v)
    return out


def rows_of(table: pa.Table) -> list[tuple]:
    cols = [_column_values(table.column(i)) for i in range(table.num_columns)]
    return [tuple(c[i] for c in cols) for i in range(table.num_rows)]


def _sort_key(row):
    key = []
    for v in row:
        if v is None:
            key.append((0, 0, ""))
        elif isinstance(v, bool):
            key.append((1, int(v), ""))
        elif isinstance(v, (int, float)):
            key.append((2, v, ""))
        else:
            key.append((3, 0, str(v)))
    return key


def value_equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-9
    return a == b


def compare(a: pa.Table, b: pa.Table, ordered: bool) -> str | None:
    """None when the answers agree, else a short description of the first difference."""
    if a.num_columns != b.num_columns:
        return f"column count {a.num_columns} vs {b.num_columns}"
    ra, rb = rows_of(a), rows_of(b)
    if len(ra) != len(rb):
        return f"row count {len(ra)} vs {len(rb)}"
    if not ordered:
        ra, rb = sorted(ra, key=_sort_key), sorted(rb, key=_sort_key)
    for i, (x, y) in enumerate(zip(ra, rb)):
        if len(x) != len(y) or not all(value_equal(p, q) for p, q in zip(x, y)):
            return f"row {i}: {x!r} vs {y!r}"
    return None


def preview(table: pa.Table | None, n: int = 8) -> str:
    if table is None:
        return "(none)"
    rows = rows_of(table)
    s = "; ".join(repr(r) for r in rows[:n])
    return f"{len(rows)} rows: {s}{' ...' if len(rows) > n else ''}"
