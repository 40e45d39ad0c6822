"""Scheduled queries (issue 18) through boto3 against a real server: every ScheduledQuery
operation and its errors, a 1-minute rollup of one hour of per-second data checked against SQL
over the source, an automatic `rate(1 minute)` run, a DISABLED query that does not run (and runs
once ENABLED again), error reports for rows that cannot be mapped (to a local directory through
`HOURGLASS_SCHEDULED_QUERY_REPORTS` and to moto's S3), the SNS message received through an SQS
queue subscribed to the topic in moto, `system.scheduled_query_runs`, the audit log, and
definitions surviving a restart.

One moto server (S3, SNS, SQS) and one hourglass server for the module (the restart test is
last); the automatic-run test is the long one (about two minutes: one run observed, then a
re-enabled query's run)."""

from __future__ import annotations

import datetime
import json
import math
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import MotoS3, moto_server

REGION = "us-east-1"
ACCOUNT = "000000000000"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sq"
MOTO_BUCKET = "sq-reports"
LOCAL_BUCKET = "sq-local"
TARGET = "Timestream_20181101."
DB = "sq"
SRC = "src"


# ---------------------------------------------------------------------------------------------
# Fixtures


class Moto(MotoS3):
    """conftest's moto clients (`.client` for S3, `.env`) with SNS and SQS clients too."""

    def __init__(self, endpoint: str):
        super().__init__(endpoint, MOTO_BUCKET)
        kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        self.sns = boto3.client("sns", **kw)
        self.sqs = boto3.client("sqs", **kw)

    def topic_with_queue(self, name: str) -> tuple[str, str]:
        """An SNS topic and the URL of an SQS queue subscribed to it."""
        topic = self.sns.create_topic(Name=name)["TopicArn"]
        queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        return topic, queue_url

    def messages(self, queue_url: str, want, timeout: float = 30) -> list[dict]:
        """The SNS messages (parsed `Message` bodies) received on the queue until `want(all)`."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1)
            for m in out.get("Messages", []):
                body = json.loads(m["Body"])
                got.append(json.loads(body["Message"]) if "Message" in body else body)
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            if want(got):
                return got
        return got


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        m = Moto(endpoint)
        m.client.create_bucket(Bucket=m.bucket)
        yield m


@pytest.fixture(scope="module")
def reports_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def srv(module_server, moto, reports_dir):
    env = dict(moto.env)
    env["HOURGLASS_SCHEDULED_QUERY_REPORTS"] = f"{LOCAL_BUCKET}={reports_dir}"
    return module_server(env=env)


def timestream(url: str, key: str = "testing", secret: str = "testing"):
    """boto3 timestream-write and timestream-query clients of the server at `url`."""
    kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id=key,
              aws_secret_access_key=secret, config=NO_RETRY)
    return boto3.client("timestream-write", **kw), boto3.client("timestream-query", **kw)


@pytest.fixture(scope="module")
def clients(srv):
    return timestream(srv.url)


@pytest.fixture(scope="module")
def tsw(clients):
    return clients[0]


@pytest.fixture(scope="module")
def tsq(clients):
    return clients[1]


# The source: one hour of per-second data from 3 series, ending 10 minutes before the minute
# the module started; RUNTIME is the end (the rollup's @scheduled_runtime).
RUNTIME_S = (int(time.time()) // 60) * 60 - 600
START_S = RUNTIME_S - 3600
HOSTS = ("h0", "h1", "h2")


def value(host_index: int, second: int) -> float:
    return round((second * 7 + host_index * 13) % 101 + host_index * 0.25, 2)


@pytest.fixture(scope="module")
def source(tsw):
    tsw.create_database(DatabaseName=DB)
    retention = {"MemoryStoreRetentionPeriodInHours": 24, "MagneticStoreRetentionPeriodInDays": 7}
    for t in (SRC, "rollup", "auto", "errs", "errs_s3", "mixed"):
        tsw.create_table(DatabaseName=DB, TableName=t, RetentionProperties=retention)
    records = [
        {"Dimensions": [{"Name": "host", "Value": h}], "MeasureName": "cpu",
         "MeasureValue": repr(value(i, s)), "MeasureValueType": "DOUBLE",
         "Time": str((START_S + s) * 1000)}
        for i, h in enumerate(HOSTS) for s in range(3600)
    ]
    for k in range(0, len(records), 100):
        tsw.write_records(DatabaseName=DB, TableName=SRC, Records=records[k:k + 100])
    return DB


# ---------------------------------------------------------------------------------------------
# Helpers


def definition(name: str, query: str, schedule: str = "rate(1 day)", target: dict | None = None,
               topic: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:none",
               bucket: str = LOCAL_BUCKET, **extra) -> dict:
    d = dict(Name=name, QueryString=query,
             ScheduleConfiguration={"ScheduleExpression": schedule},
             NotificationConfiguration={"SnsConfiguration": {"TopicArn": topic}},
             ScheduledQueryExecutionRoleArn=ROLE,
             ErrorReportConfiguration={"S3Configuration": {"BucketName": bucket,
                                                           "ObjectKeyPrefix": "errors"}})
    if target:
        d["TargetConfiguration"] = {"TimestreamConfiguration": target}
    d.update(extra)
    return d


def rollup_target(table: str, time_column: str = "binned_time") -> dict:
    return {"DatabaseName": DB, "TableName": table, "TimeColumn": time_column,
            "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}],
            "MultiMeasureMappings": {"TargetMultiMeasureName": "cpu_avg",
                                     "MultiMeasureAttributeMappings": [
                                         {"SourceColumn": "avg_cpu", "MeasureValueType": "DOUBLE"}]}}


ROLLUP_SQL = (f'SELECT host, bin(time, 1m) AS binned_time, avg(measure_value::double) AS avg_cpu '
              f'FROM "{DB}"."{SRC}" WHERE measure_name = \'cpu\' '
              f'AND time >= @scheduled_runtime - 1h AND time < @scheduled_runtime '
              f'GROUP BY host, bin(time, 1m)')


def raw(srv, operation: str, body: dict) -> tuple[int, dict]:
    r = requests.post(srv.url + "/", data=json.dumps(body), timeout=60, headers={
        "X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.0"})
    return r.status_code, (r.json() if r.content else {})


def error(excinfo) -> tuple[str, str]:
    e = excinfo.value.response["Error"]
    return e["Code"], e.get("Message", "")


def query_rows(tsq, sql: str) -> list[dict]:
    rows, token, columns = [], None, None
    while True:
        kw = {"QueryString": sql}
        if token:
            kw["NextToken"] = token
        page = tsq.query(**kw)
        columns = [c["Name"] for c in page["ColumnInfo"]]
        for r in page["Rows"]:
            rows.append({c: (d.get("ScalarValue") if not d.get("NullValue") else None)
                         for c, d in zip(columns, r["Data"])})
        token = page.get("NextToken")
        if not token:
            return rows


def wait_run(tsq, arn: str, status: str, timeout: float = 60, after: float | None = None) -> dict:
    """The LastRunSummary once it has `status` (and a trigger time after `after`, epoch s)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]
        run = last.get("LastRunSummary")
        if run and run["RunStatus"] == status and (
                after is None or run["TriggerTime"].timestamp() >= after):
            return run
        time.sleep(0.5)
    raise AssertionError(f"no {status} run of {arn} within {timeout}s: {last}")


def runs_table(srv, name: str) -> list[dict]:
    return srv.rows("SELECT name, trigger, status, query_result_rows, records_ingested, "
                    "rows_unmapped, execution_time_ms, error, error_report, invocation_time "
                    f"FROM system.scheduled_query_runs WHERE name = '{name}' "
                    "ORDER BY trigger_time", db=None)


def wait_runs(srv, name: str, n: int, timeout: float = 30) -> list[dict]:
    """The rows of `name` in system.scheduled_query_runs once there are at least `n`."""
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_table(srv, name)
        if len(runs) >= n or time.monotonic() > deadline:
            assert len(runs) >= n, runs
            return runs
        time.sleep(0.3)


def at(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


# ---------------------------------------------------------------------------------------------
# Listing (first: the only queries there are its own) and tags


def test_list_paginates_25_queries_by_10_and_tags(tsq, srv, source):
    arns = []
    for i in range(25):
        arns.append(tsq.create_scheduled_query(**definition(f"page-{i:02d}", "SELECT 1"))["Arn"])
    pages, token, names = [], None, []
    while True:
        kw = {"MaxResults": 10}
        if token:
            kw["NextToken"] = token
        page = tsq.list_scheduled_queries(**kw)
        pages.append(len(page["ScheduledQueries"]))
        names += [q["Name"] for q in page["ScheduledQueries"]]
        for q in page["ScheduledQueries"]:
            assert q["State"] == "ENABLED" and q["Arn"] in arns
            assert "NextInvocationTime" in q and q["ErrorReportConfiguration"]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [10, 10, 5]
    assert sorted(names) == [f"page-{i:02d}" for i in range(25)]
    with pytest.raises(ClientError) as e:
        tsq.list_scheduled_queries(MaxResults=1001)
    assert error(e)[0] == "ValidationException"

    # Tags on a scheduled-query ARN.
    arn = arns[0]
    tsq.tag_resource(ResourceARN=arn, Tags=[{"Key": "team", "Value": "ops"},
                                            {"Key": "tier", "Value": "1"}])
    tsq.tag_resource(ResourceARN=arn, Tags=[{"Key": "tier", "Value": "2"}])
    tags = {t["Key"]: t["Value"] for t in tsq.list_tags_for_resource(ResourceARN=arn)["Tags"]}
    assert tags == {"team": "ops", "tier": "2"}
    tsq.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert tsq.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "tier", "Value": "2"}]
    tagged = tsq.create_scheduled_query(**definition(
        "tagged", "SELECT 1", Tags=[{"Key": "k", "Value": "v"}]))["Arn"]
    assert tsq.list_tags_for_resource(ResourceARN=tagged)["Tags"] == [{"Key": "k", "Value": "v"}]

    for a in arns + [tagged]:
        tsq.delete_scheduled_query(ScheduledQueryArn=a)
    assert tsq.list_scheduled_queries()["ScheduledQueries"] == []


# ---------------------------------------------------------------------------------------------
# Validation and errors


def test_create_validation_errors(tsq, srv, source):
    target = rollup_target("rollup")
    bad = [
        # names
        (definition("x", "SELECT 1"), "name"),
        (definition("bad name", "SELECT 1"), "name"),
        (definition("a" * 65, "SELECT 1"), "name"),
        # schedules
        (definition("bad-cron", "SELECT 1", schedule="cron(60 * * * ? *)"), "minutes"),
        (definition("bad-cron2", "SELECT 1", schedule="cron(0 12 * * *)"), "cron"),
        (definition("bad-rate", "SELECT 1", schedule="rate(1 minutes)"), "rate"),
        (definition("bad-rate2", "SELECT 1", schedule="rate(0 hours)"), "rate"),
        (definition("bad-every", "SELECT 1", schedule="every minute"), ""),
        # the query
        (definition("bad-param", "SELECT @other AS x"), "@other"),
        (definition("bad-sql", "SELEC 1"), "QueryString"),
        # the target against the query's columns
        (definition("no-column", ROLLUP_SQL.replace("AS avg_cpu", "AS mean_cpu"), target=target),
         "avg_cpu"),
        (definition("wrong-type", ROLLUP_SQL.replace("avg(measure_value::double)", "'text'"),
                    target=target), "avg_cpu"),
        (definition("no-table", ROLLUP_SQL, target=rollup_target("absent")), "absent"),
        (definition("both-mappings", ROLLUP_SQL, target={
            **target, "MixedMeasureMappings": [
                {"MeasureName": "m", "SourceColumn": "avg_cpu", "MeasureValueType": "DOUBLE"}]}),
         ""),
    ]
    for d, word in bad:
        with pytest.raises(ClientError) as e:
            tsq.create_scheduled_query(**d)
        code, message = error(e)
        assert code == "ValidationException", (d["Name"], code, message)
        assert word.lower() in message.lower(), (d["Name"], message)

    # Missing required members (boto3 checks them itself, so the request is sent raw).
    full = definition("raw-ok", "SELECT 1")
    for member, path in [("Name", "name"), ("QueryString", "queryString"),
                         ("ScheduleConfiguration", "scheduleConfiguration"),
                         ("NotificationConfiguration", "notificationConfiguration"),
                         ("ScheduledQueryExecutionRoleArn", "scheduledQueryExecutionRoleArn"),
                         ("ErrorReportConfiguration", "errorReportConfiguration")]:
        body = {k: v for k, v in full.items() if k != member}
        status, out = raw(srv, "CreateScheduledQuery", body)
        assert status == 400, (member, out)
        assert out["__type"].endswith("ValidationException"), out
        assert path in out.get("message", out.get("Message", "")), (member, out)
    for op in ("DescribeScheduledQuery", "DeleteScheduledQuery", "ExecuteScheduledQuery"):
        status, out = raw(srv, op, {})
        assert status == 400 and "scheduledQueryArn" in out.get("Message", ""), (op, out)
    assert tsq.list_scheduled_queries()["ScheduledQueries"] == []


def test_conflict_client_token_and_not_found_after_delete(tsq, srv, source):
    token = uuid.uuid4().hex
    d = definition("dup", "SELECT 1", ClientToken=token)
    arn = tsq.create_scheduled_query(**d)["Arn"]
    assert arn.startswith(f"arn:aws:timestream:{REGION}:{ACCOUNT}:scheduled-query/dup-")
    # The same request again with the same token: the same ARN, nothing new.
    assert tsq.create_scheduled_query(**d)["Arn"] == arn
    # Without the token: the name is taken.
    with pytest.raises(ClientError) as e:
        tsq.create_scheduled_query(**definition("dup", "SELECT 1"))
    assert error(e)[0] == "ConflictException"
    # The token with another definition.
    with pytest.raises(ClientError) as e:
        tsq.create_scheduled_query(**definition("other", "SELECT 2", ClientToken=token))
    assert error(e)[0] == "ConflictException"

    desc = tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]
    assert desc["Name"] == "dup" and desc["State"] == "ENABLED"
    assert desc["QueryString"] == "SELECT 1"
    assert desc["ScheduleConfiguration"] == {"ScheduleExpression": "rate(1 day)"}
    assert desc["ScheduledQueryExecutionRoleArn"] == ROLE
    assert desc["RecentlyFailedRuns"] == []
    assert "NextInvocationTime" in desc and "LastRunSummary" not in desc

    with pytest.raises(ClientError) as e:
        tsq.update_scheduled_query(ScheduledQueryArn=arn, State="PAUSED")
    assert error(e)[0] == "ValidationException"
    tsq.update_scheduled_query(ScheduledQueryArn=arn, State="DISABLED")
    desc = tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]
    assert desc["State"] == "DISABLED" and "NextInvocationTime" not in desc

    tsq.delete_scheduled_query(ScheduledQueryArn=arn)
    for call in (lambda: tsq.describe_scheduled_query(ScheduledQueryArn=arn),
                 lambda: tsq.delete_scheduled_query(ScheduledQueryArn=arn),
                 lambda: tsq.update_scheduled_query(ScheduledQueryArn=arn, State="ENABLED"),
                 lambda: tsq.execute_scheduled_query(ScheduledQueryArn=arn,
                                                     InvocationTime=at(RUNTIME_S)),
                 lambda: tsq.list_tags_for_resource(ResourceARN=arn)):
        with pytest.raises(ClientError) as e:
            call()
        assert error(e)[0] == "ResourceNotFoundException"
    # The name is free again.
    again = tsq.create_scheduled_query(**definition("dup", "SELECT 1"))["Arn"]
    assert again != arn
    tsq.delete_scheduled_query(ScheduledQueryArn=again)

    # Management operations are in the audit log (authentication off too).
    actions = {r["action"] for r in srv.rows(
        "SELECT action FROM system.audit_log WHERE interface = 'timestream'", db=None)}
    assert {"CreateScheduledQuery", "UpdateScheduledQuery",
            "DeleteScheduledQuery"} <= actions, actions


# ---------------------------------------------------------------------------------------------
# Runs


def test_rollup_of_one_hour_matches_sql_over_the_source(tsq, srv, source, moto):
    topic, queue = moto.topic_with_queue("rollup")
    arn = tsq.create_scheduled_query(**definition("rollup-1m", ROLLUP_SQL,
                                                  target=rollup_target("rollup"),
                                                  topic=topic))["Arn"]
    tsq.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(RUNTIME_S))
    run = wait_run(tsq, arn, "MANUAL_TRIGGER_SUCCESS")
    assert run["InvocationTime"] == at(RUNTIME_S)
    stats = run["ExecutionStats"]
    assert stats["QueryResultRows"] == 180 and stats["RecordsIngested"] == 180, stats
    assert "ErrorReportLocation" not in run and "FailureReason" not in run

    expected = {(r["host"], r["t"]): float(r["a"]) for r in query_rows(tsq, (
        f'SELECT host, bin(time, 1m) AS t, avg(measure_value::double) AS a FROM "{DB}"."{SRC}" '
        f"WHERE time >= from_milliseconds({START_S * 1000}) "
        f"AND time < from_milliseconds({RUNTIME_S * 1000}) GROUP BY host, bin(time, 1m)"))}
    got = {(r["host"], r["time"]): float(r["avg_cpu"]) for r in query_rows(
        tsq, f'SELECT host, time, avg_cpu FROM "{DB}"."rollup" WHERE measure_name = \'cpu_avg\'')}
    assert len(expected) == 180 and got.keys() == expected.keys()
    for k, v in expected.items():
        assert math.isclose(got[k], v, rel_tol=1e-12), (k, got[k], v)
    # A value computed here too, for one window.
    first = [value(1, s) for s in range(60)]
    t0 = datetime.datetime.fromtimestamp(START_S, datetime.timezone.utc)
    key = ("h1", t0.strftime("%Y-%m-%d %H:%M:%S.000000000"))
    assert math.isclose(got[key], sum(first) / 60, rel_tol=1e-9), (got.get(key), key)

    # A rerun of the same window replaces what the first wrote (upsert): still 180 rows.
    tsq.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(RUNTIME_S))
    wait_runs(srv, "rollup-1m", 2)
    rows = query_rows(tsq, f'SELECT count(*) AS n FROM "{DB}"."rollup"')
    assert rows[0]["n"] == "180"

    # The SNS messages: created, then the run's, in Timestream's shape.
    msgs = moto.messages(queue, lambda m: any(x.get("type") == "MANUAL_TRIGGER_SUCCESS"
                                              for x in m))
    assert msgs[0] == {"type": "SCHEDULED_QUERY_CREATING", "arn": arn}, msgs
    done = next(x for x in msgs if x.get("type") == "MANUAL_TRIGGER_SUCCESS")
    assert done["arn"] == arn
    assert isinstance(done["nextInvocationEpochSecond"], int)
    summary = done["scheduledQueryRunSummary"]
    assert summary["invocationEpochSecond"] == RUNTIME_S
    assert summary["runStatus"] == "MANUAL_TRIGGER_SUCCESS"
    assert abs(summary["triggerTimeMillis"] / 1000 - time.time()) < 120
    assert set(summary["executionStats"]) == {"executionTimeInMillis", "dataWrites",
                                              "bytesMetered", "recordsIngested",
                                              "queryResultRows"}
    assert summary["executionStats"]["recordsIngested"] == 180

    runs = runs_table(srv, "rollup-1m")
    assert len(runs) >= 1
    assert runs[0]["trigger"] == "MANUAL" and runs[0]["status"] == "MANUAL_TRIGGER_SUCCESS"
    assert runs[0]["query_result_rows"] == 180 and runs[0]["records_ingested"] == 180
    assert runs[0]["rows_unmapped"] == 0 and runs[0].get("error") is None

    # An invocation time with nothing to read: a successful run of no rows.
    tsq.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(START_S - 86400))
    assert wait_runs(srv, "rollup-1m", 3)[-1]["query_result_rows"] == 0

    # /metrics counts the runs (at least these three manual successes) and the queries kept.
    metrics = requests.get(f"{srv.url}/metrics", timeout=10).text
    counts = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
              if line.startswith("hourglass_scheduled_") and not line.startswith("#")}
    assert counts['hourglass_scheduled_query_runs_total{trigger="manual",status="success"}'] >= 3, counts
    assert counts['hourglass_scheduled_queries{state="enabled"}'] >= 1, counts
    assert 'hourglass_scheduled_query_notifications_total{outcome="published"}' in counts, counts


def test_mixed_measure_mappings_write_one_record_per_measure(tsq, srv, source):
    sql = (f'SELECT host, bin(time, 1m) AS binned_time, avg(measure_value::double) AS avg_cpu, '
           f'max(measure_value::double) AS max_cpu FROM "{DB}"."{SRC}" '
           f'WHERE time >= @scheduled_runtime - 5m AND time < @scheduled_runtime '
           f'GROUP BY host, bin(time, 1m)')
    target = {"DatabaseName": DB, "TableName": "mixed", "TimeColumn": "binned_time",
              "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}],
              "MixedMeasureMappings": [
                  {"MeasureName": "avg", "SourceColumn": "avg_cpu", "MeasureValueType": "DOUBLE"},
                  {"SourceColumn": "max_cpu", "TargetMeasureName": "max",
                   "MeasureValueType": "DOUBLE"}]}
    arn = tsq.create_scheduled_query(**definition("mixed", sql, target=target))["Arn"]
    tsq.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(RUNTIME_S))
    run = wait_run(tsq, arn, "MANUAL_TRIGGER_SUCCESS")
    assert run["ExecutionStats"]["QueryResultRows"] == 15
    assert run["ExecutionStats"]["RecordsIngested"] == 30
    rows = query_rows(tsq, f'SELECT measure_name, count(*) AS n, max(measure_value::double) AS m '
                           f'FROM "{DB}"."mixed" GROUP BY measure_name ORDER BY measure_name')
    assert [(r["measure_name"], r["n"]) for r in rows] == [("avg", "15"), ("max", "15")]
    top = max(value(i, s) for i in range(3) for s in range(3300, 3600))
    assert float(rows[1]["m"]) == top
    tsq.delete_scheduled_query(ScheduledQueryArn=arn)


ERRS_SQL = (f"SELECT CASE WHEN host = 'h0' THEN NULL ELSE host END AS host, "
            f"bin(time, 1m) AS binned_time, avg(measure_value::double) AS avg_cpu "
            f'FROM "{DB}"."{SRC}" WHERE time >= @scheduled_runtime - 5m '
            f"AND time < @scheduled_runtime GROUP BY host, bin(time, 1m)")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_error_report_for_rows_that_cannot_be_mapped(tsq, srv, source, moto, reports_dir, where):
    bucket = LOCAL_BUCKET if where == "local" else MOTO_BUCKET
    table = "errs" if where == "local" else "errs_s3"
    arn = tsq.create_scheduled_query(**definition(f"errs-{where}", ERRS_SQL,
                                                  target=rollup_target(table),
                                                  bucket=bucket))["Arn"]
    tsq.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(RUNTIME_S))
    run = wait_run(tsq, arn, "MANUAL_TRIGGER_SUCCESS")
    # 5 windows x 3 hosts; h0's 5 rows have a NULL dimension.
    assert run["ExecutionStats"]["QueryResultRows"] == 15
    assert run["ExecutionStats"]["RecordsIngested"] == 10
    location = run["ErrorReportLocation"]["S3ReportLocation"]
    assert location["BucketName"] == bucket
    key = location["ObjectKey"]
    assert key.startswith(f"errors/{arn.rsplit('/', 1)[1]}/") and "/Manual/" in key, key
    if where == "local":
        report = json.loads((reports_dir / key).read_text())
    else:
        report = json.loads(moto.client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["reportId"]
    assert sum(len(e["records"]) for e in report["errors"]) == 5, report
    assert all(e["reason"] for e in report["errors"])
    runs = runs_table(srv, f"errs-{where}")
    assert runs[-1]["rows_unmapped"] == 5 and runs[-1]["records_ingested"] == 10
    assert runs[-1]["error_report"] == f"s3://{bucket}/{key}"
    tsq.delete_scheduled_query(ScheduledQueryArn=arn)


def test_failed_run_is_recorded(tsq, tsw, srv, source, moto):
    topic, queue = moto.topic_with_queue("failing")
    # Reads a table that is dropped after the query was accepted.
    tsw.create_table(DatabaseName=DB, TableName="doomed")
    arn = tsq.create_scheduled_query(**definition(
        "failing", f'SELECT count(*) AS n FROM "{DB}"."doomed"', topic=topic))["Arn"]
    tsw.delete_table(DatabaseName=DB, TableName="doomed")
    tsq.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(RUNTIME_S))
    run = wait_run(tsq, arn, "MANUAL_TRIGGER_FAILURE")
    assert run["FailureReason"]
    desc = tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]
    assert [r["RunStatus"] for r in desc["RecentlyFailedRuns"]] == ["MANUAL_TRIGGER_FAILURE"]
    assert tsq.list_scheduled_queries()["ScheduledQueries"]
    msgs = moto.messages(queue, lambda m: any(x.get("type") == "MANUAL_TRIGGER_FAILURE"
                                              for x in m))
    failed = next(x for x in msgs if x.get("type") == "MANUAL_TRIGGER_FAILURE")
    assert failed["scheduledQueryRunSummary"]["failureReason"] == run["FailureReason"]
    runs = runs_table(srv, "failing")
    assert runs[-1]["status"] == "MANUAL_TRIGGER_FAILURE" and runs[-1]["error"]
    tsq.delete_scheduled_query(ScheduledQueryArn=arn)
    assert moto.messages(queue, lambda m: any(x.get("type") == "SCHEDULED_QUERY_DELETED"
                                              for x in m))[-1] == {
        "type": "SCHEDULED_QUERY_DELETED", "arn": arn}


AUTO_SQL = (f"SELECT host, bin(@scheduled_runtime, 1m) AS binned_time, "
            f"count(*) AS n FROM \"{DB}\".\"{SRC}\" GROUP BY host")


def auto_target(table: str) -> dict:
    return {"DatabaseName": DB, "TableName": table, "TimeColumn": "binned_time",
            "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}],
            "MultiMeasureMappings": {"TargetMultiMeasureName": "counts",
                                     "MultiMeasureAttributeMappings": [
                                         {"SourceColumn": "n", "MeasureValueType": "BIGINT"}]}}


def test_automatic_runs_and_a_disabled_query(tsq, tsw, srv, source, moto):
    topic, queue = moto.topic_with_queue("auto")
    tsw.create_table(DatabaseName=DB, TableName="paused")
    started = time.time()
    arn = tsq.create_scheduled_query(**definition("auto-1m", AUTO_SQL, schedule="rate(1 minute)",
                                                  target=auto_target("auto"),
                                                  topic=topic))["Arn"]
    paused = tsq.create_scheduled_query(**definition(
        "paused-1m", AUTO_SQL, schedule="rate(1 minute)", target=auto_target("paused"),
        topic=topic))["Arn"]
    tsq.update_scheduled_query(ScheduledQueryArn=paused, State="DISABLED")
    desc = tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]
    next_at = desc["NextInvocationTime"].timestamp()
    assert 0 < next_at - started <= 61, desc

    run = wait_run(tsq, arn, "AUTO_TRIGGER_SUCCESS", timeout=90)
    assert run["InvocationTime"].timestamp() == next_at
    assert run["ExecutionStats"]["RecordsIngested"] == 3
    rows = query_rows(tsq, f'SELECT host, time, n FROM "{DB}"."auto"')
    assert sorted(r["host"] for r in rows) == list(HOSTS)
    assert all(r["n"] == "3600" for r in rows)
    desc = tsq.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]
    assert desc["PreviousInvocationTime"].timestamp() == next_at
    assert desc["NextInvocationTime"].timestamp() == next_at + 60

    # The disabled one did not run at the same minute.
    time.sleep(1)
    desc = tsq.describe_scheduled_query(ScheduledQueryArn=paused)["ScheduledQuery"]
    assert desc["State"] == "DISABLED" and "LastRunSummary" not in desc, desc
    assert query_rows(tsq, f'SELECT count(*) AS n FROM "{DB}"."paused"')[0]["n"] == "0"
    assert runs_table(srv, "paused-1m") == []
    auto_runs = runs_table(srv, "auto-1m")
    assert auto_runs[0]["trigger"] == "AUTO" and auto_runs[0]["status"] == "AUTO_TRIGGER_SUCCESS"

    msgs = moto.messages(queue, lambda m: any(x.get("type") == "AUTO_TRIGGER_SUCCESS"
                                              for x in m))
    kinds = [(m["type"], m["arn"]) for m in msgs]
    assert kinds[:3] == [("SCHEDULED_QUERY_CREATING", arn), ("SCHEDULED_QUERY_CREATING", paused),
                         ("SCHEDULED_QUERY_UPDATE", paused)], kinds
    assert msgs[2]["state"] == "DISABLED"
    auto = next(m for m in msgs if m["type"] == "AUTO_TRIGGER_SUCCESS")
    assert auto["arn"] == arn and auto["nextInvocationEpochSecond"] == next_at + 60
    assert auto["scheduledQueryRunSummary"]["invocationEpochSecond"] == next_at

    # ENABLED again: it runs at its next minute.
    tsq.update_scheduled_query(ScheduledQueryArn=paused, State="ENABLED")
    enabled_at = time.time()
    run = wait_run(tsq, paused, "AUTO_TRIGGER_SUCCESS", timeout=90)
    assert run["InvocationTime"].timestamp() > enabled_at - 1
    assert query_rows(tsq, f'SELECT count(*) AS n FROM "{DB}"."paused"')[0]["n"] == "3"
    tsq.update_scheduled_query(ScheduledQueryArn=arn, State="DISABLED")
    tsq.update_scheduled_query(ScheduledQueryArn=paused, State="DISABLED")


# ---------------------------------------------------------------------------------------------
# --require-auth: runs use the owner's permissions; owners and admins of * see a query


def test_require_auth_owner_permissions_visibility_and_audit(hourglass_bin, module_server):
    from sectest import add_user, query_sql, token_headers, user_cmd

    sec = module_server(args=["--require-auth"])
    d = sec.data_dir
    users = {"op": add_user(hourglass_bin, d, "op", ("*", "admin")),
             "owner": add_user(hourglass_bin, d, "owner", ("sec", "admin")),
             "stranger": add_user(hourglass_bin, d, "stranger", ("sec", "read"))}

    def tsc(who: str):
        return timestream(sec.url, users[who]["access_key_id"], users[who]["secret_access_key"])

    op_w, op_q = tsc("op")
    op_w.create_database(DatabaseName="sec")
    for t in ("src", "dst"):
        op_w.create_table(DatabaseName="sec", TableName=t)
    now_ms = int(time.time() * 1000)
    op_w.write_records(DatabaseName="sec", TableName="src", Records=[
        {"Dimensions": [{"Name": "host", "Value": h}], "MeasureName": "cpu",
         "MeasureValue": "1.5", "MeasureValueType": "DOUBLE", "Time": str(now_ms - 1000 * i)}
        for h in HOSTS for i in range(10)])
    sql = ('SELECT host, bin(@scheduled_runtime, 1m) AS binned_time, count(*) AS n '
           'FROM "sec"."src" GROUP BY host')
    target = {**auto_target("dst"), "DatabaseName": "sec"}
    _, owner_q = tsc("owner")
    _, stranger_q = tsc("stranger")

    # The stranger may read sec but not write it: no query into it.
    with pytest.raises(ClientError) as e:
        stranger_q.create_scheduled_query(**definition("theirs", sql, target=target))
    assert error(e)[0] == "AccessDeniedException"

    arn = owner_q.create_scheduled_query(**definition("owned", sql, target=target))["Arn"]
    owner_q.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(now_ms // 1000))
    run = wait_run(owner_q, arn, "MANUAL_TRIGGER_SUCCESS")
    assert run["ExecutionStats"]["RecordsIngested"] == 3

    # Only the owner and admins of * see it.
    for call in (lambda: stranger_q.describe_scheduled_query(ScheduledQueryArn=arn),
                 lambda: stranger_q.execute_scheduled_query(ScheduledQueryArn=arn,
                                                            InvocationTime=at(now_ms // 1000)),
                 lambda: stranger_q.update_scheduled_query(ScheduledQueryArn=arn,
                                                           State="DISABLED"),
                 lambda: stranger_q.delete_scheduled_query(ScheduledQueryArn=arn)):
        with pytest.raises(ClientError) as e:
            call()
        assert error(e)[0] == "ResourceNotFoundException"
    assert stranger_q.list_scheduled_queries()["ScheduledQueries"] == []
    assert [q["Arn"] for q in op_q.list_scheduled_queries()["ScheduledQueries"]] == [arn]
    assert op_q.describe_scheduled_query(ScheduledQueryArn=arn)["ScheduledQuery"]["Name"] == "owned"

    # Runs use the owner's permissions as they are at the time of the run.
    out = user_cmd(hourglass_bin, d, "revoke", "owner", "--database", "sec",
                   "--permission", "admin")
    assert out.returncode == 0, out.stderr
    time.sleep(1.5)
    owner_q.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(now_ms // 1000))
    run = wait_run(owner_q, arn, "MANUAL_TRIGGER_FAILURE")
    assert run["FailureReason"]
    # Allowed to read the source again but not to write the target: the run fails before its
    # query runs.
    out = user_cmd(hourglass_bin, d, "grant", "owner", "--database", "sec",
                   "--permission", "read")
    assert out.returncode == 0, out.stderr
    time.sleep(1.5)
    failed_at = time.time()
    owner_q.execute_scheduled_query(ScheduledQueryArn=arn, InvocationTime=at(now_ms // 1000))
    run = wait_run(owner_q, arn, "MANUAL_TRIGGER_FAILURE", after=failed_at - 1)
    assert "not authorized to write to database sec" in run["FailureReason"], run

    # Create / Execute / Delete are in the audit log, with the ARN as the target.
    op_q.delete_scheduled_query(ScheduledQueryArn=arn)
    r = query_sql(sec.url, "", "SELECT user, action, target, outcome FROM system.audit_log "
                               "WHERE action LIKE '%ScheduledQuery'",
                  headers=token_headers(users["op"]))
    assert r.status_code == 200, r.text
    events = {(e["user"], e["action"], e["target"], e["outcome"]) for e in r.json()}
    assert ("owner", "CreateScheduledQuery", "scheduled-query/owned", "ok") in events, events
    assert ("owner", "ExecuteScheduledQuery", arn, "ok") in events, events
    assert ("op", "DeleteScheduledQuery", arn, "ok") in events, events
    assert any(e[:2] == ("stranger", "CreateScheduledQuery") and e[3] != "ok"
               for e in events), events
    # system.scheduled_query_runs is for operators, as the audit log.
    runs = query_sql(sec.url, "", "SELECT status FROM system.scheduled_query_runs",
                     headers=token_headers(users["op"]))
    assert [x["status"] for x in runs.json()] == ["MANUAL_TRIGGER_SUCCESS",
                                                  "MANUAL_TRIGGER_FAILURE",
                                                  "MANUAL_TRIGGER_FAILURE"], runs.text
    denied = query_sql(sec.url, "", "SELECT status FROM system.scheduled_query_runs",
                       headers=token_headers(users["stranger"]))
    assert denied.status_code != 200


# ---------------------------------------------------------------------------------------------
# Last: a restart


def test_definitions_and_runs_survive_a_restart(tsq, srv, source):
    before = {q["Arn"]: q for q in tsq.list_scheduled_queries()["ScheduledQueries"]}
    assert before
    runs_before = srv.rows("SELECT count(*) AS n FROM system.scheduled_query_runs", db=None)
    rollup = next(a for a, q in before.items() if q["Name"] == "rollup-1m")
    desc_before = tsq.describe_scheduled_query(ScheduledQueryArn=rollup)["ScheduledQuery"]
    srv.restart()
    _, tsq2 = timestream(srv.url)
    after = {q["Arn"]: q for q in tsq2.list_scheduled_queries()["ScheduledQueries"]}
    assert after.keys() == before.keys()
    desc = tsq2.describe_scheduled_query(ScheduledQueryArn=rollup)["ScheduledQuery"]
    for k in ("Name", "QueryString", "ScheduleConfiguration", "TargetConfiguration",
              "NotificationConfiguration", "ErrorReportConfiguration", "LastRunSummary",
              "CreationTime", "State"):
        assert desc[k] == desc_before[k], k
    runs_after = srv.rows("SELECT count(*) AS n FROM system.scheduled_query_runs", db=None)
    assert runs_after[0]["n"] >= runs_before[0]["n"] > 0
    # And it still runs.
    tsq2.execute_scheduled_query(ScheduledQueryArn=rollup, InvocationTime=at(RUNTIME_S))
    run = wait_run(tsq2, rollup, "MANUAL_TRIGGER_SUCCESS",
                   after=desc_before["LastRunSummary"]["TriggerTime"].timestamp() + 0.001)
    assert run["ExecutionStats"]["RecordsIngested"] == 180
