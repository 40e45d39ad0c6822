"""Timestream Query cursors and CancelQuery with `--require-auth`, through boto3's
`timestream-query` client: a `NextToken` belongs to the user who opened the query and is checked
against that user's current grants on every page; presented by anyone else (a write-only user, a
reader of another database, even an operator) it answers exactly as an invalid token does, and the
attempt is audited. CancelQuery works for the query's owner and for admins only; anyone else gets
the answer of an unknown query id, and every attempt is audited."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sectest import add_user, user_cmd

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60)
QUERY = 'SELECT host, measure_value::double AS v FROM "db1"."t" ORDER BY host'
ROWS = 12
UNKNOWN_ID = "0123456789ABCDEF0123456789ABCDEF"
# The server re-reads users.json at most once a second.
GRANT_CHANGE_S = 1.5


def client(srv, creds, service="timestream-query"):
    return boto3.client(service, endpoint_url=srv.url, region_name="eu-west-1",
                        aws_access_key_id=creds["access_key_id"],
                        aws_secret_access_key=creds["secret_access_key"], config=NO_RETRY)


def error(fn, **kw):
    """(code, HTTP status, message) of the ClientError `fn(**kw)` raises."""
    with pytest.raises(ClientError) as e:
        fn(**kw)
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def first_error(fn, what, **kw):
    """Calls `fn(**kw)` until it raises (within GRANT_CHANGE_S of the first call): (code, HTTP
    status, message)."""
    started = time.monotonic()
    while True:
        try:
            fn(**kw)
        except ClientError as e:
            r = e.response
            return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]
        assert time.monotonic() - started < GRANT_CHANGE_S, what
        time.sleep(0.05)


def audit(srv):
    return [json.loads(line) for line in (srv.data_dir / "audit.log").read_text().splitlines()]


def audited(srv, user, action, outcome, target=None):
    return any(e["interface"] == "timestream" and e["user"] == user and e["action"] == action
               and e["outcome"] == outcome and (target is None or e["target"] == target)
               for e in audit(srv))


@pytest.fixture(scope="module")
def ts(hourglass_bin, module_server):
    srv = module_server(args=["--require-auth"])
    d = srv.data_dir
    srv.bin = hourglass_bin
    srv.users = {
        "op": add_user(hourglass_bin, d, "op", ("*", "admin")),
        "dbadmin": add_user(hourglass_bin, d, "dbadmin", ("db1", "admin")),
        "a": add_user(hourglass_bin, d, "a", ("db1", "read")),
        "b": add_user(hourglass_bin, d, "b", ("db1", "write")),
        "c": add_user(hourglass_bin, d, "c", ("db2", "read")),
    }
    w = client(srv, srv.users["op"], "timestream-write")
    now = int(time.time() * 1000)
    for db in ("db1", "db2"):
        w.create_database(DatabaseName=db)
        w.create_table(DatabaseName=db, TableName="t")
    w.write_records(DatabaseName="db1", TableName="t", Records=[
        {"Dimensions": [{"Name": "host", "Value": f"h{i:02}"}], "MeasureName": "m",
         "MeasureValue": str(i), "MeasureValueType": "DOUBLE", "Time": str(now - i)}
        for i in range(ROWS)])
    yield srv


def open_query(q):
    first = q.query(QueryString=QUERY, MaxRows=2)
    assert len(first["Rows"]) == 2 and "NextToken" in first, first
    return first


def test_a_next_token_works_only_for_its_owner(ts):
    a = client(ts, ts.users["a"])
    first = open_query(a)
    token = first["NextToken"]
    garbage = error(a.query, QueryString=QUERY, NextToken="garbage")
    assert garbage[:2] == ("ValidationException", 400)
    unknown = error(a.query, QueryString=QUERY, NextToken=f"{UNKNOWN_ID}.1.{'0' * 32}")
    assert unknown == garbage
    # A write-only user of db1, a reader of db2 and an operator: all answered as a bad token.
    for name in ("b", "c", "op"):
        other = client(ts, ts.users[name])
        assert error(other.query, QueryString=QUERY, NextToken=token, MaxRows=2) == garbage, name
        assert audited(ts, name, "Query", "denied", target=first["QueryId"]), name
    # The owner pages on through every row.
    rows = list(first["Rows"])
    while token:
        page = a.query(QueryString=QUERY, NextToken=token, MaxRows=2)
        rows += page["Rows"]
        token = page.get("NextToken")
    assert [r["Data"][0]["ScalarValue"] for r in rows] == [f"h{i:02}" for i in range(ROWS)]


def test_revoked_grant_stops_the_cursor_and_removed_user_fails(ts):
    creds = add_user(ts.bin, ts.data_dir, "ra", ("db1", "read"))
    ra = client(ts, creds)
    first = open_query(ra)
    second = ra.query(QueryString=QUERY, NextToken=first["NextToken"], MaxRows=2)
    token = second["NextToken"]
    out = user_cmd(ts.bin, ts.data_dir, "revoke", "ra", "--database", "db1", "--permission", "read")
    assert out.returncode == 0, out.stderr
    # The same token again answers the same page while the grant holds.
    code, status, message = first_error(ra.query, "the revoked grant still reads",
                                        QueryString=QUERY, NextToken=token, MaxRows=2)
    assert (code, status) == ("AccessDeniedException", 403), message
    assert message.startswith("User: arn:aws:iam::") and "user/ra is not authorized to perform: " \
        "timestream:Query on resource: arn:aws:timestream:" in message and message.endswith(
            ":database/db1"), message
    assert audited(ts, "ra", "Query", "denied", target=first["QueryId"])
    # The cursor is gone.
    assert error(ra.query, QueryString=QUERY, NextToken=token, MaxRows=2) == (
        "ValidationException", 400, "Invalid pagination token.")
    # Read again, a new cursor; the user removed: its next page fails authentication.
    out = user_cmd(ts.bin, ts.data_dir, "grant", "ra", "--database", "db1", "--permission", "read")
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 5
    while True:
        try:
            first = open_query(ra)
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    out = user_cmd(ts.bin, ts.data_dir, "remove", "ra")
    assert out.returncode == 0, out.stderr
    code, status, _ = first_error(ra.query, "the removed user still reads",
                                  QueryString=QUERY, NextToken=first["NextToken"], MaxRows=2)
    assert (code, status) == ("UnrecognizedClientException", 400)
    assert any(e["interface"] == "cli" and e["action"] == "user revoke" and e["target"] == "ra"
               and e["outcome"] == "ok" for e in audit(ts))


def test_cancel_query_only_by_owner_or_admin(ts):
    a, b, c = (client(ts, ts.users[n]) for n in ("a", "b", "c"))
    unknown = error(b.cancel_query, QueryId=UNKNOWN_ID)
    assert unknown[:2] == ("ValidationException", 400) and UNKNOWN_ID in unknown[2]
    first = open_query(a)
    qid = first["QueryId"]
    for who, other in (("b", b), ("c", c)):
        code, status, message = error(other.cancel_query, QueryId=qid)
        assert (code, status, message) == (unknown[0], unknown[1], unknown[2].replace(UNKNOWN_ID, qid))
        assert audited(ts, who, "CancelQuery", "denied", target=qid), who
    assert audited(ts, "b", "CancelQuery", "error", target=UNKNOWN_ID)
    # The query still runs.
    page = a.query(QueryString=QUERY, NextToken=first["NextToken"], MaxRows=2)
    assert len(page["Rows"]) == 2
    # Its owner cancels it.
    assert a.cancel_query(QueryId=qid)["CancellationMessage"] == "Query cancellation has been initiated."
    assert audited(ts, "a", "CancelQuery", "ok", target=qid)
    code, status, _ = error(a.query, QueryString=QUERY, NextToken=page["NextToken"], MaxRows=2)
    assert (code, status) == ("ConflictException", 409)
    # Others still cannot tell it from an unknown query; its owner can.
    assert error(b.cancel_query, QueryId=qid)[2] == unknown[2].replace(UNKNOWN_ID, qid)
    assert a.cancel_query(QueryId=qid)["CancellationMessage"] == "Query has already been cancelled."
    # An operator and an admin of the query's database may cancel it.
    for admin in ("op", "dbadmin"):
        first = open_query(a)
        qid = first["QueryId"]
        answer = client(ts, ts.users[admin]).cancel_query(QueryId=qid)
        assert answer["CancellationMessage"] == "Query cancellation has been initiated.", admin
        assert audited(ts, admin, "CancelQuery", "ok", target=qid), admin
        code, status, _ = error(a.query, QueryString=QUERY, NextToken=first["NextToken"], MaxRows=2)
        assert (code, status) == ("ConflictException", 409), admin
