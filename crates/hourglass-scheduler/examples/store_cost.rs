//! What one change of one scheduled query costs the durable store (`store.rs`).
//!
//! Builds 100 queries with 1,000 late-data coverage entries each (a query on `rate(1 minute)`
//! at the default `--late-data-runs`) in a temporary directory, then times N single-query
//! updates like the one that ends a run (a new coverage entry, the oldest dropped), printing the
//! milliseconds and the bytes written per update. For comparison it times the same updates
//! against the former layout (format 1: every query in one pretty-printed
//! `scheduled_queries.json`, the whole contents copied, compared and rewritten on each change),
//! reimplemented here.
//!
//! `cargo run --release -p hourglass-scheduler --example store_cost -- [N]` (N: 200).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hourglass_scheduler::definition::{Coverage, CoveredRange, Definition, RunState, State};
use hourglass_scheduler::store::{file_name, Entry, Store, StoreFailure, DIR_NAME};

const QUERIES: usize = 100;
const COVERAGE: i64 = 1_000;
const MINUTE: i64 = 60_000_000_000;

fn main() -> Result<(), String> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("N: {e}"))?,
        None => 200,
    };
    let queries: BTreeMap<String, Entry> = (0..QUERIES).map(query).collect();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;

    // One file per query.
    let store = Store::open(dir.path())?;
    store.update::<_, StoreFailure>(|c| {
        for (arn, e) in &queries {
            c.queries.insert(arn.clone(), Arc::new(e.clone()));
        }
        Ok(())
    })?;
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..n {
        let arn = arn_of(i % QUERIES);
        store.update::<_, StoreFailure>(|c| {
            if let Some(e) = c.queries.get_mut(&arn) {
                add_coverage(&mut Arc::make_mut(e).runs, i);
            }
            Ok(())
        })?;
        bytes += file_size(&dir.path().join(DIR_NAME).join(file_name(&arn)));
    }
    report("one file per query", n, started, bytes);

    // The former single file, for comparison.
    let old = dir.path().join("scheduled_queries.json");
    let mut contents = Arc::new(queries);
    let n_old = n.min(20);
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..n_old {
        let arn = arn_of(i % QUERIES);
        let mut next = (*contents).clone();
        if let Some(e) = next.get_mut(&arn) {
            add_coverage(&mut e.runs, i);
        }
        if next != *contents {
            let file = serde_json::json!({"format_version": 1, "queries": &next});
            let encoded = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
            hourglass_storage::catalog::write_file_durably(&old, &encoded)
                .map_err(|e| e.to_string())?;
            bytes += encoded.len() as u64;
            contents = Arc::new(next);
        }
    }
    report("single file (format 1)", n_old, started, bytes);
    Ok(())
}

fn report(what: &str, n: usize, started: Instant, bytes: u64) {
    let n = n.max(1) as f64;
    println!(
        "{what}: {n} updates, {:.2} ms per update, {:.0} bytes written per update",
        started.elapsed().as_secs_f64() * 1000.0 / n,
        bytes as f64 / n
    );
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// What the end of a run does to its query: the newest invocation's coverage, the oldest gone.
fn add_coverage(runs: &mut RunState, i: usize) {
    let t = (COVERAGE + i as i64) * MINUTE;
    runs.coverage.push(coverage(t));
    if runs.coverage.len() > COVERAGE as usize {
        runs.coverage.remove(0);
    }
}

fn coverage(t: i64) -> Coverage {
    Coverage {
        invocation_time: t,
        trigger_time: t + 1_234_567,
        ranges: vec![CoveredRange {
            database: "sensors".into(),
            table: "cpu".into(),
            min: t - MINUTE,
            max: t,
        }],
        stale_since: None,
    }
}

fn arn_of(i: usize) -> String {
    format!("arn:aws:timestream:us-east-1:000000000000:scheduled-query/rollup{i}-{i:032x}")
}

fn query(i: usize) -> (String, Entry) {
    let arn = arn_of(i);
    let definition = Definition {
        arn: arn.clone(),
        name: format!("rollup{i}"),
        query_string: "SELECT host, bin(time, 1m) AS time, avg(usage) AS usage FROM sensors.cpu \
                       WHERE time >= @scheduled_runtime - 1m AND time < @scheduled_runtime \
                       GROUP BY host, bin(time, 1m)"
            .into(),
        schedule_expression: "rate(1 minute)".into(),
        creation_time: 0,
        state: State::Enabled,
        schedule_configuration: serde_json::json!({"ScheduleExpression": "rate(1 minute)"}),
        notification_configuration: serde_json::json!({"SnsConfiguration": {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t"}}),
        target_configuration: None,
        error_report_configuration: serde_json::json!({"S3Configuration": {"BucketName": "b"}}),
        execution_role_arn: "arn:aws:iam::000000000000:role/r".into(),
        kms_key_id: None,
        tags: Vec::new(),
        client_token: None,
        owner: "admin".into(),
    };
    let runs = RunState {
        next_invocation: Some(COVERAGE * MINUTE),
        coverage: (0..COVERAGE).map(|k| coverage(k * MINUTE)).collect(),
        ..Default::default()
    };
    (arn, Entry { definition, runs })
}
