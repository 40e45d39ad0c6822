"""The magnetic store's Parquet files read by another implementation (pyarrow, Arrow C++).

Hourglass writes dimension column chunks itself from their dictionary keys
(`crates/hourglass-storage/src/dimension_chunk.rs`): dictionary pages, RLE/bit-packed indices,
definition levels, statistics. This test writes dimensions of every shape that writer meets —
sorted series, absent tags (nulls), a single value (zero-bit indices), short random runs
(bit-packed groups), values too long for its statistics (left to arrow-rs) — flushes them to
Parquet, and requires pyarrow to read back exactly the rows SQL returns, with row-group
statistics that bound the values.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hgtest import ns

T0 = ns("2024-06-01T00:00:00")
NO_MAINTENANCE = ["--maintenance-interval-ms", "3600000"]
COLUMNS = ["host", "rack", "one", "shard", "label", "v"]


def rows_and_body(rng: random.Random) -> tuple[list[tuple], str]:
    """The rows written, as (host, rack, one, shard, label, v) tuples, and their line protocol."""
    rows, lines = [], []
    for i in range(30_000):
        host = i % 300
        rack = f"r{host % 7}" if host % 3 else None
        shard = f"s{rng.randrange(40)}"
        label = "L" * 90 + str(host) if host % 50 == 0 else None
        tags = [f"host=h{host:03d}"] + ([f"rack={rack}"] if rack else []) + ["one=same", f"shard={shard}"]
        tags += [f"label={label}"] if label else []
        rows.append((f"h{host:03d}", rack, "same", shard, label, i))
        lines.append(f"m,{','.join(tags)} v={i}i {T0 + (i // 300) * 10_000_000_000}")
    return rows, "\n".join(lines) + "\n"


def test_pyarrow_reads_the_dimension_chunks_hourglass_writes(server):
    srv = server(args=NO_MAINTENANCE)
    written, body = rows_and_body(random.Random(7))
    srv.write_ok(body, db="interop", precision="ns", api="v2")
    assert srv.flush()["rows_persisted"] == 30_000

    files = sorted(p for p in (srv.data_dir / "magnetic").rglob("*.parquet")
                   if p.is_file() and not p.name.endswith(".last.parquet"))
    assert files, "the flush wrote no Parquet file"
    tables = []
    for path in files:
        pf = pq.ParquetFile(path)
        table = pf.read()
        for rg in range(pf.metadata.num_row_groups):
            group = table.slice(sum(pf.metadata.row_group(i).num_rows for i in range(rg)),
                                pf.metadata.row_group(rg).num_rows)
            for c in range(pf.metadata.num_columns):
                meta = pf.metadata.row_group(rg).column(c)
                name = meta.path_in_schema
                if name not in ("host", "rack", "one", "shard"):
                    continue
                stats = meta.statistics
                values = group.column(name).cast(pa.string())
                assert stats is not None and stats.has_min_max, f"{path.name} {name}: no statistics"
                assert stats.null_count == values.null_count, f"{path.name} {name}: null count"
                assert stats.min == pc.min(values).as_py(), f"{path.name} {name}: min"
                assert stats.max == pc.max(values).as_py(), f"{path.name} {name}: max"
                assert "RLE_DICTIONARY" in meta.encodings, f"{path.name} {name}: {meta.encodings}"
        strings = pa.schema([(c, pa.string()) for c in COLUMNS[:-1]] + [("v", pa.int64())])
        tables.append(table.select(COLUMNS).cast(strings))

    read = pa.concat_tables(tables)
    key = lambda r: tuple("" if x is None else x for x in r[:-1]) + (r[-1],)  # noqa: E731
    by_pyarrow = sorted(zip(*(read.column(c).to_pylist() for c in COLUMNS)), key=key)
    assert by_pyarrow == sorted(written, key=key)
    # And SQL reads the same files the same way.
    rows = srv.rows(f"SELECT {', '.join(COLUMNS)} FROM m", db="interop")
    assert sorted((tuple(r.get(c) for c in COLUMNS) for r in rows), key=key) == by_pyarrow
    # The shapes were there to be read: nulls, one value, many short runs, long values.
    assert sum(1 for r in written if r[1] is None) == 10_000
    assert len({r[3] for r in written}) == 40
    assert sum(1 for r in written if r[4] is not None) == 600
