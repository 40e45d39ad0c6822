"""The PostgreSQL endpoint's security edges, with a raw protocol client and psycopg:

* anything but the expected message during startup and authentication (a cleartext or MD5
  PasswordMessage after the SCRAM offer, a Query, a SASLResponse first, garbage, truncated or
  zero-length messages) is answered FATAL 08P01/28000 and recorded in the audit log, without
  a panic in the server's log; malformed messages after login end the session the same way;
* `--require-tls` (on by default with a certificate) refuses `sslmode=disable` with FATAL
  28000 before any password exchange, with and without `--require-auth`; `--require-tls=false`
  lets it in; SCRAM-SHA-256-PLUS (channel binding) works over TLS;
* a user removed or rotated while its session is open loses the session at its next
  statement (within ~1.5 s), and grants added or removed apply to open sessions as quickly,
  prepared statements included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import ssl
import struct
import subprocess
import time

import psycopg
import pytest

from sectest import add_user, make_ca_and_cert, token_headers, user_cmd, write_lp

TIMEOUT_S = 30
#: How quickly a change of the users file must reach an open session.
PROPAGATION_S = 1.5


# -- a raw PostgreSQL protocol client ----------------------------------------------------------


def msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", 4 + len(body)) + body


def startup_packet(user: str, dbname: str) -> bytes:
    params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
    return struct.pack("!II", 8 + len(params), 196608) + params


class Raw:
    """One connection speaking the protocol by hand (optionally over TLS after SSLRequest)."""

    def __init__(self, addr, tls_ca: str | None = None):
        self.sock = socket.create_connection(addr, timeout=10)
        if tls_ca is not None:
            self.sock.sendall(struct.pack("!II", 8, 80877103))
            assert self.sock.recv(1) == b"S"
            ctx = ssl.create_default_context(cafile=tls_ca)
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _read_exact(self, n: int) -> bytes | None:
        out = b""
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except (ConnectionResetError, ssl.SSLError):
                return None
            if not chunk:
                return None
            out += chunk
        return out

    def read(self):
        """(kind, body) of the next message, None when the server closed the connection."""
        head = self._read_exact(5)
        if head is None:
            return None
        body = self._read_exact(struct.unpack("!I", head[1:])[0] - 4)
        return None if body is None else (head[:1], body)

    def error_or_close(self):
        """Reads to the first ErrorResponse: its fields ({'S': 'FATAL', 'C': ...}), then checks
        that the server closed the connection. None when it closed without one."""
        while True:
            m = self.read()
            if m is None:
                return None
            kind, body = m
            if kind == b"E":
                fields = {f[:1].decode(): f[1:].decode() for f in body.split(b"\0") if f}
                fields["closed"] = self.read() is None
                return fields

    def sasl_offer(self, user: str, dbname: str) -> list[str]:
        """Sends the startup packet; the mechanisms of AuthenticationSASL."""
        self.send(startup_packet(user, dbname))
        kind, body = self.read()
        assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 10, (kind, body)
        return [m.decode() for m in body[4:].split(b"\0") if m]

    def client_first(self, mechanism="SCRAM-SHA-256", gs2="n,,"):
        nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n=,r={nonce}"
        self.gs2 = gs2
        first = (gs2 + self.first_bare).encode()
        self.send(msg(b"p", mechanism.encode() + b"\0" + struct.pack("!I", len(first)) + first))

    def server_first(self) -> str:
        kind, body = self.read()
        assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 11, (kind, body)
        return body[4:].decode()

    def client_final(self, password: str, server_first: str, binding: bytes = b""):
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        c = base64.b64encode(self.gs2.encode() + binding).decode()
        without_proof = f"c={c},r={attrs['r']}"
        auth_msg = f"{self.first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
        self.send(msg(b"p", f"{without_proof},p={proof}".encode()))

    def login(self, user: str, password: str, dbname: str):
        """A whole SCRAM-SHA-256 login, up to ReadyForQuery."""
        self.sasl_offer(user, dbname)
        self.client_first()
        self.client_final(password, self.server_first())
        while True:
            kind, body = self.read()
            assert kind != b"E", body
            if kind == b"Z":
                return


# -- helpers -------------------------------------------------------------------------------------


def refusals(srv) -> list[dict]:
    """The audit log's refused PostgreSQL logins."""
    path = srv.data_dir / "audit.log"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if (e["interface"], e["action"], e["outcome"])
            == ("postgres", "authenticate", "unauthenticated")]


def stderr_text(srv) -> str:
    return srv.stderr_path.read_text(errors="replace")


def assert_no_panic(srv):
    text = stderr_text(srv)
    assert "panicked" not in text and "stack backtrace" not in text, text[-4000:]


def pg_connect(srv, user: str, password: str, dbname: str, **kw) -> psycopg.Connection:
    host, port = srv.pg_addr
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                           connect_timeout=10, autocommit=True, **kw)


def fails_within(conn, sql: str, seconds: float = PROPAGATION_S, **kw) -> psycopg.Error:
    """Runs `sql` until it fails; the error, which must come within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute(sql, **kw).fetchall()
        except psycopg.Error as e:
            return e
        assert time.monotonic() < deadline, f"{sql!r} still runs {seconds} s after the change"
        time.sleep(0.1)


def succeeds_within(conn, sql: str, seconds: float = PROPAGATION_S):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return conn.execute(sql).fetchall()
        except psycopg.Error as e:
            assert e.sqlstate == "42P01", e
            assert time.monotonic() < deadline, f"{sql!r} still fails {seconds} s after the change"
            time.sleep(0.1)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secure(hourglass_bin, module_server):
    """--require-auth without TLS; an operator and data in two databases."""
    srv = module_server(args=["--require-auth"])
    op = add_user(hourglass_bin, srv.data_dir, "op", ("*", "admin"))
    for db in ("pga", "pgb"):
        r = write_lp(srv.url, db, "m,t=x v=1i 1700000000000000000", headers=token_headers(op))
        assert r.status_code == 204, r.text
    srv.op = op
    yield srv


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_ca_and_cert(tmp_path_factory.mktemp("pgcerts"))


# -- 5: pre-authentication protocol violations ------------------------------------------------


@pytest.mark.parametrize("password_message", [b"wrong-password\0",
                                              b"md5" + b"0123456789abcdef" * 2 + b"\0"],
                         ids=["cleartext", "md5"])
def test_password_message_after_the_sasl_offer_is_a_protocol_error(secure, password_message):
    before = len(refusals(secure))
    raw = Raw(secure.pg_addr)
    assert "SCRAM-SHA-256" in raw.sasl_offer("op", "pga")
    raw.send(msg(b"p", password_message))
    err = raw.error_or_close()
    raw.close()
    assert err is not None and err["S"] == "FATAL" and err["C"] in ("08P01", "28000"), err
    assert err["closed"], "the connection stays open after FATAL"
    after = refusals(secure)
    assert len(after) == before + 1, after[before:]
    assert after[-1]["user"] == "op" and after[-1]["peer"].startswith("127.0.0.1:")
    assert_no_panic(secure)
    # The server still serves.
    with pg_connect(secure, "op", secure.op["password"], "pga") as conn:
        assert conn.execute("SELECT count(*) FROM m").fetchone()[0] == 1


PRE_AUTH_CASES = {
    # After the SASL offer:
    "query_instead_of_sasl": (True, msg(b"Q", b"SELECT 1\0")),
    "client_final_first": (True, msg(b"p", b"c=biws,r=abc,p=cHJvb2Y=")),
    "garbage": (True, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
    "zero_length_message": (True, b"p\0\0\0\0"),
    "length_below_four": (True, b"p\0\0\0\x02"),
    "truncated_sasl_initial_response": (True, msg(b"p", b"SCRAM-SHA-256\0\0\0\0\x50abc")),
    "unknown_mechanism": (True, msg(b"p", b"PLAIN\0\0\0\0\x03abc")),
    "plus_without_tls": (True, msg(b"p", b"SCRAM-SHA-256-PLUS\0\0\0\0\x03abc")),
    # Instead of the startup packet:
    "garbage_startup": (False, b"\x00\x00\x00\x03\xff\xff\xff\xff"),
    "query_as_startup": (False, msg(b"Q", b"SELECT 1\0")),
    "unsupported_protocol": (False, struct.pack("!II", 8 + 10, 0x00090000) + b"user\0op\0\0\0"),
}


@pytest.mark.parametrize("case", list(PRE_AUTH_CASES))
def test_out_of_order_messages_before_login(secure, case):
    after_offer, data = PRE_AUTH_CASES[case]
    before = len(refusals(secure))
    raw = Raw(secure.pg_addr)
    if after_offer:
        raw.sasl_offer("op", "pga")
    raw.send(data)
    err = raw.error_or_close()
    raw.close()
    assert err is not None and err["S"] == "FATAL", err
    assert err["C"] in ("08P01", "28000", "0A000"), err
    assert err["closed"]
    assert len(refusals(secure)) == before + 1
    assert_no_panic(secure)


def test_second_sasl_initial_response_and_truncated_messages(secure):
    # A second SASLInitialResponse where the client-final message belongs.
    before = len(refusals(secure))
    raw = Raw(secure.pg_addr)
    raw.sasl_offer("op", "pga")
    raw.client_first()
    raw.server_first()
    raw.client_first()
    err = raw.error_or_close()
    raw.close()
    assert err is not None and err["S"] == "FATAL" and err["C"] in ("08P01", "28000"), err
    assert len(refusals(secure)) == before + 1
    # A message cut short by the client closing the connection: recorded, no panic.
    raw = Raw(secure.pg_addr)
    raw.sasl_offer("op", "pga")
    raw.send(b"p\0\0\0\x64SCRAM")
    raw.close()
    deadline = time.monotonic() + 5
    while len(refusals(secure)) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(refusals(secure)) == before + 2
    assert_no_panic(secure)
    with pg_connect(secure, "op", secure.op["password"], "pga") as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1


AFTER_LOGIN_CASES = {
    "password_message": msg(b"p", b"SCRAM-SHA-256\0\0\0\0\x03abc"),
    "zero_length_execute": b"E\0\0\0\x04",
    "short_bind": msg(b"B", b"\0\0\0\0\0\x01\0\0\0\x09ab\0\0"),
    "unknown_type": msg(b"F", b"\0\0\0\0"),
    "length_below_four": b"Q\0\0\0\x01",
}


@pytest.mark.parametrize("case", list(AFTER_LOGIN_CASES))
def test_malformed_messages_after_login_end_the_session(secure, case):
    raw = Raw(secure.pg_addr)
    raw.login("op", secure.op["password"], "pga")
    raw.send(AFTER_LOGIN_CASES[case])
    err = raw.error_or_close()
    raw.close()
    assert err is not None and err["S"] == "FATAL" and err["C"] == "08P01", err
    assert err["closed"]
    assert_no_panic(secure)


def test_refusals_write_one_log_line_at_most(secure):
    lines_before = len(stderr_text(secure).splitlines())
    for _ in range(5):
        raw = Raw(secure.pg_addr)
        raw.sasl_offer("op", "pga")
        raw.send(msg(b"p", b"hunter2\0"))
        assert raw.error_or_close() is not None
        raw.close()
    time.sleep(0.2)
    assert len(stderr_text(secure).splitlines()) - lines_before <= 5


# -- 6: TLS required -------------------------------------------------------------------------


def tls_server(module_server, hourglass_bin, certs, *extra):
    ca, cert, key = certs
    srv = module_server(args=["--tls-cert", str(cert), "--tls-key", str(key), *extra])
    srv.ca = str(ca)
    return srv


@pytest.fixture(scope="module")
def tls_auth(module_server, hourglass_bin, certs):
    srv = tls_server(module_server, hourglass_bin, certs, "--require-auth")
    srv.op = add_user(hourglass_bin, srv.data_dir, "op", ("*", "admin"))
    return srv


def test_sslmode_disable_is_refused_when_tls_is_required(tls_auth):
    before = len(refusals(tls_auth))
    with pytest.raises(psycopg.OperationalError) as e:
        pg_connect(tls_auth, "op", tls_auth.op["password"], "tlsdb", sslmode="disable").close()
    assert "TLS is required" in str(e.value)
    # The raw exchange: FATAL 28000 right after the startup packet, before any SASL offer.
    raw = Raw(tls_auth.pg_addr)
    raw.send(startup_packet("op", "tlsdb"))
    kind, body = raw.read()
    assert kind == b"E", (kind, body)
    fields = {f[:1].decode(): f[1:].decode() for f in body.split(b"\0") if f}
    assert fields["S"] == "FATAL" and fields["C"] == "28000", fields
    assert raw.read() is None
    raw.close()
    after = refusals(tls_auth)
    assert len(after) == before + 2 and "TLS is required" in after[-1]["detail"]
    # Over TLS the same user logs in, with and without channel binding.
    for binding in ("disable", "prefer", "require"):
        with pg_connect(tls_auth, "op", tls_auth.op["password"], "tlsdb", sslmode="verify-full",
                        sslrootcert=tls_auth.ca, channel_binding=binding) as conn:
            assert conn.info.pgconn.ssl_in_use
            assert conn.execute("SELECT 1").fetchone()[0] == 1
    assert_no_panic(tls_auth)


def test_channel_binding_is_offered_over_tls_and_checked(tls_auth):
    raw = Raw(tls_auth.pg_addr, tls_ca=tls_auth.ca)
    assert raw.sasl_offer("op", "tlsdb") == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    # "y": the client could bind but thinks the server cannot: a downgrade, refused.
    raw.client_first(gs2="y,,")
    err = raw.error_or_close()
    raw.close()
    assert err is not None and err["S"] == "FATAL" and err["C"] == "28000", err
    # Binding to another certificate (what a man in the middle's client would send): refused.
    raw = Raw(tls_auth.pg_addr, tls_ca=tls_auth.ca)
    raw.sasl_offer("op", "tlsdb")
    raw.client_first(mechanism="SCRAM-SHA-256-PLUS", gs2="p=tls-server-end-point,,")
    raw.client_final(tls_auth.op["password"], raw.server_first(), binding=b"\0" * 32)
    err = raw.error_or_close()
    raw.close()
    assert err is not None and err["S"] == "FATAL" and err["C"] == "28000", err
    # Without TLS only SCRAM-SHA-256 is offered (here: refused before, TLS being required).


def test_require_tls_without_require_auth_and_its_opt_out(module_server, hourglass_bin, certs):
    # Trust (no --require-auth) with a certificate: TLS is still required.
    srv = tls_server(module_server, hourglass_bin, certs)
    with pytest.raises(psycopg.OperationalError) as e:
        pg_connect(srv, "hg", "", "tlsdb", sslmode="disable").close()
    assert "TLS is required" in str(e.value)
    with pg_connect(srv, "hg", "", "tlsdb", sslmode="require") as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    # --require-tls=false: plaintext is let in, TLS still offered.
    srv = tls_server(module_server, hourglass_bin, certs, "--require-auth", "--require-tls=false")
    op = add_user(hourglass_bin, srv.data_dir, "op", ("*", "admin"))
    with pg_connect(srv, "op", op["password"], "tlsdb", sslmode="disable") as conn:
        assert not conn.info.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone()[0] == 1
    host, port = srv.pg_addr
    out = subprocess.run(["psql", f"host=localhost port={port} user=op dbname=tlsdb sslmode=require",
                          "-X", "-A", "-t", "-c", "SELECT 1"], capture_output=True, text=True,
                         env={**os.environ, "PGPASSWORD": op["password"], "PGCONNECT_TIMEOUT": "10"},
                         timeout=TIMEOUT_S)
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr


# -- 7: open sessions follow the users file ----------------------------------------------------


@pytest.mark.parametrize("change", ["remove", "rotate"])
def test_removed_or_rotated_user_loses_its_open_session(secure, hourglass_bin, change):
    name = f"temp_{change}"
    creds = add_user(hourglass_bin, secure.data_dir, name, ("pga", "read"))
    conn = pg_connect(secure, name, creds["password"], "pga")
    prepared = "SELECT count(*) FROM m WHERE v > %s"
    assert conn.execute("SELECT count(*) FROM m").fetchone()[0] == 1
    assert conn.execute(prepared, (0,), prepare=True).fetchone()[0] == 1
    before = len(refusals(secure))
    r = user_cmd(hourglass_bin, secure.data_dir, change, name)
    assert r.returncode == 0, r.stderr
    err = fails_within(conn, "SELECT count(*) FROM m")
    assert err.sqlstate == "28000", err
    assert conn.closed, "the connection stays open"
    events = refusals(secure)[before:]
    assert len(events) == 1 and events[0]["user"] == name, events
    # A prepared statement (Bind/Execute only) ends its session just the same.
    if change == "rotate":
        creds = json.loads(r.stdout)
        conn = pg_connect(secure, name, creds["password"], "pga")
        assert conn.execute(prepared, (0,), prepare=True).fetchone()[0] == 1
        assert user_cmd(hourglass_bin, secure.data_dir, "remove", name).returncode == 0
        err = fails_within(conn, prepared, params=(0,), prepare=True)
        assert err.sqlstate == "28000" and conn.closed, err
    assert_no_panic(secure)


def _set_grants(data_dir, name: str, grants: list[tuple[str, str]]):
    """Edits the users file as a revoke would (there is no `user revoke`)."""
    path = data_dir / "users.json"
    doc = json.loads(path.read_text())
    for u in doc["users"]:
        if u["name"] == name:
            u["grants"] = [{"database": d, "permission": p} for d, p in grants]
    path.write_text(json.dumps(doc, indent=2))


def test_grants_changed_apply_to_the_open_session(secure, hourglass_bin):
    creds = add_user(hourglass_bin, secure.data_dir, "granted", ("pga", "read"))
    conn = pg_connect(secure, "granted", creds["password"], "pga")
    other = "SELECT count(*) FROM pgb.m"
    with pytest.raises(psycopg.Error) as e:
        conn.execute(other)
    assert e.value.sqlstate == "42P01"
    r = user_cmd(hourglass_bin, secure.data_dir, "grant", "granted",
                 "--database", "pgb", "--permission", "read")
    assert r.returncode == 0, r.stderr
    assert succeeds_within(conn, other) == [(1,)]
    # A statement prepared while the grant holds, and the catalog, follow a revoke too.
    prepared = "SELECT count(*) FROM pgb.m WHERE v > %s"
    assert conn.execute(prepared, (0,), prepare=True).fetchone()[0] == 1
    schemas = {r[0] for r in conn.execute("SELECT DISTINCT table_schema FROM information_schema.tables")}
    assert {"pga", "pgb"} <= schemas
    _set_grants(secure.data_dir, "granted", [("pga", "read")])
    err = fails_within(conn, prepared, params=(0,), prepare=True)
    assert err.sqlstate == "42P01", err
    with pytest.raises(psycopg.Error) as e:
        conn.execute(other)
    assert e.value.sqlstate == "42P01"
    schemas = {r[0] for r in conn.execute("SELECT DISTINCT table_schema FROM information_schema.tables")}
    assert "pga" in schemas and "pgb" not in schemas
    assert not conn.closed
    assert conn.execute("SELECT count(*) FROM m").fetchone()[0] == 1
    conn.close()


def test_the_right_to_run_queries_at_all_follows_grants(secure, hourglass_bin):
    """A write-only user may not run queries (not even SELECT 1); a read grant given while its
    session is open lets that session query, and taking it away fences it again."""
    creds = add_user(hourglass_bin, secure.data_dir, "ingest", ("pgb", "write"))
    conn = pg_connect(secure, "ingest", creds["password"], "pga")
    with pytest.raises(psycopg.Error) as e:
        conn.execute("SELECT 1")
    assert e.value.sqlstate == "42501", e.value
    r = user_cmd(hourglass_bin, secure.data_dir, "grant", "ingest",
                 "--database", "pga", "--permission", "read")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + PROPAGATION_S
    while True:
        try:
            assert conn.execute("SELECT count(*) FROM m").fetchone()[0] == 1
            break
        except psycopg.Error as e:
            assert e.sqlstate in ("42501", "42P01"), e
            assert time.monotonic() < deadline, "the read grant did not reach the open session"
            time.sleep(0.1)
    _set_grants(secure.data_dir, "ingest", [("pgb", "write")])
    err = fails_within(conn, "SELECT 1")
    assert err.sqlstate == "42501", err
    assert not conn.closed
    conn.close()
