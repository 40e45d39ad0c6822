//! Tiering and retention under an injected clock: rows move from the memory store to Parquet
//! once older than memory retention, vanish from queries once older than magnetic retention, and
//! their files are deleted from disk.

use hourglass_core::time::{NANOS_PER_DAY, NANOS_PER_HOUR};
use hourglass_core::TableProperties;

use crate::harness::{data_files, parquet_files, TestServer, DEFAULT_NOW};

const MINUTE: i64 = 60_000_000_000;

async fn count(server: &TestServer, table: &str) -> i64 {
    let rows = server
        .query("db", &format!("SELECT count(*) AS n FROM {table}"))
        .await;
    rows[0]["n"].as_i64().expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_move_to_parquet_then_expire_and_their_files_are_deleted() {
    let server = TestServer::start_with(|c| {
        c.engine.default_properties = TableProperties {
            memory_retention_hours: 1,
            magnetic_retention_days: 2,
            magnetic_writes_enabled: true,
        };
    })
    .await;
    let t = DEFAULT_NOW - 10 * MINUTE;
    let body = format!(
        "m,host=a v=1 {t}\nm,host=b v=2 {}\nm,host=c v=3 {}\n",
        t + 1,
        t + 2
    );
    assert_eq!(server.write_lp("db", &body).await.0, 204);
    let engine = server.running().engine.clone();
    let magnetic = server.dir.join("magnetic");

    // Inside the memory window: nothing moves.
    let report = engine.run_maintenance().await.expect("maintenance");
    assert_eq!(report.rows_persisted, 0);
    assert!(parquet_files(&magnetic).is_empty());
    assert_eq!(count(&server, "m").await, 3);

    // Past memory retention: the rows move to Parquet and stay queryable.
    server.clock.advance(2 * NANOS_PER_HOUR);
    let report = engine.run_maintenance().await.expect("maintenance");
    assert_eq!(report.rows_persisted, 3);
    assert_eq!(engine.memory_bytes(), 0, "memory store should be empty");
    let files = data_files(&magnetic);
    assert_eq!(files.len(), 1, "{files:?}");
    let rows = server
        .query("db", "SELECT host, v FROM m ORDER BY host")
        .await;
    assert_eq!(
        rows,
        serde_json::json!([{"host":"a","v":1.0},{"host":"b","v":2.0},{"host":"c","v":3.0}])
            .as_array()
            .cloned()
            .unwrap_or_default()
    );

    // Past magnetic retention: gone from queries at once, files deleted by maintenance.
    server.clock.advance(3 * NANOS_PER_DAY);
    assert_eq!(count(&server, "m").await, 0);
    assert!(
        files[0].exists(),
        "file is deleted by maintenance, not by the query"
    );
    let report = engine.run_maintenance().await.expect("maintenance");
    assert_eq!(report.files_expired, 1);
    assert!(!files[0].exists(), "expired file still on disk");
    assert!(parquet_files(&magnetic).is_empty());
    assert_eq!(count(&server, "m").await, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_rows_past_magnetic_retention_are_hidden_and_dropped() {
    let server = TestServer::start_with(|c| {
        c.engine.default_properties = TableProperties {
            memory_retention_hours: 8766,
            magnetic_retention_days: 1,
            magnetic_writes_enabled: true,
        };
    })
    .await;
    let t = DEFAULT_NOW - MINUTE;
    assert_eq!(server.write_lp("db", &format!("m v=1 {t}\n")).await.0, 204);
    assert_eq!(count(&server, "m").await, 1);
    server.clock.advance(2 * NANOS_PER_DAY);
    assert_eq!(count(&server, "m").await, 0);
    let report = server
        .running()
        .engine
        .run_maintenance()
        .await
        .expect("maintenance");
    assert_eq!(report.rows_expired_in_memory, 1);
    assert_eq!(server.running().engine.memory_bytes(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_outside_the_memory_window_are_rejected_unless_magnetic_writes_are_enabled() {
    let server = TestServer::start_with(|c| {
        c.engine.default_properties = TableProperties {
            memory_retention_hours: 1,
            magnetic_retention_days: 10,
            magnetic_writes_enabled: false,
        };
    })
    .await;
    let old = DEFAULT_NOW - 2 * NANOS_PER_HOUR;
    let body = format!("m v=1 {DEFAULT_NOW}\nm v=2 {old}\n");
    let (status, text) = server.write_lp("db", &body).await;
    assert_eq!(status, 400, "{text}");
    let error: serde_json::Value = serde_json::from_str(&text).expect("json error");
    assert_eq!(error["data"][0]["line_number"], 2);
    assert_eq!(
        error["data"][0]["error_message"],
        "The record timestamp is outside the time range [2024-01-01T23:00:00.000Z, 2024-01-02T00:15:00.000Z) of the memory store."
    );
    assert_eq!(count(&server, "m").await, 1, "the valid line is written");

    // The same table with magnetic writes enabled accepts it (within magnetic retention).
    server
        .running()
        .engine
        .catalog
        .update(|s| {
            if let Some(t) = s
                .databases
                .get_mut("db")
                .and_then(|d| d.tables.get_mut("m"))
            {
                t.properties.magnetic_writes_enabled = true;
            }
            Ok(())
        })
        .expect("catalog update");
    assert_eq!(
        server.write_lp("db", &format!("m v=2 {old}\n")).await.0,
        204
    );
    let too_old = DEFAULT_NOW - 11 * NANOS_PER_DAY;
    let (status, text) = server.write_lp("db", &format!("m v=3 {too_old}\n")).await;
    assert_eq!(status, 400);
    assert!(text.contains("of the data ingestion window."), "{text}");
    assert_eq!(count(&server, "m").await, 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_are_merged_and_rewrites_resolved_by_compaction() {
    let server = TestServer::start().await;
    let engine = server.running().engine.clone();
    let day_start = DEFAULT_NOW - NANOS_PER_DAY;
    // Five flushes of one day, the last rewriting records of the first.
    for round in 0..5i64 {
        let body: String = (0..20i64)
            .map(|i| {
                let t = day_start + (round % 4 * 20 + i) * MINUTE;
                format!("c,host=h{} v={}i {t}\n", i % 3, round * 100 + i)
            })
            .collect();
        assert_eq!(server.write_lp("db", &body).await.0, 204);
        engine.persist_all().await.expect("flush");
    }
    let magnetic = server.dir.join("magnetic");
    assert_eq!(data_files(&magnetic).len(), 5);
    let before = server
        .query("db", "SELECT host, time, v FROM c ORDER BY time, host")
        .await;
    assert_eq!(before.len(), 80, "rewrites must resolve to one row each");
    assert_eq!(before[0]["v"], 400, "the later write wins");

    let report = engine.run_maintenance().await.expect("maintenance");
    assert_eq!(report.files_compacted, 5);
    let files = data_files(&magnetic);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        parquet_files(&magnetic).len() <= 2,
        "the merged files' sidecars are deleted with them"
    );
    let snapshot = engine.table_snapshot("db", "c").expect("table");
    assert!(snapshot.manifest.dirty_days.is_empty());
    assert_eq!(snapshot.manifest.files[0].rows, 80);
    let after = server
        .query("db", "SELECT host, time, v FROM c ORDER BY time, host")
        .await;
    assert_eq!(before, after);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_several_days_go_to_one_file_per_day_and_prune_by_time() {
    let server = TestServer::start().await;
    let engine = server.running().engine.clone();
    // Oldest first: rows arriving in time order are known not to rewrite earlier records.
    let body: String = (0..6i64)
        .rev()
        .map(|d| {
            format!(
                "p,host=a v={d}i {}\n",
                DEFAULT_NOW - (d + 1) * NANOS_PER_DAY
            )
        })
        .collect();
    assert_eq!(server.write_lp("db", &body).await.0, 204);
    engine.persist_all().await.expect("flush");
    assert_eq!(data_files(&server.dir.join("magnetic")).len(), 6);
    let rows = server
        .query(
            "db",
            "SELECT v FROM p WHERE time >= '2023-12-29T00:00:00Z' AND time < '2023-12-31T00:00:00Z' ORDER BY v",
        )
        .await;
    assert_eq!(
        rows,
        vec![serde_json::json!({"v": 2}), serde_json::json!({"v": 3})]
    );
    let (status, plan) = server
        .query_raw(
            "db",
            "EXPLAIN SELECT v FROM p WHERE time >= '2023-12-29T00:00:00Z' AND time < '2023-12-31T00:00:00Z'",
            "csv",
        )
        .await;
    assert_eq!(status, 200);
    let files_in_plan = plan.matches(".parquet").count();
    assert_eq!(
        files_in_plan, 2,
        "files outside the time range are pruned: {plan}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_day_larger_than_one_merge_is_rewritten_as_files_of_disjoint_series_ranges() {
    // A 16 MiB budget lets one compaction merge 131,072 rows; the day below holds 342,860.
    let server = TestServer::start_with(|c| c.engine.memory_budget_bytes = 16 << 20).await;
    let engine = server.running().engine.clone();
    let day_start = DEFAULT_NOW - NANOS_PER_DAY;
    let second = 1_000_000_000i64;
    let write = |times: Vec<i64>, value: Box<dyn Fn(i64) -> i64>| {
        let lines: Vec<String> = times
            .iter()
            .flat_map(|&i| {
                let v = value(i);
                (0..10).map(move |h| format!("s,host=h{h} v={v}i {}", day_start + i * second))
            })
            .collect();
        lines
    };
    // Two rounds of 150,000 rows (10 hosts x 15,000 seconds), then every 7th second rewritten.
    let rounds: Vec<Vec<String>> = vec![
        write((0..15_000).collect(), Box::new(|i| i)),
        write((15_000..30_000).collect(), Box::new(|i| i)),
        write(
            (0..30_000).step_by(7).collect(),
            Box::new(|i| 1_000_000 + i),
        ),
    ];
    for lines in &rounds {
        for chunk in lines.chunks(15_000) {
            let body = chunk.join("\n") + "\n";
            assert_eq!(server.write_lp("db", &body).await.0, 204);
        }
        engine.persist_all().await.expect("flush");
    }
    let snapshot = engine.table_snapshot("db", "s").expect("table");
    let day = day_start / NANOS_PER_DAY;
    assert!(
        snapshot.manifest.dirty_days.contains(&day),
        "rewrites make the day dirty"
    );
    let expected: i64 = (0..30_000i64)
        .map(|i| if i % 7 == 0 { 1_000_000 + i } else { i })
        .sum::<i64>()
        * 10;
    let check = |rows: Vec<serde_json::Value>| {
        assert_eq!(rows[0]["n"], 300_000, "one row per record");
        assert_eq!(rows[0]["total"], expected, "the later write wins");
    };
    let sql = "SELECT count(*) AS n, sum(v) AS total FROM s";
    check(server.query("db", sql).await);

    let report = engine.run_maintenance().await.expect("maintenance");
    assert_eq!(report.files_compacted, snapshot.manifest.files.len());
    let snapshot = engine.table_snapshot("db", "s").expect("table");
    assert!(snapshot.manifest.dirty_days.is_empty(), "the day is clean");
    let files = snapshot.manifest.files.clone();
    assert!(files.len() >= 3, "{} files", files.len());
    for f in &files {
        assert!(f.rows <= 131_072, "a file of {} rows", f.rows);
    }
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 300_000);
    // Each file holds a range of (host, time) keys, and the ranges do not overlap.
    let mut ranges: Vec<((String, i64), (String, i64))> = files
        .iter()
        .map(|f| first_and_last_key(&server.dir.join("magnetic").join(&f.path)))
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 < w[1].0, "key ranges overlap: {w:?}");
    }
    assert_eq!(
        ranges[0].0,
        ("h0".to_string(), day_start),
        "the first file starts the day"
    );
    assert_eq!(data_files(&server.dir.join("magnetic")).len(), files.len());
    check(server.query("db", sql).await);
    // Second 29,995 (a multiple of 7) was rewritten, 29,996 was not.
    let rows = server
        .query(
            "db",
            "SELECT v FROM s WHERE host = 'h3' AND time >= TIMESTAMP '2024-01-01T08:19:55Z' \
             AND time <= TIMESTAMP '2024-01-01T08:19:56Z' ORDER BY time",
        )
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["v"], 1_029_995);
    assert_eq!(rows[1]["v"], 29_996);
    server.shutdown().await;
}

/// The (host, time) of a data file's first and last rows (files are sorted by series then time).
fn first_and_last_key(path: &std::path::Path) -> ((String, i64), (String, i64)) {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int32Type, TimestampNanosecondType};
    let file = std::fs::File::open(path).expect("data file");
    let batches: Vec<arrow::record_batch::RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader")
            .map(|b| {
                // `time` in the unit the file stores it in, back in nanoseconds.
                hourglass_storage::stored_time_unit::to_nanos(&b.expect("rows")).expect("time")
            })
            .collect();
    let key = |batch: &arrow::record_batch::RecordBatch, row: usize| {
        let host = batch
            .column_by_name("host")
            .and_then(|c| c.as_dictionary_opt::<Int32Type>())
            .expect("host");
        let name = host
            .values()
            .as_string::<i32>()
            .value(host.keys().value(row) as usize);
        let time = batch
            .column_by_name("time")
            .expect("time")
            .as_primitive::<TimestampNanosecondType>()
            .value(row);
        (name.to_string(), time)
    };
    let first = batches.first().expect("a batch");
    let last = batches.last().expect("a batch");
    (key(first, 0), key(last, last.num_rows() - 1))
}
