"""Engines of the side-by-side benchmark: Hourglass and InfluxDB 1.x servers (started on 127.0.0.1,
free ports, private temporary directories), DuckDB over Parquet; a parallel line protocol
loader; result normalisation."""

import json
import math
import os
import socket
import subprocess
import threading
import time
import http.client
import urllib.parse

import pyarrow as pa
import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def dir_bytes(path, suffix=None):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if suffix is None or name.endswith(suffix):
                try:
                    st = os.stat(os.path.join(root, name))
                    # Allocated bytes when smaller: InfluxDB preallocates sparse series-file segments.
                    total += min(st.st_size, st.st_blocks * 512)
                except OSError:
                    pass
    return total


class Server:
    proc = None
    name = "server"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def peak_rss_mb(self):
        return peak_rss_mb(self.proc.pid) if self.proc else None

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Hourglass(Server):
    name = "Hourglass"

    def __init__(self, binary, data_dir, log_path):
        self.binary, self.data_dir = binary, data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.log = open(log_path, "ab")
        env = dict(os.environ, HOURGLASS_LOG=os.environ.get("HOURGLASS_LOG", "warn"))
        self.proc = subprocess.Popen(
            [binary, "serve", "--data-dir", data_dir, "--http-addr", "127.0.0.1:0",
             "--pg-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, env=env)
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            line = line.decode(errors="replace").strip()
            if line.startswith("http listening on "):
                self.url = "http://" + line[len("http listening on "):].strip()
                break
        if not self.url:
            self.stop()
            raise RuntimeError(f"hourglass did not start (log: {log_path})")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.host, self.port = self.url[7:].rsplit(":", 1)
        self.port = int(self.port)
        self.session = requests.Session()

    def write_path(self, db):
        return f"/api/v2/write?org=bench&bucket={db}&precision=ns"

    def settle(self):
        """Persists the memory store and compacts, so that the magnetic store holds everything."""
        for route in ("/admin/flush", "/admin/compact"):
            r = self.session.post(self.url + route, timeout=3600)
            r.raise_for_status()

    def disk_bytes(self, db=None):
        return dir_bytes(os.path.join(self.data_dir, "magnetic"), ".parquet")

    def query(self, db, sql):
        return post_for_body(self.session, self.url + "/api/v3/query_sql",
                             json={"db": db, "q": sql, "format": "arrow"})

    @staticmethod
    def decode(content):
        return pa.ipc.open_stream(content).read_all() if content else pa.table({})

    def version(self):
        return subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout.strip()


INFLUX_CONF = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  index-version = "inmem"
  cache-snapshot-write-cold-duration = "1s"
  compact-full-write-cold-duration = "2s"
  max-series-per-database = 0
  max-values-per-tag = 0
[coordinator]
  query-timeout = "0s"
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
  max-body-size = 0
  max-row-limit = 0
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""


class Influx(Server):
    name = "InfluxDB"

    def __init__(self, data_dir, log_path):
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.port, rpc = free_port(), free_port()
        self.host = "127.0.0.1"
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = os.path.join(data_dir, "influxdb.conf")
        with open(self.conf, "w") as f:
            f.write(INFLUX_CONF.format(d=data_dir, rpc=rpc, http=self.port))
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(["influxd", "-config", self.conf], stdout=self.log, stderr=self.log)
        self.session = requests.Session()
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited (log: {log_path})")
            try:
                if self.session.get(self.url + "/ping", timeout=1).status_code == 204:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"influxd did not start (log: {log_path})")

    def create_db(self, db):
        self.session.post(self.url + "/query", params={"q": f"CREATE DATABASE {db}"}).raise_for_status()

    def write_path(self, db):
        return f"/write?db={db}&precision=ns"

    def settle(self, db, timeout=600):
        """Waits until the cache has been snapshotted to TSM (WAL empty) and the size of the data and
        WAL directories is stable (full compaction done)."""
        last, stable, deadline = None, 0, time.time() + timeout
        while time.time() < deadline:
            size = self.disk_bytes(db)
            wal = dir_bytes(os.path.join(self.data_dir, "wal", db), ".wal")
            tsm = dir_bytes(os.path.join(self.data_dir, "data", db), ".tsm")
            if tsm > 0 and wal == 0 and size == last:
                stable += 1
                if stable >= 3:
                    return True
            else:
                stable = 0
            last = size
            time.sleep(1)
        return False

    def disk_bytes(self, db):
        return dir_bytes(os.path.join(self.data_dir, "data", db)) + dir_bytes(os.path.join(self.data_dir, "wal", db))

    def query(self, db, q):
        return post_for_body(self.session, self.url + "/query", data={"db": db, "q": q, "epoch": "ns"})

    @staticmethod
    def decode(content, time_as="time"):
        """InfluxQL JSON -> list of dicts (series tags merged into the rows)."""
        body = json.loads(content)
        rows = []
        for res in body.get("results", []):
            if "error" in res:
                raise RuntimeError(res["error"])
            for series in res.get("series", []) or []:
                tags = series.get("tags", {}) or {}
                cols = series["columns"]
                for vals in series["values"]:
                    row = dict(tags)
                    for c, v in zip(cols, vals):
                        row[time_as if c == "time" else c] = v
                    rows.append(row)
        return rows

    def version(self):
        out = subprocess.run(["influxd", "version"], capture_output=True, text=True).stdout.strip()
        return out


def post_for_body(session, url, **kwargs):
    """POSTs and returns the whole response body, read in one call: `requests`' `.content`
    iterates a large body 10 KiB at a time (tens of ms of client CPU on a 38 MB answer, counted in
    the engine's latency), so both HTTP engines' answers are read this way."""
    r = session.post(url, timeout=3600, stream=True, **kwargs)
    try:
        body = r.raw.read(decode_content=True)
    finally:
        r.close()
    if r.status_code != 200:
        raise RuntimeError(f"HTTP {r.status_code}: {body[:500]!r}")
    return body


def load(server, db, lp_path, bodies, workers):
    """POSTs the bodies (offset, length, lines) of lp_path on `workers` parallel keep-alive
    connections; retries 503/500 (throttling). Returns (seconds, retried requests)."""
    path = server.write_path(db)
    lock = threading.Lock()
    state = {"next": 0, "retried": 0, "error": None}
    fd = os.open(lp_path, os.O_RDONLY)

    def worker():
        conn = http.client.HTTPConnection(server.host, server.port, timeout=600)
        try:
            while True:
                with lock:
                    i = state["next"]
                    state["next"] += 1
                if i >= len(bodies) or state["error"]:
                    return
                off, length, _ = bodies[i]
                body = os.pread(fd, length, off)
                for attempt in range(2000):
                    conn.request("POST", path, body=body,
                                 headers={"Content-Type": "text/plain; charset=utf-8"})
                    resp = conn.getresponse()
                    text = resp.read()
                    if resp.status in (200, 204):
                        break
                    if resp.status in (500, 503) and attempt < 1999:
                        with lock:
                            state["retried"] += 1
                        time.sleep(0.05)
                        continue
                    state["error"] = f"{server.name} write {i} failed: HTTP {resp.status} {text[:300]!r}"
                    return
        except Exception as e:  # noqa: BLE001
            state["error"] = f"{server.name} write failed: {e!r}"
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    os.close(fd)
    if state["error"]:
        raise RuntimeError(state["error"])
    return seconds, state["retried"]


# ---------------------------------------------------------------------------------------------
# Normalisation: rows as tuples in the query's column order; timestamps as ns ints; numbers
# rounded to 6 significant digits; rows sorted.

def _round6(x):
    if x is None:
        return None
    if isinstance(x, bool):
        return x
    if isinstance(x, (int, float)):
        x = float(x)
        if math.isnan(x):
            return "NaN"
        if x == 0 or math.isinf(x):
            return x
        return float(f"{x:.6g}")
    return x


def arrow_rows(table, cols, time_cols):
    """Arrow table -> list of dicts with timestamps as ns ints and dictionaries decoded."""
    out = {}
    for c in cols:
        if c not in table.column_names:
            raise RuntimeError(f"column {c!r} missing from result columns {table.column_names}")
        col = table[c]
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64())
        out[c] = col.to_pylist()
    n = table.num_rows
    return [{c: out[c][i] for c in cols} for i in range(n)]


def normalise(rows, cols, time_cols):
    norm = []
    for r in rows:
        t = []
        for c in cols:
            v = r.get(c)
            if c in time_cols:
                t.append(None if v is None else int(v))
            else:
                t.append(_round6(v))
        norm.append(tuple(t))
    def key(row):
        return tuple((0, v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                     else (2, "") if v is None else (1, str(v)) for v in row)
    norm.sort(key=key)
    return norm


def fmt_ms(x):
    """A latency in ms for the tables: two decimals below 10, one above; a dash for none."""
    if x is None:
        return "–"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def query_rows(queries, peers):
    """The markdown rows of a query table: name, rows, Hourglass's ms, then each peer's ms and
    its ratio to Hourglass (or why it has none), then the agreement."""
    lines = []
    for q in queries:
        hg = q["ms"].get("Hourglass")
        cells = [q["name"], str(q["rows"] if q["rows"] is not None else "–"), f"**{fmt_ms(hg)}**"]
        for n in peers:
            v = q["ms"].get(n)
            note = q["notes"].get(n, "")
            if v is None:
                cells += [("n/a" if note == "n/a" else "error" if note else "–"), ""]
            else:
                cells += [fmt_ms(v), f"{v / hg:.2f}×" if hg else ""]
        cells.append(q["agreement"])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def differences(answers):
    """The agreement check of a query's answers ({engine: sorted rows}): (the engine compared
    against, Hourglass when it answered; a record per engine whose rows differ from it beyond
    close_enough, with up to three rows only either side has)."""
    ref_name = "Hourglass" if "Hourglass" in answers else next(iter(answers), None)
    diffs = []
    for eng, rows in answers.items():
        if eng == ref_name:
            continue
        ref = answers[ref_name]
        if rows != ref and not close_enough(rows, ref):
            only_ref = [r for r in ref if r not in set(rows)][:3]
            only_eng = [r for r in rows if r not in set(ref)][:3]
            diffs.append({"engines": [ref_name, eng], "rows": [len(ref), len(rows)],
                          f"only_{ref_name}": [list(r) for r in only_ref],
                          f"only_{eng}": [list(r) for r in only_eng]})
    return ref_name, diffs


def close_enough(a, b):
    """Second chance for rows that differ only in the 6th significant digit (float summation order)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, float) and isinstance(y, (int, float)) or isinstance(y, float) and isinstance(x, (int, float)):
                if not math.isclose(x, y, rel_tol=2e-6, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True
