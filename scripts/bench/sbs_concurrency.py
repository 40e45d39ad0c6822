"""Concurrency section of the side-by-side benchmark (`side_by_side.py --concurrency`): a mixed
load on a server that holds the main run's TSBS cpu-only data, Hourglass and InfluxDB 1.x in turn
(DuckDB is embedded, not a server, and sits this one out).

- A writer process ingests fresh TSBS cpu-only rows (the loaded hosts with their tags, timestamps
  after the loaded data, line protocol in requests of --batch-lines lines) over `writers`
  keep-alive connections at a fixed rate: half of that engine's rows/s in the load phase, or
  --concurrency-ingest-rows. Request i is due at start + i x (rows per request / rate); one that
  is late goes at once. The rows/s the server sustained is reported beside the rate asked.
- `clients` query clients, each a thread with its own keep-alive connection, spread over several
  processes (one interpreter lock is not the limit), send dashboard queries for `seconds`, the
  type drawn at random per request: single-groupby-1-1-1, -1-8-1 and -5-1-1 with the text
  `sbs_queries.tsbs_queries` writes for them (a pool of seeded instances: random hosts, random
  one-hour windows inside the loaded data), and lastpoint of one random host (the query set's
  `DISTINCT ON` shape restricted to that host; InfluxQL `GROUP BY hostname ORDER BY time DESC
  LIMIT 1`). Hourglass: half of the clients over HTTP (`/api/v3/query_sql`, Arrow), half over
  the PostgreSQL wire (psycopg); InfluxDB: all over HTTP (`/query`, JSON).
- Every answer is checked: not an error, and the expected number of columns (values are not).
- Reported per engine: queries/s overall and per type, p50 and p99 latency per type and overall,
  ingest rows/s sustained against asked, errors, and the CPU seconds of the query-client
  processes, of the writer and of the server over the window. On a small machine the clients'
  CPU is CPU the server did not get; the figures let the reader see how much.
"""

import http.client
import json
import math
import os
import random
import time
import urllib.parse

from sbs_engines import fmt_ms

TYPES = ["single-groupby-1-1-1", "single-groupby-1-8-1", "single-groupby-5-1-1", "lastpoint-1-host"]
POOL = 400           # instances per query type
FIELD_VARIANTS = 8   # distinct field-value sets per host the writer cycles through
CLIENT_PROCESSES = 4


# ---------------------------------------------------------------------------------------------
# Parent side: what the clients and the writer are given.

def host_keys(cpu_table, hosts):
    """Line protocol series keys ("cpu,hostname=...,... ") of the loaded hosts, in host order:
    the first time step of the table holds every host once, in that order."""
    from sbs_data import TAGS
    first = cpu_table.slice(0, hosts)
    cols = {t: first[t].cast("string").to_pylist() for t in TAGS}
    return ["cpu," + ",".join(f"{t}={cols[t][i]}" for t in TAGS) + " " for i in range(hosts)]


def lastpoint_texts(host):
    from sbs_data import FIELDS
    cols = ", ".join(FIELDS)
    sql = (f"SELECT DISTINCT ON (hostname) hostname, time, {cols} FROM cpu WHERE hostname IN ('{host}') "
           "ORDER BY hostname, time DESC")
    iq = f"SELECT {cols} FROM cpu WHERE hostname = '{host}' GROUP BY hostname ORDER BY time DESC LIMIT 1"
    return sql, iq, 2 + len(FIELDS), 1 + len(FIELDS)


def query_pool(meta, seed):
    """{type: [(sql, influxql, hourglass columns, influx columns)]}: POOL instances of each type.
    The single-groupby texts are those of sbs_queries.tsbs_queries (seeds seed*1000 + i)."""
    import sbs_queries
    pool = {t: [] for t in TYPES}
    rng = random.Random(seed)
    for i in range(POOL):
        for q in sbs_queries.tsbs_queries(meta, seed * 1000 + i):
            if q["name"] in pool:
                n = len(q["cols"])
                pool[q["name"]].append((q["hourglass"], q["influx"], n, n))
        pool["lastpoint-1-host"].append(lastpoint_texts(rng.choice(meta["hostnames"])))
    return pool


def pg_address(server, db):
    """host, port of Hourglass's PostgreSQL listener: the listening TCP socket of the server
    process that is not its HTTP port (sbs_engines.Hourglass starts it with --pg-addr
    127.0.0.1:0 and keeps only the HTTP line of the banner). Several candidates: the first that
    accepts a psycopg connection."""
    inodes = set()
    fd_dir = f"/proc/{server.proc.pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and parts[9] in inodes:  # LISTEN
                        port = int(parts[1].rsplit(":", 1)[1], 16)
                        if port != server.port and port not in ports:
                            ports.append(port)
        except OSError:
            continue
    if len(ports) == 1:
        return server.host, ports[0]
    import psycopg
    for port in ports:
        try:
            psycopg.connect(host=server.host, port=port, user="hg", dbname=db,
                            connect_timeout=5).close()
            return server.host, port
        except Exception:  # noqa: BLE001
            continue
    raise RuntimeError(f"no PostgreSQL listener found for hourglass pid {server.proc.pid} "
                       f"(listening ports other than HTTP {server.port}: {ports})")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# ---------------------------------------------------------------------------------------------
# Child processes (multiprocessing "spawn": each imports this module afresh).

def _wait_go(ready_q, go, window, tag):
    ready_q.put(tag)
    if not go.wait(300):
        raise SystemExit("concurrency: no start signal within 300 s")
    start_at, end_at = window[0], window[1]
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    return start_at, end_at


class _HourglassHttp:
    def __init__(self, host, port, db):
        self.host, self.port, self.db = host, port, db
        self.conn = None
        import pyarrow.ipc
        self.ipc = pyarrow.ipc

    def body(self, inst):
        return json.dumps({"db": self.db, "q": inst[0], "format": "arrow"}).encode()

    def open(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self.conn.connect()

    def columns(self, body):
        self.open()
        self.conn.request("POST", "/api/v3/query_sql", body=body, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
        reader = self.ipc.open_stream(data)
        for _ in reader:
            pass
        return len(reader.schema)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _HourglassPg:
    def __init__(self, host, port, db):
        self.host, self.port, self.db = host, port, db
        self.conn = None

    def body(self, inst):
        return inst[0]

    def open(self):
        if self.conn is None:
            import psycopg
            # prepare_threshold=None: every statement is an unnamed Parse/Bind/Execute, as a
            # dashboard sends it, whatever repeats the pool happens to draw.
            self.conn = psycopg.connect(host=self.host, port=self.port, user="hg", dbname=self.db,
                                        autocommit=True, prepare_threshold=None, connect_timeout=30)

    def columns(self, sql):
        self.open()
        cur = self.conn.cursor()
        cur.execute(sql)
        cur.fetchall()
        n = len(cur.description or [])
        cur.close()
        return n

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None


class _InfluxHttp:
    def __init__(self, host, port, db):
        self.host, self.port, self.db = host, port, db
        self.conn = None

    def body(self, inst):
        return urllib.parse.urlencode({"db": self.db, "q": inst[1], "epoch": "ns"}).encode()

    def open(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self.conn.connect()

    def columns(self, body):
        self.open()
        self.conn.request("POST", "/query", body=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
        res = json.loads(data)["results"][0]
        if "error" in res:
            raise RuntimeError(res["error"][:200])
        series = res.get("series") or []
        if not series:
            raise RuntimeError("no series in the answer")
        return len(series[0]["columns"])

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _client_thread(client, bodies, seed, end_at, out):
    """Sends queries until end_at; appends (type, ms, error or None) to out."""
    rng = random.Random(seed)
    try:
        client.open()  # connected when the clock starts (a connection idle before it may be cut)
    except Exception as e:  # noqa: BLE001
        out.append((TYPES[0], 0.0, f"connect: {e!r}"[:200]))
    while time.time() < end_at:
        t = rng.choice(TYPES)
        body, expected = rng.choice(bodies[t])
        started = time.perf_counter()
        err = None
        try:
            n = client.columns(body)
            if n != expected:
                err = f"{n} columns, expected {expected}"
        except Exception as e:  # noqa: BLE001
            err = ((str(e).splitlines() or [""])[0][:200]) or repr(e)[:200]
            client.close()
        out.append((t, (time.perf_counter() - started) * 1000, err))
    client.close()


def client_process(spec, ready_q, go, window, out_q):
    """One query-client process: spec["threads"] is a list of protocols ("http" or "pg"), one
    thread (and one connection) each, to spec["engine"]."""
    import threading
    if spec["engine"] == "Hourglass":
        kinds = {"http": (_HourglassHttp, 2), "pg": (_HourglassPg, 2)}
    else:
        kinds = {"http": (_InfluxHttp, 3)}
    jobs = []
    for proto in spec["threads"]:
        cls, expected_at = kinds[proto]
        addr = spec["pg"] if proto == "pg" else spec["http"]
        client = cls(addr[0], addr[1], spec["db"])
        # Request bodies built before the clock starts: a client's work per query is the request.
        bodies = {t: [(client.body(inst), inst[expected_at]) for inst in spec["pool"][t]] for t in TYPES}
        jobs.append((proto, client, bodies, []))
    _start_at, end_at = _wait_go(ready_q, go, window, spec["name"])
    cpu0 = time.process_time()
    threads = [threading.Thread(target=_client_thread, args=(client, bodies, spec["seed"] + i, end_at, out))
               for i, (_proto, client, bodies, out) in enumerate(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    cpu = time.process_time() - cpu0
    records = [(t, proto, ms, err) for proto, _c, _b, out in jobs for t, ms, err in out]
    out_q.put({"name": spec["name"], "records": records, "cpu_s": cpu})


def writer_process(spec, ready_q, go, window, out_q):
    """The writer: spec has keys (series keys), end_ns, interval_ns, batch_lines, rate (rows/s),
    host, port, path, writers, seed."""
    import threading
    keys = spec["keys"]
    rng = random.Random(spec["seed"])
    variants = []
    for _ in range(FIELD_VARIANTS):
        prefixes = [k + ",".join(f"{f}={rng.randint(0, 100)}i" for f in spec["fields"]) + " " for k in keys]
        parts = [prefixes[0].encode()] + [("\n" + p).encode() for p in prefixes[1:]] + [b"\n"]
        variants.append(parts)
    hosts = len(keys)
    steps_per_batch = max(1, spec["batch_lines"] // hosts)
    rows_per_batch = steps_per_batch * hosts
    period = rows_per_batch / spec["rate"]
    lock = threading.Lock()
    state = {"next": 0, "rows": 0, "requests": 0, "retried": 0, "errors": 0, "error_samples": [],
             "latencies": [], "last_ack": None}

    start_at, end_at = _wait_go(ready_q, go, window, "writer")

    def body_of(i):
        first = i * steps_per_batch
        return b"".join(str(spec["end_ns"] + (first + s) * spec["interval_ns"]).encode().join(
            variants[(first + s) % FIELD_VARIANTS]) for s in range(steps_per_batch))

    def work():
        conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=600)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            due = start_at + i * period
            if due >= end_at:
                break
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            body = body_of(i)
            started = time.perf_counter()
            ok = False
            for _attempt in range(10_000):
                try:
                    conn.request("POST", spec["path"], body=body, headers={"Content-Type": "text/plain; charset=utf-8"})
                    r = conn.getresponse()
                    text = r.read()
                except Exception as e:  # noqa: BLE001
                    conn.close()
                    conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=600)
                    with lock:
                        state["errors"] += 1
                        if len(state["error_samples"]) < 5:
                            state["error_samples"].append(f"write: {e!r}"[:200])
                    break
                if r.status in (200, 204):
                    ok = True
                    break
                if r.status in (500, 503) and time.time() < end_at + 30:
                    with lock:
                        state["retried"] += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    state["errors"] += 1
                    if len(state["error_samples"]) < 5:
                        state["error_samples"].append(f"write: HTTP {r.status} {text[:150]!r}")
                break
            now = time.time()
            with lock:
                state["requests"] += 1
                state["latencies"].append((time.perf_counter() - started) * 1000)
                if ok:
                    state["rows"] += rows_per_batch
                    state["last_ack"] = now
        conn.close()

    cpu0 = time.process_time()
    threads = [threading.Thread(target=work) for _ in range(max(1, spec["writers"]))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    state["cpu_s"] = time.process_time() - cpu0
    # Requests 0..n-1 were due over n periods; later than that if the server fell behind.
    state["seconds"] = max(state["requests"] * period, (state["last_ack"] or end_at) - start_at)
    state["rows_per_batch"] = rows_per_batch
    out_q.put({"name": "writer", "writer": state})


# ---------------------------------------------------------------------------------------------
# One engine, then all.

def summarise(records, seconds):
    """Per-type and overall queries, queries/s, p50, p99 and errors of (type, proto, ms, err)."""
    def stats(rs):
        ok = sorted(ms for _, _, ms, err in rs if err is None)
        errs = sum(1 for r in rs if r[3] is not None)
        return {"queries": len(rs), "ok": len(ok), "errors": errs, "qps": len(ok) / seconds,
                "p50_ms": percentile(ok, 50), "p99_ms": percentile(ok, 99)}
    out = {"overall": stats(records), "by_type": {}, "by_protocol": {}}
    for t in TYPES:
        out["by_type"][t] = stats([r for r in records if r[0] == t])
    for p in sorted({r[1] for r in records}):
        out["by_protocol"][p] = stats([r for r in records if r[1] == p])
    return out


def run_engine(name, server, db, pool, keys, meta, clients, seconds, rate, writers, batch_lines, seed, log):
    import multiprocessing as mp
    from sbs_data import FIELDS
    ctx = mp.get_context("spawn")
    if name == "Hourglass":
        pg = pg_address(server, db)
        protos = ["http" if i % 2 == 0 else "pg" for i in range(clients)]
    else:
        pg = None
        protos = ["http"] * clients
    nproc = max(1, min((clients + 1) // 2, CLIENT_PROCESSES))
    ready_q, out_q = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    window = ctx.Array("d", [0.0, 0.0])
    procs = []
    for p in range(nproc):
        # Pairs of clients (one HTTP, one PostgreSQL for Hourglass) dealt round the processes.
        mine = [proto for i, proto in enumerate(protos) if (i // 2) % nproc == p]
        spec = {"name": f"clients-{p}", "engine": name, "threads": mine, "http": (server.host, server.port),
                "pg": pg, "db": db, "pool": pool, "seed": seed * 7919 + p * 1000}
        procs.append(ctx.Process(target=client_process, args=(spec, ready_q, go, window, out_q), daemon=True))
    wspec = {"keys": keys, "fields": FIELDS, "end_ns": meta["end_ns"], "interval_ns": meta["interval_ns"],
             "batch_lines": batch_lines, "rate": rate, "host": server.host, "port": server.port,
             "path": server.write_path(db), "writers": writers, "seed": seed}
    procs.append(ctx.Process(target=writer_process, args=(wspec, ready_q, go, window, out_q), daemon=True))
    for pr in procs:
        pr.start()
    try:
        for _ in procs:
            ready_q.get(timeout=300)
        start_at = time.time() + 1.0
        window[0], window[1] = start_at, start_at + seconds
        go.set()
        time.sleep(max(0.0, start_at - time.time()))
        srv0 = cpu_seconds(server.proc.pid)
        time.sleep(max(0.0, start_at + seconds - time.time()))
        srv1 = cpu_seconds(server.proc.pid)
        results = [out_q.get(timeout=seconds + 900) for _ in procs]
    finally:
        for pr in procs:
            pr.join(30)
            if pr.is_alive():
                pr.terminate()
    records, client_cpu, busiest, writer = [], 0.0, 0.0, None
    for r in results:
        if "writer" in r:
            writer = r["writer"]
        else:
            records += r["records"]
            client_cpu += r["cpu_s"]
            busiest = max(busiest, r["cpu_s"])
    s = summarise(records, seconds)
    lat = sorted(writer["latencies"])
    samples = []  # the first of each distinct error, up to 5
    for t, proto, _ms, err in records:
        sample = f"{t} ({proto}): {err}"
        if err is not None and len(samples) < 5 and sample not in samples:
            samples.append(sample)
    out = {"engine": name, "clients": clients,
           "clients_by_protocol": {p: protos.count(p) for p in sorted(set(protos))},
           "client_processes": nproc, "seconds": seconds, **s,
           "errors": s["overall"]["errors"] + writer["errors"], "error_samples": samples + writer["error_samples"],
           "ingest": {"asked_rows_per_sec": rate, "sustained_rows_per_sec": writer["rows"] / writer["seconds"],
                      "rows": writer["rows"], "requests": writer["requests"], "rows_per_request": writer["rows_per_batch"],
                      "retried_requests": writer["retried"], "errors": writer["errors"], "connections": writers,
                      "write_p50_ms": percentile(lat, 50), "write_p99_ms": percentile(lat, 99)},
           "cpu_seconds": {"query_clients": client_cpu, "busiest_client_process": busiest,
                           "writer": writer["cpu_s"], "server": srv1 - srv0,
                           "available": seconds * (os.cpu_count() or 1)}}
    o = s["overall"]
    log(f"concurrency {name}: {o['qps']:,.0f} queries/s, p50 {fmt_ms(o['p50_ms'])} ms, p99 {fmt_ms(o['p99_ms'])} ms, "
        f"{out['errors']} errors; ingest {out['ingest']['sustained_rows_per_sec']:,.0f} of {rate:,.0f} rows/s asked; "
        f"CPU s: server {srv1 - srv0:.1f}, query clients {client_cpu:.1f} (busiest process {busiest:.1f}), "
        f"writer {writer['cpu_s']:.1f}, of {out['cpu_seconds']['available']:.0f}; "
        f"write request p50 {fmt_ms(out['ingest']['write_p50_ms'])} ms, p99 {fmt_ms(out['ingest']['write_p99_ms'])} ms")
    return out


def run(servers, cpu_table, meta, db, clients, seconds, ingest_rows, load_rates, writers, batch_lines, seed, log):
    """servers: [(engine name, server)]; load_rates: {engine name: rows/s of the load phase}.
    Returns the section's result (result["concurrency"])."""
    t0 = time.perf_counter()
    pool = query_pool(meta, seed)
    keys = host_keys(cpu_table, meta["hosts"])
    log(f"concurrency: {clients} clients for {seconds:g} s per engine; query pool of {POOL} instances "
        f"per type ({time.perf_counter() - t0:.1f} s)")
    out = {"clients": clients, "seconds": seconds, "types": TYPES, "writers": writers,
           "ingest_rate": "--concurrency-ingest-rows" if ingest_rows else "half of the load phase's rows/s",
           "engines": []}
    for name, server in servers:
        rate = float(ingest_rows) if ingest_rows else load_rates[name] / 2
        out["engines"].append(run_engine(name, server, db, pool, keys, meta, clients, seconds, rate, writers,
                                         batch_lines, seed, log))
    return out


def errors(section):
    """A line per engine with errors (for the run's exit status)."""
    return [f"concurrency {e['engine']}: {e['errors']} errors, e.g. {e['error_samples'][:2]}"
            for e in section["engines"] if e["errors"]]


def md(section):
    """Markdown tables of the section."""
    lines = ["", f"Concurrency: {section['clients']} query clients for {section['seconds']:g} s per engine while a "
             f"writer ingests fresh TSBS rows over {section['writers']} keep-alive connection(s) at "
             f"{section['ingest_rate']}; query type drawn at random per request (random hosts, random "
             "one-hour windows); every answer checked for its column count. Hourglass: half of the clients "
             "over HTTP (Arrow), half over the PostgreSQL wire; InfluxDB: HTTP (JSON).", ""]
    lines.append("| engine | clients | queries/s | p50 ms | p99 ms | errors | ingest rows/s asked | sustained | "
                 "server CPU s | query clients CPU s | writer CPU s | CPU s available |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for e in section["engines"]:
        o, ing, c = e["overall"], e["ingest"], e["cpu_seconds"]
        by = ", ".join(f"{n} {p}" for p, n in e["clients_by_protocol"].items())
        lines.append(f"| {e['engine']} | {e['clients']} ({by}) | **{o['qps']:,.0f}** | {fmt_ms(o['p50_ms'])} | "
                     f"**{fmt_ms(o['p99_ms'])}** | {e['errors']} | {ing['asked_rows_per_sec']:,.0f} | "
                     f"{ing['sustained_rows_per_sec']:,.0f} | {c['server']:.1f} | {c['query_clients']:.1f} | "
                     f"{c['writer']:.1f} | {c['available']:.0f} |")
    lines.append("")
    lines.append("| engine | query | via | queries/s | p50 ms | p99 ms | errors |")
    lines.append("|---|---|---|---|---|---|---|")
    for e in section["engines"]:
        for t in TYPES:
            s = e["by_type"][t]
            lines.append(f"| {e['engine']} | {t} | all | {s['qps']:,.1f} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p99_ms'])} | {s['errors']} |")
        if len(e["by_protocol"]) > 1:
            for p, s in e["by_protocol"].items():
                lines.append(f"| {e['engine']} | all | {p} | {s['qps']:,.1f} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p99_ms'])} | {s['errors']} |")
    return lines
