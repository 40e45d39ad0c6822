"""The authorization matrix of `serve --require-auth`: ONE table of expected outcomes, every
interface x operation x principal x target database, run by `test_authz_matrix.py` (one pytest
case per cell; a route or Timestream operation of the Rust sources without a row fails there).

Principals (the columns of MATRIX, in this order):

| column     | credentials                                   | grants                           |
|------------|-----------------------------------------------|----------------------------------|
| anon       | none at all                                   | -                                |
| bad        | a bad credential (see below)                  | -                                |
| none       | valid                                         | read on db_third only            |
| read       | valid                                         | read on db_own                   |
| write      | valid                                         | write on db_own                  |
| admin      | valid                                         | admin on db_own                  |
| star_read  | valid                                         | read on *                        |
| star_write | valid                                         | write on *                       |
| star_admin | valid                                         | admin on * (an operator)         |

A bad credential is: HTTP `Authorization: Token <random>` (v1 `u`/`p`: the `read` user with a
wrong token); Timestream: the `read` user's access key id signed with a wrong secret; PostgreSQL:
the `read` user with a wrong password. "anon" sends no Authorization header (Timestream:
botocore's UNSIGNED), and PostgreSQL logs in as `read` without a password.

Targets: `own` = db_own, `foreign` = db_foreign (both hold table `t` written by line protocol and
table `ts` written by WriteRecords), `none` = no database. Operations that create or delete a
database (`scratch` ops) get a database of their own per cell instead: `own` is
`<op>_o_<principal>`, on which read/write/admin hold their permission too (so "admin on that
name" is exercised), `foreign` is `<op>_f_<principal>` on which nobody but `*` holds a grant; any
other target (`system`, `information_schema`, `pg_catalog`) is that literal name.

Outcomes, and how each interface shows them (classification in test_authz_matrix.py):

| token  | outcome         | HTTP                | Timestream                                 | PostgreSQL              |
|--------|-----------------|---------------------|--------------------------------------------|-------------------------|
| ok     | ok              | 2xx (and the effect checked) | 200                               | no error                |
| den    | denied          | 403                 | AccessDeniedException                      | 42501                   |
| unauth | unauthenticated | 401                 | MissingAuthenticationToken, UnrecognizedClient, InvalidSignature, IncompleteSignature | 28P01 / 28000 / libpq "no password supplied" |
| nf     | not_found       | 404, or 400 "... not found" | ResourceNotFound, UnknownOperation, ValidationException "table/database ... not found / does not exist" (what a query answers for an invisible table) | 42P01, 3F000, 3D000 |
| inv    | invalid         | other 4xx           | ValidationException (other), other 4xx     | other SQLSTATE          |
| ref    | refused         | any of den, nf, inv: must not succeed, whichever refusal |     |                         |

A visibility operation (List*, SHOW DATABASES, information_schema, pg_namespace ...) is `ok` when
the target is listed and `nf` when it is not.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Callable

PRINCIPALS = ("anon", "bad", "none", "read", "write", "admin", "star_read", "star_write",
              "star_admin")
AUTHENTICATED = PRINCIPALS[2:]

OWN, FOREIGN, THIRD = "db_own", "db_foreign", "db_third"

# The grants of the matrix's users (scratch databases are added by `grants`).
BASE_GRANTS = {
    "none": [(THIRD, "read")],
    "read": [(OWN, "read")],
    "write": [(OWN, "write")],
    "admin": [(OWN, "admin")],
    "star_read": [("*", "read")],
    "star_write": [("*", "write")],
    "star_admin": [("*", "admin")],
}

OK, DENIED, UNAUTH, NOT_FOUND, INVALID = "ok", "denied", "unauthenticated", "not_found", "invalid"
REFUSED = "refused"
TOKENS = {"ok": OK, "den": DENIED, "unauth": UNAUTH, "nf": NOT_FOUND, "inv": INVALID,
          "ref": REFUSED}
# What each expected outcome accepts.
ACCEPTS = {OK: {OK}, DENIED: {DENIED}, UNAUTH: {UNAUTH}, NOT_FOUND: {NOT_FOUND},
           INVALID: {INVALID}, REFUSED: {DENIED, NOT_FOUND, INVALID}}


class Outcome(Exception):
    """Raised by an operation whose answer is not `ok` (kind: one of the outcomes above, or
    `conflict` / `error` that no cell expects)."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def listed(names, wanted, what="") -> None:
    """Visibility: `ok` when `wanted` is among `names`, else `not_found`."""
    names = set(names)
    if wanted not in names:
        raise Outcome(NOT_FOUND, f"{wanted!r} not listed{what} (listed: {sorted(map(str, names))[:12]})")


# ---------------------------------------------------------------------------------------------
# Operations: each is `fn(c, db)`; `c` is the principal's client (test_authz_matrix.Client:
# c.name, c.env, c.get/post/head -> requests.Response, c.check(response) raising Outcome for a
# non-2xx answer, c.tsw/c.tsq boto3 clients, c.ts_raw(operation, body), c.pg(dbname)), `db` the
# target database. An operation returns normally when it succeeded (after checking its effect)
# and raises Outcome / botocore ClientError / psycopg.Error otherwise.


@dataclass(frozen=True)
class Op:
    name: str
    interface: str
    fn: Callable
    # The HTTP route it uses: (method, path); Timestream operations use ("POST", "/").
    route: tuple[str, str] | None
    # The Timestream operation (X-Amz-Target suffix) it performs.
    ts_op: str | None
    # "new": the target is a per-cell database that does not exist; "existing": one that exists
    # (made by the fixture); None: targets are db_own / db_foreign.
    scratch: str | None
    doc: str


OPS: dict[str, Op] = {}
TS = ("POST", "/")


def op(interface, route=None, ts_op=None, scratch=None, name=None):
    def register(fn):
        n = name or fn.__name__
        assert n not in OPS, n
        OPS[n] = Op(n, interface, fn, route, ts_op, scratch, (fn.__doc__ or "").strip())
        return fn
    return register


def now_ns() -> int:
    return time.time_ns()


def now_ms() -> str:
    return str(int(time.time() * 1000))


# -- HTTP SQL (/api/v3/query_sql) ---------------------------------------------------------------

def _sql(c, db, q, method="GET"):
    if method == "GET":
        r = c.get("/api/v3/query_sql", params={"db": db, "q": q, "format": "json"})
    else:
        r = c.post("/api/v3/query_sql", json={"db": db, "q": q, "format": "json"})
    c.check(r)
    return r.json()


def _count_at_least(rows, n=3):
    assert rows and rows[0]["n"] >= n, f"expected at least {n} rows: {rows}"


@op("HTTP SQL", route=("GET", "/api/v3/query_sql"))
def sql_get_count(c, db):
    """GET ?db=DB&q=SELECT count(*) FROM t (the default database's table)."""
    _count_at_least(_sql(c, db, "SELECT count(*) AS n FROM t"))


@op("HTTP SQL", route=("POST", "/api/v3/query_sql"))
def sql_post_qualified(c, db):
    """POST {"db": "", "q": "SELECT count(*) FROM DB.t"}."""
    _count_at_least(_sql(c, "", f"SELECT count(*) AS n FROM {db}.t", method="POST"))


# The bucket the matrix's server maps to a directory (`--unload-buckets`).
UNLOAD_BUCKET = "authz-unload"


def _unload_sql(c, db, interface):
    return (f"UNLOAD (SELECT * FROM {db}.t) TO 's3://{UNLOAD_BUCKET}/{interface}/{c.name}/{db}' "
            "WITH (format = 'CSV')")


@op("HTTP SQL", route=("POST", "/api/v3/query_sql"))
def sql_unload(c, db):
    """UNLOAD (SELECT * FROM DB.t) TO a mapped bucket: what the SELECT needs (read), nothing
    more (the destination is outside Hourglass)."""
    rows = _sql(c, "", _unload_sql(c, db, "http"), method="POST")
    assert rows[0]["rows"] >= 3, rows


@op("HTTP SQL", route=("POST", "/api/v3/query_sql"))
def sql_delete(c, db):
    """DELETE FROM DB.t WHERE host = 'no-such-host': needs write on DB (checked before the
    table is looked at); deletes nothing, so the other cells keep their rows."""
    rows = _sql(c, "", f"DELETE FROM {db}.t WHERE host = 'no-such-host'", method="POST")
    assert rows == [{"rows_deleted": 0}], rows


@op("HTTP SQL", route=("GET", "/api/v3/query_sql"))
def sql_select_1(c, db):
    """SELECT 1 (reads nothing: still a query, so write-only keys are denied)."""
    assert _sql(c, "", "SELECT 1 AS one") == [{"one": 1}]


@op("HTTP SQL", route=("GET", "/api/v3/query_sql"))
def sql_schemata(c, db):
    """information_schema.schemata lists DB."""
    rows = _sql(c, "", "SELECT schema_name FROM information_schema.schemata")
    listed((r["schema_name"] for r in rows), db)


@op("HTTP SQL", route=("POST", "/api/v3/query_sql"))
def sql_information_schema_tables(c, db):
    """information_schema.tables lists DB.t."""
    rows = _sql(c, "", "SELECT table_schema, table_name FROM information_schema.tables",
                method="POST")
    listed(((r["table_schema"], r["table_name"]) for r in rows), (db, "t"))


@op("HTTP SQL", route=("GET", "/api/v3/query_sql"))
def sql_audit_log(c, db):
    """system.audit_log: the real audit log (has the `user add` events) for operators."""
    rows = _sql(c, "", "SELECT time, user, peer, interface, action, target, outcome, detail "
                       "FROM system.audit_log WHERE interface = 'cli' AND action = 'user add'")
    assert len(rows) >= 8, f"system.audit_log is not the audit log: {rows[:3]}"


@op("HTTP SQL", route=("GET", "/api/v3/query_sql"))
def sql_scheduled_query_runs(c, db):
    """system.scheduled_query_runs (the log of scheduled-query runs): for operators, as the
    audit log."""
    _sql(c, "", "SELECT arn, name, invocation_time, trigger, status, records_ingested "
                "FROM system.scheduled_query_runs")


@op("HTTP SQL", route=("GET", "/api/v3/query_sql"))
def sql_alerts_history(c, db):
    """system.alerts (the history of alert rules' instances): for operators, as the audit
    log."""
    _sql(c, "", "SELECT time, rule, kind, labels, value FROM system.alerts")


@op("HTTP SQL", route=("POST", "/api/v3/query_sql"))
def sql_ddl(c, db):
    """CREATE TABLE DB.x AS SELECT 1 (authenticated HTTP SQL runs queries only)."""
    _sql(c, db, f"CREATE TABLE {db}.ddl_{c.name} AS SELECT 1 AS one", method="POST")


# -- Line protocol (three endpoints) -------------------------------------------------------------

LP_ENDPOINTS = {
    "lp_v1": ("/write", "db"),
    "lp_v2": ("/api/v2/write", "bucket"),
    "lp_v3": ("/api/v3/write_lp", "db"),
}


def _lp_write(c, endpoint, db, body, userpass=False):
    path, param = LP_ENDPOINTS[endpoint]
    params = {param: db}
    if endpoint == "lp_v2":
        params["org"] = "hourglass"
    if userpass:
        r = c.post(path, params={**params, **c.userpass()}, data=body, auth_header=False)
    else:
        r = c.post(path, params=params, data=body)
    c.check(r)


def _lp_ops(endpoint, userpass=False):
    prefix = endpoint + ("_userpass" if userpass else "")
    path = LP_ENDPOINTS[endpoint][0]
    how = "(v1 u/p query parameters) " if userpass else ""

    def existing_table(c, db):
        _lp_write(c, endpoint, db, f"t,host={c.name} v=1i {now_ns()}", userpass)

    def new_table(c, db):
        table = f"nt_{prefix}_{c.name}"
        try:
            _lp_write(c, endpoint, db, f"{table},host={c.name} v=1i {now_ns()}", userpass)
        except Outcome:
            assert not c.env.table_exists(db, table), f"refused, but {db}.{table} was created"
            raise
        assert c.env.table_exists(db, table), f"{db}.{table} not created"

    def new_database(c, db):
        before = c.env.db_exists(db)
        try:
            _lp_write(c, endpoint, db, f"t,host={c.name} v=1i {now_ns()}", userpass)
        except Outcome:
            assert c.env.db_exists(db) == before, f"refused, but database {db} was created"
            raise
        assert c.env.db_exists(db), f"database {db} not created"

    existing_table.__doc__ = f"POST {path} {how}to table t of DB."
    new_table.__doc__ = f"POST {path} {how}to a new table of DB (a write grant creates it)."
    new_database.__doc__ = (f"POST {path} {how}to a database that does not exist (creating it "
                            "needs admin on its name or on *).")
    op("line protocol", route=("POST", path), name=f"{prefix}_existing_table")(existing_table)
    op("line protocol", route=("POST", path), name=f"{prefix}_new_table")(new_table)
    op("line protocol", route=("POST", path), scratch="new",
       name=f"{prefix}_new_database")(new_database)


for _ep in LP_ENDPOINTS:
    _lp_ops(_ep)
_lp_ops("lp_v1", userpass=True)


# -- InfluxQL (/query) and Prometheus remote write/read -------------------------------------------

def _influxql(c, db, q, method="GET"):
    """One InfluxQL statement; an error InfluxDB answers inside a 200 is classified by its text."""
    if method == "GET":
        r = c.get("/query", params={"db": db, "q": q})
    else:
        r = c.post("/query", data={"db": db, "q": q})
    c.check(r)
    result = r.json()["results"][0]
    error = result.get("error")
    if error:
        kind = NOT_FOUND if "not found" in error else DENIED if (
            "not authorized" in error or "permission" in error) else INVALID
        raise Outcome(kind, error)
    return result


@op("InfluxQL", route=("GET", "/query"))
def influxql_select_count(c, db):
    """GET /query?db=DB&q=SELECT count(v) FROM t: reads DB like an SQL query."""
    series = _influxql(c, db, "SELECT count(v) FROM t").get("series") or []
    assert series and series[0]["values"][0][1] >= 3, series


@op("InfluxQL", route=("POST", "/query"))
def influxql_show_databases(c, db):
    """POST /query q=SHOW DATABASES lists DB (visibility)."""
    series = _influxql(c, "", "SHOW DATABASES", method="POST").get("series") or [{"values": []}]
    listed((v[0] for v in series[0].get("values", [])), db)


def _snappy_literals(data: bytes) -> bytes:
    """A snappy block of literals only (every decoder reads it)."""
    n, out = len(data), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            break
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        out += bytes([61 << 2]) + (len(chunk) - 1).to_bytes(2, "little") + chunk
    return bytes(out)


def _pb(tag: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([tag << 3 | 2, len(payload)]) + payload


def _prom(c, path, db, message: bytes):
    r = c.post(path, params={"db": db}, data=_snappy_literals(message),
               headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"})
    c.check(r)
    return r


@op("Prometheus", route=("POST", "/api/v1/prom/write"))
def prom_remote_write(c, db):
    """POST /api/v1/prom/write?db=DB: one sample of metric authz_prom (a table of DB)."""
    import struct
    labels = _pb(1, _pb(1, b"__name__") + _pb(2, b"authz_prom")) + _pb(1, _pb(1, b"who") + _pb(2, c.name.encode()))
    t = now_ns() // 1_000_000
    stamp = bytearray()
    while True:
        b = t & 0x7F
        t >>= 7
        stamp.append(b | 0x80 if t else b)
        if not t:
            break
    sample = bytes([1 << 3 | 1]) + struct.pack("<d", 1.5) + bytes([2 << 3]) + bytes(stamp)
    _prom(c, "/api/v1/prom/write", db, _pb(1, labels + _pb(2, sample)))


@op("Prometheus", route=("POST", "/api/v1/prom/read"))
def prom_remote_read(c, db):
    """POST /api/v1/prom/read?db=DB: a query over metric t's table (matcher __name__="t")."""
    matcher = bytes([1 << 3, 0]) + _pb(2, b"__name__") + _pb(3, b"t")
    query = bytes([1 << 3, 0]) + bytes([2 << 3]) + b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f" + _pb(3, matcher)
    r = _prom(c, "/api/v1/prom/read", db, _pb(1, query))
    assert r.headers.get("Content-Encoding") == "snappy", r.headers


# -- Timestream API (POST / with X-Amz-Target) --------------------------------------------------

def _record(c):
    return [{"Dimensions": [{"Name": "host", "Value": c.name}], "MeasureName": "cpu",
             "MeasureValue": "1.5", "MeasureValueType": "DOUBLE", "Time": now_ms()}]


def _paginate(call, key, **kw):
    out, token = [], None
    while True:
        page = call(**kw, **({"NextToken": token} if token else {}))
        out += page[key]
        token = page.get("NextToken")
        if not token:
            return out


@op("Timestream", route=TS, ts_op="CreateDatabase", scratch="new")
def ts_create_database(c, db):
    """CreateDatabase DB (a database that does not exist yet)."""
    before = c.env.db_exists(db)
    try:
        c.tsw.create_database(DatabaseName=db)
    except Exception:
        assert c.env.db_exists(db) == before, f"refused, but database {db} was created"
        raise
    assert c.env.db_exists(db)


@op("Timestream", route=TS, ts_op="DescribeDatabase")
def ts_describe_database(c, db):
    """DescribeDatabase DB."""
    assert c.tsw.describe_database(DatabaseName=db)["Database"]["DatabaseName"] == db


@op("Timestream", route=TS, ts_op="ListDatabases")
def ts_list_databases(c, db):
    """ListDatabases (every page) lists DB."""
    listed((d["DatabaseName"] for d in _paginate(c.tsw.list_databases, "Databases")), db)


@op("Timestream", route=TS, ts_op="UpdateDatabase")
def ts_update_database(c, db):
    """UpdateDatabase DB KmsKeyId."""
    c.tsw.update_database(DatabaseName=db, KmsKeyId=f"alias/{c.name}")


@op("Timestream", route=TS, ts_op="DeleteDatabase", scratch="existing")
def ts_delete_database(c, db):
    """DeleteDatabase DB (an empty database made for the cell)."""
    try:
        c.tsw.delete_database(DatabaseName=db)
    except Exception:
        assert c.env.db_exists(db), f"refused, but database {db} was deleted"
        raise
    assert not c.env.db_exists(db), f"database {db} still exists"


@op("Timestream", route=TS, ts_op="CreateTable")
def ts_create_table(c, db):
    """CreateTable DB.ct_<principal>."""
    table = f"ct_{c.name}"
    try:
        c.tsw.create_table(DatabaseName=db, TableName=table)
    except Exception:
        assert not c.env.table_exists(db, table), f"refused, but {db}.{table} was created"
        raise
    assert c.env.table_exists(db, table)


@op("Timestream", route=TS, ts_op="DescribeTable")
def ts_describe_table(c, db):
    """DescribeTable DB.ts."""
    assert c.tsw.describe_table(DatabaseName=db, TableName="ts")["Table"]["TableName"] == "ts"


@op("Timestream", route=TS, ts_op="ListTables")
def ts_list_tables(c, db):
    """ListTables DatabaseName=DB lists ts."""
    tables = _paginate(c.tsw.list_tables, "Tables", DatabaseName=db)
    listed((t["TableName"] for t in tables), "ts", f" in {db}")


@op("Timestream", route=TS, ts_op="ListTables")
def ts_list_tables_all(c, db):
    """ListTables without a database lists DB.ts."""
    tables = _paginate(c.tsw.list_tables, "Tables")
    listed(((t["DatabaseName"], t["TableName"]) for t in tables), (db, "ts"))


@op("Timestream", route=TS, ts_op="UpdateTable")
def ts_update_table(c, db):
    """UpdateTable DB.ts MagneticStoreWriteProperties."""
    c.tsw.update_table(DatabaseName=db, TableName="ts",
                       MagneticStoreWriteProperties={"EnableMagneticStoreWrites": True})


@op("Timestream", route=TS, ts_op="DeleteTable")
def ts_delete_table(c, db):
    """DeleteTable DB.dt_<principal> (a table made for the cell)."""
    table = f"dt_{c.name}"
    try:
        c.tsw.delete_table(DatabaseName=db, TableName=table)
    except Exception:
        assert c.env.table_exists(db, table), f"refused, but {db}.{table} was deleted"
        raise
    assert not c.env.table_exists(db, table)


@op("Timestream", route=TS, ts_op="WriteRecords")
def ts_write_records(c, db):
    """WriteRecords to DB.ts."""
    out = c.tsw.write_records(DatabaseName=db, TableName="ts", Records=_record(c))
    assert out["RecordsIngested"]["Total"] == 1, out


@op("Timestream", route=TS, ts_op="TagResource")
def ts_tag_resource(c, db):
    """TagResource on DB's ARN."""
    c.tsw.tag_resource(ResourceARN=c.env.arn(db), Tags=[{"Key": f"k_{c.name}", "Value": "v"}])


@op("Timestream", route=TS, ts_op="UntagResource")
def ts_untag_resource(c, db):
    """UntagResource on DB's ARN."""
    c.tsw.untag_resource(ResourceARN=c.env.arn(db), TagKeys=["fixture"])


@op("Timestream", route=TS, ts_op="ListTagsForResource")
def ts_list_tags_for_resource(c, db):
    """ListTagsForResource on DB.ts's ARN."""
    c.tsw.list_tags_for_resource(ResourceARN=c.env.arn(db, "ts"))


@op("Timestream", route=TS, ts_op="DescribeEndpoints")
def ts_describe_endpoints(c, db):
    """DescribeEndpoints (today: any valid signature)."""
    assert c.tsw.describe_endpoints()["Endpoints"][0]["Address"]


def _ts_rows(answer):
    return [[d.get("ScalarValue") for d in r["Data"]] for r in answer["Rows"]]


@op("Timestream", route=TS, ts_op="Query")
def ts_query(c, db):
    """Query SELECT count(*) FROM "DB"."t"."""
    rows = _ts_rows(c.tsq.query(QueryString=f'SELECT count(*) FROM "{db}"."t"'))
    assert int(rows[0][0]) >= 3, rows


@op("Timestream", route=TS, ts_op="Query")
def ts_unload(c, db):
    """Query UNLOAD (SELECT * FROM "DB"."t") TO a mapped bucket (read, as the SELECT)."""
    sql = (f'UNLOAD (SELECT * FROM "{db}"."t") TO '
           f"'s3://{UNLOAD_BUCKET}/ts/{c.name}/{db}' WITH (format = 'CSV')")
    rows = _ts_rows(c.tsq.query(QueryString=sql))
    assert int(rows[0][0]) >= 3, rows


@op("Timestream", route=TS, ts_op="Query")
def ts_query_select_1(c, db):
    """Query SELECT 1 (a write-only key is denied)."""
    assert _ts_rows(c.tsq.query(QueryString="SELECT 1")) == [["1"]]


@op("Timestream", route=TS, ts_op="Query")
def ts_query_show_databases(c, db):
    """Query SHOW DATABASES lists DB."""
    rows = _ts_rows(c.tsq.query(QueryString="SHOW DATABASES"))
    listed((r[0] for r in rows), db)


@op("Timestream", route=TS, ts_op="Query")
def ts_query_next_token_own(c, db):
    """Query with MaxRows=1, then the next page with its own NextToken."""
    sql = f'SELECT * FROM "{db}"."t"'
    first = c.tsq.query(QueryString=sql, MaxRows=1)
    assert "NextToken" in first, first
    second = c.tsq.query(QueryString=sql, NextToken=first["NextToken"], MaxRows=1)
    assert len(second["Rows"]) == 1, second


@op("Timestream", route=TS, ts_op="Query")
def ts_query_next_token_of_another_user(c, db):
    """Query with the NextToken of a cursor another user (the fixture's operator) opened on DB.t:
    answered as an invalid token."""
    sql, first = c.env.open_cursor(db)
    try:
        c.tsq.query(QueryString=sql, NextToken=first["NextToken"], MaxRows=1)
    finally:
        c.env.close_cursor(first["QueryId"])


@op("Timestream", route=TS, ts_op="CancelQuery")
def ts_cancel_query_own(c, db):
    """CancelQuery of the caller's own open query on DB.t."""
    first = c.tsq.query(QueryString=f'SELECT * FROM "{db}"."t"', MaxRows=1)
    answer = c.tsq.cancel_query(QueryId=first["QueryId"])
    assert answer["CancellationMessage"] == "Query cancellation has been initiated.", answer


@op("Timestream", route=TS, ts_op="CancelQuery")
def ts_cancel_query_of_another_user(c, db):
    """CancelQuery of a query another user (the fixture's operator) opened on DB.t: only admins
    of DB and operators may; anyone else gets the answer of an unknown query id."""
    _, first = c.env.open_cursor(db)
    try:
        answer = c.tsq.cancel_query(QueryId=first["QueryId"])
        assert answer["CancellationMessage"] == "Query cancellation has been initiated.", answer
    finally:
        c.env.close_cursor(first["QueryId"])


@op("Timestream", route=TS, ts_op="PrepareQuery")
def ts_prepare_query(c, db):
    """PrepareQuery SELECT * FROM "DB"."t" ValidateOnly."""
    out = c.tsq.prepare_query(QueryString=f'SELECT * FROM "{db}"."t"', ValidateOnly=True)
    assert out["Columns"], out


@op("Timestream", route=TS, ts_op="CreateBatchLoadTask")
def ts_create_batch_load_task(c, db):
    """CreateBatchLoadTask into DB.ts: write on DB. The matrix's server has no S3, so an
    authorized request gets past the grant check and fails on its source bucket
    (ValidationException); test_batch_load.py runs tasks against moto's S3."""
    c.tsw.create_batch_load_task(
        TargetDatabaseName=db, TargetTableName="ts",
        DataModelConfiguration={"DataModel": {
            "TimeColumn": "t", "DimensionMappings": [{"SourceColumn": "host"}],
            "MultiMeasureMappings": {"TargetMultiMeasureName": "m", "MultiMeasureAttributeMappings": [
                {"SourceColumn": "v", "MeasureValueType": "DOUBLE"}]}}},
        DataSourceConfiguration={"DataSourceS3Configuration": {"BucketName": "bucket"},
                                 "DataFormat": "CSV"},
        ReportConfiguration={"ReportS3Configuration": {"BucketName": "bucket"}})


@op("Timestream", route=TS, ts_op="DescribeBatchLoadTask")
def ts_describe_batch_load_task(c, db):
    """DescribeBatchLoadTask of an unknown task."""
    c.tsw.describe_batch_load_task(TaskId="TASK0000")


@op("Timestream", route=TS, ts_op="ListBatchLoadTasks")
def ts_list_batch_load_tasks(c, db):
    """ListBatchLoadTasks (a user sees only its own tasks; here none exist)."""
    assert c.tsw.list_batch_load_tasks()["BatchLoadTasks"] == []


@op("Timestream", route=TS, ts_op="ResumeBatchLoadTask")
def ts_resume_batch_load_task(c, db):
    """ResumeBatchLoadTask of an unknown task."""
    c.tsw.resume_batch_load_task(TaskId="TASK0000")


SCHEDULE_ROLE = "arn:aws:iam::000000000000:role/role"
SCHEDULE_TOPIC = "arn:aws:sns:us-east-1:000000000000:topic"
FIXTURE_QUERY = "sq_fixture"


def _scheduled_query(name: str, sql: str, target: dict | None = None) -> dict:
    d = dict(Name=name, QueryString=sql,
             ScheduleConfiguration={"ScheduleExpression": "rate(1 day)"},
             NotificationConfiguration={"SnsConfiguration": {"TopicArn": SCHEDULE_TOPIC}},
             ScheduledQueryExecutionRoleArn=SCHEDULE_ROLE,
             ErrorReportConfiguration={"S3Configuration": {"BucketName": "bucket"}})
    if target:
        d["TargetConfiguration"] = {"TimestreamConfiguration": target}
    return d


def fixture_scheduled_query(c) -> str:
    """The ARN of a scheduled query of the fixture's operator (`setup`: admin on *), made
    when there is none: only its owner and admins of * see it."""
    setup = c.env.setup.tsq
    for q in _paginate(setup.list_scheduled_queries, "ScheduledQueries"):
        if q["Name"] == FIXTURE_QUERY:
            return q["Arn"]
    return setup.create_scheduled_query(**_scheduled_query(FIXTURE_QUERY, "SELECT 1"))["Arn"]


@op("Timestream", route=TS, ts_op="CreateScheduledQuery")
def ts_create_scheduled_query(c, db):
    """CreateScheduledQuery reading DB.t into DB.ts: write on DB (the target) and read on DB
    (the query is planned as the caller); the owner then describes and deletes it."""
    name = f"sq_{c.name}_{db}"
    arn = c.tsq.create_scheduled_query(**_scheduled_query(
        name, f'SELECT \'h\' AS host, bin(@scheduled_runtime, 1m) AS t, count(*) AS n '
              f'FROM "{db}"."t"',
        target={"DatabaseName": db, "TableName": "ts", "TimeColumn": "t",
                "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}],
                "MultiMeasureMappings": {"TargetMultiMeasureName": "sq", "MultiMeasureAttributeMappings": [
                    {"SourceColumn": "n", "MeasureValueType": "BIGINT"}]}}))["Arn"]
    assert c.tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]["Name"] == name
    c.tsq.delete_scheduled_query(ScheduledQueryArn=arn)


@op("Timestream", route=TS, ts_op="DeleteScheduledQuery")
def ts_delete_scheduled_query(c, db):
    """DeleteScheduledQuery of the operator's scheduled query (owner or admin of *; others
    do not see it: ResourceNotFound). Made again for the rows after."""
    c.tsq.delete_scheduled_query(ScheduledQueryArn=fixture_scheduled_query(c))


@op("Timestream", route=TS, ts_op="DescribeScheduledQuery")
def ts_describe_scheduled_query(c, db):
    """DescribeScheduledQuery of the operator's scheduled query."""
    arn = fixture_scheduled_query(c)
    assert c.tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]["Arn"] == arn


@op("Timestream", route=TS, ts_op="ExecuteScheduledQuery")
def ts_execute_scheduled_query(c, db):
    """ExecuteScheduledQuery of the operator's scheduled query."""
    c.tsq.execute_scheduled_query(ScheduledQueryArn=fixture_scheduled_query(c),
                                  InvocationTime=datetime.datetime.now(datetime.timezone.utc))


@op("Timestream", route=TS, ts_op="ListScheduledQueries")
def ts_list_scheduled_queries(c, db):
    """ListScheduledQueries lists the operator's scheduled query."""
    fixture_scheduled_query(c)
    listed((q["Name"] for q in _paginate(c.tsq.list_scheduled_queries, "ScheduledQueries")),
           FIXTURE_QUERY)


@op("Timestream", route=TS, ts_op="UpdateScheduledQuery")
def ts_update_scheduled_query(c, db):
    """UpdateScheduledQuery of the operator's scheduled query."""
    c.tsq.update_scheduled_query(ScheduledQueryArn=fixture_scheduled_query(c), State="DISABLED")


@op("Timestream", route=TS, ts_op="DescribeAccountSettings")
def ts_describe_account_settings(c, db):
    """DescribeAccountSettings."""
    assert c.tsq.describe_account_settings()["QueryPricingModel"]


@op("Timestream", route=TS, ts_op="UpdateAccountSettings")
def ts_update_account_settings(c, db):
    """UpdateAccountSettings (nothing to update: ValidationException)."""
    c.tsq.update_account_settings(QueryPricingModel="BYTES_SCANNED")


@op("Timestream", route=TS)
def ts_unknown_operation(c, db):
    """An X-Amz-Target the server does not know (raw signed request)."""
    c.ts_raw("NoSuchOperation", {})


# -- PostgreSQL wire ------------------------------------------------------------------------------

@op("PostgreSQL")
def pg_login(c, db):
    """Log in (SCRAM-SHA-256) with dbname=DB; no statement."""
    with c.pg(db):
        pass


def _pg_rows(c, dbname, sql):
    with c.pg(dbname) as conn:
        return conn.execute(sql).fetchall()


@op("PostgreSQL")
def pg_unload(c, db):
    """dbname=DB: UNLOAD (SELECT * FROM DB.t) TO a mapped bucket (read, as the SELECT)."""
    assert _pg_rows(c, db, _unload_sql(c, db, "pg"))[0][0] >= 3


@op("PostgreSQL")
def pg_delete(c, db):
    """dbname=DB: DELETE FROM t WHERE host = 'no-such-host' (write on DB, after a login that
    needs read somewhere); answers DELETE 0."""
    with c.pg(db) as conn:
        cur = conn.execute("DELETE FROM t WHERE host = 'no-such-host'")
        assert cur.statusmessage == "DELETE 0", cur.statusmessage


@op("PostgreSQL")
def pg_select_table(c, db):
    """dbname=DB: SELECT count(*) FROM t."""
    assert _pg_rows(c, db, "SELECT count(*) FROM t")[0][0] >= 3


@op("PostgreSQL")
def pg_select_qualified(c, db):
    """dbname=postgres: SELECT count(*) FROM DB.t."""
    assert _pg_rows(c, "postgres", f"SELECT count(*) FROM {db}.t")[0][0] >= 3


@op("PostgreSQL")
def pg_select_1(c, db):
    """SELECT 1 (a write-only user is denied)."""
    assert _pg_rows(c, "postgres", "SELECT 1") == [(1,)]


@op("PostgreSQL")
def pg_namespace(c, db):
    """pg_catalog.pg_namespace lists DB."""
    rows = _pg_rows(c, "postgres", "SELECT nspname FROM pg_catalog.pg_namespace")
    listed((r[0] for r in rows), db)


@op("PostgreSQL")
def pg_class(c, db):
    """pg_class joined with pg_namespace (what psql's \\dt reads) lists DB.t."""
    rows = _pg_rows(c, "postgres", "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                                   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace")
    listed(((r[0], r[1]) for r in rows), (db, "t"))


@op("PostgreSQL")
def pg_information_schema_tables(c, db):
    """information_schema.tables lists DB.t."""
    rows = _pg_rows(c, "postgres", "SELECT table_schema, table_name FROM information_schema.tables")
    listed(((r[0], r[1]) for r in rows), (db, "t"))


@op("PostgreSQL")
def pg_audit_log(c, db):
    """system.audit_log: the real audit log for operators."""
    rows = _pg_rows(c, "postgres", "SELECT time, \"user\", action FROM system.audit_log "
                                   "WHERE interface = 'cli' AND action = 'user add'")
    assert len(rows) >= 8, f"system.audit_log is not the audit log: {rows[:3]}"


@op("PostgreSQL")
def pg_insert(c, db):
    """dbname=DB: INSERT INTO t (the endpoint is read-only)."""
    _pg_rows(c, db, "INSERT INTO t (time, host, v) VALUES (now(), 'pg', 1)")


# -- Admin routes, /metrics, /health, /ping ------------------------------------------------------

@op("admin routes", route=("POST", "/admin/flush"))
def admin_flush(c, db):
    """POST /admin/flush (operators only)."""
    r = c.post("/admin/flush")
    c.check(r)
    assert "rows_persisted" in r.json()


@op("admin routes", route=("POST", "/admin/compact"))
def admin_compact(c, db):
    """POST /admin/compact (operators only)."""
    r = c.post("/admin/compact")
    c.check(r)
    assert "files_compacted" in r.json()


@op("/metrics", route=("GET", "/metrics"))
def metrics(c, db):
    """GET /metrics (any valid token)."""
    r = c.get("/metrics")
    c.check(r)
    assert "hourglass_memory_store_bytes" in r.text


# -- Alert rules (/api/v3/alert_rules): visible to the owner and to `read` on the rule's database;
# create, replace and delete need `write` on it. Rules of the fixture's operator (`setup`) stand
# in for other users' rules.

ALERT_RULES = "/api/v3/alert_rules"


def _alert_rule(name: str, db: str) -> dict:
    # Never fires; evaluated once a minute as its owner.
    return {"name": name, "database": db, "query": "SELECT 1 AS value",
            "condition": "value > 5", "interval": "1m"}


def _setup_alert_rule(c, name: str, db: str) -> str:
    """Makes (or replaces) rule `name` on `db` as the fixture's operator; returns its name."""
    r = c.env.setup._request("PUT", f"{ALERT_RULES}/{name}", json=_alert_rule(name, db))
    c.env.setup.check(r)
    return name


def _setup_has_alert_rule(c, name: str) -> bool:
    r = c.env.setup.get(f"{ALERT_RULES}/{name}")
    if r.status_code == 404:
        return False
    c.env.setup.check(r)
    return True


@op("alert rules", route=("GET", ALERT_RULES))
def alert_rules_list(c, db):
    """GET /api/v3/alert_rules lists the operator's rule on DB (visibility: read on DB)."""
    name = _setup_alert_rule(c, f"ar_fixture_{db}", db)
    r = c.check(c.get(ALERT_RULES))
    listed((x["name"] for x in r.json()["rules"]), name)


@op("alert rules", route=("GET", f"{ALERT_RULES}/{{name}}"))
def alert_rules_get(c, db):
    """GET /api/v3/alert_rules/NAME of the operator's rule on DB (404 unless read on DB)."""
    name = _setup_alert_rule(c, f"ar_fixture_{db}", db)
    r = c.check(c.get(f"{ALERT_RULES}/{name}"))
    assert r.json()["name"] == name and r.json()["database"] == db, r.json()


@op("alert rules", route=("POST", ALERT_RULES))
def alert_rules_create(c, db):
    """POST /api/v3/alert_rules: a rule on DB (write on DB); it then runs as its creator."""
    name = f"ar_create_{c.name}_{db}"
    try:
        r = c.check(c.post(ALERT_RULES, json=_alert_rule(name, db)))
        assert r.status_code == 201 and r.json()["owner"] == c.name, r.json()
    except Outcome:
        assert not _setup_has_alert_rule(c, name), f"refused, but rule {name} was created"
        raise
    assert _setup_has_alert_rule(c, name), f"rule {name} not created"


@op("alert rules", route=("PUT", f"{ALERT_RULES}/{{name}}"))
def alert_rules_replace(c, db):
    """PUT /api/v3/alert_rules/NAME over the operator's rule on DB (write on DB)."""
    name = _setup_alert_rule(c, f"ar_put_{c.name}_{db}", db)
    r = c.check(c._request("PUT", f"{ALERT_RULES}/{name}",
                           json={**_alert_rule(name, db), "interval": "2m"}))
    assert r.status_code == 200 and r.json()["interval"] == "2m", r.json()
    assert r.json()["owner"] == c.name, r.json()


@op("alert rules", route=("DELETE", f"{ALERT_RULES}/{{name}}"))
def alert_rules_delete(c, db):
    """DELETE /api/v3/alert_rules/NAME of the operator's rule on DB (write on DB; 404 when the
    rule is neither visible nor writable)."""
    name = _setup_alert_rule(c, f"ar_delete_{c.name}_{db}", db)
    try:
        c.check(c._request("DELETE", f"{ALERT_RULES}/{name}"))
    except Outcome:
        assert _setup_has_alert_rule(c, name), f"refused, but rule {name} was deleted"
        raise
    assert not _setup_has_alert_rule(c, name), f"rule {name} not deleted"


# -- Dashboards (/api/v3/dashboards): readable with any valid token (they hold queries, not data:
# panels run with the viewer's token); PUT and DELETE need `write` on every database the panels
# name. Dashboards of the fixture's operator (`setup`) stand in for other users' dashboards.

DASHBOARDS = "/api/v3/dashboards"


def _dashboard(did: str, db: str, title: str = "matrix") -> dict:
    return {"title": title, "refresh": "off",
            "panels": [{"title": "p", "sql": "SELECT count(*) AS n FROM t", "database": db}]}


def _setup_dashboard(c, did: str, db: str) -> str:
    """Makes (or replaces) dashboard `did` with a panel on `db` as the fixture's operator."""
    c.env.setup.check(c.env.setup._request("PUT", f"{DASHBOARDS}/{did}", json=_dashboard(did, db)))
    return did


def _setup_dashboard_title(c, did: str):
    r = c.env.setup.get(f"{DASHBOARDS}/{did}")
    if r.status_code == 404:
        return None
    c.env.setup.check(r)
    return r.json()["title"]


@op("dashboards", route=("GET", DASHBOARDS))
def dashboards_list(c, db):
    """GET /api/v3/dashboards lists the operator's dashboard (any valid token)."""
    did = _setup_dashboard(c, "dash_fixture", OWN)
    r = c.check(c.get(DASHBOARDS))
    listed((x["id"] for x in r.json()["dashboards"]), did)


@op("dashboards", route=("GET", f"{DASHBOARDS}/{{id}}"))
def dashboards_get(c, db):
    """GET /api/v3/dashboards/ID of the operator's dashboard (any valid token)."""
    did = _setup_dashboard(c, "dash_fixture", OWN)
    r = c.check(c.get(f"{DASHBOARDS}/{did}"))
    assert r.json()["id"] == did and r.json()["panels"][0]["database"] == OWN, r.json()


@op("dashboards", route=("PUT", f"{DASHBOARDS}/{{id}}"))
def dashboards_put(c, db):
    """PUT /api/v3/dashboards/ID over the operator's dashboard with a panel on DB (write on DB)."""
    did = _setup_dashboard(c, f"dash_put_{c.name}_{db}", db)
    try:
        r = c.check(c._request("PUT", f"{DASHBOARDS}/{did}", json=_dashboard(did, db, "mine")))
        assert r.status_code == 200 and r.json()["updated_by"] == c.name, r.json()
    except Outcome:
        assert _setup_dashboard_title(c, did) == "matrix", f"refused, but {did} was replaced"
        raise
    assert _setup_dashboard_title(c, did) == "mine", f"dashboard {did} not replaced"


@op("dashboards", route=("DELETE", f"{DASHBOARDS}/{{id}}"))
def dashboards_delete(c, db):
    """DELETE /api/v3/dashboards/ID of the operator's dashboard with a panel on DB (write on DB)."""
    did = _setup_dashboard(c, f"dash_delete_{c.name}_{db}", db)
    try:
        c.check(c._request("DELETE", f"{DASHBOARDS}/{did}"))
    except Outcome:
        assert _setup_dashboard_title(c, did) is not None, f"refused, but {did} was deleted"
        raise
    assert _setup_dashboard_title(c, did) is None, f"dashboard {did} not deleted"


# Interfaces whose routes answer without a token: authentication does not come first there.
OPEN_INTERFACES = ("/health /ping", "console")


@op("/health /ping", route=("GET", "/health"))
def health(c, db):
    """GET /health (open)."""
    r = c.get("/health")
    c.check(r)
    assert r.json()["status"] == "pass"


@op("/health /ping", route=("GET", "/ping"))
def ping_get(c, db):
    """GET /ping (open)."""
    c.check(c.get("/ping"))


@op("/health /ping", route=("HEAD", "/ping"))
def ping_head(c, db):
    """HEAD /ping (open)."""
    c.check(c.head("/ping"))


# -- The web console: its files are open to everyone (the page shows a login form with
# --require-auth; its API calls carry the token and are the rows above). One of the
# OPEN_INTERFACES, which test_the_table_is_well_formed exempts from "authentication first".

def _console_file(c, path):
    r = c.check(c.get(path))
    assert r.headers.get("X-Frame-Options") == "DENY", r.headers
    assert "script-src 'self'" in r.headers.get("Content-Security-Policy", ""), r.headers
    return r


@op("console", route=("GET", "/"))
def console_page(c, db):
    """GET / (the web console's page; POST / stays the Timestream API)."""
    assert '<main id="page">' in _console_file(c, "/").text


@op("console", route=("GET", "/console/"))
def console_page_prefix(c, db):
    """GET /console/ (the same page)."""
    assert '<main id="page">' in _console_file(c, "/console/").text


@op("console", route=("GET", "/console/{*path}"))
def console_asset(c, db):
    """GET /console/assets/index-HASH.js (the script the page loads)."""
    page = _console_file(c, "/").text
    script = page.split('src="', 1)[1].split('"', 1)[0]
    r = _console_file(c, script)
    assert "javascript" in r.headers["Content-Type"], r.headers


@op("unrouted paths")
def unrouted_path(c, db):
    """GET /no/such/route."""
    c.check(c.get("/no/such/route"))


@op("unrouted paths")
def unrouted_admin_path(c, db):
    """POST /admin/no-such-action."""
    c.check(c.post("/admin/no-such-action"))


# ---------------------------------------------------------------------------------------------
# THE TABLE. One line per (operation, target); the columns are PRINCIPALS in order.
# Tokens: ok, den (denied), unauth, nf (not found / not listed), inv (invalid), ref (refused:
# den, nf or inv). Rows run in this order (the reserved-name rows last: a server that wrongly
# creates `system` must not disturb the other cells).

MATRIX_TEXT = """
# operation                          target             anon   bad    none  read  write admin s_rd  s_wr  s_adm
# --- HTTP SQL: read queries the granted db; write runs no query at all; * applies everywhere
sql_get_count                        own                unauth unauth nf    ok    den   ok    ok    den   ok
sql_get_count                        foreign            unauth unauth nf    nf    den   nf    ok    den   ok
sql_post_qualified                   own                unauth unauth nf    ok    den   ok    ok    den   ok
sql_post_qualified                   foreign            unauth unauth nf    nf    den   nf    ok    den   ok
sql_unload                           own                unauth unauth nf    ok    den   ok    ok    den   ok
sql_unload                           foreign            unauth unauth nf    nf    den   nf    ok    den   ok
sql_delete                           own                unauth unauth den   den   ok    ok    den   ok    ok
sql_delete                           foreign            unauth unauth den   den   den   den   den   ok    ok
sql_select_1                         none               unauth unauth ok    ok    den   ok    ok    den   ok
sql_schemata                         own                unauth unauth nf    ok    den   ok    ok    den   ok
sql_schemata                         foreign            unauth unauth nf    nf    den   nf    ok    den   ok
sql_information_schema_tables        own                unauth unauth nf    ok    den   ok    ok    den   ok
sql_information_schema_tables        foreign            unauth unauth nf    nf    den   nf    ok    den   ok
sql_audit_log                        none               unauth unauth nf    nf    den   nf    nf    den   ok
sql_ddl                              own                unauth unauth ref   ref   ref   ref   ref   ref   ref
# --- InfluxQL: reads need read on the database, refused in InfluxDB's words ("requires READ
# on DB", the same for a database that does not exist); SHOW DATABASES lists only readable ones.
# Prometheus: remote write as line protocol, remote read as a query.
influxql_select_count                own                unauth unauth den   ok    den   ok    ok    den   ok
influxql_select_count                foreign            unauth unauth den   den   den   den   ok    den   ok
influxql_show_databases              own                unauth unauth nf    ok    nf    ok    ok    nf    ok
influxql_show_databases              foreign            unauth unauth nf    nf    nf    nf    ok    nf    ok
prom_remote_write                    own                unauth unauth den   den   ok    ok    den   ok    ok
prom_remote_write                    foreign            unauth unauth den   den   den   den   den   ok    ok
prom_remote_read                     own                unauth unauth den   ok    den   ok    ok    den   ok
prom_remote_read                     foreign            unauth unauth den   den   den   den   ok    den   ok
# --- line protocol: write on the db; a new table needs write; a new database needs admin on its name or *
lp_v1_existing_table                 own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v1_existing_table                 foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v1_new_table                      own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v1_new_table                      foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v1_new_database                   own                unauth unauth den   den   den   ok    den   den   ok
lp_v1_new_database                   foreign            unauth unauth den   den   den   den   den   den   ok
lp_v1_userpass_existing_table        own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v1_userpass_existing_table        foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v1_userpass_new_table             own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v1_userpass_new_table             foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v1_userpass_new_database          own                unauth unauth den   den   den   ok    den   den   ok
lp_v1_userpass_new_database          foreign            unauth unauth den   den   den   den   den   den   ok
lp_v2_existing_table                 own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v2_existing_table                 foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v2_new_table                      own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v2_new_table                      foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v2_new_database                   own                unauth unauth den   den   den   ok    den   den   ok
lp_v2_new_database                   foreign            unauth unauth den   den   den   den   den   den   ok
lp_v3_existing_table                 own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v3_existing_table                 foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v3_new_table                      own                unauth unauth den   den   ok    ok    den   ok    ok
lp_v3_new_table                      foreign            unauth unauth den   den   den   den   den   ok    ok
lp_v3_new_database                   own                unauth unauth den   den   den   ok    den   den   ok
lp_v3_new_database                   foreign            unauth unauth den   den   den   den   den   den   ok
# --- Timestream management: admin on the db; Describe*/List* of a database need any grant on it
# (AccessDeniedException otherwise, whether it exists or not, as IAM answers); ListDatabases lists those only
ts_create_database                   own                unauth unauth den   den   den   ok    den   den   ok
ts_create_database                   foreign            unauth unauth den   den   den   den   den   den   ok
ts_describe_database                 own                unauth unauth den   ok    ok    ok    ok    ok    ok
ts_describe_database                 foreign            unauth unauth den   den   den   den   ok    ok    ok
ts_list_databases                    own                unauth unauth nf    ok    ok    ok    ok    ok    ok
ts_list_databases                    foreign            unauth unauth nf    nf    nf    nf    ok    ok    ok
ts_update_database                   own                unauth unauth den   den   den   ok    den   den   ok
ts_update_database                   foreign            unauth unauth den   den   den   den   den   den   ok
ts_delete_database                   own                unauth unauth den   den   den   ok    den   den   ok
ts_delete_database                   foreign            unauth unauth den   den   den   den   den   den   ok
ts_create_table                      own                unauth unauth den   den   den   ok    den   den   ok
ts_create_table                      foreign            unauth unauth den   den   den   den   den   den   ok
ts_describe_table                    own                unauth unauth den   ok    ok    ok    ok    ok    ok
ts_describe_table                    foreign            unauth unauth den   den   den   den   ok    ok    ok
ts_list_tables                       own                unauth unauth den   ok    ok    ok    ok    ok    ok
ts_list_tables                       foreign            unauth unauth den   den   den   den   ok    ok    ok
ts_list_tables_all                   own                unauth unauth nf    ok    ok    ok    ok    ok    ok
ts_list_tables_all                   foreign            unauth unauth nf    nf    nf    nf    ok    ok    ok
ts_update_table                      own                unauth unauth den   den   den   ok    den   den   ok
ts_update_table                      foreign            unauth unauth den   den   den   den   den   den   ok
ts_delete_table                      own                unauth unauth den   den   den   ok    den   den   ok
ts_delete_table                      foreign            unauth unauth den   den   den   den   den   den   ok
ts_tag_resource                      own                unauth unauth den   den   den   ok    den   den   ok
ts_tag_resource                      foreign            unauth unauth den   den   den   den   den   den   ok
ts_untag_resource                    own                unauth unauth den   den   den   ok    den   den   ok
ts_untag_resource                    foreign            unauth unauth den   den   den   den   den   den   ok
ts_list_tags_for_resource            own                unauth unauth den   ok    ok    ok    ok    ok    ok
ts_list_tags_for_resource            foreign            unauth unauth den   den   den   den   ok    ok    ok
ts_describe_endpoints                none               unauth unauth ok    ok    ok    ok    ok    ok    ok
# --- Timestream writes and queries
ts_write_records                     own                unauth unauth den   den   ok    ok    den   ok    ok
ts_write_records                     foreign            unauth unauth den   den   den   den   den   ok    ok
ts_query                             own                unauth unauth nf    ok    den   ok    ok    den   ok
ts_query                             foreign            unauth unauth nf    nf    den   nf    ok    den   ok
ts_unload                            own                unauth unauth nf    ok    den   ok    ok    den   ok
ts_unload                            foreign            unauth unauth nf    nf    den   nf    ok    den   ok
ts_query_select_1                    none               unauth unauth ok    ok    den   ok    ok    den   ok
ts_query_show_databases              own                unauth unauth nf    ok    den   ok    ok    den   ok
ts_query_show_databases              foreign            unauth unauth nf    nf    den   nf    ok    den   ok
ts_query_next_token_own              own                unauth unauth nf    ok    den   ok    ok    den   ok
ts_query_next_token_of_another_user  own                unauth unauth inv   inv   inv   inv   inv   inv   inv
ts_cancel_query_own                  own                unauth unauth nf    ok    den   ok    ok    den   ok
ts_cancel_query_of_another_user      own                unauth unauth inv   inv   inv   ok    inv   inv   ok
ts_prepare_query                     own                unauth unauth nf    ok    den   ok    ok    den   ok
ts_prepare_query                     foreign            unauth unauth nf    nf    den   nf    ok    den   ok
# --- batch load: Create needs write on the target database (authorized requests then fail on the
# source bucket: the matrix's server has no S3); the others see only the caller's own tasks
ts_create_batch_load_task            own                unauth unauth den   den   inv   inv   den   inv   inv
ts_create_batch_load_task            foreign            unauth unauth den   den   den   den   den   inv   inv
ts_describe_batch_load_task          none               unauth unauth nf    nf    nf    nf    nf    nf    nf
ts_list_batch_load_tasks             none               unauth unauth ok    ok    ok    ok    ok    ok    ok
ts_resume_batch_load_task            none               unauth unauth nf    nf    nf    nf    nf    nf    nf
# --- scheduled queries: Create needs write on the target database and read on what the query
# reads (it is planned as the caller); the others see only the caller's own queries, or every
# query for admins of * (ResourceNotFound otherwise); the rows use a query of the operator
ts_create_scheduled_query            own                unauth unauth den   den   den   ok    den   den   ok
ts_create_scheduled_query            foreign            unauth unauth den   den   den   den   den   den   ok
ts_describe_scheduled_query          none               unauth unauth nf    nf    nf    nf    nf    nf    ok
ts_list_scheduled_queries            none               unauth unauth nf    nf    nf    nf    nf    nf    ok
ts_update_scheduled_query            none               unauth unauth nf    nf    nf    nf    nf    nf    ok
ts_execute_scheduled_query           none               unauth unauth nf    nf    nf    nf    nf    nf    ok
ts_delete_scheduled_query            none               unauth unauth nf    nf    nf    nf    nf    nf    ok
sql_scheduled_query_runs             none               unauth unauth nf    nf    den   nf    nf    den   ok
sql_alerts_history                   none               unauth unauth nf    nf    den   nf    nf    den   ok
# --- account settings: any valid signature
ts_describe_account_settings         none               unauth unauth ok    ok    ok    ok    ok    ok    ok
ts_update_account_settings           none               unauth unauth ref   ref   ref   ref   ref   ref   inv
ts_unknown_operation                 none               unauth unauth nf    nf    nf    nf    nf    nf    nf
# --- PostgreSQL: login is authentication only; queries as HTTP SQL; the catalog shows readable dbs only
pg_login                             own                unauth unauth ok    ok    ok    ok    ok    ok    ok
pg_login                             foreign            unauth unauth ok    ok    ok    ok    ok    ok    ok
pg_select_table                      own                unauth unauth nf    ok    den   ok    ok    den   ok
pg_select_table                      foreign            unauth unauth nf    nf    den   nf    ok    den   ok
pg_unload                            own                unauth unauth nf    ok    den   ok    ok    den   ok
pg_unload                            foreign            unauth unauth nf    nf    den   nf    ok    den   ok
pg_delete                            own                unauth unauth den   den   den   ok    den   den   ok
pg_delete                            foreign            unauth unauth den   den   den   den   den   den   ok
pg_select_qualified                  own                unauth unauth nf    ok    den   ok    ok    den   ok
pg_select_qualified                  foreign            unauth unauth nf    nf    den   nf    ok    den   ok
pg_select_1                          none               unauth unauth ok    ok    den   ok    ok    den   ok
pg_namespace                         own                unauth unauth nf    ok    den   ok    ok    den   ok
pg_namespace                         foreign            unauth unauth nf    nf    den   nf    ok    den   ok
pg_class                             own                unauth unauth nf    ok    den   ok    ok    den   ok
pg_class                             foreign            unauth unauth nf    nf    den   nf    ok    den   ok
pg_information_schema_tables         own                unauth unauth nf    ok    den   ok    ok    den   ok
pg_information_schema_tables         foreign            unauth unauth nf    nf    den   nf    ok    den   ok
pg_audit_log                         none               unauth unauth nf    nf    den   nf    nf    den   ok
pg_insert                            own                unauth unauth ref   ref   ref   ref   ref   ref   ref
# --- alert rules: visible with read on the rule's database (else 404); writes need write on it
alert_rules_list                     own                unauth unauth nf    ok    nf    ok    ok    nf    ok
alert_rules_list                     foreign            unauth unauth nf    nf    nf    nf    ok    nf    ok
alert_rules_get                      own                unauth unauth nf    ok    nf    ok    ok    nf    ok
alert_rules_get                      foreign            unauth unauth nf    nf    nf    nf    ok    nf    ok
alert_rules_create                   own                unauth unauth den   den   ok    ok    den   ok    ok
alert_rules_create                   foreign            unauth unauth den   den   den   den   den   ok    ok
alert_rules_replace                  own                unauth unauth den   den   ok    ok    den   ok    ok
alert_rules_replace                  foreign            unauth unauth den   den   den   den   den   ok    ok
alert_rules_delete                   own                unauth unauth nf    den   ok    ok    den   ok    ok
alert_rules_delete                   foreign            unauth unauth nf    nf    nf    nf    den   ok    ok
# --- dashboards: readable with any valid token; writes need write on the panels' databases
dashboards_list                      none               unauth unauth ok    ok    ok    ok    ok    ok    ok
dashboards_get                       none               unauth unauth ok    ok    ok    ok    ok    ok    ok
dashboards_put                       own                unauth unauth den   den   ok    ok    den   ok    ok
dashboards_put                       foreign            unauth unauth den   den   den   den   den   ok    ok
dashboards_delete                    own                unauth unauth den   den   ok    ok    den   ok    ok
dashboards_delete                    foreign            unauth unauth den   den   den   den   den   ok    ok
# --- operator routes, metrics, liveness, the console's files (open)
admin_flush                          none               unauth unauth den   den   den   den   den   den   ok
admin_compact                        none               unauth unauth den   den   den   den   den   den   ok
metrics                              none               unauth unauth ok    ok    ok    ok    ok    ok    ok
health                               none               ok     ok     ok    ok    ok    ok    ok    ok    ok
ping_get                             none               ok     ok     ok    ok    ok    ok    ok    ok    ok
ping_head                            none               ok     ok     ok    ok    ok    ok    ok    ok    ok
console_page                         none               ok     ok     ok    ok    ok    ok    ok    ok    ok
console_page_prefix                  none               ok     ok     ok    ok    ok    ok    ok    ok    ok
console_asset                        none               ok     ok     ok    ok    ok    ok    ok    ok    ok
# --- paths no route serves: authentication first, /admin/* for operators first
unrouted_path                        none               unauth unauth nf    nf    nf    nf    nf    nf    nf
unrouted_admin_path                  none               unauth unauth den   den   den   den   den   den   nf
# --- reserved names: refused for everyone, whatever the grant (last: a server that wrongly creates
# `system` must not disturb the cells above; the audit-log rows then run again: `system.audit_log`
# must still be the real audit log for operators)
ts_create_database                   system             unauth unauth ref   ref   ref   ref   ref   ref   ref
ts_create_database                   information_schema unauth unauth ref   ref   ref   ref   ref   ref   ref
ts_create_database                   pg_catalog         unauth unauth ref   ref   ref   ref   ref   ref   ref
lp_v1_new_database                   system             unauth unauth ref   ref   ref   ref   ref   ref   ref
lp_v2_new_database                   system             unauth unauth ref   ref   ref   ref   ref   ref   ref
lp_v3_new_database                   system             unauth unauth ref   ref   ref   ref   ref   ref   ref
lp_v3_new_database                   SYSTEM             unauth unauth ref   ref   ref   ref   ref   ref   ref
lp_v3_new_database                   information_schema unauth unauth ref   ref   ref   ref   ref   ref   ref
lp_v3_new_database                   pg_catalog         unauth unauth ref   ref   ref   ref   ref   ref   ref
sql_audit_log                        none               unauth unauth nf    nf    den   nf    nf    den   ok
pg_audit_log                         none               unauth unauth nf    nf    den   nf    nf    den   ok
"""


@dataclass(frozen=True)
class Row:
    op: Op
    target: str
    expected: dict  # principal -> outcome
    line: int
    repeat: int = 0  # 0, or n for the n-th repetition of (op, target) (run again later)


@dataclass(frozen=True)
class Cell:
    row: Row
    principal: str

    @property
    def expected(self) -> str:
        return self.row.expected[self.principal]

    @property
    def db(self) -> str:
        return target_db(self.row.op, self.row.target, self.principal)

    @property
    def id(self) -> str:
        again = f"-again{self.row.repeat}" if self.row.repeat else ""
        return f"{self.row.op.name}-{self.row.target}{again}-{self.principal}"


def target_db(o: Op, target: str, principal: str) -> str:
    if o.scratch and target in ("own", "foreign"):
        return f"{o.name}_{target[0]}_{principal}"
    return {"own": OWN, "foreign": FOREIGN, "none": ""}.get(target, target)


def parse_matrix(text: str = MATRIX_TEXT) -> list[Row]:
    rows: list[Row] = []
    seen: dict[tuple[str, str], int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, target, *cells = line.split()
        if name not in OPS:
            raise ValueError(f"line {n}: unknown operation {name!r}")
        if len(cells) != len(PRINCIPALS):
            raise ValueError(f"line {n}: {len(cells)} outcomes, want {len(PRINCIPALS)}: {line}")
        bad = [c for c in cells if c not in TOKENS]
        if bad:
            raise ValueError(f"line {n}: unknown outcome tokens {bad}")
        key = (name, target)
        repeat = seen.get(key, -1) + 1
        seen[key] = repeat
        rows.append(Row(OPS[name], target, dict(zip(PRINCIPALS, (TOKENS[c] for c in cells))),
                        n, repeat))
    return rows


ROWS = parse_matrix()
CELLS = [Cell(r, p) for r in ROWS for p in PRINCIPALS]


def grants(principal: str) -> list[tuple[str, str]]:
    """The user's grants: BASE_GRANTS plus, for read/write/admin, their permission on their own
    scratch databases (so that creating a database needs admin on *that name*)."""
    out = list(BASE_GRANTS[principal])
    if principal in ("read", "write", "admin"):
        names = sorted({target_db(r.op, "own", principal) for r in ROWS
                        if r.op.scratch and r.target == "own"})
        out += [(n, principal) for n in names]
    return out


def existing_scratch_databases() -> list[str]:
    """The databases the fixture makes for `scratch="existing"` cells."""
    return sorted({target_db(r.op, r.target, p) for r in ROWS if r.op.scratch == "existing"
                   for p in PRINCIPALS})


def size_by_interface() -> dict[str, int]:
    out: dict[str, int] = {}
    for c in CELLS:
        out[c.row.op.interface] = out.get(c.row.op.interface, 0) + 1
    return out
