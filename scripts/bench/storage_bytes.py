#!/usr/bin/env python3
"""Bytes per value of the magnetic store, and where they go, per column.

    .venv-test/bin/python scripts/bench/storage_bytes.py [--bin target/release/hourglass]
        [--hosts 1000] [--hours 24] [--symbols 50] [--tmp /tmp]

Generates the side-by-side benchmark's data sets (scripts/bench/sbs_data.py: TSBS cpu-only for
--hosts hosts over --hours hours, market quotes and trades for --symbols symbols over a 390-minute
session), loads them by line protocol into `hourglass serve` (2 keep-alive writers), persists and
compacts (`/admin/flush`, `/admin/compact`, as the side-by-side run does before it measures), and
prints each data set's Parquet bytes (data files and last-rows sidecars) per value (TSBS: 10 per
row; market: 4 per quote, 3 per trade), then the bytes of every (table, column, codec,
encodings) over all row groups, largest first. The byte figures do not depend on the build (a
debug build loads 1,000 hosts x 24 h in a few minutes). Set HOURGLASS_MEASURE_ENCODING=default to
see the encodings before per-column measurement (docs/format/magnetic-store.md).
"""

import argparse
import collections
import glob
import os
import shutil
import sys
import tempfile

import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbs_data as D  # noqa: E402
import sbs_engines as E  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_bin = "target/release/hourglass" if os.path.exists("target/release/hourglass") else "target/debug/hourglass"
    ap.add_argument("--bin", default=default_bin)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--tmp", default=None)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hg-storage-", dir=a.tmp)
    hg = None
    try:
        tsbs, tsbs_bodies, _ = D.tsbs_cpu(a.hosts, a.hours, 1, f"{tmp}/tsbs.lp")
        _, _, qb, tb, meta = D.market(a.symbols, 390, 1, f"{tmp}/q.lp", f"{tmp}/t.lp")
        hg = E.Hourglass(os.path.abspath(a.bin), f"{tmp}/data", f"{tmp}/hg.log")
        prev = 0
        sets = [("TSBS cpu-only", "tsbs", [(f"{tmp}/tsbs.lp", tsbs_bodies)], tsbs.num_rows * 10),
                ("market", "market", [(f"{tmp}/q.lp", qb), (f"{tmp}/t.lp", tb)], meta["values"])]
        for label, db, files, values in sets:
            for path, bodies in files:
                E.load(hg, db, path, bodies, 2)
            hg.settle()
            size = hg.disk_bytes()
            print(f"{label}: {size - prev:,} B for {values:,} values = {(size - prev) / values:.4f} B/value")
            prev = size
        hg.stop()
        hg = None
        by_column = collections.Counter()
        files_per_table = collections.Counter()
        for f in glob.glob(f"{tmp}/data/magnetic/**/*.parquet", recursive=True):
            db, table = os.path.relpath(f, f"{tmp}/data/magnetic").split("/")[:2]
            if f.endswith(".last.parquet"):
                by_column[(f"{db}/{table}", "(last-rows sidecars)", "", "")] += os.path.getsize(f)
                continue
            files_per_table[f"{db}/{table}"] += 1
            md = pq.ParquetFile(f).metadata
            for rg in range(md.num_row_groups):
                for c in range(md.num_columns):
                    cc = md.row_group(rg).column(c)
                    key = (f"{db}/{table}", cc.path_in_schema, cc.compression, ",".join(sorted(set(cc.encodings))))
                    by_column[key] += cc.total_compressed_size
        print("data files per table:", dict(files_per_table))
        for (table, column, codec, enc), size in sorted(by_column.items(), key=lambda kv: -kv[1]):
            print(f"{size:>12,}  {table:15s} {column:22s} {codec:13s} {enc}")
    finally:
        if hg:
            hg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
