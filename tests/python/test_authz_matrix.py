"""The authorization matrix (security: "keep them closed"): every interface x operation x
principal x own/foreign database of `serve --require-auth`, generated from ONE table of expected
outcomes (`authz_matrix.py`: the principals, the outcome classes and how each interface shows
them, the operations and the table). One server for the module; one pytest case per cell, named
`<operation>-<target>-<principal>`; real clients (requests, boto3, psycopg).

Completeness: every HTTP route registered in the Rust sources (`.route("...`, `.nest("...` in
crates/*/src) and every Timestream operation the server dispatches (the `match operation` arms
of hourglass-timestream's lib.rs, or a `pub const OPERATIONS: &[&str]` when there is one) must
have a row, and every row's route and operation must still exist.

At the end the matrix size (cells by interface) and the cells that failed are printed."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections import Counter
from pathlib import Path

import boto3
import botocore
import psycopg
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

import authz_matrix as M
from sectest import add_user, signed_request

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60,
                  connect_timeout=10)
REGION = "us-east-1"
ACCOUNT = "000000000000"

# Results of the cells run, for the summary at the end of the module.
RESULTS: dict[str, tuple[str, str, str]] = {}  # cell id -> (expected, observed, detail)


# ---------------------------------------------------------------------------------------------
# Classification of answers


def classify_http(r: requests.Response) -> tuple[str, str]:
    detail = f"HTTP {r.status_code} {r.text[:300]}"
    if 200 <= r.status_code < 300:
        return M.OK, detail
    if r.status_code == 401:
        return M.UNAUTH, detail
    if r.status_code == 403:
        return M.DENIED, detail
    if r.status_code == 404:
        return M.NOT_FOUND, detail
    if r.status_code == 409:
        return "conflict", detail
    if 400 <= r.status_code < 500:
        try:
            body = r.json()
            message = str(body.get("error") or body.get("message") or body.get("Message") or "")
        except ValueError:
            message = r.text
        if re.search(r"not found|does not exist", message, re.I):
            return M.NOT_FOUND, detail
        return M.INVALID, detail
    return "error", detail


TS_UNAUTH = {"MissingAuthenticationTokenException", "UnrecognizedClientException",
             "InvalidSignatureException", "IncompleteSignatureException"}
# What a query answers for a table or database it cannot see.
QUERY_NOT_FOUND = re.compile(r"\b(table|database|schema)\b.*\b(not found|does not exist)\b", re.I)


def classify_ts(e: ClientError) -> tuple[str, str]:
    code = e.response.get("Error", {}).get("Code", "")
    code = code.rsplit("#", 1)[-1]
    message = e.response.get("Error", {}).get("Message", "")
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return classify_ts_error(code, message, status)


def classify_ts_error(code: str, message: str, status: int | None) -> tuple[str, str]:
    detail = f"{code} {status}: {message[:300]}"
    if code in TS_UNAUTH:
        return M.UNAUTH, detail
    if code == "AccessDeniedException":
        return M.DENIED, detail
    if code in ("ResourceNotFoundException", "UnknownOperationException"):
        return M.NOT_FOUND, detail
    if code == "ValidationException":
        return (M.NOT_FOUND if QUERY_NOT_FOUND.search(message) else M.INVALID), detail
    if code == "ConflictException":
        return "conflict", detail
    if status is not None and 400 <= status < 500 and code not in ("ThrottlingException",):
        return M.INVALID, detail
    return "error", detail


PG_UNAUTH = re.compile(r"password authentication failed|no password supplied|"
                       r"authentication failed", re.I)


def classify_pg(e: psycopg.Error) -> tuple[str, str]:
    state = getattr(e, "sqlstate", None)
    message = str(e).strip().replace("\n", " ")
    detail = f"SQLSTATE {state}: {message[:300]}"
    if state in ("28P01", "28000") or (state is None and PG_UNAUTH.search(message)):
        return M.UNAUTH, detail
    if state == "42501" or (state is None and re.search(r"permission denied", message, re.I)):
        return M.DENIED, detail
    if state in ("42P01", "3F000", "3D000") or (
            state is None and re.search(r"does not exist|not found", message, re.I)):
        return M.NOT_FOUND, detail
    if state is None or state[:2] in ("08", "XX", "57", "53", "58"):
        return "error", detail
    return M.INVALID, detail


# ---------------------------------------------------------------------------------------------
# Clients


class Client:
    """One principal's clients of every interface (see authz_matrix's module docstring)."""

    def __init__(self, env: "Env", name: str, creds: dict | None):
        self.env, self.name, self.creds = env, name, creds
        self.url = env.url
        self.session = requests.Session()
        self._tsw = self._tsq = None

    # HTTP
    def _headers(self) -> dict:
        if self.name == "anon":
            return {}
        if self.name == "bad":
            return {"Authorization": f"Token hgt_{secrets.token_hex(16)}"}
        return {"Authorization": f"Token {self.creds['token']}"}

    def userpass(self) -> dict:
        """InfluxDB 1.x `u`/`p` query parameters."""
        if self.name == "anon":
            return {}
        if self.name == "bad":
            return {"u": "read", "p": f"hgt_{secrets.token_hex(16)}"}
        return {"u": self.name, "p": self.creds["token"]}

    def _request(self, method, path, auth_header=True, **kw):
        headers = {**(self._headers() if auth_header else {}), **kw.pop("headers", {})}
        return self.session.request(method, self.url + path, headers=headers, timeout=TIMEOUT_S,
                                    **kw)

    def get(self, path, **kw):
        return self._request("GET", path, **kw)

    def post(self, path, **kw):
        return self._request("POST", path, **kw)

    def head(self, path, **kw):
        return self._request("HEAD", path, **kw)

    @staticmethod
    def check(r: requests.Response) -> requests.Response:
        kind, detail = classify_http(r)
        if kind != M.OK:
            raise M.Outcome(kind, detail)
        return r

    # Timestream
    def _keys(self):
        if self.name == "bad":
            return self.env.creds["read"]["access_key_id"], "wrong" + secrets.token_hex(8)
        return self.creds["access_key_id"], self.creds["secret_access_key"]

    def _boto(self, service):
        if self.name == "anon":
            return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                                config=NO_RETRY.merge(Config(signature_version=botocore.UNSIGNED)))
        key, secret = self._keys()
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret, config=NO_RETRY)

    @property
    def tsw(self):
        if self._tsw is None:
            self._tsw = self._boto("timestream-write")
        return self._tsw

    @property
    def tsq(self):
        if self._tsq is None:
            self._tsq = self._boto("timestream-query")
        return self._tsq

    def ts_raw(self, operation: str, body: dict) -> requests.Response:
        """A raw POST / of `operation` (signed as this principal); a Timestream error answer
        raises Outcome, classified as boto3's errors are."""
        data = json.dumps(body).encode()
        if self.name == "anon":
            headers = {"Content-Type": "application/x-amz-json-1.0",
                       "X-Amz-Target": f"Timestream_20181101.{operation}"}
        else:
            key, secret = self._keys()
            headers, data = signed_request(self.url, operation, data, key, secret)
        r = self.session.post(self.url + "/", data=data, headers=headers, timeout=TIMEOUT_S)
        if r.status_code != 200:
            try:
                body = r.json()
            except ValueError:
                body = {}
            code = str(body.get("__type", "")).rsplit("#", 1)[-1]
            kind, detail = classify_ts_error(code, str(body.get("Message", r.text)),
                                             r.status_code)
            raise M.Outcome(kind, detail)
        return r

    # PostgreSQL
    def pg(self, dbname: str):
        host, port = self.env.pg_addr
        user = "read" if self.name in ("anon", "bad") else self.name
        kw = dict(host=host, port=port, user=user, dbname=dbname or "postgres",
                  connect_timeout=10, autocommit=True, sslmode="disable", gssencmode="disable",
                  passfile=os.devnull)
        if self.name == "bad":
            kw["password"] = "wrong-" + secrets.token_hex(8)
        elif self.name != "anon":
            kw["password"] = self.creds["password"]
        return psycopg.connect(**kw)


class Env:
    """The server, the matrix's users, and the fixture's own operator (`setup`)."""

    def __init__(self, srv, creds: dict):
        self.srv, self.url, self.pg_addr, self.creds = srv, srv.url, srv.pg_addr, creds
        self.clients: dict[str, Client] = {}
        self.setup = Client(self, "setup", creds["setup"])

    def client(self, principal: str) -> Client:
        if principal not in self.clients:
            self.clients[principal] = Client(self, principal, self.creds.get(principal))
        return self.clients[principal]

    def arn(self, db: str, table: str | None = None) -> str:
        arn = f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/{db}"
        return f"{arn}/table/{table}" if table else arn

    # What the operator sees, to check effects.
    def db_exists(self, db: str) -> bool:
        return db in {d["DatabaseName"] for d in M._paginate(self.setup.tsw.list_databases,
                                                              "Databases")}

    def table_exists(self, db: str, table: str) -> bool:
        try:
            self.setup.tsw.describe_table(DatabaseName=db, TableName=table)
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise

    def open_cursor(self, db: str):
        """A query of the operator left open (MaxRows=1): (QueryString, first answer)."""
        sql = f'SELECT * FROM "{db}"."t"'
        first = self.setup.tsq.query(QueryString=sql, MaxRows=1)
        assert "NextToken" in first, first
        return sql, first

    def close_cursor(self, query_id: str):
        try:
            self.setup.tsq.cancel_query(QueryId=query_id)
        except ClientError:
            pass


@pytest.fixture(scope="module")
def env(hourglass_bin, module_server, tmp_path_factory):
    unload_dir = tmp_path_factory.mktemp("unload")
    srv = module_server(args=["--require-auth",
                              "--unload-buckets", f"{M.UNLOAD_BUCKET}={unload_dir}"])
    d = srv.data_dir
    creds = {"setup": add_user(hourglass_bin, d, "setup", ("*", "admin"))}
    for p in M.AUTHENTICATED:
        creds[p] = add_user(hourglass_bin, d, p, *M.grants(p))
    e = Env(srv, creds)
    w = e.setup.tsw
    for db in (M.OWN, M.FOREIGN, M.THIRD):
        w.create_database(DatabaseName=db)
    for db in (M.OWN, M.FOREIGN):
        lines = "\n".join(f"t,host=h{i} v={i}i {M.now_ns() - i}" for i in range(3))
        e.setup.check(e.setup.post("/api/v3/write_lp", params={"db": db}, data=lines))
        w.create_table(DatabaseName=db, TableName="ts")
        w.write_records(DatabaseName=db, TableName="ts", Records=[
            {"Dimensions": [{"Name": "host", "Value": f"h{i}"}], "MeasureName": "cpu",
             "MeasureValue": str(i), "MeasureValueType": "DOUBLE", "Time": M.now_ms()}
            for i in range(3)])
        w.tag_resource(ResourceARN=e.arn(db), Tags=[{"Key": "fixture", "Value": "v"}])
        for p in M.PRINCIPALS:
            w.create_table(DatabaseName=db, TableName=f"dt_{p}")
    for db in M.existing_scratch_databases():
        w.create_database(DatabaseName=db)
    yield e


def summary() -> list[str]:
    """The cells run, by interface, and the ones that failed (expected vs observed)."""
    failed = {k: v for k, v in RESULTS.items() if v[0] != "pass"}
    out = [f"authorization matrix: {len(RESULTS)} of {len(M.CELLS)} cells run, "
           f"{len(failed)} failed"]
    by, bad = Counter(), Counter()
    for cell in M.CELLS:
        if cell.id in RESULTS:
            by[cell.row.op.interface] += 1
            bad[cell.row.op.interface] += cell.id in failed
    out += [f"  {iface:<15} {n:>4} cells run, {bad[iface]:>3} failed" for iface, n in by.items()]
    out += [f"  FAILED {cid}: expected {expected}, observed {observed[:220]}"
            for cid, (_, expected, observed) in failed.items()]
    return out


# ---------------------------------------------------------------------------------------------
# The cells


def observe(e: Env, cell: M.Cell) -> tuple[str, str]:
    c = e.client(cell.principal)
    try:
        cell.row.op.fn(c, cell.db)
        return M.OK, ""
    except M.Outcome as o:
        return o.kind, o.detail
    except ClientError as err:
        return classify_ts(err)
    except psycopg.Error as err:
        return classify_pg(err)


@pytest.mark.parametrize("cell", M.CELLS, ids=[c.id for c in M.CELLS])
def test_cell(env, cell):
    expected = cell.expected
    try:
        observed, detail = observe(env, cell)
    except BaseException as err:
        RESULTS[cell.id] = ("error", expected, f"{type(err).__name__}: {err}"[:300])
        raise
    good = observed in M.ACCEPTS[expected]
    RESULTS[cell.id] = ("pass" if good else "fail", expected, f"{observed} ({detail})")
    assert good, (f"{cell.row.op.interface} {cell.row.op.name} [{cell.row.op.doc}] on "
                  f"{cell.db or '-'} as {cell.principal}: expected {expected}, "
                  f"observed {observed}: {detail}")


# ---------------------------------------------------------------------------------------------
# Completeness: the table against the Rust sources

HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options", "trace", "any")


def _balanced(text: str, start: int, open_ch: str, close_ch: str) -> str:
    """The text from `start` (just after an opening bracket) to its matching closing one
    (brackets inside string and char literals do not count)."""
    depth, i = 1, start
    while i < len(text) and depth:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch == "'" and i + 2 < len(text) and text[i + 2] == "'":
            i += 2  # 'x'
        elif ch == "'" and i + 1 < len(text) and text[i + 1] == "\\":
            i = text.find("'", i + 3)  # '\n', '\u{..}'
            if i < 0:
                break
        elif ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
        i += 1
    return text[start:i - 1]


def _strip_test_modules(text: str) -> str:
    """Rust text without comment lines and `#[cfg(test)] mod ... { ... }` blocks."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
        if not m:
            return text
        body = _balanced(text, m.end(), "{", "}")
        text = text[:m.start()] + text[m.end() + len(body) + 1:]


def routes_in(text: str) -> set[tuple[str, str]]:
    """(METHOD, path) of the `.route("...", ...)` / `.nest("...", ...)` calls in Rust text (test
    modules and comments left out); a route whose methods cannot be told, and a nest, are ANY."""
    text = _strip_test_modules(text)
    out = set()
    for m in re.finditer(r'\.(route|nest|route_service|nest_service)\(\s*"([^"]*)"\s*,', text):
        kind, path = m.group(1), m.group(2)
        methods = {"ANY"}
        if kind == "route":
            handler = _balanced(text, m.start() + len(kind) + 2, "(", ")")
            found = {x.upper() for x in re.findall(
                r"(?<!\w)(" + "|".join(HTTP_METHODS) + r")\s*\(", handler)}
            methods = found or {"ANY"}
        out.update((method, path) for method in methods)
    return out


def http_routes() -> dict[tuple[str, str], str]:
    """(METHOD, path) of every route registered in crates/*/src (but tests) -> the file."""
    routes = {}
    for path in sorted((REPO_ROOT / "crates").glob("*/src/**/*.rs")):
        rel = path.relative_to(REPO_ROOT / "crates")
        if path.name == "tests.rs" or "tests" in rel.parts[2:-1]:
            continue
        for route in routes_in(path.read_text()):
            routes[route] = str(rel)
    return routes


OPERATIONS_CONST = re.compile(r"pub\s+const\s+OPERATIONS\s*:\s*&(?:'static\s+)?\[\s*&(?:'static\s+)?"
                              r"str\s*\]\s*=\s*&\[(.*?)\];", re.S)


def operations_in(text: str) -> set[str]:
    """Timestream operations in Rust text: those of a `pub const OPERATIONS: &[&str]` when there
    is one, else the string patterns of the arms of every `match operation { ... }`."""
    m = OPERATIONS_CONST.search(text)
    if m:
        return set(re.findall(r'"(\w+)"', m.group(1)))
    text = _strip_test_modules(text)
    ops: set[str] = set()
    for m in re.finditer(r"\bmatch\s+operation\s*\{", text):
        block = _balanced(text, m.end(), "{", "}")
        for arm in re.findall(r'((?:"\w+"\s*\|\s*)*"\w+")\s*=>', block):
            ops.update(re.findall(r'"(\w+)"', arm))
    return ops


def timestream_operations() -> tuple[set[str], str]:
    """The operations hourglass-timestream dispatches, and where they were read from."""
    src = REPO_ROOT / "crates/hourglass-timestream/src"
    for path in sorted(src.glob("**/*.rs")):
        text = path.read_text()
        if OPERATIONS_CONST.search(text):
            return operations_in(text), f"{path.relative_to(src)}: OPERATIONS"
    return operations_in((src / "lib.rs").read_text()), "lib.rs: the `match operation` arms"


SAMPLE_RUST = r'''
//! .route("/doc-comment", get(x)) is not a route
pub fn router() -> Router {
    Router::new()
        .route("/write", post(write::v1))
        .route(
            "/api/v3/query_sql",
            axum::routing::get(query::get).post(query::post),
        )
        .route("/ping", get(ping).head(ping))
        .route("/any", on(MethodFilter::GET, x))
        .nest("/api/v4", v4::router())
}
fn call(operation: &str) {
    let quote = '"';
    match operation {
        "CreateDatabase" => a(),
        "ListBatchLoadTasks"
        | "ResumeBatchLoadTask" => b(operation, "not a pattern", '}'),
        _ => Err(unknown(&format!("{operation}"))),
    }
}
#[cfg(test)]
mod tests {
    fn t() { Router::new().route("/test-only", get(t)); match operation { "TestOnly" => 1 } }
}
'''


def test_the_extractors_read_routes_and_operations_from_rust():
    assert routes_in(SAMPLE_RUST) == {
        ("POST", "/write"), ("GET", "/api/v3/query_sql"), ("POST", "/api/v3/query_sql"),
        ("GET", "/ping"), ("HEAD", "/ping"), ("ANY", "/any"), ("ANY", "/api/v4")}
    assert operations_in(SAMPLE_RUST) == {"CreateDatabase", "ListBatchLoadTasks",
                                          "ResumeBatchLoadTask"}
    const = 'pub const OPERATIONS: &[&str] = &[\n    "Query", // the query service\n    "X",\n];'
    assert operations_in(SAMPLE_RUST + const) == {"Query", "X"}


def test_every_route_has_a_row_and_every_row_a_route():
    routes = http_routes()
    assert len(routes) >= 10, f"route extraction found too little: {sorted(routes)}"
    covered = {r.op.route for r in M.ROWS if r.op.route}
    missing = sorted(f"{m} {p}  ({routes[(m, p)]})" for (m, p) in routes if (m, p) not in covered
                     and ("ANY", p) not in covered)
    stale = sorted(f"{m} {p}  (operation {o.name})" for o in M.OPS.values() if o.route
                   for (m, p) in [o.route]
                   if (m, p) not in routes and ("ANY", p) not in routes)
    assert not missing, "routes without a row in authz_matrix.MATRIX_TEXT:\n" + "\n".join(missing)
    assert not stale, "rows for routes that no longer exist:\n" + "\n".join(stale)


def test_every_timestream_operation_has_a_row_and_every_row_an_operation():
    ops, source = timestream_operations()
    assert len(ops) >= 25, (
        f"only {len(ops)} Timestream operations found in {source} ({sorted(ops)}): the parse is "
        "brittle; a `pub const OPERATIONS: &[&str]` in hourglass-timestream's lib.rs (tested "
        "against the dispatch) would make it robust")
    covered = {r.op.ts_op for r in M.ROWS if r.op.ts_op}
    missing = sorted(ops - covered)
    stale = sorted(covered - ops)
    assert not missing, f"Timestream operations ({source}) without a row: {missing}"
    assert not stale, f"rows for Timestream operations the server does not dispatch: {stale}"


def test_the_table_is_well_formed():
    used = {r.op.name for r in M.ROWS}
    assert not set(M.OPS) - used, f"operations without a row: {sorted(set(M.OPS) - used)}"
    ids = [c.id for c in M.CELLS]
    assert len(ids) == len(set(ids)), "duplicate cells"
    for r in M.ROWS:
        assert r.target in ("own", "foreign", "none") or r.op.scratch, (r.op.name, r.target)
        if r.target == "none":
            assert not r.op.scratch
        # Authentication comes first everywhere but on the open routes.
        if r.op.interface not in M.OPEN_INTERFACES:
            assert r.expected["anon"] == r.expected["bad"] == M.UNAUTH, r
        # A * grant is never weaker than the same grant on the database.
        if r.target == "own":
            for p in ("read", "write", "admin"):
                if r.expected[p] == M.OK:
                    assert r.expected[f"star_{p}"] == M.OK, (r.op.name, p)


def test_zz_matrix_size(capsys):
    """Prints the matrix size (and, after the cells ran, which failed): runs last."""
    sizes = M.size_by_interface()
    with capsys.disabled():
        print(f"\nauthorization matrix size: {len(M.CELLS)} cells ({len(M.ROWS)} rows x "
              f"{len(M.PRINCIPALS)} principals): "
              + ", ".join(f"{k} {v}" for k, v in sizes.items()))
        if RESULTS:
            print("\n".join(summary()))
    assert sum(sizes.values()) == len(M.CELLS)
