//! A loader over a real engine in a temporary directory, with its source and report buckets
//! mapped to directories: whole runs, and a run resumed from a checkpoint.

use std::sync::Arc;
use std::time::Duration;

use hourglass_core::SystemClock;
use hourglass_query::session::QueryLimits;
use hourglass_query::QueryEngine;
use hourglass_storage::{Engine, EngineConfig};
use hourglass_timestream::{TimestreamConfig, TimestreamState};
use serde_json::{json, Value};

use super::*;
use crate::task::Checkpoint;

struct Harness {
    _dir: tempfile::TempDir,
    src: std::path::PathBuf,
    reports: std::path::PathBuf,
    loader: Arc<Loader>,
}

async fn harness(records_per_commit: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&reports).unwrap();
    let engine = Engine::open(
        EngineConfig::new(dir.path().join("data")),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let query = QueryEngine::new(engine.clone(), QueryLimits::default()).unwrap();
    let unload = hourglass_unload::Destinations::parse(&format!(
        "src={},reports={}",
        src.display(),
        reports.display()
    ))
    .unwrap();
    let service = Arc::new(Service::new(TimestreamState {
        engine,
        query,
        config: TimestreamConfig {
            advertised_endpoint: None,
            unload: Arc::new(unload),
        },
        served_address: "127.0.0.1:0".into(),
        served_tls: false,
        security: Default::default(),
    }));
    let config = LoaderConfig {
        records_per_commit,
        ..LoaderConfig::default()
    };
    let loader = Loader::with_store(service.clone(), Store::in_memory(), config);
    loader.install();
    service
        .call("CreateDatabase", br#"{"DatabaseName":"db"}"#)
        .await
        .unwrap();
    service
        .call("CreateTable", br#"{"DatabaseName":"db","TableName":"t"}"#)
        .await
        .unwrap();
    Harness {
        _dir: dir,
        src,
        reports,
        loader,
    }
}

fn now_ms() -> i64 {
    use hourglass_core::Clock;
    SystemClock.now_nanos() / 1_000_000 - 60_000
}

fn request() -> Value {
    json!({
        "TargetDatabaseName": "db", "TargetTableName": "t",
        "DataModelConfiguration": {"DataModel": {
            "TimeColumn": "ts", "DimensionMappings": [{"SourceColumn": "host"}],
            "MultiMeasureMappings": {"TargetMultiMeasureName": "m", "MultiMeasureAttributeMappings": [
                {"SourceColumn": "v", "MeasureValueType": "BIGINT"}]}}},
        "DataSourceConfiguration": {"DataSourceS3Configuration": {"BucketName": "src", "ObjectKeyPrefix": "in/"}, "DataFormat": "CSV"},
        "ReportConfiguration": {"ReportS3Configuration": {"BucketName": "reports", "ObjectKeyPrefix": "r"}},
    })
}

impl Harness {
    fn file(&self, name: &str, text: &str) {
        let path = self.src.join("in").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, ApiError> {
        let principal = Arc::new(Principal::unrestricted());
        let out = self
            .loader
            .call_operation(&principal, op, body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_slice(&out).unwrap())
    }

    async fn wait(&self, id: &str) -> task::Task {
        for _ in 0..600 {
            let t = self.loader.store.get(id).unwrap();
            if matches!(
                t.status,
                Status::Succeeded | Status::Failed | Status::ProgressStopped
            ) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {id} did not end");
    }

    async fn count(&self) -> i64 {
        use arrow::array::AsArray;
        let q = &self.loader.service.query;
        let batches = q
            .collect_timestream(r#"SELECT count(*) AS n FROM "db"."t""#)
            .await
            .unwrap();
        batches[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_loads_every_file_in_commits_and_reports_rejected_rows() {
    let h = harness(7).await;
    let t0 = now_ms();
    let rows = |from: i64, n: i64| -> String {
        (from..from + n)
            .map(|i| format!("{},h{},{i}\n", t0 + i, i % 3))
            .collect()
    };
    h.file(
        "a.csv",
        &format!("ts,host,v\n{}x,h,1\n{}", rows(0, 20), rows(20, 5)),
    );
    h.file("b.csv", &format!("ts,host,v\n{}", rows(25, 30)));
    let id = h.call("CreateBatchLoadTask", request()).await.unwrap()["TaskId"]
        .as_str()
        .unwrap()
        .to_string();
    let t = h.wait(&id).await;
    assert_eq!(t.status, Status::Failed, "{:?}", t.error_message);
    assert_eq!(t.progress.records_processed, 56);
    assert_eq!(t.progress.records_ingested, 55);
    assert_eq!(t.progress.parse_failures, 1);
    assert_eq!(
        t.checkpoint,
        Checkpoint {
            file: 2,
            offset: 0,
            line: 0
        }
    );
    assert_eq!(t.files.as_deref().unwrap(), ["in/a.csv", "in/b.csv"]);
    assert_eq!(h.count().await, 55);
    let report: Value = serde_json::from_slice(
        &std::fs::read(h.reports.join(format!("r/{id}/report.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(report["fileErrors"][0]["fileName"], "in/a.csv");
    assert_eq!(
        report["fileErrors"][0]["errors"][0]["lineRanges"],
        json!([[22, 22]])
    );
    let d = h
        .call("DescribeBatchLoadTask", json!({"TaskId": id}))
        .await
        .unwrap();
    assert_eq!(
        d["BatchLoadTaskDescription"]["ProgressReport"]["RecordsIngested"],
        55
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_starts_at_its_checkpoint() {
    let h = harness(4).await;
    let t0 = now_ms();
    let text: String = std::iter::once("ts,host,v\n".to_string())
        .chain((0..10).map(|i| format!("{},h,{i}\n", t0 + i)))
        .collect();
    h.file("a.csv", &text);
    h.file("b.csv", &format!("ts,host,v\n{},h,10\n", t0 + 10));
    // A task stopped after committing rows 0..6 of a.csv (lines 2..7): its checkpoint is the
    // start of line 8 (row 6), and nothing of those rows is in the table here, so what the
    // resumed run writes is exactly what it did not skip.
    let offset = text.match_indices('\n').nth(6).unwrap().0 + 1;
    let id = "AAAABBBBCCCCDDDD".to_string();
    let mut t = task::Task {
        task_id: id.clone(),
        owner: "anonymous".into(),
        client_token: None,
        database: "db".into(),
        table: "t".into(),
        record_version: None,
        data_source_configuration: request()["DataSourceConfiguration"].clone(),
        data_model_configuration: Some(request()["DataModelConfiguration"].clone()),
        report_configuration: request()["ReportConfiguration"].clone(),
        data_model: request()["DataModelConfiguration"]["DataModel"].clone(),
        status: Status::ProgressStopped,
        progress: task::Progress {
            records_processed: 6,
            records_ingested: 6,
            ..Default::default()
        },
        creation_time: 1,
        last_updated_time: 1,
        resumable_until: Some(i64::MAX),
        error_message: None,
        files: Some(vec!["in/a.csv".into(), "in/b.csv".into()]),
        checkpoint: Checkpoint {
            file: 0,
            offset: offset as u64,
            line: 8,
        },
        errors: Default::default(),
        report_key: None,
    };
    t.progress.bytes_metered = text.len() as i64;
    h.loader.store.put(t).unwrap();
    h.call("ResumeBatchLoadTask", json!({"TaskId": id}))
        .await
        .unwrap();
    let t = h.wait(&id).await;
    assert_eq!(t.status, Status::Succeeded, "{:?}", t.error_message);
    assert_eq!(t.progress.records_processed, 11);
    assert_eq!(t.progress.records_ingested, 11);
    assert_eq!(h.count().await, 5);
    let e = h
        .call("ResumeBatchLoadTask", json!({"TaskId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "ValidationException");
}
