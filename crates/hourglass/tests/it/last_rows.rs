//! Latest-value queries (`DISTINCT ON (series…) … ORDER BY …, time DESC`) read only the last rows
//! per series of each source — memory chunks, Parquet sidecars, resolved rewrites — and answer
//! exactly as the full scan does, through rewrites, persistence, compaction and restart.

use std::sync::atomic::Ordering;

use crate::harness::{parquet_files, TestServer, DEFAULT_NOW};

const HOSTS: usize = 50;
const STEP: i64 = 10_000_000_000;

/// The latest-value query, and the same query over a projection, which the shortcut leaves alone.
/// (`host <> ''` keeps every row; it gives the plan a filter whose metrics count the rows read.)
const LATEST: &str = "SELECT DISTINCT ON (host) host, time, usage, load FROM cpu \
     WHERE host <> '' ORDER BY host, time DESC, usage";
const LATEST_FULL_SCAN: &str = "SELECT DISTINCT ON (host) host, time, usage, load \
     FROM (SELECT * FROM cpu) AS c WHERE host <> '' ORDER BY host, time DESC, usage";

fn rows(first_step: i64, steps: i64) -> String {
    let start = DEFAULT_NOW - 3_600_000_000_000;
    let mut body = String::new();
    for step in first_step..first_step + steps {
        for h in 0..HOSTS {
            // Host h stops reporting after step 100 + h, so the newest rows differ per host.
            if step > 100 + h as i64 {
                continue;
            }
            let t = start + step * STEP;
            body.push_str(&format!(
                "cpu,host=h{h:02},dc=dc{} usage={},load={}i {t}\n",
                h % 3,
                (step * 7 + h as i64) % 100,
                step
            ));
        }
    }
    body
}

/// Rows the table's sources produced, from `EXPLAIN ANALYZE` of a query with a filter that keeps
/// every row: the output of the union of sources, or else the filter's input (memory sources
/// report no metrics of their own).
async fn rows_scanned(server: &TestServer, sql: &str) -> u64 {
    let (status, text) = server
        .query_raw("db", &format!("EXPLAIN ANALYZE {sql}"), "csv")
        .await;
    assert_eq!(status, 200, "{text}");
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    if let Some(union) = lines.iter().find(|l| l.starts_with("UnionExec")) {
        return count_after(union, "output_rows=");
    }
    let filter = lines
        .iter()
        .find(|l| l.starts_with("FilterExec"))
        .unwrap_or_else(|| panic!("no filter over the sources in\n{text}"));
    // selectivity=100% (465/465)
    let at = filter.find("selectivity=").expect("selectivity");
    let slash = filter[at..].find('/').expect("a/b") + at;
    count_after(filter, &filter[at..=slash])
}

/// The count printed right after `label` (DataFusion prints `950`, `1.94 K` or `4.30 M`).
fn count_after(line: &str, label: &str) -> u64 {
    let at = line.find(label).expect("label") + label.len();
    let rest = &line[at..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let scale = match rest[number.len()..].trim_start().chars().next() {
        Some('K') => 1e3,
        Some('M') => 1e6,
        _ => 1.0,
    };
    (number.parse::<f64>().expect("a count") * scale) as u64
}

/// Steps 0..240 of every host: the first half persisted to Parquet, the rest in memory.
async fn load(server: &TestServer) {
    for part in 0..2 {
        assert_eq!(server.write_lp("db", &rows(part * 60, 60)).await.0, 204);
    }
    server
        .running()
        .engine
        .persist_all()
        .await
        .expect("persist");
    for part in 2..4 {
        assert_eq!(server.write_lp("db", &rows(part * 60, 60)).await.0, 204);
    }
}

/// Latest-value queries answered from last rows, and the candidate rows they examined.
fn latest_stats(server: &TestServer) -> (u64, u64) {
    let stats = &server.running().engine.latest_value_stats;
    (
        stats.queries.load(Ordering::Relaxed),
        stats.candidate_rows.load(Ordering::Relaxed),
    )
}

async fn assert_latest_matches_full_scan(server: &TestServer, when: &str) {
    let (queries, candidates) = latest_stats(server);
    let fast = server.query("db", LATEST).await;
    let (queries_after, candidates_after) = latest_stats(server);
    assert_eq!(
        queries_after,
        queries + 1,
        "{when}: answered from last rows"
    );
    let examined = candidates_after - candidates;
    let full = server.query("db", LATEST_FULL_SCAN).await;
    assert_eq!(
        latest_stats(server).0,
        queries_after,
        "{when}: the projection defeats it"
    );
    assert_eq!(fast.len(), HOSTS, "{when}: one row per host");
    assert_eq!(fast, full, "{when}: shortcut and full scan disagree");
    let total = rows_scanned(server, LATEST_FULL_SCAN).await;
    assert!(
        examined * 10 < total,
        "{when}: the latest-value query examined {examined} of {total} rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_values_come_from_last_rows_and_match_a_full_scan() {
    let mut server = TestServer::start().await;
    let engine = server.running().engine.clone();

    load(&server).await;
    let files = parquet_files(&server.dir.join("magnetic"));
    assert!(
        files
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".last.parquet")),
        "a last-rows sidecar is written beside the data file: {files:?}"
    );
    assert_latest_matches_full_scan(&server, "memory and Parquet").await;

    // A rewrite of h07's newest record names only `usage`: `load` keeps its earlier value.
    let newest = DEFAULT_NOW - 3_600_000_000_000 + 107 * STEP;
    let body = format!("cpu,host=h07,dc=dc1 usage=999 {newest}\n");
    assert_eq!(server.write_lp("db", &body).await.0, 204);
    let fast = server.query("db", LATEST).await;
    let h07 = fast.iter().find(|r| r["host"] == "h07").expect("h07");
    assert_eq!(h07["usage"], 999.0, "the rewrite wins: {h07}");
    assert_eq!(h07["load"], 107, "unnamed fields keep their value: {h07}");
    assert_eq!(fast, server.query("db", LATEST_FULL_SCAN).await);

    engine.persist_all().await.expect("persist");
    engine.compact_all().await.expect("compact");
    // Older rows of new series land in memory beside the compacted files; they change no answer.
    let old = DEFAULT_NOW - 3_600_000_000_000 + 5 * STEP;
    let body: String = (0..HOSTS)
        .map(|h| format!("cpu,host=h{h:02},dc=old usage=1,load=1i {old}\n"))
        .collect();
    assert_eq!(server.write_lp("db", &body).await.0, 204);
    assert_latest_matches_full_scan(&server, "after persist and compaction").await;
    assert_eq!(server.query("db", LATEST).await, fast);

    server.crash_and_restart().await;
    assert_latest_matches_full_scan(&server, "after restart").await;
    assert_eq!(
        server.query("db", LATEST).await,
        fast,
        "the answers survive persistence, compaction and restart"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_that_could_change_the_answer_keep_the_full_scan() {
    let server = TestServer::start().await;
    load(&server).await;
    for (sql, why) in [
        (
            "SELECT DISTINCT ON (host) host, time FROM cpu WHERE usage < 50 ORDER BY host, time DESC",
            "a filter on a measure",
        ),
        (
            "SELECT DISTINCT ON (host) host, time FROM cpu WHERE time < TIMESTAMP '2100-01-01T00:00:00' \
             ORDER BY host, time DESC",
            "an upper bound on time",
        ),
        (
            "SELECT DISTINCT ON (host) host, time FROM cpu ORDER BY host, time ASC",
            "oldest first",
        ),
        (
            "SELECT DISTINCT ON (usage) usage, time FROM cpu ORDER BY usage, time DESC",
            "grouping by a measure",
        ),
    ] {
        let before = latest_stats(&server).0;
        assert!(!server.query("db", sql).await.is_empty(), "{why}: rows");
        assert_eq!(latest_stats(&server).0, before, "{why}: must not use last rows");
    }
    let (queries, candidates) = latest_stats(&server);
    let rows = server
        .query(
            "db",
            "SELECT DISTINCT ON (host) host, time FROM cpu WHERE dc = 'dc1' \
             AND time > TIMESTAMP '2000-01-01T00:00:00' ORDER BY host, time DESC",
        )
        .await;
    assert_eq!(rows.len(), 17, "hosts of dc1");
    let (queries_after, candidates_after) = latest_stats(&server);
    assert_eq!(
        queries_after,
        queries + 1,
        "series filters and a lower time bound keep it"
    );
    // At most one row per host from each of the three sources.
    assert!(candidates_after - candidates <= 3 * HOSTS as u64);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimension_filters_narrow_the_rows_gathered_to_the_named_series() {
    let server = TestServer::start().await;
    load(&server).await;
    let one_host = "SELECT DISTINCT ON (host) host, time, usage, load FROM cpu \
                    WHERE host = 'h07' ORDER BY host, time DESC, usage";
    let every_host = "SELECT DISTINCT ON (host) host, time, usage, load FROM cpu \
                      WHERE host <> '' ORDER BY host, time DESC, usage";
    let examined = |sql: &'static str| {
        let server = &server;
        async move {
            let (queries, candidates) = latest_stats(server);
            let rows = server.query("db", sql).await;
            let (queries_after, candidates_after) = latest_stats(server);
            assert_eq!(queries_after, queries + 1, "answered from last rows: {sql}");
            (rows, candidates_after - candidates)
        }
    };
    let (rows, one) = examined(one_host).await;
    let (all_rows, every) = examined(every_host).await;
    // The same row as the full scan's, from the named series' rows only: one per source (the
    // Parquet file's sidecar and the memory chunks) instead of one per source and series.
    let full = server
        .query(
            "db",
            "SELECT DISTINCT ON (host) host, time, usage, load FROM (SELECT * FROM cpu) AS c \
             WHERE host = 'h07' ORDER BY host, time DESC, usage",
        )
        .await;
    assert_eq!(rows, full);
    assert_eq!(rows.len(), 1);
    assert_eq!(all_rows.len(), HOSTS);
    assert!(
        one >= 1 && one * (HOSTS as u64) <= every * 2,
        "examined {one} for one host, {every} for all"
    );
    // A filter on a measure is not per series: it is applied only after each series' newest row
    // passing it is found (the rule's own conditions decide whether last rows answer it at all).
    let measured = "SELECT DISTINCT ON (host) host, time, usage FROM cpu \
                    WHERE host = 'h07' AND load < 50 ORDER BY host, time DESC, usage";
    let measured_full =
        "SELECT DISTINCT ON (host) host, time, usage FROM (SELECT * FROM cpu) AS c \
                         WHERE host = 'h07' AND load < 50 ORDER BY host, time DESC, usage";
    assert_eq!(
        server.query("db", measured).await,
        server.query("db", measured_full).await
    );
}
