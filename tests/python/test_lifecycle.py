"""Server lifecycle and durability, driving the real binary with signals.

Covers: health, ping and metrics endpoints; SIGTERM and SIGINT shutdown (exit 0, memory store
persisted) and restart with the data intact; SIGKILL (a crash) and restart with every
acknowledged row replayed from the WAL, twice in a row, and while concurrent writers are still
sending; `/admin/flush` writing Parquet files under DATA_DIR/magnetic with unchanged query
results before and after a restart; `/admin/compact`; upserts (the same series and time written
again replaces the field values) in the memory store, over persisted files, across a restart and
across a crash; the memory budget's 503 with Retry-After.
"""

from __future__ import annotations

import signal
import threading
import time

import requests

from hgtest import NS_PER_S, TIMEOUT_S, ns

T_OLD = ns("2024-06-01T00:00:00")
# Background maintenance off (hourly) where a test wants to decide when data is persisted.
NO_MAINTENANCE = ["--maintenance-interval-ms", "3600000"]


def now_s() -> int:
    return time.time_ns() // NS_PER_S


def snapshot(srv, db, tables):
    return {t: srv.rows(f"SELECT * FROM {t} ORDER BY time, host", db=db) for t in tables}


def parquet_files(root):
    return sorted(p for p in root.rglob("*.parquet") if p.is_file())


def test_health_ping_metrics(server):
    srv = server()
    r = requests.get(f"{srv.url}/health", timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.json()["status"] == "pass", r.text
    r = requests.get(f"{srv.url}/ping", timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    assert requests.head(f"{srv.url}/ping", timeout=TIMEOUT_S).status_code == 204
    srv.write_ok(f"m,host=a v=1 {now_s()}", precision="second")
    r = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    metrics = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            metrics[name] = float(value)
    assert metrics["hourglass_memory_store_bytes"] > 0, r.text
    assert metrics["hourglass_memory_store_budget_bytes"] == 1024 * 1024 * 1024, r.text
    assert "# TYPE hourglass_wal_bytes gauge" in r.text


def test_sigterm_then_restart_keeps_data(server):
    srv = server()
    t = now_s() - 60
    srv.write_ok("".join(f"cpu,host=h{i % 5} usage={i}.5,n={i}i {t + i}\n" for i in range(100)),
                 precision="second", api="v1")
    srv.write_ok(f'old,host=x s="2024" {T_OLD}', api="v2")
    before = snapshot(srv, "testdb", ["cpu", "old"])
    assert len(before["cpu"]) == 100 and len(before["old"]) == 1
    srv.stop()  # asserts exit code 0
    srv.restart()
    assert snapshot(srv, "testdb", ["cpu", "old"]) == before
    # and it still takes writes into the same tables
    srv.write_ok(f"cpu,host=h9 usage=0.5,n=0i {t + 500}", precision="second")
    assert srv.count("cpu") == 101


def test_sigint_shutdown_persists_memory_store(server):
    srv = server(args=NO_MAINTENANCE)
    t = now_s() - 60
    srv.write_ok("".join(f"intr,host=h{i} v={i}i {t + i}\n" for i in range(10)), precision="second")
    before = snapshot(srv, "testdb", ["intr"])
    srv.stop(sig=signal.SIGINT)  # asserts exit code 0
    # the ordered shutdown persisted the memory store to Parquet
    files = parquet_files(srv.data_dir / "magnetic")
    assert any("intr" in p.parts for p in files), files
    srv.restart()
    assert snapshot(srv, "testdb", ["intr"]) == before


def test_sigkill_during_concurrent_writes(server):
    """Writers keep going while the server is killed: every row of a request answered 204 is
    there after the restart, and nothing that was never sent appears."""
    srv = server(args=NO_MAINTENANCE)
    t = now_s() - 600
    acked: list[tuple[int, int]] = []
    sent: list[tuple[int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int):
        for req in range(10_000):
            if stop.is_set():
                return
            body = "".join(f"conc,w=w{w} req={req}i,j={j}i {t * 1000 + req * 10 + j}\n" for j in range(10))
            with lock:
                sent.append((w, req))
            try:
                r = requests.post(f"{srv.url}/write", params={"db": "testdb", "precision": "ms"},
                                  data=body, timeout=10)
            except requests.RequestException:
                return
            if r.status_code != 204:
                return
            with lock:
                acked.append((w, req))

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
    for th in threads:
        th.start()
    try:
        # let 400 requests through, then crash mid-stream
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 400:
                    break
            time.sleep(0.01)
        srv.kill()
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=15)
    assert len(acked) >= 400, f"only {len(acked)} writes acknowledged in 30 s"
    srv.restart()
    rows = srv.rows("SELECT w, req, COUNT(*) AS n, SUM(j) AS sj FROM conc GROUP BY w, req")
    present = {(int(r["w"][1:]), r["req"]) for r in rows}
    assert all(r["n"] == 10 and r["sj"] == 45 for r in rows), [r for r in rows if r["n"] != 10][:5]
    missing = set(acked) - present
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
    assert present <= set(sent)


def test_sigkill_replays_every_acknowledged_write(server):
    srv = server(args=NO_MAINTENANCE)
    t = now_s() - 600
    acked = []  # (host, n) of rows whose write got 204
    for batch in range(40):
        body = "".join(f"kill,host=b{batch} n={j}i,v={batch}.{j} {t + j}\n" for j in range(25))
        r = srv.write_v3(body, precision="second") if batch % 2 else srv.write_v1(body, precision="s")
        assert r.status_code == 204, r.text
        acked.extend((f"b{batch}", j) for j in range(25))
    old = "".join(f"kill,host=old n={j}i,v=0.5 {T_OLD + j}\n" for j in range(10))
    srv.write_ok(old)
    acked.extend(("old", j) for j in range(10))
    srv.kill()
    srv.restart()
    rows = srv.rows("SELECT host, n, v FROM kill ORDER BY host, n")
    assert sorted((r["host"], r["n"]) for r in rows) == sorted(acked)
    assert all(r["v"] == (0.5 if r["host"] == "old" else float(f"{r['host'][1:]}.{r['n']}")) for r in rows)

    # crash again right after more writes: both generations of the WAL replay
    srv.write_ok(f"kill,host=again n=1i,v=1.5 {t}", api="v2")
    srv.kill()
    srv.restart()
    assert srv.count("kill") == len(acked) + 1
    assert srv.rows("SELECT v FROM kill WHERE host = 'again'") == [{"v": 1.5}]


def test_flush_writes_parquet_and_survives_restart(server):
    srv = server(args=NO_MAINTENANCE)
    t = now_s() - 3600
    lines = [f"flushme,host=h{i % 4},dc=d{i % 2} v={i}i,f={i}.25,s=\"r{i}\" {t + i}" for i in range(200)]
    srv.write_ok("\n".join(lines), precision="second")
    srv.write_ok(f"other,host=x ok=true {T_OLD}")
    before = snapshot(srv, "testdb", ["flushme", "other"])
    assert len(before["flushme"]) == 200
    magnetic = srv.data_dir / "magnetic"
    if magnetic.exists():
        assert parquet_files(magnetic) == []

    report = srv.flush()
    assert report["rows_persisted"] == 201, report
    assert report["files_written"] >= 2, report
    files = parquet_files(magnetic)
    assert any(p.relative_to(magnetic).parts[:2] == ("testdb", "flushme") for p in files), files
    assert any(p.relative_to(magnetic).parts[:2] == ("testdb", "other") for p in files), files
    for p in files:
        with open(p, "rb") as f:
            assert f.read(4) == b"PAR1", p
    assert snapshot(srv, "testdb", ["flushme", "other"]) == before
    assert srv.flush()["rows_persisted"] == 0
    # a query over Parquet files and the memory store together
    srv.write_ok(f'flushme,host=h9,dc=d9 v=1000i,f=0.5,s="late" {t + 1000}', precision="second")
    assert srv.rows("SELECT COUNT(*) AS n, SUM(v) AS s FROM flushme") == [{"n": 201, "s": sum(range(200)) + 1000}]
    assert srv.flush()["rows_persisted"] == 1
    before = snapshot(srv, "testdb", ["flushme", "other"])

    srv.restart()
    assert snapshot(srv, "testdb", ["flushme", "other"]) == before
    srv.kill()
    srv.restart()
    assert snapshot(srv, "testdb", ["flushme", "other"]) == before


def test_compact_keeps_results(server):
    srv = server(args=NO_MAINTENANCE)
    t = now_s() - 3600
    for round_ in range(3):
        srv.write_ok("".join(f"comp,host=h{j % 3} v={round_ * 100 + j}i {t + round_ * 100 + j}\n" for j in range(50)),
                     precision="second")
        assert srv.flush()["rows_persisted"] == 50
    # upserts of persisted rows in a fourth file: compaction must keep the latest values
    srv.write_ok("".join(f"comp,host=h{j % 100 % 3} v={-j}i {t + j}\n" for j in range(0, 300, 7) if j % 100 < 50),
                 precision="second")
    srv.flush()
    before = snapshot(srv, "testdb", ["comp"])
    assert len(before["comp"]) == 150
    assert [r["v"] for r in before["comp"]] == [
        -(r * 100 + j) if (r * 100 + j) % 7 == 0 else r * 100 + j for r in range(3) for j in range(50)
    ]
    r = requests.post(f"{srv.url}/admin/compact", timeout=120)
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["files_compacted"], int), r.text
    assert snapshot(srv, "testdb", ["comp"]) == before
    srv.restart()
    assert snapshot(srv, "testdb", ["comp"]) == before


def test_upsert_same_series_and_time(server):
    srv = server(args=NO_MAINTENANCE)
    t = now_s() - 120
    q = "SELECT host, v, note FROM ups ORDER BY host"

    def write(v, note):
        srv.write_ok(f'ups,host=a v={v},note="{note}" {t}\nups,host=b v=100,note="other" {t}', precision="second")

    write(1.0, "first")
    write(2.0, "second")
    expected = [{"host": "a", "v": 2.0, "note": "second"}, {"host": "b", "v": 100.0, "note": "other"}]
    assert srv.rows(q) == expected  # both in the memory store

    assert srv.flush()["rows_persisted"] >= 2
    assert srv.rows(q) == expected  # persisted

    write(3.0, "third")  # memory store over a Parquet file
    expected[0].update(v=3.0, note="third")
    assert srv.rows(q) == expected

    srv.restart()
    assert srv.rows(q) == expected

    write(4.0, "fourth")  # only in the WAL when the server crashes
    expected[0].update(v=4.0, note="fourth")
    srv.kill()
    srv.restart()
    assert srv.rows(q) == expected
    assert srv.count("ups") == 2

    assert srv.flush()["rows_persisted"] >= 1
    srv.restart()
    assert srv.rows(q) == expected


def test_memory_budget_gives_503_with_retry_after(server):
    srv = server(args=["--memory-budget-mb", "1", *NO_MAINTENANCE])
    t = now_s() - 6 * 3600  # rows span 20000 s up to ~30 min ago
    body = "".join(f'big,host=h{i % 100},k=k{i} v={i}i,s="{"x" * 40}{i}" {t + i}\n' for i in range(20000))
    statuses = []
    refused = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(statuses) < 50:
        r = srv.write_v3(body, precision="second")
        statuses.append(r.status_code)
        if r.status_code == 503:
            refused = r
            break
        assert r.status_code == 204, r.text[:3000]
    assert refused is not None, f"no 503 within the memory budget test: statuses {statuses}"
    assert refused.headers.get("Retry-After"), dict(refused.headers)
    assert "memory" in refused.json()["error"], refused.text
    # once persisted, writes are accepted again
    srv.flush()
    ok = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ok = srv.write_v3(f"big,host=after,k=z v=1i {t}", precision="second")
        if ok.status_code == 204:
            break
        time.sleep(0.1)
    assert ok.status_code == 204, ok.text
