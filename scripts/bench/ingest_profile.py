"""TSBS cpu-only ingest alone, with the CPU each side uses (for profiling the write path).

    python3 scripts/bench/ingest_profile.py [--hosts 1000] [--hours 24] [--workers 4] [--pause S]

Generates the side-by-side benchmark's TSBS data, starts a release server on a fresh data
directory, prints its pid, waits `--pause` seconds (time to attach `perf record -g -p <pid>`),
loads the line protocol on parallel connections and prints rows/s with the server's and this
client's CPU seconds. Everything is removed afterwards.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sbs_data  # noqa: E402
import sbs_engines as E  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "hourglass"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hourglass-ingest-")
    try:
        lp = os.path.join(tmp, "cpu.lp")
        _, bodies, meta = sbs_data.tsbs_cpu(a.hosts, a.hours, 123, lp, 10_000)
        os.sync()
        hg = E.Hourglass(a.binary, os.path.join(tmp, "hg"), os.path.join(tmp, "hg.log"))
        try:
            print(f"server pid {hg.proc.pid}", flush=True)
            time.sleep(a.pause)
            before_client = resource.getrusage(resource.RUSAGE_SELF)
            before_server = cpu_seconds(hg.proc.pid)
            secs, retried = E.load(hg, "benchmark", lp, bodies, a.workers)
            server = cpu_seconds(hg.proc.pid) - before_server
            after_client = resource.getrusage(resource.RUSAGE_SELF)
            client = (after_client.ru_utime - before_client.ru_utime) + \
                (after_client.ru_stime - before_client.ru_stime)
            print(f"{meta['rows']:,} rows in {secs:.2f} s = {meta['rows'] / secs:,.0f} rows/s; "
                  f"{retried} requests retried; server CPU {server:.2f} s ({server / secs:.2f} cores), "
                  f"client CPU {client:.2f} s ({client / secs:.2f} cores); "
                  f"server peak RSS {hg.peak_rss_mb():,.0f} MiB", flush=True)
        finally:
            hg.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
