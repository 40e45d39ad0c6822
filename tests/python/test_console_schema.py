"""`system.tables` and the counters of `/metrics` behind the console's schema browser and status
page, over HTTP and in a real browser (headless Chromium through Selenium, the helpers of
test_console.py).

Shown: `system.tables` reports a table's settings as Timestream's UpdateTable set them and its
rows per tier, which move from memory to magnetic on `/admin/flush`; a reader sees only the
databases it may read (and still not the operators' `system.audit_log`);
`hourglass_ingest_rows_total` rises by the rows written, `hourglass_queries_total` and
`hourglass_query_errors_total` by the queries run and failed, over HTTP and the PostgreSQL
wire; the schema page shows a table's
retention and rows per tier, and the status page a non-zero ingest rate after writes.
"""

from __future__ import annotations

import time

import psycopg
import pytest
import requests

from sectest import add_user, query_sql, token_headers, write_lp
from test_console import _driver, css, wait

TIMEOUT_S = 30
ROWS = 240
# Rows stay in the memory store until `/admin/flush` (no persisting on age during a test).
HOLD = ["--persist-max-wait-ms", "600000"]


def _lines(table: str, n: int, host: str = "h") -> str:
    now = time.time_ns() - 60 * 1_000_000_000
    return "\n".join(f"{table},host={host}{i % 4} v={i} {now + i * 1_000_000}" for i in range(n))


def _metric(url: str, name: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=TIMEOUT_S).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    pytest.fail(f"/metrics has no {name}")


def _tables(srv, where: str = "") -> dict:
    rows = srv.rows(f"SELECT * FROM system.tables {where}", db="")
    return {(r["database_name"], r["table_name"]): r for r in rows}


def _update_table(url: str, db: str, table: str, hours: int, days: int, magnetic_writes: bool):
    r = requests.post(url + "/", timeout=TIMEOUT_S, json={
        "DatabaseName": db, "TableName": table,
        "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": hours,
                                "MagneticStoreRetentionPeriodInDays": days},
        "MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": magnetic_writes}},
        headers={"X-Amz-Target": "Timestream_20181101.UpdateTable",
                 "Content-Type": "application/x-amz-json-1.0"})
    assert r.status_code == 200, r.text[:500]


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server(args=HOLD)


def test_ingest_and_query_counters(srv):
    ingested = _metric(srv.url, "hourglass_ingest_rows_total")
    srv.write_ok(_lines("counted", ROWS), db="metrics_db")
    srv.write_ok(_lines("counted", 7), db="metrics_db", api="v1")
    assert _metric(srv.url, "hourglass_ingest_rows_total") - ingested == ROWS + 7

    queries = _metric(srv.url, "hourglass_queries_total")
    errors = _metric(srv.url, "hourglass_query_errors_total")
    assert srv.count("counted", db="metrics_db") == ROWS + 7
    assert srv.query("SELECT nope FROM counted", db="metrics_db").status_code >= 400
    assert _metric(srv.url, "hourglass_queries_total") - queries == 2
    assert _metric(srv.url, "hourglass_query_errors_total") - errors == 1

    # The PostgreSQL wire's queries count too: one answered (simple protocol), one that fails to
    # plan, one that fails while running (a division by zero), one over the extended protocol.
    host, port = srv.pg_addr
    queries = _metric(srv.url, "hourglass_queries_total")
    errors = _metric(srv.url, "hourglass_query_errors_total")
    with psycopg.connect(host=host, port=port, dbname="metrics_db", user="hg",
                         autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM counted").fetchone()[0] == ROWS + 7
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT nope FROM counted")
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT 1 / (count(*) - count(*)) FROM counted").fetchall()
        assert conn.execute("SELECT count(*) FROM counted WHERE host = %s", ["h1"]).fetchone()[0] > 0
    assert _metric(srv.url, "hourglass_queries_total") - queries == 4
    assert _metric(srv.url, "hourglass_query_errors_total") - errors == 2
    text = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT_S).text
    for name in ("hourglass_ingest_rows_total", "hourglass_queries_total",
                 "hourglass_query_errors_total"):
        assert f"# TYPE {name} counter" in text and f"# HELP {name} " in text, name


def test_system_tables_settings_and_tiers(srv):
    srv.write_ok(_lines("cpu", ROWS), db="schema_db")
    row = _tables(srv)[("schema_db", "cpu")]
    assert row["memory_rows"] == ROWS and row["memory_bytes"] > 0, row
    assert (row["magnetic_rows"], row["magnetic_bytes"], row["magnetic_files"]) == (0, 0, 0), row
    assert row["memory_store_retention_hours"] == 6, row  # the default
    writes = row["magnetic_writes_enabled"]
    assert writes in (True, False), row

    _update_table(srv.url, "schema_db", "cpu", 36, 400, not writes)
    row = _tables(srv, "WHERE database_name = 'schema_db'")[("schema_db", "cpu")]
    assert row["memory_store_retention_hours"] == 36, row
    assert row["magnetic_store_retention_days"] == 400, row
    assert row["magnetic_writes_enabled"] is (not writes), row
    assert row["updated_at"] >= row["created_at"], row

    srv.flush()
    row = _tables(srv)[("schema_db", "cpu")]
    assert (row["memory_rows"], row["memory_bytes"]) == (0, 0), row
    assert row["magnetic_rows"] == ROWS and row["magnetic_files"] >= 1, row
    assert row["magnetic_bytes"] > 0, row


def test_system_tables_lists_only_readable_databases(hourglass_bin, module_server):
    secure = module_server(args=["--require-auth", *HOLD])
    op = token_headers(add_user(hourglass_bin, secure.data_dir, "op", ("*", "admin")))
    reader = token_headers(add_user(hourglass_bin, secure.data_dir, "reader", ("mine", "read")))
    for db in ("mine", "theirs"):
        r = write_lp(secure.url, db, _lines("t", 5), headers=op)
        assert r.status_code == 204, r.text
    q = "SELECT database_name, table_name, memory_rows FROM system.tables"
    r = query_sql(secure.url, "", q, headers=reader)
    assert r.status_code == 200, r.text
    assert r.json() == [{"database_name": "mine", "table_name": "t", "memory_rows": 5}]
    r = query_sql(secure.url, "", q, headers=op)
    assert r.status_code == 200, r.text
    assert sorted(x["database_name"] for x in r.json()) == ["mine", "theirs"]
    # The other system tables stay the operators'.
    r = query_sql(secure.url, "", "SELECT * FROM system.audit_log", headers=reader)
    assert r.status_code >= 400, r.text[:300]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = _driver(tmp_path_factory.mktemp("downloads"))
    yield driver
    driver.quit()


def test_schema_page_shows_settings_and_tiers(browser, srv):
    srv.write_ok(_lines("disk", ROWS), db="browse_db")
    _update_table(srv.url, "browse_db", "disk", 48, 730, False)
    browser.get(srv.url + "/#/schema")
    wait(browser, lambda d: css(d, 'a.table-link[data-table="browse_db.disk"]'),
         "browse_db.disk in the schema tree")[0].click()
    wait(browser, lambda d: css(d, "#memory-retention")[0].text == "48 hours",
         "the memory-store retention")
    assert css(browser, "#magnetic-retention")[0].text == "730 days"
    assert css(browser, "#magnetic-writes")[0].text == "disabled"
    tiers = {tr.get_attribute("data-tier"): css(tr, ".tier-rows")[0].text
             for tr in css(browser, "#table-tiers tbody tr")}
    assert tiers == {"memory": f"{ROWS:,}", "magnetic": "0"}, tiers


def test_status_page_shows_ingest_rate(browser, srv):
    browser.get(srv.url + "/#/status")
    wait(browser, lambda d: css(d, "#ingest-rate")[0].get_attribute("data-total"),
         "the first read of /metrics")
    # Writes between two refreshes (5 s apart) make the rate non-zero.
    for _ in range(3):
        srv.write_ok(_lines("rate", 1000), db="status_db")
        time.sleep(1)

    def rate(d):
        text = css(d, "#ingest-rate")[0].text
        return text.endswith("rows/s") and float(text.split()[0]) > 0

    wait(browser, rate, "a non-zero ingest rate", timeout=20)
    assert css(browser, "#query-rate")[0].text.endswith("queries/s")
