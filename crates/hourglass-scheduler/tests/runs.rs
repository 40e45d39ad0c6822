//! Runs of scheduled queries in process, on a manual clock: schedules across a month end and a
//! leap day, catch-up after downtime, serialized runs, a run interrupted by a stop, and late-data
//! reruns (`docs/scheduled-queries.md`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use hourglass_auth::Principal;
use hourglass_core::ManualClock;
use hourglass_query::session::QueryLimits;
use hourglass_query::QueryEngine;
use hourglass_scheduler::notify::{Notifier, SnsSettings};
use hourglass_scheduler::runs_log::RunsLog;
use hourglass_scheduler::store::Store;
use hourglass_scheduler::{Scheduler, SchedulerConfig};
use hourglass_storage::{Engine, EngineConfig};
use hourglass_timestream::{Service, TimestreamConfig, TimestreamState};
use serde_json::{json, Value};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * NANOS_PER_SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Runs a test on a current-thread runtime whose thread has the server's stack (32 MiB, as
/// `hourglass::cli` gives every runtime thread): planning SQL recurses over the statement, and a
/// debug build's frames outgrow libtest's 2 MiB thread stack.
fn on_server_stack<T, F>(test: T)
where
    T: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let thread = std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(test())
        })
        .unwrap();
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// The tests, each run by [`on_server_stack`].
macro_rules! tests_on_server_stack {
    ($($name:ident),* $(,)?) => {
        mod on_server_stack {
            $(#[test]
            fn $name() {
                super::on_server_stack(super::$name)
            })*
        }
    };
}

tests_on_server_stack!(
    schedules_fire_at_their_runtime_across_a_leap_day_and_month_ends,
    missed_runs_are_caught_up_oldest_first_within_the_limit,
    runs_of_one_query_are_serialized_in_order,
    a_run_interrupted_by_a_stop_is_run_again_without_duplicates_or_losses,
    a_late_write_into_a_covered_window_reruns_it_and_one_outside_does_not,
    a_query_writing_into_its_own_source_does_not_rerun_itself,
    a_disabled_query_keeps_its_late_data_marks_and_reruns_them_once_enabled,
);

/// Nanoseconds of a UTC time.
fn at(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    svc: Arc<Service>,
    scheduler: Arc<Scheduler>,
}

async fn open(
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    tune: impl FnOnce(&mut SchedulerConfig),
) -> Harness {
    let mut config = EngineConfig::new(dir.path());
    config.maintenance_interval = Duration::from_secs(2);
    let engine = Engine::open(config, clock.clone()).await.unwrap();
    let query = QueryEngine::new(engine.clone(), QueryLimits::default()).unwrap();
    let svc = Arc::new(Service::new(TimestreamState {
        engine,
        query,
        config: TimestreamConfig::default(),
        served_address: "127.0.0.1:8086".into(),
        served_tls: false,
        security: Default::default(),
    }));
    let mut config = SchedulerConfig::new(dir.path().to_path_buf());
    tune(&mut config);
    let store = Store::open(dir.path()).unwrap();
    let mut scheduler = Scheduler::with_store(svc.clone(), config, store);
    // Nowhere to publish to: notifications fail quietly.
    scheduler.notifier = Notifier::new(SnsSettings {
        endpoint: Some("http://127.0.0.1:9".into()),
        region: None,
        access_key_id: None,
        secret_access_key: None,
        session_token: None,
    });
    scheduler.runs_log = RunsLog::open(dir.path());
    let scheduler = Arc::new(scheduler);
    scheduler.install();
    Harness {
        dir,
        clock,
        svc,
        scheduler,
    }
}

async fn harness(now: i64, tune: impl FnOnce(&mut SchedulerConfig)) -> Harness {
    let h = open(
        tempfile::tempdir().unwrap(),
        Arc::new(ManualClock::new(now)),
        tune,
    )
    .await;
    h.ok("CreateDatabase", json!({"DatabaseName": "db"})).await;
    for table in ["src", "rollup"] {
        h.ok(
            "CreateTable",
            json!({"DatabaseName": "db", "TableName": table,
                   "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 8766,
                                           "MagneticStoreRetentionPeriodInDays": 73000}}),
        )
        .await;
    }
    h
}

impl Harness {
    async fn ok(&self, op: &str, body: Value) -> Value {
        let bytes = serde_json::to_vec(&body).unwrap();
        match self.svc.call(op, &bytes).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn scheduled(&self, op: &str, body: Value) -> Value {
        let bytes = serde_json::to_vec(&body).unwrap();
        let principal = Arc::new(Principal::unrestricted());
        match self.scheduler.call_operation(&principal, op, &bytes).await {
            Ok(b) => serde_json::from_slice(&b).unwrap(),
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    /// Creates a scheduled query writing `k` (dimension), `t` (time) and the BIGINT/DOUBLE
    /// measures `measures` into db.rollup.
    async fn create(
        &self,
        name: &str,
        schedule: &str,
        sql: &str,
        measures: &[(&str, &str)],
    ) -> String {
        let mappings: Vec<Value> = measures
            .iter()
            .map(|(c, t)| json!({"SourceColumn": c, "MeasureValueType": t}))
            .collect();
        let out = self
            .scheduled(
                "CreateScheduledQuery",
                json!({
                    "Name": name,
                    "QueryString": sql,
                    "ScheduleConfiguration": {"ScheduleExpression": schedule},
                    "NotificationConfiguration": {"SnsConfiguration": {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t"}},
                    "ScheduledQueryExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
                    "ErrorReportConfiguration": {"S3Configuration": {"BucketName": "reports"}},
                    "TargetConfiguration": {"TimestreamConfiguration": {
                        "DatabaseName": "db", "TableName": "rollup", "TimeColumn": "t",
                        "DimensionMappings": [{"Name": "k", "DimensionValueType": "VARCHAR"}],
                        "MultiMeasureMappings": {"TargetMultiMeasureName": name,
                                                 "MultiMeasureAttributeMappings": mappings}
                    }}
                }),
            )
            .await;
        out["Arn"].as_str().unwrap().to_string()
    }

    /// Writes `cpu` values for hosts at times (nanoseconds) into db.src.
    async fn write(&self, points: &[(&str, i64, f64)]) {
        for chunk in points.chunks(100) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|(host, t, v)| {
                    json!({"Dimensions": [{"Name": "host", "Value": host}],
                           "MeasureName": "metrics", "MeasureValueType": "MULTI",
                           "MeasureValues": [{"Name": "cpu", "Value": v.to_string(), "Type": "DOUBLE"}],
                           "Time": t.to_string(), "TimeUnit": "NANOSECONDS"})
                })
                .collect();
            self.ok(
                "WriteRecords",
                json!({"DatabaseName": "db", "TableName": "src", "Records": records}),
            )
            .await;
        }
    }

    /// Rows of a Timestream-dialect query, as text.
    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let batches = self.svc.query.collect_timestream(sql).await.unwrap();
        let mut out = Vec::new();
        for b in &batches {
            for i in 0..b.num_rows() {
                out.push(
                    b.columns()
                        .iter()
                        .map(|c| {
                            datafusion::arrow::util::display::array_value_to_string(c, i).unwrap()
                        })
                        .collect(),
                );
            }
        }
        out
    }

    /// The runs log: (invocation time, trigger, status) in the order runs finished.
    fn runs(&self) -> Vec<(i64, String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("scheduled_query_runs.jsonl"))
            .unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["invocation_time"].as_i64().unwrap(),
                    v["trigger"].as_str().unwrap().to_string(),
                    v["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Sets the clock to each time in turn, runs what is due, and checks how many runs the log
    /// holds then.
    async fn runs_at(&self, steps: &[(&str, usize)]) {
        for &(now, expect) in steps {
            self.clock.set(at(now));
            self.scheduler.run_due().await;
            assert_eq!(self.runs().len(), expect, "at {now}");
        }
    }

    async fn shutdown(self) -> (tempfile::TempDir, Arc<ManualClock>) {
        self.svc.engine.shutdown();
        (self.dir, self.clock)
    }
}

/// Times of the rows of the rollup, as `YYYY-MM-DD HH:MM:SS`.
async fn rollup_times(h: &Harness) -> Vec<String> {
    h.rows("SELECT time FROM db.rollup ORDER BY time")
        .await
        .into_iter()
        .map(|r| r[0][..19].replace('T', " "))
        .collect()
}

async fn schedules_fire_at_their_runtime_across_a_leap_day_and_month_ends() {
    let h = harness(at("2024-02-27T12:00:00Z"), |_| {}).await;
    let sql = "SELECT 'x' AS k, @scheduled_runtime AS t, CAST(1 AS BIGINT) AS n";
    // Daily at midnight: Feb 28, Feb 29 (leap day), Mar 1.
    h.create("daily", "cron(0 0 * * ? *)", sql, &[("n", "BIGINT")])
        .await;
    h.runs_at(&[
        ("2024-02-27T23:59:59Z", 0),
        ("2024-02-28T00:00:00Z", 1),
        ("2024-02-28T23:59:00Z", 1),
        ("2024-02-29T00:00:00Z", 2),
        ("2024-03-01T00:00:00Z", 3),
    ])
    .await;
    assert_eq!(
        rollup_times(&h).await,
        [
            "2024-02-28 00:00:00",
            "2024-02-29 00:00:00",
            "2024-03-01 00:00:00"
        ]
    );
    h.shutdown().await;

    // The last day of each month at noon: Jan 31, Feb 29, Mar 31, Apr 30.
    let h = harness(at("2024-01-15T00:00:00Z"), |c| c.catch_up = 100).await;
    h.create("monthly", "cron(0 12 L * ? *)", sql, &[("n", "BIGINT")])
        .await;
    h.runs_at(&[
        ("2024-01-31T11:59:00Z", 0),
        ("2024-01-31T12:00:00Z", 1),
        ("2024-02-28T12:00:00Z", 1),
        ("2024-02-29T12:00:00Z", 2),
        ("2024-03-30T12:00:00Z", 2),
        ("2024-03-31T12:00:00Z", 3),
        ("2024-04-30T12:00:00Z", 4),
    ])
    .await;
    assert_eq!(
        rollup_times(&h).await,
        [
            "2024-01-31 12:00:00",
            "2024-02-29 12:00:00",
            "2024-03-31 12:00:00",
            "2024-04-30 12:00:00"
        ]
    );
    h.shutdown().await;
}

async fn missed_runs_are_caught_up_oldest_first_within_the_limit() {
    let t0 = at("2024-03-10T10:00:00Z");
    let sql = "SELECT 'x' AS k, @scheduled_runtime AS t, CAST(1 AS BIGINT) AS n";
    let h = harness(t0, |_| {}).await;
    h.create("hourly", "rate(1 hour)", sql, &[("n", "BIGINT")])
        .await;
    // Down for three hours.
    h.clock.set(t0 + 3 * HOUR + NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    let runs = h.runs();
    assert_eq!(
        runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        [t0 + HOUR, t0 + 2 * HOUR, t0 + 3 * HOUR]
    );
    assert!(runs
        .iter()
        .all(|r| r.1 == "AUTO" && r.2 == "AUTO_TRIGGER_SUCCESS"));
    assert_eq!(rollup_times(&h).await.len(), 3);
    h.shutdown().await;

    // A limit of 2 with 5 missed: only the newest two, oldest first.
    let h = harness(t0, |c| c.catch_up = 2).await;
    h.create("hourly", "rate(1 hour)", sql, &[("n", "BIGINT")])
        .await;
    h.clock.set(t0 + 5 * HOUR + NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    assert_eq!(
        h.runs().iter().map(|r| r.0).collect::<Vec<_>>(),
        [t0 + 4 * HOUR, t0 + 5 * HOUR]
    );
    // The next run is the next one on the schedule.
    h.clock.set(t0 + 6 * HOUR);
    h.scheduler.run_due().await;
    assert_eq!(h.runs().last().unwrap().0, t0 + 6 * HOUR);
    h.shutdown().await;
}

async fn runs_of_one_query_are_serialized_in_order() {
    let t0 = at("2024-03-10T10:00:00Z");
    let h = harness(t0, |_| {}).await;
    let sql = "SELECT 'x' AS k, @scheduled_runtime AS t, CAST(1 AS BIGINT) AS n";
    let arn = h
        .create("serial", "rate(1 hour)", sql, &[("n", "BIGINT")])
        .await;
    // A manual run queued, then the automatic one comes due.
    let manual_at = t0 - DAY;
    h.scheduled(
        "ExecuteScheduledQuery",
        json!({"ScheduledQueryArn": arn, "InvocationTime": manual_at / NANOS_PER_SECOND}),
    )
    .await;
    h.clock.set(t0 + HOUR);
    // Two passes of the loop and a direct run at once: never two runs of the query together.
    let direct = h.scheduler.run_once(
        &arn,
        t0 - 2 * DAY,
        hourglass_scheduler::runner::Trigger::Manual,
    );
    tokio::join!(h.scheduler.run_due(), h.scheduler.run_due(), direct);
    assert_eq!(h.scheduler.max_concurrent_runs(), 1);
    let runs = h.runs();
    assert_eq!(runs.len(), 3, "{runs:?}");
    // The loop ran the automatic run before the manual one queued before it came due.
    let looped: Vec<(i64, String)> = runs
        .iter()
        .filter(|r| r.0 != t0 - 2 * DAY)
        .map(|r| (r.0, r.1.clone()))
        .collect();
    assert_eq!(
        looped,
        [(t0 + HOUR, "AUTO".into()), (manual_at, "MANUAL".into())]
    );
    h.shutdown().await;
}

async fn a_run_interrupted_by_a_stop_is_run_again_without_duplicates_or_losses() {
    let t0 = at("2024-03-10T10:00:00Z");
    let h = harness(t0, |c| c.records_per_commit = 100).await;
    // 50 hosts × 60 minutes: 3,000 rollup rows, in 30 commits of 100.
    let mut points = Vec::new();
    for m in 0..60 {
        for host in 0..50 {
            let name = format!("h{host:02}");
            points.push((
                name,
                t0 + m * MINUTE + 7 * NANOS_PER_SECOND,
                (host * 100 + m) as f64,
            ));
        }
    }
    let points: Vec<(&str, i64, f64)> = points
        .iter()
        .map(|(h, t, v)| (h.as_str(), *t, *v))
        .collect();
    let sql = "SELECT host AS k, bin(time, 1m) AS t, avg(cpu) AS v, count(*) AS n FROM db.src \
               WHERE time >= @scheduled_runtime - 1h AND time < @scheduled_runtime \
               GROUP BY host, bin(time, 1m)";
    h.write(&points[..50]).await; // the columns the query needs
    let arn = h
        .create(
            "rollup",
            "rate(1 hour)",
            sql,
            &[("v", "DOUBLE"), ("n", "BIGINT")],
        )
        .await;
    // Stop the run once some of its writes are durable.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = parking_lot::Mutex::new(Some(tx));
    h.svc
        .engine
        .observe_commits(Arc::new(move |_db: &str, table: &str, _: i64, _: i64| {
            if table == "rollup" {
                if let Some(tx) = tx.lock().take() {
                    let _ = tx.send(());
                }
            }
        }));
    h.clock.set(t0 + HOUR);
    h.write(&points).await;
    tokio::select! {
        _ = h.scheduler.run_due() => panic!("the run finished before it could be interrupted"),
        _ = rx => {}
    }
    let partial = h.rows("SELECT count(*) FROM db.rollup").await[0][0].clone();
    let partial: i64 = partial.parse().unwrap();
    assert!(
        partial > 0 && partial < 3000,
        "{partial} rows after the interruption"
    );
    assert!(h.runs().is_empty());

    // Restart: the interrupted run runs again.
    let (dir, clock) = h.shutdown().await;
    let h = open(dir, clock, |c| c.records_per_commit = 100).await;
    let entry = h.scheduler.store().get(&arn).unwrap();
    assert_eq!(entry.runs.in_progress, [(t0 + HOUR, "AUTO".to_string())]);
    h.scheduler.run_due().await;
    assert_eq!(
        h.runs(),
        [(
            t0 + HOUR,
            "AUTO".to_string(),
            "AUTO_TRIGGER_SUCCESS".to_string()
        )]
    );
    assert!(h
        .scheduler
        .store()
        .get(&arn)
        .unwrap()
        .runs
        .in_progress
        .is_empty());
    // Each (series, time) once, with the values of a recompute.
    assert!(h
        .rows("SELECT k, time, count(*) FROM db.rollup GROUP BY k, time HAVING count(*) > 1")
        .await
        .is_empty());
    let target = h
        .rows("SELECT k, to_nanoseconds(time), v, n FROM db.rollup ORDER BY k, time")
        .await;
    let recompute = h
        .rows(&format!(
            "SELECT host, to_nanoseconds(bin(time, 1m)), avg(cpu), count(*) FROM db.src \
             WHERE time >= from_nanoseconds({t0}) AND time < from_nanoseconds({}) \
             GROUP BY host, bin(time, 1m) ORDER BY 1, 2",
            t0 + HOUR
        ))
        .await;
    assert_eq!(target.len(), 3000);
    assert_eq!(target, recompute);
    h.shutdown().await;
}

/// The rollup's rows against a recompute over the source, all windows.
async fn assert_rollup_is_exact(h: &Harness) {
    let target = h
        .rows("SELECT k, to_nanoseconds(time), v, n FROM db.rollup ORDER BY k, time")
        .await;
    let recompute = h
        .rows(
            "SELECT host, to_nanoseconds(bin(time, 1m)), avg(cpu), count(*) FROM db.src \
             GROUP BY host, bin(time, 1m) ORDER BY 1, 2",
        )
        .await;
    assert_eq!(target, recompute);
}

async fn a_late_write_into_a_covered_window_reruns_it_and_one_outside_does_not() {
    let t0 = at("2024-03-10T10:00:00Z");
    let h = harness(t0, |c| c.late_data_delay = Some(Duration::from_secs(2))).await;
    let mut points = Vec::new();
    for m in 0..120 {
        for host in ["a", "b", "c"] {
            points.push((host, t0 + m * MINUTE + 5 * NANOS_PER_SECOND, m as f64));
        }
    }
    let sql = "SELECT host AS k, bin(time, 1m) AS t, avg(cpu) AS v, count(*) AS n FROM db.src \
               WHERE time >= @scheduled_runtime - 1h AND time < @scheduled_runtime \
               GROUP BY host, bin(time, 1m)";
    h.write(&points[..3]).await; // the columns the query needs
    let arn = h
        .create(
            "late",
            "rate(1 hour)",
            sql,
            &[("v", "DOUBLE"), ("n", "BIGINT")],
        )
        .await;
    h.clock.set(t0 + 2 * HOUR);
    h.write(&points).await;
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 2);
    assert_rollup_is_exact(&h).await;
    // What each run read: the hour before its runtime.
    let coverage = h.scheduler.store().get(&arn).unwrap().runs.coverage;
    let read: Vec<(i64, String, i64, i64)> = coverage
        .iter()
        .flat_map(|c| {
            c.ranges
                .iter()
                .map(move |r| (c.invocation_time, r.table.clone(), r.min, r.max))
        })
        .collect();
    assert_eq!(
        read,
        [
            (t0 + HOUR, "src".into(), t0, t0 + HOUR),
            (t0 + 2 * HOUR, "src".into(), t0 + HOUR, t0 + 2 * HOUR)
        ]
    );
    assert!(
        h.scheduler.stale_invocations(&arn).is_empty(),
        "own writes mark nothing"
    );

    // Late rows in the first hour (three writes: one rerun).
    h.write(&[("a", t0 + 10 * MINUTE + 30 * NANOS_PER_SECOND, 1000.0)])
        .await;
    h.write(&[("d", t0 + 20 * MINUTE, 7.0)]).await;
    h.write(&[("b", t0 + 59 * MINUTE + 59 * NANOS_PER_SECOND, -5.0)])
        .await;
    assert_eq!(h.scheduler.stale_invocations(&arn), [t0 + HOUR]);
    // Not before the delay has passed.
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 2);
    h.clock.advance(2 * NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    let runs = h.runs();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(
        runs[2],
        (t0 + HOUR, "LATE_DATA".into(), "AUTO_TRIGGER_SUCCESS".into())
    );
    assert!(h.scheduler.stale_invocations(&arn).is_empty());
    assert_rollup_is_exact(&h).await;

    // Outside every covered window (before the first, after the last): nothing.
    // (Two writes: a commit is judged by the span of its rows' times.)
    h.write(&[("a", t0 - MINUTE, 1.0)]).await;
    h.write(&[("a", t0 + 2 * HOUR, 1.0)]).await;
    assert!(h.scheduler.stale_invocations(&arn).is_empty());
    h.clock.advance(10 * NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 3);

    // A mark survives a restart: write late, stop before the rerun, start again.
    h.write(&[("c", t0 + HOUR + 30 * MINUTE, 99.0)]).await;
    h.scheduler.run_due().await; // records the mark
    assert_eq!(h.scheduler.stale_invocations(&arn), [t0 + 2 * HOUR]);
    let (dir, clock) = h.shutdown().await;
    let h = open(dir, clock, |c| {
        c.late_data_delay = Some(Duration::from_secs(2))
    })
    .await;
    assert_eq!(h.scheduler.stale_invocations(&arn), [t0 + 2 * HOUR]);
    h.clock.advance(2 * NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    assert_eq!(
        h.runs().last().unwrap(),
        &(
            t0 + 2 * HOUR,
            "LATE_DATA".into(),
            "AUTO_TRIGGER_SUCCESS".into()
        )
    );
    // Only the windows that were run are compared: the source rows outside them are not rolled
    // up by anyone.
    let target = h
        .rows("SELECT k, to_nanoseconds(time), v, n FROM db.rollup ORDER BY k, time")
        .await;
    let recompute = h
        .rows(&format!(
            "SELECT host, to_nanoseconds(bin(time, 1m)), avg(cpu), count(*) FROM db.src \
             WHERE time >= from_nanoseconds({t0}) AND time < from_nanoseconds({}) \
             GROUP BY host, bin(time, 1m) ORDER BY 1, 2",
            t0 + 2 * HOUR
        ))
        .await;
    assert_eq!(target, recompute);
    h.shutdown().await;
}

async fn a_query_writing_into_its_own_source_does_not_rerun_itself() {
    let t0 = at("2024-03-10T10:00:00Z");
    let h = harness(t0, |c| c.late_data_delay = Some(Duration::ZERO)).await;
    h.write(&[("a", t0 + MINUTE, 1.0), ("a", t0 + 2 * MINUTE, 3.0)])
        .await;
    // Reads the last hour of db.src and writes its average back into db.src, inside that hour.
    let sql = "SELECT 'avg' AS host, @scheduled_runtime - 30m AS t, avg(cpu) AS cpu FROM db.src \
               WHERE time >= @scheduled_runtime - 1h AND time < @scheduled_runtime \
               AND host <> 'avg'";
    let out = h
        .scheduled(
            "CreateScheduledQuery",
            json!({
                "Name": "self", "QueryString": sql,
                "ScheduleConfiguration": {"ScheduleExpression": "rate(1 hour)"},
                "NotificationConfiguration": {"SnsConfiguration": {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t"}},
                "ScheduledQueryExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
                "ErrorReportConfiguration": {"S3Configuration": {"BucketName": "reports"}},
                "TargetConfiguration": {"TimestreamConfiguration": {
                    "DatabaseName": "db", "TableName": "src", "TimeColumn": "t",
                    "DimensionMappings": [{"Name": "host", "DimensionValueType": "VARCHAR"}],
                    "MultiMeasureMappings": {"TargetMultiMeasureName": "metrics",
                        "MultiMeasureAttributeMappings": [{"SourceColumn": "cpu", "MeasureValueType": "DOUBLE"}]}
                }}
            }),
        )
        .await;
    let arn = out["Arn"].as_str().unwrap().to_string();
    h.clock.set(t0 + HOUR);
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 1);
    assert!(h.scheduler.stale_invocations(&arn).is_empty());
    h.clock.advance(10 * NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 1);
    // Someone else's write into the hour does rerun it.
    h.write(&[("a", t0 + 3 * MINUTE, 5.0)]).await;
    assert_eq!(h.scheduler.stale_invocations(&arn), [t0 + HOUR]);
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 2);
    h.clock.advance(10 * NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 2, "the rerun's own write marks nothing");
    let avg = h.rows("SELECT cpu FROM db.src WHERE host = 'avg'").await;
    assert_eq!(avg, [["3.0".to_string()]]);
    h.shutdown().await;
}

async fn a_disabled_query_keeps_its_late_data_marks_and_reruns_them_once_enabled() {
    let t0 = at("2024-03-10T10:00:00Z");
    let h = harness(t0, |c| c.late_data_delay = Some(Duration::from_secs(2))).await;
    let sql = "SELECT host AS k, bin(time, 1m) AS t, avg(cpu) AS v FROM db.src \
               WHERE time >= @scheduled_runtime - 1h AND time < @scheduled_runtime \
               GROUP BY host, bin(time, 1m)";
    h.write(&[("a", t0 + 5 * MINUTE, 1.0)]).await;
    let arn = h
        .create("paused", "rate(1 hour)", sql, &[("v", "DOUBLE")])
        .await;
    h.clock.set(t0 + HOUR);
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 1);
    let state = |s: &str| json!({"ScheduledQueryArn": arn, "State": s});
    h.scheduled("UpdateScheduledQuery", state("DISABLED")).await;
    h.write(&[("a", t0 + 10 * MINUTE, 2.0)]).await;
    h.scheduler.run_due().await; // records the mark
    assert_eq!(h.scheduler.stale_invocations(&arn), [t0 + HOUR]);
    h.clock.advance(10 * NANOS_PER_SECOND);
    h.scheduler.run_due().await;
    h.scheduler.run_due().await;
    assert_eq!(h.runs().len(), 1, "no rerun while disabled");
    h.scheduled("UpdateScheduledQuery", state("ENABLED")).await;
    h.scheduler.run_due().await;
    let runs = h.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        runs[1],
        (t0 + HOUR, "LATE_DATA".into(), "AUTO_TRIGGER_SUCCESS".into())
    );
    assert!(h.scheduler.stale_invocations(&arn).is_empty());
    h.shutdown().await;
}
