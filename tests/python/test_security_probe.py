"""What an outside security probe broke on the HTTP side, each kept closed by a test here:

* credentials sent without a known scheme (`Authorization: <token>`, a user name that is really a
  token) are refused without being echoed in the answer, the audit log or the server's log;
* `system` (and the other reserved names) cannot be created or written through any interface,
  so `system.audit_log` cannot be forged or shadowed, even by a data directory from before the
  names were reserved;
* creating a database by a line protocol write needs `admin` on its name, and is audited;
* the data directory and every file in it are owner-only.

The PostgreSQL, cursor, connection and query-limit items have their own files
(test_security_pg.py, test_security_cursors.py, test_hostile_clients.py,
test_query_limits_security.py); the permission matrix is test_authz_matrix.py."""

from __future__ import annotations

import base64
import json
import os
import stat
import time

import boto3
import pytest
import requests
from botocore.config import Config

from sectest import add_user, query_sql, token_headers, user_cmd, write_lp

TIMEOUT_S = 30
LINE = "m,host=a v=1 1700000000000000000"


@pytest.fixture(scope="module")
def secure(hourglass_bin, module_server):
    srv = module_server(args=["--require-auth"])
    d = srv.data_dir
    srv.users = {
        "op": add_user(hourglass_bin, d, "op", ("*", "admin")),
        "star_writer": add_user(hourglass_bin, d, "star_writer", ("*", "write")),
        "newdb_admin": add_user(hourglass_bin, d, "newdb_admin", ("fresh", "admin")),
    }
    return srv


def audit_lines(srv) -> list[dict]:
    path = srv.data_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def server_log(srv) -> str:
    return srv.stderr_path.read_text(errors="replace")


def timestream(srv, client: str, creds: dict):
    return boto3.client(
        client, endpoint_url=srv.url, region_name="us-east-1",
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=Config(retries={"max_attempts": 1}))


# -- 1. no credential is ever echoed ------------------------------------------------------------

def test_a_token_without_a_known_scheme_is_refused_and_never_echoed(secure):
    token = secure.users["op"]["token"]
    user_token = base64.b64encode(f"{token}:x".encode()).decode()
    bad_headers = [
        token,                      # the token alone
        f"Tokens {token}",          # an unknown scheme
        f"{token} {token}",
        f"Basic {token}",           # not base64 of user:password
        f"Basic {user_token}",      # the token typed as the user name
        f"AWS4-HMAC-SHA256 Credential={token}",
    ]
    for value in bad_headers:
        for path in ("/api/v3/write_lp?db=sales", "/write?db=sales", "/api/v2/write?bucket=sales"):
            r = requests.post(f"{secure.url}{path}", data=LINE, headers={"Authorization": value},
                              timeout=TIMEOUT_S)
            assert r.status_code == 401, (value[:20], path, r.status_code, r.text)
            assert token not in r.text, (path, r.text)
        r = requests.get(f"{secure.url}/api/v3/query_sql", params={"q": "SELECT 1"},
                         headers={"Authorization": value}, timeout=TIMEOUT_S)
        assert r.status_code == 401 and token not in r.text, r.text
    # The Timestream endpoint with a token instead of a signature: refused, not echoed.
    r = requests.post(secure.url, data=b"{}", timeout=TIMEOUT_S, headers={
        "Authorization": f"AWS4-HMAC-SHA256 {token}",
        "X-Amz-Target": "Timestream_20181101.ListDatabases",
        "Content-Type": "application/x-amz-json-1.0"})
    assert r.status_code in (400, 403) and token not in r.text, r.text
    # u/p with the token as the user name.
    r = requests.post(f"{secure.url}/write", params={"db": "sales", "u": token, "p": "x"},
                      data=LINE, timeout=TIMEOUT_S)
    assert r.status_code == 401 and token not in r.text, r.text
    # A tab after the scheme separates like a space (and still authenticates).
    r = write_lp(secure.url, "sales", LINE, headers={"Authorization": f"Token\t{token}"})
    assert r.status_code == 204, r.text
    refusals = [e for e in audit_lines(secure) if e["outcome"] == "unauthenticated"]
    assert len(refusals) >= len(bad_headers) * 4
    for event in audit_lines(secure):
        assert token not in json.dumps(event), event
    r = query_sql(secure.url, "", "SELECT * FROM system.audit_log",
                  headers=token_headers(secure.users["op"]))
    assert r.status_code == 200 and token not in r.text
    assert token not in server_log(secure)


# -- 2. reserved names, database creation by line protocol --------------------------------------

@pytest.mark.parametrize("name", ["system", "SYSTEM", "information_schema", "pg_catalog"])
def test_reserved_database_names_cannot_be_written_or_created(secure, name):
    lines = "audit_log,user=op action=\"forged\",outcome=\"ok\" 1700000000000000000"
    for who in ("star_writer", "op"):
        headers = token_headers(secure.users[who])
        for path, params in (("/write", {"db": name}), ("/api/v2/write", {"bucket": name}),
                             ("/api/v3/write_lp", {"db": name})):
            r = requests.post(f"{secure.url}{path}", params=params, data=lines, headers=headers,
                              timeout=TIMEOUT_S)
            assert r.status_code == 400 and "reserved" in r.text, (who, path, r.text)
    write = timestream(secure, "timestream-write", secure.users["op"])
    with pytest.raises(write.exceptions.ValidationException, match="reserved"):
        write.create_database(DatabaseName=name)
    r = user_cmd(secure.binary, secure.data_dir, "grant", "star_writer", "--database", name,
                 "--permission", "read")
    assert r.returncode != 0 and "reserved" in r.stderr, r.stderr


def test_the_audit_log_is_the_real_one(secure):
    r = query_sql(secure.url, "", "SELECT action, outcome FROM system.audit_log",
                  headers=token_headers(secure.users["op"]))
    assert r.status_code == 200, r.text
    rows = r.json()
    assert rows and all(row["action"] != "forged" for row in rows)
    assert any(row["action"] == "user add" for row in rows), rows[:5]


def test_creating_a_database_by_line_protocol_needs_admin_and_is_audited(secure):
    w = token_headers(secure.users["star_writer"])
    r = write_lp(secure.url, "brand_new", LINE, headers=w)
    assert r.status_code == 403, r.text
    r = requests.post(f"{secure.url}/write", params={"db": "brand_new"}, data=LINE, headers=w,
                      timeout=TIMEOUT_S)
    assert r.status_code == 403, r.text
    denied = [e for e in audit_lines(secure)
              if e["target"] == "brand_new" and e["outcome"] == "denied"]
    assert denied and denied[-1]["user"] == "star_writer", denied
    # An admin of the name creates it; the database and its table are audited.
    a = token_headers(secure.users["newdb_admin"])
    assert write_lp(secure.url, "fresh", LINE, headers=a).status_code == 204
    events = [(e["user"], e["action"], e["target"], e["outcome"]) for e in audit_lines(secure)]
    assert ("newdb_admin", "CreateDatabase", "fresh", "ok") in events, events[-5:]
    assert ("newdb_admin", "CreateTable", "fresh.m", "ok") in events, events[-5:]
    # Once it exists, `*` write may write to it, and a new table is audited as well.
    r = write_lp(secure.url, "fresh", "other,host=a v=1 1700000000000000000", headers=w)
    assert r.status_code == 204, r.text
    events = [(e["user"], e["action"], e["target"]) for e in audit_lines(secure)]
    assert ("star_writer", "CreateTable", "fresh.other") in events


def test_a_legacy_database_named_system_does_not_shadow_the_audit_log(hourglass_bin, server):
    """A data directory from before the reservation may hold a database `system`: the system
    schema still wins."""
    srv = server(args=["--require-auth"])
    op = add_user(hourglass_bin, srv.data_dir, "op", ("*", "admin"))
    assert write_lp(srv.url, "legacy", "audit_log,user=x action=\"forged\" 1700000000000000000",
                    headers=token_headers(op)).status_code == 204
    srv.stop()
    catalog_path = srv.data_dir / "catalog.json"
    catalog = json.loads(catalog_path.read_text())
    legacy = catalog["databases"]["legacy"]
    catalog["databases"]["system"] = dict(legacy, name="system")
    catalog_path.write_text(json.dumps(catalog))
    srv.start()
    r = query_sql(srv.url, "", "SELECT action FROM system.audit_log", headers=token_headers(op))
    assert r.status_code == 200, r.text
    actions = {row["action"] for row in r.json()}
    assert "forged" not in actions and "user add" in actions, actions
    r = query_sql(srv.url, "", "SELECT schema_name FROM information_schema.schemata",
                  headers=token_headers(op))
    assert r.status_code == 200, r.text
    assert "system" not in [row["schema_name"] for row in r.json()], r.text


# -- 11. owner-only files ------------------------------------------------------------------------

def test_the_data_directory_and_its_files_are_owner_only(hourglass_bin, server, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    old = os.umask(0o022)
    try:
        srv = server(data_dir=data)
    finally:
        os.umask(old)
    assert srv.write_v3(LINE, db="perm").status_code == 204
    srv.flush()
    srv.stop()
    checked = 0
    for root, dirs, files in os.walk(data):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            assert mode & 0o077 == 0, f"{path} has mode {mode:o}"
            checked += 1
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    kinds = {p.suffix for p in data.rglob("*") if p.is_file()}
    assert ".parquet" in kinds and checked > 5, kinds
