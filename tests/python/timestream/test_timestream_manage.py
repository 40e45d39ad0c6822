"""Timestream management operations through boto3: databases, tables, tags, endpoints, the JSON
1.0 envelope and its errors.

Covers: Create/Describe/List(paginated)/Update/DeleteDatabase with Arn, TableCount, KmsKeyId and
epoch timestamps; the non-empty database rule; Create/Describe/List(paginated, by database)/
Update/DeleteTable with retention, magnetic-store writes, rejected-data location and composite
partition key described back; retention and schema update rules; tables made by line protocol;
Tag/Untag/ListTagsForResource on both clients; DescribeEndpoints on both clients; unknown and
missing targets, malformed JSON, wrong member types; DeleteTable removing the table's Parquet
files, and staying deleted across a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import requests
from botocore.exceptions import ClientError

from tshelpers import ACCOUNT, REGION, error_of, now_ms, rec, ts_clients

TARGET = "Timestream_20181101."


def raw(url: str, target: str | None, body: bytes | str):
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target is not None:
        headers["X-Amz-Target"] = target
    return requests.post(url + "/", data=body, headers=headers, timeout=30)


def test_database_lifecycle(tsw, db):
    before = time.time()
    out = tsw.create_database(DatabaseName=db, Tags=[{"Key": "team", "Value": "ingest"}])["Database"]
    assert out["Arn"] == f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/{db}"
    assert out["DatabaseName"] == db
    assert out["TableCount"] == 0
    assert out["KmsKeyId"]
    assert isinstance(out["CreationTime"], dt.datetime)
    assert before - 5 <= out["CreationTime"].timestamp() <= time.time() + 5
    assert out["LastUpdatedTime"] == out["CreationTime"]

    with pytest.raises(ClientError) as e:
        tsw.create_database(DatabaseName=db)
    assert error_of(e)[:2] == ("ConflictException", 409)

    tsw.create_table(DatabaseName=db, TableName="t1")
    desc = tsw.describe_database(DatabaseName=db)["Database"]
    assert desc["TableCount"] == 1
    assert desc["Arn"] == out["Arn"]

    upd = tsw.update_database(DatabaseName=db, KmsKeyId="alias/my-key")["Database"]
    assert upd["KmsKeyId"] == "alias/my-key"
    assert tsw.describe_database(DatabaseName=db)["Database"]["KmsKeyId"] == "alias/my-key"

    # Timestream refuses to delete a database that still has tables.
    with pytest.raises(ClientError) as e:
        tsw.delete_database(DatabaseName=db)
    assert error_of(e)[:2] == ("ValidationException", 400)
    tsw.delete_table(DatabaseName=db, TableName="t1")
    tsw.delete_database(DatabaseName=db)
    with pytest.raises(ClientError) as e:
        tsw.describe_database(DatabaseName=db)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        tsw.delete_database(DatabaseName=db)
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_database_names_and_required_members(tsw):
    with pytest.raises(ClientError) as e:
        tsw.create_database(DatabaseName="has space")
    code, status, message = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    assert "databaseName" in message and "[a-zA-Z0-9_.-]+" in message
    with pytest.raises(ClientError) as e:
        tsw.update_database(DatabaseName="nope_nope", KmsKeyId="k")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_list_databases_paginates(tsw, db):
    names = [f"{db}_{i:02d}" for i in range(23)]
    for n in names:
        tsw.create_database(DatabaseName=n)
    seen, token, pages = [], None, 0
    while True:
        kw = {"MaxResults": 5}
        if token:
            kw["NextToken"] = token
        page = tsw.list_databases(**kw)
        pages += 1
        assert len(page["Databases"]) <= 5
        seen.extend(d["DatabaseName"] for d in page["Databases"])
        token = page.get("NextToken")
        if not token:
            break
    assert [n for n in seen if n.startswith(db)] == names
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert pages >= 5
    with pytest.raises(ClientError) as e:
        tsw.list_databases(MaxResults=5, NextToken="not-a-token")
    assert error_of(e)[0] == "ValidationException"


def test_table_properties_are_described_back(tsw, tsdb):
    created = tsw.create_table(
        DatabaseName=tsdb,
        TableName="sensors",
        RetentionProperties={"MemoryStoreRetentionPeriodInHours": 12, "MagneticStoreRetentionPeriodInDays": 30},
        MagneticStoreWriteProperties={
            "EnableMagneticStoreWrites": True,
            "MagneticStoreRejectedDataLocation": {
                "S3Configuration": {"BucketName": "rejected-bucket", "ObjectKeyPrefix": "ts", "EncryptionOption": "SSE_S3"}
            },
        },
        Schema={"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "device", "EnforcementInRecord": "OPTIONAL"}]},
        Tags=[{"Key": "env", "Value": "test"}],
    )["Table"]
    assert created["Arn"] == f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/{tsdb}/table/sensors"
    assert created["TableStatus"] == "ACTIVE"
    assert created["RetentionProperties"] == {
        "MemoryStoreRetentionPeriodInHours": 12, "MagneticStoreRetentionPeriodInDays": 30}
    assert created["MagneticStoreWriteProperties"] == {
        "EnableMagneticStoreWrites": True,
        "MagneticStoreRejectedDataLocation": {
            "S3Configuration": {"BucketName": "rejected-bucket", "ObjectKeyPrefix": "ts", "EncryptionOption": "SSE_S3"}},
    }
    assert created["Schema"] == {"CompositePartitionKey": [
        {"Type": "DIMENSION", "Name": "device", "EnforcementInRecord": "OPTIONAL"}]}
    described = tsw.describe_table(DatabaseName=tsdb, TableName="sensors")["Table"]
    assert described == created

    # Defaults: 6 hours, 73000 days, no magnetic writes, partitioned by measure name.
    plain = tsw.create_table(DatabaseName=tsdb, TableName="plain")["Table"]
    assert plain["RetentionProperties"] == {
        "MemoryStoreRetentionPeriodInHours": 6, "MagneticStoreRetentionPeriodInDays": 73000}
    assert plain["MagneticStoreWriteProperties"] == {"EnableMagneticStoreWrites": False}
    assert plain["Schema"] == {"CompositePartitionKey": [{"Type": "MEASURE"}]}

    with pytest.raises(ClientError) as e:
        tsw.create_table(DatabaseName=tsdb, TableName="plain")
    assert error_of(e)[:2] == ("ConflictException", 409)
    with pytest.raises(ClientError) as e:
        tsw.create_table(DatabaseName=tsdb + "_missing", TableName="x1")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        tsw.create_table(DatabaseName=tsdb, TableName="bad",
                         RetentionProperties={"MemoryStoreRetentionPeriodInHours": 9000,
                                              "MagneticStoreRetentionPeriodInDays": 1})
    code, _, message = error_of(e)
    assert code == "ValidationException" and "memoryStoreRetentionPeriodInHours" in message


def test_update_table_retention_writes_and_schema(tsw, tsdb):
    tsw.create_table(
        DatabaseName=tsdb, TableName="t1",
        Schema={"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "host", "EnforcementInRecord": "OPTIONAL"}]})
    before = tsw.describe_table(DatabaseName=tsdb, TableName="t1")["Table"]
    time.sleep(0.01)
    after = tsw.update_table(
        DatabaseName=tsdb, TableName="t1",
        RetentionProperties={"MemoryStoreRetentionPeriodInHours": 24, "MagneticStoreRetentionPeriodInDays": 365},
        MagneticStoreWriteProperties={"EnableMagneticStoreWrites": True},
        Schema={"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "host", "EnforcementInRecord": "REQUIRED"}]},
    )["Table"]
    assert after["RetentionProperties"] == {
        "MemoryStoreRetentionPeriodInHours": 24, "MagneticStoreRetentionPeriodInDays": 365}
    assert after["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"] is True
    assert after["Schema"]["CompositePartitionKey"][0]["EnforcementInRecord"] == "REQUIRED"
    assert after["LastUpdatedTime"] > before["LastUpdatedTime"]
    assert after["CreationTime"] == before["CreationTime"]
    # Partition keys keep name, type and order.
    with pytest.raises(ClientError) as e:
        tsw.update_table(DatabaseName=tsdb, TableName="t1",
                         Schema={"CompositePartitionKey": [{"Type": "MEASURE"}]})
    assert error_of(e)[0] == "ValidationException"
    # A REQUIRED partition-key dimension must be in every record.
    with pytest.raises(ClientError) as e:
        tsw.write_records(DatabaseName=tsdb, TableName="t1", Records=[
            {"Dimensions": [{"Name": "rack", "Value": "r1"}], "MeasureName": "cpu",
             "MeasureValue": "1", "Time": str(now_ms())}])
    assert error_of(e)[0] == "RejectedRecordsException"
    assert "host" in e.value.response["RejectedRecords"][0]["Reason"]
    with pytest.raises(ClientError) as e:
        tsw.update_table(DatabaseName=tsdb, TableName="nope")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_list_tables_paginates_and_filters(tsw, tsdb):
    other = tsdb + "_other"
    tsw.create_database(DatabaseName=other)
    for i in range(12):
        tsw.create_table(DatabaseName=tsdb, TableName=f"tab{i:02d}")
    tsw.create_table(DatabaseName=other, TableName="elsewhere")
    names, token = [], None
    while True:
        kw = {"DatabaseName": tsdb, "MaxResults": 5}
        if token:
            kw["NextToken"] = token
        page = tsw.list_tables(**kw)
        names.extend(t["TableName"] for t in page["Tables"])
        assert all(t["DatabaseName"] == tsdb for t in page["Tables"])
        token = page.get("NextToken")
        if not token:
            break
    assert names == [f"tab{i:02d}" for i in range(12)]
    # Without DatabaseName: tables of every database.
    everything, token = [], None
    while True:
        page = tsw.list_tables(**({"NextToken": token} if token else {}))
        everything.extend((t["DatabaseName"], t["TableName"]) for t in page["Tables"])
        token = page.get("NextToken")
        if not token:
            break
    assert (other, "elsewhere") in everything and (tsdb, "tab11") in everything
    with pytest.raises(ClientError) as e:
        tsw.list_tables(DatabaseName=tsdb + "_missing")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_tables_from_line_protocol_are_the_same_tables(shared_server, tsw, tsq, db):
    t = time.time_ns()
    shared_server.write_ok(f"weather,station=s1 temp=21.5 {t}", db=db)
    desc = tsw.describe_table(DatabaseName=db, TableName="weather")["Table"]
    assert desc["TableStatus"] == "ACTIVE"
    assert tsw.describe_database(DatabaseName=db)["Database"]["TableCount"] == 1
    # WriteRecords into it, then both rows through the query API.
    tsw.write_records(DatabaseName=db, TableName="weather", Records=[
        {"Dimensions": [{"Name": "station", "Value": "s2"}], "MeasureName": "weather",
         "MeasureValues": [{"Name": "temp", "Value": "19.0", "Type": "DOUBLE"}],
         "MeasureValueType": "MULTI", "Time": str(t // 1_000_000)}])
    out = tsq.query(QueryString=f'SELECT station, temp FROM "{db}"."weather" ORDER BY station')
    assert [[d["ScalarValue"] for d in r["Data"]] for r in out["Rows"]] == [["s1", "21.5"], ["s2", "19.0"]]
    # And line protocol can write into a table made by CreateTable.
    tsw.create_table(DatabaseName=db, TableName="made_here")
    shared_server.write_ok(f"made_here,host=h1 v=1i {t}", db=db)
    assert shared_server.count("made_here", db=db) == 1


def test_tags_on_databases_and_tables_from_both_clients(tsw, tsq, tsdb):
    db_arn = tsw.describe_database(DatabaseName=tsdb)["Database"]["Arn"]
    table_arn = tsw.create_table(DatabaseName=tsdb, TableName="tagged",
                                 Tags=[{"Key": "a", "Value": "1"}])["Table"]["Arn"]
    assert tsw.list_tags_for_resource(ResourceARN=table_arn)["Tags"] == [{"Key": "a", "Value": "1"}]
    tsw.tag_resource(ResourceARN=table_arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "9"}])
    assert tsw.list_tags_for_resource(ResourceARN=table_arn)["Tags"] == [
        {"Key": "a", "Value": "9"}, {"Key": "b", "Value": "2"}]
    tsq.untag_resource(ResourceARN=table_arn, TagKeys=["a"])
    assert tsq.list_tags_for_resource(ResourceARN=table_arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    tsq.tag_resource(ResourceARN=db_arn, Tags=[{"Key": "owner", "Value": "me"}])
    assert tsw.list_tags_for_resource(ResourceARN=db_arn)["Tags"] == [{"Key": "owner", "Value": "me"}]
    for bad in (f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/{tsdb}/table/none",
                "arn:aws:s3:::bucket"):
        with pytest.raises(ClientError) as e:
            tsw.list_tags_for_resource(ResourceARN=bad)
        assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        tsw.tag_resource(ResourceARN=db_arn, Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert error_of(e)[0] == "ValidationException"


def test_describe_endpoints_on_both_clients(shared_server, tsw, tsq):
    # Plain HTTP: the scheme is part of the address (SDKs would assume https without it); see
    # test_timestream_discovery.py.
    address = shared_server.url
    for client in (tsw, tsq):
        out = client.describe_endpoints()
        assert out["Endpoints"] == [{"Address": address, "CachePeriodInMinutes": 1440}]


def test_advertised_endpoint_flag(server):
    srv = server(args=["--advertised-endpoint", "ts.example.com:443"])
    tsw, _ = ts_clients(srv.url)
    assert tsw.describe_endpoints()["Endpoints"][0]["Address"] == "ts.example.com:443"


def test_protocol_errors(shared_server, db):
    url = shared_server.url
    r = raw(url, TARGET + "NoSuchOperation", "{}")
    assert r.status_code == 404
    assert r.json()["__type"].endswith("UnknownOperationException")
    assert r.headers["Content-Type"] == "application/x-amz-json-1.0"
    r = raw(url, None, "{}")
    assert r.status_code == 404 and r.json()["__type"].endswith("UnknownOperationException")
    r = raw(url, "OtherService_2020.CreateDatabase", "{}")
    assert r.status_code == 404
    r = raw(url, TARGET + "CreateDatabase", "{not json")
    assert r.status_code == 400 and r.json()["__type"] == "ValidationException"
    r = raw(url, TARGET + "CreateDatabase", json.dumps({"DatabaseName": 7}))
    body = r.json()
    assert r.status_code == 400 and body["__type"] == "ValidationException"
    assert "databaseName" in body["Message"]
    r = raw(url, TARGET + "WriteRecords", json.dumps(
        {"DatabaseName": db, "TableName": "x", "Records": [{"Version": "one"}]}))
    assert r.status_code == 400 and "records.1.member.version" in r.json()["Message"]
    r = raw(url, TARGET + "CreateDatabase", json.dumps({}))
    assert r.status_code == 400 and "databaseName" in r.json()["Message"]
    # Signatures are not checked: a request without Authorization works.
    r = raw(url, TARGET + "ListDatabases", "{}")
    assert r.status_code == 200 and "Databases" in r.json()


def parquet_files(root):
    return sorted(p for p in root.rglob("*.parquet") if p.is_file())


def test_delete_table_removes_its_files_and_stays_deleted(server):
    srv = server(args=["--maintenance-interval-ms", "3600000"])
    tsw, tsq = ts_clients(srv.url)
    tsw.create_database(DatabaseName="dropme")
    tsw.create_table(DatabaseName="dropme", TableName="gone")
    tsw.create_table(DatabaseName="dropme", TableName="kept")
    t = now_ms()
    for table in ("gone", "kept"):
        tsw.write_records(DatabaseName="dropme", TableName=table,
                          Records=[rec(f"h{i}", i, t - i) for i in range(50)])
    srv.flush()
    gone_dir = srv.data_dir / "magnetic" / "dropme" / "gone"
    kept_dir = srv.data_dir / "magnetic" / "dropme" / "kept"
    assert parquet_files(gone_dir) and parquet_files(kept_dir)
    # Rows also in the memory store (and the WAL) when the table is dropped.
    tsw.write_records(DatabaseName="dropme", TableName="gone", Records=[rec("late", 1, t + 1)])
    tsw.delete_table(DatabaseName="dropme", TableName="gone")
    assert not gone_dir.exists()
    assert parquet_files(kept_dir)
    with pytest.raises(ClientError) as e:
        tsw.describe_table(DatabaseName="dropme", TableName="gone")
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        tsq.query(QueryString='SELECT * FROM "dropme"."gone"')
    assert error_of(e)[0] == "ValidationException"

    srv.restart()
    tsw, tsq = ts_clients(srv.url)
    names = [t["TableName"] for t in tsw.list_tables(DatabaseName="dropme")["Tables"]]
    assert names == ["kept"]
    # A new table of the same name starts empty.
    tsw.create_table(DatabaseName="dropme", TableName="gone")
    out = tsq.query(QueryString='SELECT count(*) FROM "dropme"."gone"')
    assert out["Rows"][0]["Data"][0]["ScalarValue"] == "0"
    out = tsq.query(QueryString='SELECT count(*) FROM "dropme"."kept"')
    assert out["Rows"][0]["Data"][0]["ScalarValue"] == "50"


def test_operations_hourglass_does_not_run(tsw, tsq):
    assert tsw.list_batch_load_tasks()["BatchLoadTasks"] == []
    assert tsq.list_scheduled_queries()["ScheduledQueries"] == []
    with pytest.raises(ClientError) as e:
        tsw.describe_batch_load_task(TaskId="ABC123")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        tsq.describe_scheduled_query(
            ScheduledQueryArn=f"arn:aws:timestream:{REGION}:{ACCOUNT}:scheduled-query/none")
    assert error_of(e)[0] == "ResourceNotFoundException"
    settings = tsq.describe_account_settings()
    assert settings["QueryPricingModel"] == "BYTES_SCANNED"
