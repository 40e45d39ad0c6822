//! Compaction rewrites a day persisted as time slices into files of disjoint series ranges
//! (`hourglass_storage::day_layout`), answers unchanged; a few late rows do not cost a rewrite of
//! the whole day, many do.

use std::collections::BTreeSet;

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use hourglass_core::time::NANOS_PER_DAY;
use hourglass_storage::FileMeta;

use crate::harness::{TestServer, DEFAULT_NOW};

const HOSTS: usize = 60;
const STEP: i64 = 10_000_000_000;
/// The start of the day all rows fall in (the day before the test clock's now).
const DAY_START: i64 = DEFAULT_NOW - NANOS_PER_DAY;

/// Steps `from..to` of hosts `hosts`, written in requests of at most 10,000 lines.
async fn write_steps(server: &TestServer, hosts: std::ops::Range<usize>, from: i64, to: i64) {
    write_steps_from(server, DAY_START, hosts, from, to).await
}

/// [`write_steps`] from another day's start.
async fn write_steps_from(
    server: &TestServer,
    day_start: i64,
    hosts: std::ops::Range<usize>,
    from: i64,
    to: i64,
) {
    let mut body = String::new();
    let mut lines = 0;
    for step in from..to {
        for h in hosts.clone() {
            let t = day_start + step * STEP;
            body.push_str(&format!(
                "cpu,host=h{h:03},dc=dc{} usage={}i,temp={} {t}\n",
                h % 4,
                (step * 13 + h as i64 * 7) % 1000,
                (step as f64) / 8.0 + h as f64
            ));
            lines += 1;
            if lines == 10_000 {
                assert_eq!(server.write_lp("db", &body).await.0, 204);
                body.clear();
                lines = 0;
            }
        }
    }
    if !body.is_empty() {
        assert_eq!(server.write_lp("db", &body).await.0, 204);
    }
}

fn files(server: &TestServer) -> Vec<FileMeta> {
    let snapshot = server
        .running()
        .engine
        .table_snapshot("db", "cpu")
        .expect("table");
    snapshot.manifest.files.clone()
}

/// The hosts stored in one data file.
async fn hosts_of(server: &TestServer, file: &FileMeta) -> BTreeSet<String> {
    let engine = &server.running().engine;
    let mut hosts = BTreeSet::new();
    for batch in hourglass_storage::parquet_io::read_all(&engine.magnetic, &file.path)
        .await
        .expect("read")
    {
        let column = batch.column_by_name("host").expect("host");
        let dict = column.as_dictionary::<Int32Type>();
        let values = dict.values().as_string::<i32>();
        for i in 0..dict.len() {
            let key = dict.keys().value(i) as usize;
            hosts.insert(values.value(key).to_string());
        }
    }
    hosts
}

async fn answers(server: &TestServer) -> Vec<serde_json::Value> {
    server
        .query(
            "db",
            "SELECT host, count(*) AS n, sum(usage) AS s, sum(temp) AS t, min(time) AS lo, \
             max(time) AS hi FROM cpu GROUP BY host ORDER BY host",
        )
        .await
}

async fn persist(server: &TestServer) {
    server
        .running()
        .engine
        .persist_all()
        .await
        .expect("persist");
}

async fn compact(server: &TestServer) {
    server
        .running()
        .engine
        .compact_all()
        .await
        .expect("compact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_time_slices_is_rewritten_into_series_ranges() {
    // 64 MiB of budget: one merge holds 131,072 rows, so 180,000 rows take a streaming merge.
    let server = TestServer::start_with(|c| {
        c.engine.memory_budget_bytes = 64 << 20;
        c.engine.rewrite_days_by_series = true;
    })
    .await;
    for slice in 0..3 {
        write_steps(&server, 0..HOSTS, slice * 1000, (slice + 1) * 1000).await;
        persist(&server).await;
    }
    let sliced = files(&server);
    assert_eq!(sliced.len(), 3, "one file per persist: {sliced:?}");
    assert!(sliced.iter().all(|f| !f.whole_day));
    for f in &sliced {
        assert_eq!(
            hosts_of(&server, f).await.len(),
            HOSTS,
            "a slice of every host"
        );
    }
    let before = answers(&server).await;
    assert_eq!(before.len(), HOSTS);

    compact(&server).await;
    let rewritten = files(&server);
    assert_eq!(
        rewritten.len(),
        2,
        "180,000 rows in merges of 131,072: {rewritten:?}"
    );
    assert!(rewritten.iter().all(|f| f.whole_day), "{rewritten:?}");
    assert_eq!(rewritten.iter().map(|f| f.rows).sum::<u64>(), 180_000);
    let mut seen = BTreeSet::new();
    for f in &rewritten {
        let hosts = hosts_of(&server, f).await;
        // A host at the cut may be split between two files (cuts fall between keys), but no
        // more than one.
        let shared = hosts.intersection(&seen).count();
        assert!(shared <= 1, "series ranges overlap by {shared} hosts");
        assert!(hosts.len() < HOSTS, "a file holds a range of the hosts");
        seen.extend(hosts);
    }
    assert_eq!(seen.len(), HOSTS);
    assert_eq!(
        answers(&server).await,
        before,
        "the rewrite changes no answer"
    );

    // A few late rows (0.6 % of the day) wait for the small-file merge.
    write_steps(&server, 0..HOSTS, 3000, 3020).await;
    persist(&server).await;
    compact(&server).await;
    let after_late = files(&server);
    let kept: BTreeSet<&str> = rewritten.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(after_late.len(), 3, "{after_late:?}");
    assert_eq!(
        after_late
            .iter()
            .filter(|f| kept.contains(f.path.as_str()))
            .count(),
        2,
        "the rewritten files stay"
    );
    let expected_late = answers(&server).await;

    // Many more (new hosts, 17 % of the day): the day is rewritten again, all of it.
    write_steps(&server, HOSTS..HOSTS + 12, 0, 3020).await;
    persist(&server).await;
    let expected = answers(&server).await;
    assert_eq!(expected.len(), HOSTS + 12);
    assert_eq!(&expected[..HOSTS], &expected_late[..]);
    compact(&server).await;
    let again = files(&server);
    assert!(again.iter().all(|f| f.whole_day), "{again:?}");
    assert!(again.iter().all(|f| !kept.contains(f.path.as_str())));
    assert_eq!(
        again.iter().map(|f| f.rows).sum::<u64>(),
        (HOSTS as u64) * 3020 + 12 * 3020
    );
    assert_eq!(answers(&server).await, expected);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_no_day_is_rewritten_by_series() {
    let server = TestServer::start_with(|c| c.engine.memory_budget_bytes = 64 << 20).await;
    for slice in 0..3 {
        write_steps(&server, 0..HOSTS, slice * 1000, (slice + 1) * 1000).await;
        persist(&server).await;
    }
    assert_eq!(files(&server).len(), 3);
    compact(&server).await;
    // The small-file merge takes the first two (120,000 rows; one merge holds 131,072).
    let after = files(&server);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|f| !f.whole_day), "{after:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_maintenance_rewrites_one_quiet_day_per_pass() {
    let server = TestServer::start_with(|c| {
        c.engine.day_rewrite_quiet_period = std::time::Duration::ZERO;
        c.engine.rewrite_days_by_series = true;
    })
    .await;
    let days = [DAY_START - NANOS_PER_DAY, DAY_START];
    for slice in 0..3 {
        for day_start in days {
            write_steps_from(&server, day_start, 0..20, slice * 300, (slice + 1) * 300).await;
        }
        persist(&server).await;
    }
    let day_of = |t: i64| t.div_euclid(NANOS_PER_DAY);
    let per_day = |files: &[FileMeta]| -> Vec<(usize, usize)> {
        days.iter()
            .map(|&d| {
                let of_day: Vec<&FileMeta> = files.iter().filter(|f| f.day == day_of(d)).collect();
                (of_day.len(), of_day.iter().filter(|f| f.whole_day).count())
            })
            .collect()
    };
    assert_eq!(per_day(&files(&server)), vec![(3, 0), (3, 0)]);
    let before = answers(&server).await;

    let engine = server.running().engine.clone();
    engine.run_maintenance().await.expect("maintenance");
    let mut after_one = per_day(&files(&server));
    after_one.sort();
    assert_eq!(after_one, vec![(1, 1), (3, 0)], "one day per pass");
    assert_eq!(answers(&server).await, before);

    engine.run_maintenance().await.expect("maintenance");
    assert_eq!(per_day(&files(&server)), vec![(1, 1), (1, 1)]);
    assert_eq!(answers(&server).await, before);
    server.shutdown().await;
}
