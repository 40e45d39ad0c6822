//! `COPY ... TO STDOUT` through tokio-postgres's `copy_out`, which runs it over the extended
//! protocol (Parse, Describe: NoData, Bind, Execute), as connectorx does.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures::TryStreamExt;
use hourglass_core::SystemClock;
use hourglass_pgwire::PgServer;
use hourglass_query::session::QueryLimits;
use hourglass_query::QueryEngine;
use hourglass_storage::{Engine, EngineConfig};
use tokio_postgres::NoTls;

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> Vec<u8> {
    let stream = client.copy_out(sql).await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_stdout_over_the_extended_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path()), Arc::new(SystemClock))
        .await
        .unwrap();
    let query = QueryEngine::new(engine.clone(), QueryLimits::default()).unwrap();
    let pg = PgServer::start("127.0.0.1:0".parse().unwrap(), query)
        .await
        .unwrap();
    let conf = format!("host=127.0.0.1 port={} user=hg dbname=db1", pg.addr.port());
    let (client, conn) = tokio_postgres::connect(&conf, NoTls).await.unwrap();
    tokio::spawn(conn);

    let csv = copy_out(
        &client,
        "COPY (SELECT value AS v, CAST(NULL AS TEXT) AS n, 'a,b' AS s \
         FROM generate_series(1, 3) AS t(value)) TO STDOUT WITH CSV HEADER",
    )
    .await;
    assert_eq!(csv, b"v,n,s\n1,,\"a,b\"\n2,,\"a,b\"\n3,,\"a,b\"\n");

    let binary = copy_out(
        &client,
        "COPY (SELECT CAST(1 AS INT) AS i, TIMESTAMP '2000-01-01 00:00:01.000002' AS t) \
         TO STDOUT WITH BINARY",
    )
    .await;
    let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
    expected.extend_from_slice(&[0; 8]);
    expected.extend_from_slice(&2i16.to_be_bytes());
    expected.extend_from_slice(&4i32.to_be_bytes());
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&8i32.to_be_bytes());
    expected.extend_from_slice(&1_000_002i64.to_be_bytes());
    expected.extend_from_slice(&(-1i16).to_be_bytes());
    assert_eq!(binary, expected);

    // Writes are refused; the connection goes on.
    let Err(e) = client.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN").await else {
        panic!("COPY FROM STDIN was accepted");
    };
    assert_eq!(e.code().unwrap().code(), "25006");
    let row = client.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);

    drop(client);
    pg.shutdown().await;
    engine.shutdown();
}
