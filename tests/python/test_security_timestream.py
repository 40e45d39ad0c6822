"""The Timestream API with `--require-auth`: boto3 signing (SigV4) with a user's access key
works for management, writes and queries; a wrong secret, an altered body, a signature 20
minutes old, an unknown key and a missing Authorization header are refused with AWS's error
shapes; grants decide which operations and databases a key may use."""

from __future__ import annotations

import datetime
import json
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from sectest import add_user, signed_request

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60)
TIMEOUT_S = 30


def clients(url, key_id, secret, **kw):
    args = dict(endpoint_url=url, region_name="eu-west-1", aws_access_key_id=key_id,
                aws_secret_access_key=secret, config=NO_RETRY, **kw)
    return boto3.client("timestream-write", **args), boto3.client("timestream-query", **args)


@pytest.fixture(scope="module")
def ts(hourglass_bin, module_server):
    srv = module_server(args=["--require-auth"])
    d = srv.data_dir
    srv.users = {
        "admin": add_user(hourglass_bin, d, "admin", ("metrics", "admin")),
        "reader": add_user(hourglass_bin, d, "reader", ("metrics", "read")),
        "writer": add_user(hourglass_bin, d, "writer", ("metrics", "write")),
        "other": add_user(hourglass_bin, d, "other", ("other", "admin")),
    }
    yield srv


def code_status(e: ClientError):
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def test_boto3_with_the_right_key_manages_writes_and_queries(ts):
    a = ts.users["admin"]
    write, query = clients(ts.url, a["access_key_id"], a["secret_access_key"])
    write.create_database(DatabaseName="metrics")
    write.create_table(DatabaseName="metrics", TableName="cpu")
    now = str(int(time.time() * 1000))
    out = write.write_records(DatabaseName="metrics", TableName="cpu", Records=[
        {"Dimensions": [{"Name": "host", "Value": "a"}], "MeasureName": "usage",
         "MeasureValue": "1.5", "Time": now}])
    assert out["RecordsIngested"]["Total"] == 1
    rows = query.query(QueryString='SELECT count(*) FROM "metrics"."cpu"')["Rows"]
    assert rows[0]["Data"][0]["ScalarValue"] == "1"
    # The writer writes, the reader reads.
    w = ts.users["writer"]
    wc, _ = clients(ts.url, w["access_key_id"], w["secret_access_key"])
    wc.write_records(DatabaseName="metrics", TableName="cpu", Records=[
        {"Dimensions": [{"Name": "host", "Value": "b"}], "MeasureName": "usage",
         "MeasureValue": "2.5", "Time": now}])
    r = ts.users["reader"]
    _, rq = clients(ts.url, r["access_key_id"], r["secret_access_key"])
    rows = rq.query(QueryString='SELECT count(*) FROM "metrics"."cpu"')["Rows"]
    assert rows[0]["Data"][0]["ScalarValue"] == "2"


def test_wrong_secret_and_unknown_key_are_refused(ts):
    a = ts.users["admin"]
    write, _ = clients(ts.url, a["access_key_id"], a["secret_access_key"] + "x")
    with pytest.raises(ClientError) as e:
        write.list_databases()
    assert code_status(e.value) == ("InvalidSignatureException", 400)
    assert "signature we calculated does not match" in e.value.response["Error"]["Message"]
    write, _ = clients(ts.url, "HGAKNOTAKEY000000000", "whatever")
    with pytest.raises(ClientError) as e:
        write.list_databases()
    assert code_status(e.value) == ("UnrecognizedClientException", 400)
    assert e.value.response["Error"]["Message"] == "The security token included in the request is invalid."


def post(ts, headers, body):
    return requests.post(ts.url + "/", data=body, headers=headers, timeout=TIMEOUT_S)


def test_altered_body_old_signature_and_missing_header(ts):
    a = ts.users["admin"]
    body = json.dumps({"DatabaseName": "metrics"}).encode()
    headers, _ = signed_request(ts.url, "DescribeDatabase", body, a["access_key_id"], a["secret_access_key"])
    r = post(ts, headers, body)
    assert r.status_code == 200, r.text
    # The same signature over another body.
    r = post(ts, headers, json.dumps({"DatabaseName": "other"}).encode())
    assert r.status_code == 400 and r.json()["__type"].endswith("InvalidSignatureException"), r.text
    # Signed 20 minutes ago.
    then = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    old, _ = signed_request(ts.url, "DescribeDatabase", body, a["access_key_id"], a["secret_access_key"], when=then)
    r = post(ts, old, body)
    assert r.status_code == 400 and r.json()["__type"].endswith("InvalidSignatureException"), r.text
    assert r.json()["Message"].startswith("Signature expired: "), r.text
    assert "is now earlier than" in r.json()["Message"]
    # No Authorization header at all.
    bare = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    r = post(ts, bare, body)
    assert r.status_code == 403 and r.json()["__type"].endswith("MissingAuthenticationTokenException"), r.text
    # A session token (temporary credentials) is not accepted.
    r = post(ts, {**headers, "X-Amz-Security-Token": "abc"}, body)
    assert r.status_code == 400 and r.json()["__type"].endswith("UnrecognizedClientException")


def test_grants_decide_operations_and_visible_databases(ts):
    r, o = ts.users["reader"], ts.users["other"]
    rw, rq = clients(ts.url, r["access_key_id"], r["secret_access_key"])
    with pytest.raises(ClientError) as e:
        rw.create_table(DatabaseName="metrics", TableName="nope")
    assert code_status(e.value) == ("AccessDeniedException", 403)
    assert "is not authorized to perform: timestream:CreateTable" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        rw.write_records(DatabaseName="metrics", TableName="cpu", Records=[
            {"MeasureName": "x", "MeasureValue": "1", "Time": str(int(time.time() * 1000))}])
    assert code_status(e.value) == ("AccessDeniedException", 403)
    with pytest.raises(ClientError) as e:
        rw.create_database(DatabaseName="newdb")
    assert code_status(e.value) == ("AccessDeniedException", 403)
    # The admin of "other" creates it, sees only it, and cannot read "metrics".
    ow, oq = clients(ts.url, o["access_key_id"], o["secret_access_key"])
    ow.create_database(DatabaseName="other")
    assert [d["DatabaseName"] for d in ow.list_databases()["Databases"]] == ["other"]
    assert [d["DatabaseName"] for d in rw.list_databases()["Databases"]] == ["metrics"]
    with pytest.raises(ClientError) as e:
        ow.describe_database(DatabaseName="metrics")
    assert code_status(e.value) == ("AccessDeniedException", 403)
    with pytest.raises(ClientError) as e:
        ow.create_database(DatabaseName="notmine")
    assert code_status(e.value) == ("AccessDeniedException", 403)
    rows = oq.query(QueryString="SHOW DATABASES")["Rows"]
    assert [x["Data"][0]["ScalarValue"] for x in rows] == ["other"]
    with pytest.raises(ClientError) as e:
        oq.query(QueryString='SELECT * FROM "metrics"."cpu"')
    assert e.value.response["Error"]["Code"] == "ValidationException"
    # Management calls and refusals are in the audit log.
    log = [json.loads(line) for line in (ts.data_dir / "audit.log").read_text().splitlines()]
    seen = {(e["user"], e["action"], e["outcome"]) for e in log if e["interface"] == "timestream"}
    assert ("admin", "CreateDatabase", "ok") in seen
    assert ("reader", "CreateTable", "denied") in seen
    assert any(e["outcome"] == "unauthenticated" for e in log)
