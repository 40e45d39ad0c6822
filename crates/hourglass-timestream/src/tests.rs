//! Operations end to end through [`Service::call`] over a real engine in a temporary directory,
//! with a manual clock.

use std::sync::Arc;

use hourglass_core::time::NANOS_PER_HOUR;
use hourglass_core::ManualClock;
use hourglass_query::session::QueryLimits;
use hourglass_query::QueryEngine;
use hourglass_storage::{Engine, EngineConfig};
use serde_json::{json, Value};

use super::*;

/// 2024-01-01T00:00:00Z.
const NOW: i64 = 1_704_067_200_000_000_000;
const NOW_MS: i64 = NOW / 1_000_000;

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    svc: Service,
}

async fn open(dir: tempfile::TempDir, clock: Arc<ManualClock>) -> Harness {
    let mut config = EngineConfig::new(dir.path());
    config.maintenance_interval = std::time::Duration::from_secs(3600);
    let engine = Engine::open(config, clock.clone()).await.unwrap();
    let query = QueryEngine::new(engine.clone(), QueryLimits::default()).unwrap();
    let svc = Service::new(TimestreamState {
        engine,
        query,
        config: TimestreamConfig::default(),
        served_address: "127.0.0.1:8086".into(),
        served_tls: false,
        security: Default::default(),
    });
    Harness { dir, clock, svc }
}

async fn harness() -> Harness {
    open(
        tempfile::tempdir().unwrap(),
        Arc::new(ManualClock::new(NOW)),
    )
    .await
}

impl Harness {
    async fn call(&self, op: &str, body: Value) -> Result<Value, ApiError> {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.svc
            .call(op, &bytes)
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn err(&self, op: &str, body: Value) -> ApiError {
        match self.call(op, body).await {
            Ok(v) => panic!("{op} succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn setup(&self, db: &str, table: &str, extra: Value) {
        self.ok("CreateDatabase", json!({"DatabaseName": db})).await;
        let mut body = json!({"DatabaseName": db, "TableName": table});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.ok("CreateTable", body).await;
    }

    async fn sql(&self, db: &str, sql: &str) -> Vec<arrow::array::RecordBatch> {
        self.svc.query.collect(db, sql).await.unwrap()
    }

    async fn shutdown(self) -> (tempfile::TempDir, Arc<ManualClock>) {
        self.svc.engine.shutdown();
        (self.dir, self.clock)
    }
}

fn record(host: &str, value: &str, time_ms: i64) -> Value {
    json!({
        "Dimensions": [{"Name": "host", "Value": host}],
        "MeasureName": "cpu",
        "MeasureValue": value,
        "Time": time_ms.to_string(),
    })
}

fn rejected(e: &ApiError) -> Vec<Value> {
    assert_eq!(e.code, "RejectedRecordsException", "{e}");
    assert_eq!(e.status.as_u16(), 419);
    e.extra.as_ref().unwrap()["RejectedRecords"]
        .as_array()
        .unwrap()
        .clone()
}

fn pretty(batches: &[arrow::array::RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn databases_lifecycle_pagination_and_errors() {
    let h = harness().await;
    let db = h
        .ok(
            "CreateDatabase",
            json!({"DatabaseName": "sales", "Tags": [{"Key": "team", "Value": "a"}]}),
        )
        .await;
    assert_eq!(
        db["Database"]["Arn"],
        "arn:aws:timestream:us-east-1:000000000000:database/sales"
    );
    assert_eq!(db["Database"]["TableCount"], 0);
    assert_eq!(db["Database"]["CreationTime"], json!(1_704_067_200.0));
    let e = h
        .err("CreateDatabase", json!({"DatabaseName": "sales"}))
        .await;
    assert_eq!((e.code, e.status.as_u16()), ("ConflictException", 409));
    let e = h.err("CreateDatabase", json!({})).await;
    assert_eq!(e.code, "ValidationException");
    assert!(e.message.contains("'databaseName'"), "{}", e.message);
    let e = h
        .err("DescribeDatabase", json!({"DatabaseName": "nope"}))
        .await;
    assert_eq!(
        (e.code, e.status.as_u16()),
        ("ResourceNotFoundException", 404)
    );

    for i in 0..25 {
        h.ok(
            "CreateDatabase",
            json!({"DatabaseName": format!("db{i:02}")}),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"MaxResults": 10});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = h.ok("ListDatabases", body).await;
        pages += 1;
        for d in page["Databases"].as_array().unwrap() {
            names.push(d["DatabaseName"].as_str().unwrap().to_string());
        }
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 26);
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    let e = h.err("ListDatabases", json!({"MaxResults": 21})).await;
    assert!(
        e.message.contains("less than or equal to 20"),
        "{}",
        e.message
    );
    let e = h
        .err("ListDatabases", json!({"NextToken": "garbage"}))
        .await;
    assert_eq!(e.code, "ValidationException");

    let updated = h
        .ok(
            "UpdateDatabase",
            json!({"DatabaseName": "sales", "KmsKeyId": "my-key"}),
        )
        .await;
    assert_eq!(updated["Database"]["KmsKeyId"], "my-key");

    h.ok(
        "CreateTable",
        json!({"DatabaseName": "sales", "TableName": "orders"}),
    )
    .await;
    let e = h
        .err("DeleteDatabase", json!({"DatabaseName": "sales"}))
        .await;
    assert_eq!(e.code, "ValidationException");
    h.ok(
        "DeleteTable",
        json!({"DatabaseName": "sales", "TableName": "orders"}),
    )
    .await;
    h.ok("DeleteDatabase", json!({"DatabaseName": "sales"}))
        .await;
    let e = h
        .err("DeleteDatabase", json!({"DatabaseName": "sales"}))
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
}

#[tokio::test]
async fn tables_describe_update_tags_and_endpoints() {
    let h = harness().await;
    h.ok("CreateDatabase", json!({"DatabaseName": "iot"})).await;
    let t = h
        .ok(
            "CreateTable",
            json!({
                "DatabaseName": "iot", "TableName": "sensors",
                "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 12, "MagneticStoreRetentionPeriodInDays": 30},
                "MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": true,
                    "MagneticStoreRejectedDataLocation": {"S3Configuration": {"BucketName": "rejects", "EncryptionOption": "SSE_S3"}}},
                "Schema": {"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "device", "EnforcementInRecord": "OPTIONAL"}]},
                "Tags": [{"Key": "env", "Value": "test"}]
            }),
        )
        .await["Table"]
        .clone();
    assert_eq!(t["TableStatus"], "ACTIVE");
    assert_eq!(
        t["Arn"],
        "arn:aws:timestream:us-east-1:000000000000:database/iot/table/sensors"
    );
    assert_eq!(
        t["RetentionProperties"]["MemoryStoreRetentionPeriodInHours"],
        12
    );
    assert_eq!(
        t["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"],
        true
    );
    assert_eq!(
        t["MagneticStoreWriteProperties"]["MagneticStoreRejectedDataLocation"]["S3Configuration"]
            ["BucketName"],
        "rejects"
    );
    assert_eq!(t["Schema"]["CompositePartitionKey"][0]["Name"], "device");
    let d = h
        .ok(
            "DescribeTable",
            json!({"DatabaseName": "iot", "TableName": "sensors"}),
        )
        .await;
    assert_eq!(d["Table"], t);

    let e = h
        .err(
            "CreateTable",
            json!({"DatabaseName": "iot", "TableName": "x1x", "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 0, "MagneticStoreRetentionPeriodInDays": 1}}),
        )
        .await;
    assert!(
        e.message.contains("greater than or equal to 1"),
        "{}",
        e.message
    );
    let e = h
        .err(
            "CreateTable",
            json!({"DatabaseName": "nodb", "TableName": "abc"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");

    // Only the enforcement level of partition keys may change.
    let e = h
        .err(
            "UpdateTable",
            json!({"DatabaseName": "iot", "TableName": "sensors",
                   "Schema": {"CompositePartitionKey": [{"Type": "MEASURE"}]}}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let u = h
        .ok(
            "UpdateTable",
            json!({"DatabaseName": "iot", "TableName": "sensors",
                   "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 24, "MagneticStoreRetentionPeriodInDays": 60},
                   "Schema": {"CompositePartitionKey": [{"Type": "DIMENSION", "Name": "device", "EnforcementInRecord": "REQUIRED"}]}}),
        )
        .await;
    assert_eq!(
        u["Table"]["RetentionProperties"]["MagneticStoreRetentionPeriodInDays"],
        60
    );
    assert_eq!(
        u["Table"]["Schema"]["CompositePartitionKey"][0]["EnforcementInRecord"],
        "REQUIRED"
    );

    // A table made by line protocol is described and listed too.
    h.svc
        .engine
        .write_line_protocol(
            "iot",
            b"weather,station=a temp=1.5",
            hourglass_core::time::Precision::Nanosecond,
            true,
        )
        .unwrap();
    let list = h
        .ok(
            "ListTables",
            json!({"DatabaseName": "iot", "MaxResults": 1}),
        )
        .await;
    assert_eq!(list["Tables"][0]["TableName"], "sensors");
    let next = list["NextToken"].as_str().unwrap();
    let list = h
        .ok(
            "ListTables",
            json!({"DatabaseName": "iot", "NextToken": next}),
        )
        .await;
    assert_eq!(list["Tables"][0]["TableName"], "weather");
    assert_eq!(
        list["Tables"][0]["Schema"]["CompositePartitionKey"][0]["Type"],
        "MEASURE"
    );
    assert!(list.get("NextToken").is_none());

    // Tags on tables and databases.
    let arn = t["Arn"].as_str().unwrap();
    h.ok("TagResource", json!({"ResourceARN": arn, "Tags": [{"Key": "owner", "Value": "me"}, {"Key": "env", "Value": "prod"}]})).await;
    let tags = h
        .ok("ListTagsForResource", json!({"ResourceARN": arn}))
        .await;
    assert_eq!(
        tags["Tags"],
        json!([{"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "me"}])
    );
    h.ok(
        "UntagResource",
        json!({"ResourceARN": arn, "TagKeys": ["env"]}),
    )
    .await;
    let tags = h
        .ok("ListTagsForResource", json!({"ResourceARN": arn}))
        .await;
    assert_eq!(tags["Tags"], json!([{"Key": "owner", "Value": "me"}]));
    let e = h
        .err(
            "ListTagsForResource",
            json!({"ResourceARN": "arn:aws:timestream:us-east-1:000000000000:database/none"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");

    let ep = h.ok("DescribeEndpoints", json!({})).await;
    assert_eq!(
        ep,
        json!({"Endpoints": [{"Address": "http://127.0.0.1:8086", "CachePeriodInMinutes": 1440}]})
    );
    let e = h.svc.call("Frobnicate", b"{}").await.unwrap_err();
    assert_eq!(e.code, "com.amazon.coral.service#UnknownOperationException");
    assert_eq!(e.status.as_u16(), 404);
}

#[tokio::test]
async fn write_records_single_and_multi_measure_are_queryable() {
    let h = harness().await;
    h.setup("db1", "metrics", json!({})).await;
    let out = h
        .ok(
            "WriteRecords",
            json!({
                "DatabaseName": "db1", "TableName": "metrics",
                "CommonAttributes": {"Dimensions": [{"Name": "region", "Value": "eu"}], "Time": NOW_MS.to_string()},
                "Records": [
                    {"Dimensions": [{"Name": "host", "Value": "h1"}], "MeasureName": "cpu", "MeasureValue": "1.5"},
                    {"Dimensions": [{"Name": "host", "Value": "h1"}], "MeasureName": "count", "MeasureValue": "7", "MeasureValueType": "BIGINT"},
                    {"Dimensions": [{"Name": "host", "Value": "h1"}], "MeasureName": "state", "MeasureValue": "ok", "MeasureValueType": "VARCHAR"},
                    {"Dimensions": [{"Name": "host", "Value": "h1"}], "MeasureName": "up", "MeasureValue": "true", "MeasureValueType": "BOOLEAN"},
                    {"Dimensions": [{"Name": "host", "Value": "h1"}], "MeasureName": "boot", "MeasureValue": "1700000000", "MeasureValueType": "TIMESTAMP", "TimeUnit": "SECONDS", "Time": (NOW / 1_000_000_000).to_string()},
                    {"Dimensions": [{"Name": "host", "Value": "h2"}], "MeasureName": "stats", "MeasureValueType": "MULTI",
                     "MeasureValues": [{"Name": "load", "Value": "0.5", "Type": "DOUBLE"}, {"Name": "procs", "Value": "12", "Type": "BIGINT"}]}
                ]
            }),
        )
        .await;
    assert_eq!(
        out,
        json!({"RecordsIngested": {"Total": 6, "MemoryStore": 6, "MagneticStore": 0}})
    );
    let batches = h
        .sql(
            "db1",
            "SELECT host, measure_name, \"measure_value::double\" AS d, \"measure_value::bigint\" AS b, \"measure_value::varchar\" AS v, \"measure_value::boolean\" AS o, \"measure_value::timestamp\" AS t, load, procs FROM metrics ORDER BY measure_name",
        )
        .await;
    let text = pretty(&batches);
    for line in [
        "| h1   | boot         |     |   |    |      | 2023-11-14T22:13:20 |      |       |",
        "| h1   | count        |     | 7 |    |      |                     |      |       |",
        "| h1   | cpu          | 1.5 |   |    |      |                     |      |       |",
        "| h1   | state        |     |   | ok |      |                     |      |       |",
        "| h2   | stats        |     |   |    |      |                     | 0.5  | 12    |",
        "| h1   | up           |     |   |    | true |                     |      |       |",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    let def = h
        .svc
        .engine
        .catalog
        .snapshot()
        .table("db1", "metrics")
        .unwrap()
        .clone();
    let names: Vec<_> = def.columns.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"region") && names.contains(&"measure_value::timestamp"),
        "{names:?}"
    );
}

#[tokio::test]
async fn rejected_records_report_index_and_reason_and_others_are_written() {
    let h = harness().await;
    h.setup("db1", "t1", json!({})).await;
    let too_old = NOW_MS - 7 * 3_600_000;
    let e = h
        .err(
            "WriteRecords",
            json!({"DatabaseName": "db1", "TableName": "t1", "Records": [
                record("h1", "1", NOW_MS),
                record("h1", "abc", NOW_MS + 1),
                record("h2", "2", too_old),
                record("h3", "3", NOW_MS + 20 * 60_000),
                {"Dimensions": [{"Name": "host", "Value": "h4"}], "MeasureName": "cpu", "MeasureValue": "5", "MeasureValueType": "BIGINT", "Time": NOW_MS.to_string()},
            ]}),
        )
        .await;
    let list = rejected(&e);
    let indexes: Vec<_> = list
        .iter()
        .map(|r| r["RecordIndex"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 3]);
    assert_eq!(
        list[0]["Reason"],
        "The measure value 'abc' is not a valid DOUBLE."
    );
    assert_eq!(
        list[1]["Reason"],
        "The record timestamp is outside the time range [2023-12-31T18:00:00.000Z, 2024-01-01T00:15:00.000Z) of the memory store."
    );
    assert!(list[0].get("ExistingVersion").is_none());
    let rows = pretty(&h.sql("db1", "SELECT host FROM t1 ORDER BY host").await);
    assert!(
        rows.contains("h1") && rows.contains("h4") && !rows.contains("h2"),
        "{rows}"
    );

    // A measure column's type is fixed: a multi-measure value of another type is rejected.
    let multi = |name: &str, value: &str, ty: &str| {
        json!({"Dimensions": [{"Name": "host", "Value": "m"}], "MeasureName": "multi", "MeasureValueType": "MULTI",
               "Time": NOW_MS.to_string(), "MeasureValues": [{"Name": name, "Value": value, "Type": ty}]})
    };
    h.ok("WriteRecords", json!({"DatabaseName": "db1", "TableName": "t1", "Records": [multi("speed", "1.5", "DOUBLE")]})).await;
    let e = h
        .err("WriteRecords", json!({"DatabaseName": "db1", "TableName": "t1", "Records": [multi("speed", "2", "BIGINT")]}))
        .await;
    assert_eq!(
        rejected(&e)[0]["Reason"],
        "The measure 'speed' is of type BIGINT, but column 'speed' of table t1 has type DOUBLE."
    );
    // Whole-request validation errors.
    let e = h
        .err(
            "WriteRecords",
            json!({"DatabaseName": "db1", "TableName": "t1", "Records": []}),
        )
        .await;
    assert!(e.message.contains("'records'"), "{}", e.message);
    let many: Vec<Value> = (0..101).map(|i| record("h", "1", NOW_MS + i)).collect();
    let e = h
        .err(
            "WriteRecords",
            json!({"DatabaseName": "db1", "TableName": "t1", "Records": many}),
        )
        .await;
    assert!(
        e.message.contains("less than or equal to 100"),
        "{}",
        e.message
    );
    let e = h
        .err("WriteRecords", json!({"DatabaseName": "db1", "TableName": "nope", "Records": [record("h", "1", NOW_MS)]}))
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    let e = h
        .err("WriteRecords", json!({"DatabaseName": "db1", "TableName": "t1", "Records": [{"MeasureName": "x", "MeasureValue": "1", "Time": "1", "Version": "seven"}]}))
        .await;
    assert!(
        e.message.contains("'records.1.member.version'"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn versions_upsert_and_survive_restart() {
    let h = harness().await;
    h.setup("db1", "t1", json!({})).await;
    let write = |value: &str, version: Option<i64>| {
        let mut r = record("h1", value, NOW_MS);
        if let Some(v) = version {
            r["Version"] = json!(v);
        }
        json!({"DatabaseName": "db1", "TableName": "t1", "Records": [r]})
    };
    h.ok("WriteRecords", write("1", None)).await;
    // Identical: accepted, nothing new.
    h.ok("WriteRecords", write("1", None)).await;
    let e = h.err("WriteRecords", write("2", None)).await;
    let r = &rejected(&e)[0];
    assert_eq!(r["ExistingVersion"], 1);
    assert!(r["Reason"].as_str().unwrap().starts_with(
        "A record already exists with the same time, dimensions, measure name, and record version."
    ));
    h.ok("WriteRecords", write("2", Some(5))).await;
    let e = h.err("WriteRecords", write("3", Some(4))).await;
    let r = &rejected(&e)[0];
    assert_eq!(r["ExistingVersion"], 5);
    assert_eq!(
        r["Reason"],
        "The record version 4 is lower than the existing version 5. A higher version is required to update the measure value."
    );
    let rows = pretty(
        &h.sql("db1", "SELECT \"measure_value::double\" AS v FROM t1")
            .await,
    );
    assert!(
        rows.contains("| 2.0 |") && !rows.contains("| 1.0 |"),
        "{rows}"
    );

    // After a restart the record is looked up in storage and its version read from the log.
    h.svc.engine.persist_all().await.unwrap();
    let (dir, clock) = h.shutdown().await;
    let h = open(dir, clock).await;
    let e = h.err("WriteRecords", write("3", Some(5))).await;
    assert_eq!(rejected(&e)[0]["ExistingVersion"], 5);
    h.ok("WriteRecords", write("2", Some(2))).await; // same value: idempotent
    h.ok("WriteRecords", write("3", Some(6))).await;
    let rows = pretty(
        &h.sql("db1", "SELECT \"measure_value::double\" AS v FROM t1")
            .await,
    );
    assert!(
        rows.contains("| 3.0 |") && !rows.contains("| 2.0 |"),
        "{rows}"
    );
}

#[tokio::test]
async fn records_written_inside_the_server_have_no_request_limit_and_are_rejected_alone() {
    let h = harness().await;
    h.setup("db1", "t1", json!({})).await;
    // 250 records in one commit (WriteRecords takes 100); record 7 breaks the model (an empty
    // dimension value), record 9 the write window: each is rejected alone, by its index.
    let mut records: Vec<Value> = (0..250)
        .map(|i| {
            let mut r = record(&format!("h{i}"), "1.5", NOW_MS - i);
            r["Version"] = json!(3);
            r
        })
        .collect();
    records[7]["Dimensions"][0]["Value"] = json!("");
    records[9]["Time"] = json!((NOW_MS + 3_600_000).to_string());
    let outcome = write::write_record_objects(&h.svc, "db1", "t1", &records)
        .await
        .unwrap();
    assert_eq!((outcome.memory, outcome.magnetic), (248, 0));
    let indexes: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [7, 9], "{:?}", outcome.rejected);
    assert!(
        outcome.rejected[0].reason.contains("records.8.member"),
        "{}",
        outcome.rejected[0].reason
    );
    let count = pretty(&h.sql("db1", "SELECT count(*) AS n FROM t1").await);
    assert!(count.contains("| 248 |"), "{count}");

    // The same records again with a higher version replace the first ones: versions are
    // checked as WriteRecords checks them.
    for r in &mut records {
        r["Version"] = json!(4);
        r["MeasureValue"] = json!("2.5");
    }
    let outcome = write::write_record_objects(&h.svc, "db1", "t1", &records)
        .await
        .unwrap();
    assert_eq!(outcome.memory, 248);
    let lower = write::write_record_objects(&h.svc, "db1", "t1", &records[..1])
        .await
        .unwrap();
    assert_eq!(
        lower.rejected.len(),
        0,
        "the same version and value is idempotent"
    );
    records[0]["MeasureValue"] = json!("9");
    records[0]["Version"] = json!(2);
    let lower = write::write_record_objects(&h.svc, "db1", "t1", &records[..1])
        .await
        .unwrap();
    assert_eq!(lower.rejected[0].existing_version, Some(4));
    let rows = pretty(
        &h.sql(
            "db1",
            "SELECT count(*) AS n, min(\"measure_value::double\") AS lo, max(\"measure_value::double\") AS hi FROM t1",
        )
        .await,
    );
    assert!(rows.contains("| 248 | 2.5 | 2.5 |"), "{rows}");
}

#[tokio::test]
async fn magnetic_store_writes_and_the_memory_window() {
    let h = harness().await;
    h.setup(
        "db1",
        "late",
        json!({"MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": true},
               "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 1, "MagneticStoreRetentionPeriodInDays": 10}}),
    )
    .await;
    let old = NOW_MS - 48 * 3_600_000;
    let out = h
        .ok("WriteRecords", json!({"DatabaseName": "db1", "TableName": "late", "Records": [record("h1", "1", old), record("h1", "2", NOW_MS)]}))
        .await;
    assert_eq!(
        out["RecordsIngested"],
        json!({"Total": 2, "MemoryStore": 1, "MagneticStore": 1})
    );
    let e = h
        .err("WriteRecords", json!({"DatabaseName": "db1", "TableName": "late", "Records": [record("h1", "1", NOW_MS - 11 * 24 * 3_600_000)]}))
        .await;
    assert!(rejected(&e)[0]["Reason"]
        .as_str()
        .unwrap()
        .ends_with(") of the data ingestion window."));

    // Raising memory retention does not widen the memory store's window at once.
    h.ok("CreateTable", json!({"DatabaseName": "db1", "TableName": "mem", "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 2, "MagneticStoreRetentionPeriodInDays": 10}})).await;
    h.ok("UpdateTable", json!({"DatabaseName": "db1", "TableName": "mem", "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 24, "MagneticStoreRetentionPeriodInDays": 10}})).await;
    let e = h
        .err("WriteRecords", json!({"DatabaseName": "db1", "TableName": "mem", "Records": [record("h1", "1", NOW_MS - 3 * 3_600_000)]}))
        .await;
    assert!(rejected(&e)[0]["Reason"]
        .as_str()
        .unwrap()
        .contains("[2023-12-31T22:00:00.000Z, "));
    h.clock.advance(2 * NANOS_PER_HOUR);
    h.ok("WriteRecords", json!({"DatabaseName": "db1", "TableName": "mem", "Records": [record("h1", "1", NOW_MS - 30 * 60_000)]})).await;
}

#[tokio::test]
async fn query_pages_column_info_and_cancel() {
    let h = harness().await;
    h.setup("db1", "t1", json!({})).await;
    for batch in 0..3 {
        let records: Vec<Value> = (0..100)
            .map(|i| {
                record(
                    &format!("h{i:03}"),
                    &format!("{}.25", batch * 100 + i),
                    NOW_MS - batch,
                )
            })
            .collect();
        h.ok(
            "WriteRecords",
            json!({"DatabaseName": "db1", "TableName": "t1", "Records": records}),
        )
        .await;
    }
    let q = "SELECT host, time, \"measure_value::double\" FROM \"db1\".\"t1\" ORDER BY time, host";
    let first = h
        .ok("Query", json!({"QueryString": q, "MaxRows": 120}))
        .await;
    assert_eq!(
        first["ColumnInfo"],
        json!([
            {"Name": "host", "Type": {"ScalarType": "VARCHAR"}},
            {"Name": "time", "Type": {"ScalarType": "TIMESTAMP"}},
            {"Name": "measure_value::double", "Type": {"ScalarType": "DOUBLE"}}
        ])
    );
    assert_eq!(first["Rows"].as_array().unwrap().len(), 120);
    assert_eq!(
        first["Rows"][0]["Data"],
        json!([{"ScalarValue": "h000"}, {"ScalarValue": "2023-12-31 23:59:59.998000000"}, {"ScalarValue": "200.25"}])
    );
    let token = first["NextToken"].as_str().unwrap().to_string();
    let second = h
        .ok(
            "Query",
            json!({"QueryString": q, "MaxRows": 120, "NextToken": token}),
        )
        .await;
    // The same token again answers the same page.
    let again = h
        .ok(
            "Query",
            json!({"QueryString": q, "MaxRows": 120, "NextToken": token}),
        )
        .await;
    assert_eq!(second, again);
    let e = h
        .err(
            "Query",
            json!({"QueryString": "SELECT 1", "NextToken": token}),
        )
        .await;
    assert_eq!(e.message, "Invalid pagination token.");
    let t2 = second["NextToken"].as_str().unwrap();
    let third = h
        .ok(
            "Query",
            json!({"QueryString": q, "MaxRows": 120, "NextToken": t2}),
        )
        .await;
    assert_eq!(third["Rows"].as_array().unwrap().len(), 60);
    assert!(third.get("NextToken").is_none());
    assert_eq!(third["QueryStatus"]["ProgressPercentage"], 100.0);
    assert_eq!(h.svc.queries.open_cursors(), 0);

    // NULLs and cancellation.
    let n = h
        .ok(
            "Query",
            json!({"QueryString": "SELECT NULL AS x, 1 AS one"}),
        )
        .await;
    assert_eq!(
        n["Rows"][0]["Data"],
        json!([{"NullValue": true}, {"ScalarValue": "1"}])
    );
    let open = h.ok("Query", json!({"QueryString": q, "MaxRows": 1})).await;
    let id = open["QueryId"].as_str().unwrap();
    let c = h.ok("CancelQuery", json!({"QueryId": id})).await;
    assert!(c["CancellationMessage"].is_string());
    let e = h
        .err(
            "Query",
            json!({"QueryString": q, "NextToken": open["NextToken"]}),
        )
        .await;
    assert_eq!((e.code, e.status.as_u16()), ("ConflictException", 409));
    let e = h
        .err("Query", json!({"QueryString": "SELEC nonsense"}))
        .await;
    assert_eq!(e.code, "ValidationException");

    let p = h
        .ok("PrepareQuery", json!({"QueryString": "SELECT host AS h, time FROM \"db1\".\"t1\" WHERE time > @scheduled_runtime", "ValidateOnly": true}))
        .await;
    assert_eq!(p["Columns"][0]["Name"], "h");
    assert_eq!(p["Columns"][0]["Aliased"], true);
    assert_eq!(p["Columns"][1]["Type"], json!({"ScalarType": "TIMESTAMP"}));
    assert_eq!(
        p["Parameters"],
        json!([{"Name": "@scheduled_runtime", "Type": {"ScalarType": "TIMESTAMP"}}])
    );
}

#[tokio::test]
async fn delete_table_removes_data_files_and_stays_deleted_after_restart() {
    let h = harness().await;
    h.setup("db1", "gone", json!({})).await;
    h.ok(
        "WriteRecords",
        json!({"DatabaseName": "db1", "TableName": "gone", "Records": [record("h1", "1", NOW_MS)]}),
    )
    .await;
    h.svc.engine.persist_all().await.unwrap();
    h.ok("WriteRecords", json!({"DatabaseName": "db1", "TableName": "gone", "Records": [record("h1", "2", NOW_MS + 1)]})).await;
    let table_dir = h.dir.path().join("magnetic").join("db1").join("gone");
    assert!(table_dir.exists());
    h.ok(
        "DeleteTable",
        json!({"DatabaseName": "db1", "TableName": "gone"}),
    )
    .await;
    assert!(!table_dir.exists());
    let e = h
        .err(
            "DescribeTable",
            json!({"DatabaseName": "db1", "TableName": "gone"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    // The WAL still holds the table's rows: replay must not bring it back.
    let (dir, clock) = h.shutdown().await;
    let h = open(dir, clock).await;
    assert!(h
        .svc
        .engine
        .catalog
        .snapshot()
        .table("db1", "gone")
        .is_none());
    h.ok(
        "CreateTable",
        json!({"DatabaseName": "db1", "TableName": "gone"}),
    )
    .await;
    let rows = h.sql("db1", "SELECT count(*) AS n FROM gone").await;
    assert!(pretty(&rows).contains("| 0 |"), "{}", pretty(&rows));

    // Objects a crash left under a dropped table's prefix are purged when it is created again.
    let ghost = h.dir.path().join("magnetic").join("db1").join("ghost");
    std::fs::create_dir_all(ghost.join("2024-01-01")).unwrap();
    std::fs::write(ghost.join("_manifest.json"), b"{}").unwrap();
    std::fs::write(ghost.join("2024-01-01").join("x.parquet"), b"x").unwrap();
    h.ok(
        "CreateTable",
        json!({"DatabaseName": "db1", "TableName": "ghost"}),
    )
    .await;
    assert!(!ghost.exists());
}

/// The address DescribeEndpoints advertises: a scheme exactly when SDKs must not assume https,
/// a bare host for the JavaScript SDK v3 (which replaces only the hostname).
#[tokio::test]
async fn describe_endpoints_advertises_the_scheme_served() {
    let mut h = harness().await;
    let address = |svc: &Service, host: Option<&str>, user_agent: Option<&str>| {
        let request = manage::EndpointRequest { host, user_agent };
        let body = manage::describe_endpoints(svc, b"{}", request).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Endpoints"][0]["CachePeriodInMinutes"], 1440);
        v["Endpoints"][0]["Address"].as_str().unwrap().to_string()
    };
    let boto = Some("Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1");
    let js = Some("aws-sdk-js/3.1138.0 ua/2.1 os/linux#6.1 lang/js md/nodejs#20.20.2");
    // Plain HTTP: `http://`, else botocore / Go v2 would connect with TLS.
    assert_eq!(address(&h.svc, None, None), "http://127.0.0.1:8086");
    assert_eq!(address(&h.svc, None, boto), "http://127.0.0.1:8086");
    assert_eq!(address(&h.svc, None, js), "127.0.0.1");
    // A Host header only matters when bound to every interface.
    assert_eq!(
        address(&h.svc, Some("ts.local:1"), None),
        "http://127.0.0.1:8086"
    );
    h.svc.served_address = "0.0.0.0:8086".into();
    assert_eq!(
        address(&h.svc, Some("ts.local:9000"), boto),
        "http://ts.local:9000"
    );
    assert_eq!(address(&h.svc, Some("ts.local:9000"), js), "ts.local");
    assert_eq!(address(&h.svc, Some("ts.local"), js), "ts.local");
    assert_eq!(
        address(&h.svc, Some("bad/host"), None),
        "http://0.0.0.0:8086"
    );
    assert_eq!(address(&h.svc, None, None), "http://0.0.0.0:8086");
    h.svc.served_address = "[::]:8086".into();
    assert_eq!(
        address(&h.svc, Some("[::1]:8086"), None),
        "http://[::1]:8086"
    );
    assert_eq!(address(&h.svc, Some("[::1]:8086"), js), "[::1]");
    // TLS: AWS's shape, no scheme (SDKs add https://).
    h.svc.served_tls = true;
    h.svc.served_address = "127.0.0.1:8443".into();
    assert_eq!(address(&h.svc, None, boto), "127.0.0.1:8443");
    assert_eq!(address(&h.svc, None, js), "127.0.0.1");
    // --advertised-endpoint wins, as given.
    for given in [
        "ts.example.com:443",
        "http://10.0.0.1:8086",
        "https://ts.example.com",
    ] {
        h.svc.config.advertised_endpoint = Some(given.into());
        assert_eq!(address(&h.svc, Some("other:1"), js), given);
        assert_eq!(address(&h.svc, Some("other:1"), boto), given);
    }
}

fn user(name: &str, grants: &[(&str, hourglass_auth::Permission)]) -> Arc<Principal> {
    Arc::new(Principal::user(
        name,
        grants
            .iter()
            .map(|(db, p)| hourglass_auth::Grant {
                database: db.to_string(),
                permission: *p,
            })
            .collect(),
    ))
}

/// A harness whose service records an audit log (in the data directory, as the server's), with
/// databases `db1` and `db2` of 10 rows each.
async fn audited_harness() -> Harness {
    let mut h = harness().await;
    h.svc.security.audit = Some(Arc::new(
        hourglass_auth::AuditLog::open(h.dir.path()).unwrap(),
    ));
    h.setup("db1", "t1", json!({})).await;
    h.setup("db2", "t2", json!({})).await;
    let records: Vec<Value> = (0..10)
        .map(|i| record(&format!("h{i:02}"), &format!("{i}.5"), NOW_MS - i))
        .collect();
    for (db, t) in [("db1", "t1"), ("db2", "t2")] {
        h.ok(
            "WriteRecords",
            json!({"DatabaseName": db, "TableName": t, "Records": records}),
        )
        .await;
    }
    h
}

impl Harness {
    async fn call_as(
        &self,
        who: &Arc<Principal>,
        op: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.svc
            .call_as(who, op, &bytes)
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
    }
}

/// (user, action, target, outcome) of the audit log's Timestream events.
fn audit_events(h: &Harness) -> Vec<(String, String, String, String)> {
    hourglass_auth::audit::read_all(&hourglass_auth::audit::path(h.dir.path()))
        .unwrap()
        .into_iter()
        .filter(|e| e.interface == "timestream")
        .map(|e| (e.user, e.action, e.target, e.outcome))
        .collect()
}

fn event(
    user: &str,
    action: &str,
    target: &str,
    outcome: &str,
) -> (String, String, String, String) {
    (user.into(), action.into(), target.into(), outcome.into())
}

const Q1: &str = "SELECT host FROM \"db1\".\"t1\" ORDER BY host";

#[tokio::test]
async fn cursors_belong_to_their_owner_and_follow_current_grants() {
    use hourglass_auth::Permission::{Admin, Read, Write};
    let h = audited_harness().await;
    let alice = user("alice", &[("db1", Read), ("db2", Read)]);
    let first = h
        .call_as(&alice, "Query", json!({"QueryString": Q1, "MaxRows": 2}))
        .await
        .unwrap();
    let id = first["QueryId"].as_str().unwrap().to_string();
    let token = first["NextToken"].as_str().unwrap().to_string();
    let garbage = h
        .call_as(
            &alice,
            "Query",
            json!({"QueryString": Q1, "NextToken": "garbage"}),
        )
        .await
        .unwrap_err();
    assert_eq!(garbage.message, "Invalid pagination token.");
    // Write-only on db1, read on db2 only, an operator: the token is invalid for each.
    for other in [
        user("bob", &[("db1", Write)]),
        user("carol", &[("db2", Read)]),
        user("op", &[("*", Admin)]),
    ] {
        let e = h
            .call_as(
                &other,
                "Query",
                json!({"QueryString": Q1, "NextToken": token, "MaxRows": 2}),
            )
            .await
            .unwrap_err();
        assert_eq!(e, garbage, "{}", other.name);
        assert!(audit_events(&h).contains(&event(&other.name, "Query", &id, "denied")));
    }
    // The owner goes on.
    let second = h
        .call_as(
            &alice,
            "Query",
            json!({"QueryString": Q1, "NextToken": token, "MaxRows": 2}),
        )
        .await
        .unwrap();
    assert_eq!(second["Rows"][0]["Data"][0]["ScalarValue"], "h02");
    let t2 = second["NextToken"].as_str().unwrap().to_string();
    // Losing the grant on another database does not matter; losing db1's does, and drops it.
    let alice_db1 = user("alice", &[("db1", Read)]);
    h.call_as(
        &alice_db1,
        "Query",
        json!({"QueryString": Q1, "NextToken": t2, "MaxRows": 2}),
    )
    .await
    .unwrap();
    let revoked = user("alice", &[("db2", Read)]);
    let e = h
        .call_as(
            &revoked,
            "Query",
            json!({"QueryString": Q1, "NextToken": t2, "MaxRows": 2}),
        )
        .await
        .unwrap_err();
    assert_eq!((e.code, e.status.as_u16()), ("AccessDeniedException", 403));
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:iam::{a}:user/alice is not authorized to perform: timestream:Query on resource: arn:aws:timestream:{r}:{a}:database/db1",
            a = h.svc.account_id,
            r = h.svc.region
        )
    );
    assert!(audit_events(&h).contains(&event("alice", "Query", &id, "denied")));
    let e = h
        .call_as(
            &alice,
            "Query",
            json!({"QueryString": Q1, "NextToken": t2, "MaxRows": 2}),
        )
        .await
        .unwrap_err();
    assert_eq!(e, garbage);
    assert_eq!(h.svc.queries.open_cursors(), 0);

    // A listing depends on every database it listed; the system schema on being an operator.
    let both = user("dora", &[("db1", Read), ("db2", Read)]);
    let show = h
        .call_as(
            &both,
            "Query",
            json!({"QueryString": "SHOW DATABASES", "MaxRows": 1}),
        )
        .await
        .unwrap();
    let e = h
        .call_as(
            &user("dora", &[("db1", Read)]),
            "Query",
            json!({"QueryString": "SHOW DATABASES", "NextToken": show["NextToken"], "MaxRows": 1}),
        )
        .await
        .unwrap_err();
    assert!(e.message.ends_with(":database/db2"), "{e}");
    let op = user("op", &[("*", Admin)]);
    let sys = "SELECT action FROM system.audit_log";
    let log = h
        .call_as(&op, "Query", json!({"QueryString": sys, "MaxRows": 1}))
        .await
        .unwrap();
    let e = h
        .call_as(
            &user("op", &[("*", Read)]),
            "Query",
            json!({"QueryString": sys, "NextToken": log["NextToken"], "MaxRows": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
}

#[tokio::test]
async fn cancel_query_needs_the_owner_or_an_admin() {
    use hourglass_auth::Permission::{Admin, Read, Write};
    let h = audited_harness().await;
    let alice = user("alice", &[("db1", Read)]);
    let bob = user("bob", &[("db1", Write)]);
    let unknown_id = "0123456789ABCDEF0123456789ABCDEF";
    let unknown = h
        .call_as(&bob, "CancelQuery", json!({"QueryId": unknown_id}))
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code, unknown.status.as_u16()),
        ("ValidationException", 400)
    );
    let first = h
        .call_as(&alice, "Query", json!({"QueryString": Q1, "MaxRows": 2}))
        .await
        .unwrap();
    let id = first["QueryId"].as_str().unwrap().to_string();
    let as_unknown = |e: ApiError| {
        assert_eq!(e.code, unknown.code);
        assert_eq!(e.status, unknown.status);
        assert_eq!(e.message, unknown.message.replace(unknown_id, &id));
    };
    for other in [&bob, &user("carol", &[("db2", Admin)])] {
        as_unknown(
            h.call_as(other, "CancelQuery", json!({"QueryId": id}))
                .await
                .unwrap_err(),
        );
    }
    // Still running.
    let second = h
        .call_as(
            &alice,
            "Query",
            json!({"QueryString": Q1, "NextToken": first["NextToken"], "MaxRows": 2}),
        )
        .await
        .unwrap();
    // An admin of its database cancels it; others still see an unknown query.
    let c = h
        .call_as(
            &user("dba", &[("db1", Admin)]),
            "CancelQuery",
            json!({"QueryId": id}),
        )
        .await
        .unwrap();
    assert_eq!(
        c["CancellationMessage"],
        "Query cancellation has been initiated."
    );
    let e = h
        .call_as(
            &alice,
            "Query",
            json!({"QueryString": Q1, "NextToken": second["NextToken"], "MaxRows": 2}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "ConflictException");
    as_unknown(
        h.call_as(&bob, "CancelQuery", json!({"QueryId": id}))
            .await
            .unwrap_err(),
    );
    let c = h
        .call_as(&alice, "CancelQuery", json!({"QueryId": id}))
        .await
        .unwrap();
    assert_eq!(
        c["CancellationMessage"],
        "Query has already been cancelled."
    );
    let events = audit_events(&h);
    for e in [
        event("bob", "CancelQuery", unknown_id, "error"),
        event("bob", "CancelQuery", &id, "denied"),
        event("carol", "CancelQuery", &id, "denied"),
        event("dba", "CancelQuery", &id, "ok"),
        event("alice", "CancelQuery", &id, "ok"),
    ] {
        assert!(events.contains(&e), "{e:?} not in {events:?}");
    }
    // An operator cancels anyone's query.
    let other = h
        .call_as(&alice, "Query", json!({"QueryString": Q1, "MaxRows": 2}))
        .await
        .unwrap();
    let c = h
        .call_as(
            &user("op", &[("*", Admin)]),
            "CancelQuery",
            json!({"QueryId": other["QueryId"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        c["CancellationMessage"],
        "Query cancellation has been initiated."
    );
}
