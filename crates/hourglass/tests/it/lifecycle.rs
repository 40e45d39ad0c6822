//! Durability across restarts and crashes, ordered shutdown, and back-pressure.

use crate::harness::{parquet_files, TestServer, DEFAULT_NOW};

fn lines(from: usize, to: usize) -> String {
    (from..to)
        .map(|i| {
            format!(
                "m,host=h{} v={i}i {}\n",
                i % 7,
                DEFAULT_NOW - 1_000_000_000 * i as i64
            )
        })
        .collect()
}

async fn count(server: &TestServer) -> i64 {
    server.query("db", "SELECT count(*) AS n FROM m").await[0]["n"]
        .as_i64()
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_crashes_exactly_once() {
    let mut server = TestServer::start().await;
    for chunk in 0..5 {
        let (status, body) = server
            .write_lp("db", &lines(chunk * 100, chunk * 100 + 100))
            .await;
        assert_eq!(status, 204, "{body}");
    }
    server.crash_and_restart().await;
    assert_eq!(count(&server).await, 500);

    // Part persisted, part only in the WAL, then a crash: still every row exactly once.
    server.running().engine.persist_all().await.expect("flush");
    assert_eq!(server.write_lp("db", &lines(500, 600)).await.0, 204);
    server.crash_and_restart().await;
    assert_eq!(count(&server).await, 600);
    let sum = server.query("db", "SELECT sum(v) AS s FROM m").await[0]["s"]
        .as_i64()
        .expect("sum");
    assert_eq!(sum, (0..600).sum::<i64>());

    // A rewrite of persisted records after a restart replaces them.
    assert_eq!(
        server
            .write_lp("db", &lines(0, 100).replace("v=", "v=1000"))
            .await
            .0,
        204
    );
    assert_eq!(count(&server).await, 600);
    server.restart().await;
    assert_eq!(count(&server).await, 600);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_persists_the_memory_store() {
    let mut server = TestServer::start().await;
    assert_eq!(server.write_lp("db", &lines(0, 50)).await.0, 204);
    assert!(parquet_files(&server.dir.join("magnetic")).is_empty());
    server.restart().await;
    assert!(!parquet_files(&server.dir.join("magnetic")).is_empty());
    assert_eq!(server.running().engine.memory_bytes(), 0);
    assert_eq!(count(&server).await, 50);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_get_503_with_retry_after_past_the_memory_budget() {
    let server = TestServer::start_with(|c| c.engine.memory_budget_bytes = 64 * 1024).await;
    let mut refused = None;
    for i in 0..200 {
        let r = server
            .http
            .post(server.url("/api/v2/write?org=o&bucket=db"))
            .body(lines(i * 100, i * 100 + 100))
            .send()
            .await
            .expect("request");
        if r.status().as_u16() == 503 {
            refused = Some((
                r.headers().get("retry-after").cloned(),
                r.text().await.unwrap_or_default(),
            ));
            break;
        }
        assert_eq!(r.status().as_u16(), 204);
    }
    let (retry_after, body) = refused.expect("writes were never throttled");
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(body.contains("memory store is full"), "{body}");
    assert_eq!(server.metric("hourglass_writes_refused_total").await, 1.0);
    assert_eq!(server.metric("hourglass_persisted_rows_total").await, 0.0);
    // Persisting frees memory and writes are accepted again.
    server
        .running()
        .engine
        .run_maintenance()
        .await
        .expect("maintenance");
    assert_eq!(server.write_lp("db", &lines(100_000, 100_010)).await.0, 204);
    // `/metrics` counts what the persist wrote and the time it took.
    let persisted = server.metric("hourglass_persisted_rows_total").await;
    assert!(persisted > 0.0, "{persisted}");
    let file_rows = server.metric("hourglass_parquet_rows_written_total").await;
    assert!(file_rows >= persisted, "{file_rows} < {persisted}");
    assert!(server.metric("hourglass_parquet_files_written_total").await >= 1.0);
    let encode = server
        .metric("hourglass_parquet_write_seconds_total{stage=\"encode\"}")
        .await;
    let cpu = server
        .metric("hourglass_parquet_encode_cpu_seconds_total")
        .await;
    assert!(cpu > 0.0 && encode > 0.0, "encode {encode} s, cpu {cpu} s");
    assert_eq!(server.metric("hourglass_writes_refused_total").await, 1.0);
    server.shutdown().await;
}
