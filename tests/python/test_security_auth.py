"""`serve --require-auth` on the HTTP endpoints and the PostgreSQL wire, with real clients:
requests and influxdb-client (tokens, v1 u/p and HTTP Basic), psycopg and psql (SCRAM-SHA-256).
Users are added with `hourglass user add` while the server runs (no restart). Also: grants per
database (a reader cannot write, a user of one database cannot see another through queries,
joins, information_schema or psql's \\dt), operator-only admin endpoints, the audit log as
`system.audit_log`, rotation and removal, and the refusal to bind non-loopback addresses."""

from __future__ import annotations

import os
import subprocess
import time

import psycopg
import pytest
import requests
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from sectest import add_user, query_sql, scram_login_sqlstate, token_headers, user_cmd, write_lp

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def secure(hourglass_bin, module_server):
    """A server with --require-auth and users: a writer and a reader of `sales`, a reader and
    writer of `hr`, and an operator (admin on '*'); users are added after the server started."""
    srv = module_server(args=["--require-auth"])
    d = srv.data_dir
    users = {
        "writer": add_user(hourglass_bin, d, "writer", ("sales", "write")),
        "reader": add_user(hourglass_bin, d, "reader", ("sales", "read")),
        "hr": add_user(hourglass_bin, d, "hr", ("hr", "read"), ("hr", "write")),
        "op": add_user(hourglass_bin, d, "op", ("*", "admin")),
    }
    srv.users = users
    # The operator creates both databases (a write grant alone cannot create one).
    for db in ("sales", "hr"):
        r = write_lp(srv.url, db, "setup,by=op n=1i 1600000000000000000",
                     headers=token_headers(users["op"]))
        assert r.status_code == 204, r.text
    # Data in both databases.
    r = write_lp(srv.url, "sales", "orders,region=eu amount=10i 1700000000000000000\n"
                                   "orders,region=us amount=20i 1700000001000000000",
                 headers=token_headers(users["writer"]))
    assert r.status_code == 204, r.text
    r = write_lp(srv.url, "hr", "staff,team=ops count=3i 1700000000000000000",
                 headers=token_headers(users["hr"]))
    assert r.status_code == 204, r.text
    yield srv


def test_missing_or_wrong_tokens_are_refused_with_influx_error_shapes(secure):
    url = secure.url
    assert requests.get(f"{url}/health", timeout=TIMEOUT_S).status_code == 200
    body = "orders,region=eu amount=1i"
    for headers in ({}, {"Authorization": "Token hgt_nope"}, {"Authorization": "Bearer nope"}):
        r = requests.post(f"{url}/write", params={"db": "sales"}, data=body, headers=headers,
                          timeout=TIMEOUT_S)
        assert r.status_code == 401 and set(r.json()) == {"error"}, r.text
        r = requests.post(f"{url}/api/v2/write", params={"bucket": "sales"}, data=body,
                          headers=headers, timeout=TIMEOUT_S)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized", r.text
        r = write_lp(url, "sales", body, headers=headers)
        assert r.status_code == 401 and "error" in r.json(), r.text
        r = query_sql(url, "sales", "SELECT 1", headers=headers)
        assert r.status_code == 401 and "error" in r.json(), r.text
        r = requests.get(f"{url}/metrics", headers=headers, timeout=TIMEOUT_S)
        assert r.status_code == 401
    # v1 u/p with a wrong token, and Basic with a wrong token.
    r = requests.post(f"{url}/write", params={"db": "sales", "u": "writer", "p": "x"}, data=body,
                      timeout=TIMEOUT_S)
    assert r.status_code == 401, r.text
    r = requests.post(f"{url}/write", params={"db": "sales"}, data=body, auth=("writer", "x"),
                      timeout=TIMEOUT_S)
    assert r.status_code == 401, r.text


def test_tokens_v1_user_password_and_basic_auth_work(secure):
    url, w = secure.url, secure.users["writer"]
    line = "orders,region=ap amount=5i 1700000002000000000"
    assert write_lp(url, "sales", line, headers={"Authorization": f"Bearer {w['token']}"}).status_code == 204
    r = requests.post(f"{url}/write", params={"db": "sales", "u": "writer", "p": w["token"]},
                      data=line, timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    r = requests.post(f"{url}/write", params={"db": "sales"}, data=line,
                      auth=("writer", w["token"]), timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    with InfluxDBClient(url=url, token=w["token"], org="any", timeout=TIMEOUT_S * 1000) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="sales", record=line)
    with InfluxDBClient(url=url, token="hgt_wrong", org="any", timeout=TIMEOUT_S * 1000) as client:
        with pytest.raises(Exception) as e:
            client.write_api(write_options=SYNCHRONOUS).write(bucket="sales", record=line)
        assert getattr(e.value, "status", None) == 401
    r = query_sql(url, "sales", "SELECT count(*) AS n FROM orders", headers=token_headers(secure.users["reader"]))
    assert r.status_code == 200 and r.json()[0]["n"] >= 3, r.text


def test_read_only_user_cannot_write_and_writer_cannot_read(secure):
    url, reader, writer = secure.url, secure.users["reader"], secure.users["writer"]
    r = write_lp(url, "sales", "orders,region=eu amount=1i", headers=token_headers(reader))
    assert r.status_code == 403 and "may not write" in r.json()["error"], r.text
    r = requests.post(f"{url}/api/v2/write", params={"bucket": "sales"}, data="orders amount=1i",
                      headers=token_headers(reader), timeout=TIMEOUT_S)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    # write does not imply read: a user without any read grant runs no query at all
    for q in ("SELECT * FROM orders", "SELECT 1"):
        r = query_sql(url, "sales", q, headers=token_headers(writer))
        assert r.status_code == 403 and "may not run queries" in r.json()["error"], r.text
    # nor management
    r = requests.post(f"{url}/admin/flush", headers=token_headers(reader), timeout=TIMEOUT_S)
    assert r.status_code == 403
    r = requests.post(f"{url}/admin/flush", headers=token_headers(secure.users["op"]), timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text


def test_a_user_of_one_database_cannot_see_another(secure):
    url, hr = secure.url, token_headers(secure.users["hr"])
    assert query_sql(url, "hr", "SELECT count(*) AS n FROM staff", headers=hr).json() == [{"n": 1}]
    for q in ("SELECT * FROM sales.orders",
              "SELECT * FROM staff JOIN sales.orders ON true",
              "SELECT * FROM hourglass.sales.orders"):
        r = query_sql(url, "hr", q, headers=hr)
        assert r.status_code >= 400 and "not found" in r.json()["error"], (q, r.text)
    r = query_sql(url, "sales", "SELECT * FROM orders", headers=hr)
    assert r.status_code >= 400
    rows = query_sql(url, "hr", "SELECT DISTINCT table_schema FROM information_schema.tables",
                     headers=hr).json()
    schemas = {r["table_schema"] for r in rows}
    assert "hr" in schemas and "sales" not in schemas, schemas
    rows = query_sql(url, "hr", "SELECT schema_name FROM information_schema.schemata", headers=hr).json()
    assert "sales" not in {r["schema_name"] for r in rows}
    # DDL, COPY and SET are not available to authenticated users.
    r = query_sql(url, "hr", "CREATE TABLE x AS SELECT 1", headers=hr)
    assert r.status_code >= 400
    # The operator sees both.
    rows = query_sql(url, "hr", "SELECT DISTINCT table_schema FROM information_schema.tables",
                     headers=token_headers(secure.users["op"])).json()
    assert {"hr", "sales"} <= {r["table_schema"] for r in rows}


def _pg(secure, user, password, dbname, **kw):
    host, port = secure.pg_addr
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                           connect_timeout=10, **kw)


def test_postgres_scram_password(secure):
    hr = secure.users["hr"]
    with _pg(secure, "hr", hr["password"], "hr") as conn:
        assert conn.execute("SELECT count(*) FROM staff").fetchone()[0] == 1
        schemas = {r[0] for r in conn.execute("SELECT DISTINCT table_schema FROM information_schema.tables")}
        assert "hr" in schemas and "sales" not in schemas
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM sales.orders")
    for user, password in (("hr", "wrong"), ("nobody", "x"), ("hr", "")):
        with pytest.raises(psycopg.OperationalError) as e:
            _pg(secure, user, password, "hr").close()
        # (libpq refuses to send an empty password itself)
        assert "password authentication failed" in str(e.value) or "no password" in str(e.value)
    # psql: \dt as a user of another database lists none of its tables.
    host, port = secure.pg_addr
    env = {**os.environ, "PGPASSWORD": secure.users["reader"]["password"], "PGCONNECT_TIMEOUT": "10"}
    out = subprocess.run(["psql", "-h", host, "-p", str(port), "-U", "reader", "-d", "sales",
                          "-X", "-c", r"\dt *.*"], capture_output=True, text=True, env=env,
                         timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    assert "orders" in out.stdout and "staff" not in out.stdout, out.stdout
    env["PGPASSWORD"] = "wrong"
    out = subprocess.run(["psql", "-h", host, "-p", str(port), "-U", "reader", "-d", "sales",
                          "-X", "-c", "SELECT 1"], capture_output=True, text=True, env=env,
                         timeout=TIMEOUT_S)
    assert out.returncode != 0 and "password authentication failed" in out.stderr


def test_postgres_sqlstate_of_a_wrong_password(secure):
    host, port = secure.pg_addr
    # A raw startup + SASL exchange shows the SQLSTATE (psycopg does not expose it on connect).
    assert scram_login_sqlstate(host, port, "hr", "wrong", "hr") == "28P01"
    assert scram_login_sqlstate(host, port, "nobody", "x", "hr") == "28P01"
    assert scram_login_sqlstate(host, port, "hr", secure.users["hr"]["password"], "hr") is None


def test_rotate_and_remove_take_effect_without_restart(secure, hourglass_bin):
    d = secure.data_dir
    tmp = add_user(hourglass_bin, d, "temp", ("hr", "read"))
    assert query_sql(secure.url, "hr", "SELECT 1", headers=token_headers(tmp)).status_code == 200
    rotated = user_cmd(hourglass_bin, d, "rotate", "temp")
    assert rotated.returncode == 0, rotated.stderr
    import json
    new = json.loads(rotated.stdout)
    assert query_sql(secure.url, "hr", "SELECT 1", headers=token_headers(new)).status_code == 200
    time.sleep(1.2)  # the users file is checked at most once per second
    assert query_sql(secure.url, "hr", "SELECT 1", headers=token_headers(tmp)).status_code == 401
    assert user_cmd(hourglass_bin, d, "remove", "temp").returncode == 0
    time.sleep(1.2)
    assert query_sql(secure.url, "hr", "SELECT 1", headers=token_headers(new)).status_code == 401
    listed = user_cmd(hourglass_bin, d, "list")
    names = {u["name"] for u in json.loads(listed.stdout)}
    assert "temp" not in names and {"op", "hr"} <= names
    text = (d / "users.json").read_text()
    assert new["token"] not in text and new["secret_access_key"] not in text
    assert oct((d / "users.json").stat().st_mode & 0o777) == "0o600"
    assert oct((d / "auth.key").stat().st_mode & 0o777) == "0o600"


def test_audit_log_is_a_system_table_for_operators(secure):
    url = secure.url
    requests.post(f"{url}/write", params={"db": "sales"}, data="x v=1", timeout=TIMEOUT_S)  # 401
    requests.post(f"{url}/admin/flush", headers=token_headers(secure.users["op"]), timeout=TIMEOUT_S)
    r = query_sql(url, "", "SELECT user, peer, interface, action, target, outcome FROM system.audit_log "
                           "ORDER BY time", headers=token_headers(secure.users["op"]))
    assert r.status_code == 200, r.text
    rows = r.json()
    actions = {(e["interface"], e["action"], e["outcome"]) for e in rows}
    assert ("cli", "user add", "ok") in actions
    assert ("http", "POST /write", "unauthenticated") in actions
    assert ("http", "POST /admin/flush", "ok") in actions
    assert any(e["outcome"] == "denied" for e in rows)
    assert all(e["peer"].startswith("127.0.0.1:") for e in rows if e["interface"] == "http")
    # Not visible to anyone else.
    r = query_sql(url, "hr", "SELECT * FROM system.audit_log", headers=token_headers(secure.users["hr"]))
    assert r.status_code >= 400


def test_non_loopback_bind_needs_auth_or_override(hourglass_bin, tmp_path):
    base = [str(hourglass_bin), "serve", "--data-dir", str(tmp_path / "d"), "--pg-addr", "127.0.0.1:0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOURGLASS_")}
    out = subprocess.run(base + ["--http-addr", "0.0.0.0:0"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode != 0 and "--require-auth" in out.stderr, out.stderr
    proc = subprocess.Popen(base + ["--http-addr", "0.0.0.0:0", "--allow-insecure-bind"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "http listening on" in line or not line:
                break
        assert "http listening on 0.0.0.0:" in line, line
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_sql_shell_sends_a_token(secure, hourglass_bin):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOURGLASS_")}
    base = [str(hourglass_bin), "sql", "--host", secure.url, "--db", "hr", "--format", "json",
            "-e", "SELECT count(*) AS n FROM staff"]
    out = subprocess.run(base + ["--token", secure.users["hr"]["token"]], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0 and '"n":1' in out.stdout.replace(" ", ""), out.stderr
    out = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode != 0 and "authentication required" in out.stderr, out.stderr
