"""`hourglass import` of TSBS cpu-only (10 tags, 10 integer fields; scripts/bench/sbs_data.py's
generator): 10 M rows written once as Parquet and as line protocol, then each imported into a
fresh data directory (`--data-dir`, in-process) and into a fresh server (`--server`, line
protocol over HTTP). The import binary is what is measured: wall-clock seconds of the whole
`hourglass import` process (engine open, every row durable in the WAL, the final persist to
Parquet in --data-dir mode), and the rows/s the import reports for its own write phase.

    .venv-test/bin/python scripts/bench/import_tsbs.py --binary target/release/hourglass \
        [--rows 10000000] [--work /tmp/hg-import-bench] [--modes data-dir,server]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hg_server  # noqa: E402
import sbs_data  # noqa: E402

HOSTS = 4000
BATCH_ROWS = 262_144  # rows per write: 65,536 (the default) measured 445 K rows/s, 1 M 712 K


def generate(work: Path, rows: int):
    parquet, lp = work / "cpu.parquet", work / "cpu.lp"
    marker = work / f"rows-{rows}"
    if parquet.exists() and lp.exists() and marker.exists():
        return parquet, lp
    work.mkdir(parents=True, exist_ok=True)
    hosts = min(HOSTS, rows)
    hours = rows / hosts * 10 / 3600
    t = time.time()
    table, _bodies, meta = sbs_data.tsbs_cpu(hosts, hours, seed=1, lp_path=lp)
    pq.write_table(table, parquet, row_group_size=1 << 20, compression="snappy")
    marker.write_text(str(meta["rows"]))
    print(f"generated {meta['rows']:,} rows in {time.time() - t:.1f} s: "
          f"{parquet.stat().st_size >> 20} MiB Parquet, {lp.stat().st_size >> 20} MiB line protocol",
          flush=True)
    return parquet, lp


def run_import(binary, source, target_args, cwd):
    cmd = [str(binary), "import", str(source), "--db", "bench", "--table", "cpu",
           "--progress", "never", "--batch-rows", str(BATCH_ROWS if "--data-dir" in target_args else 65_536),
           *target_args]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"import failed ({p.returncode}): {p.stdout}\n{p.stderr}")
    m = re.search(r"imported (\d+) rows \((\d+) rejected\).* in ([\d.]+) s: (\d+) rows/s", p.stdout)
    rows, rejected, secs, rate = int(m[1]), int(m[2]), float(m[3]), int(m[4])
    return rows, rejected, wall, secs, rate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/hourglass")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--work", default="/tmp/hg-import-bench")
    ap.add_argument("--modes", default="data-dir,server")
    ap.add_argument("--formats", default="parquet,lp")
    args = ap.parse_args()
    work = Path(args.work)
    parquet, lp = generate(work, args.rows)
    sources = {"parquet": parquet, "lp": lp}
    results = []
    for mode in args.modes.split(","):
        for fmt in args.formats.split(","):
            data = work / f"data-{mode}-{fmt}"
            shutil.rmtree(data, ignore_errors=True)
            if mode == "data-dir":
                r = run_import(args.binary, sources[fmt], ["--data-dir", str(data)], work)
            else:
                proc, http, _pg = hg_server.start_server(args.binary, data)
                try:
                    r = run_import(args.binary, sources[fmt], ["--server", http if http.startswith("http") else f"http://{http}"], work)
                finally:
                    hg_server.stop_server(proc)
            shutil.rmtree(data, ignore_errors=True)
            rows, rejected, wall, secs, rate = r
            results.append((mode, fmt, rows, rejected, wall, secs, rate))
            print(f"{mode:8} {fmt:7} {rows:>11,} rows ({rejected} rejected)  wall {wall:7.2f} s "
                  f"= {rows / wall:>12,.0f} rows/s   write phase {secs:7.2f} s = {rate:>12,} rows/s",
                  flush=True)
    print("\n| target | source | rows | wall s | rows/s (wall) | rows/s (write phase) |")
    print("|---|---|---:|---:|---:|---:|")
    for mode, fmt, rows, _rej, wall, secs, rate in results:
        print(f"| {mode} | {fmt} | {rows:,} | {wall:.2f} | {rows / wall:,.0f} | {rate:,} |")


if __name__ == "__main__":
    main()
