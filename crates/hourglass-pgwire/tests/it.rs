//! The endpoint through tokio-postgres: extended protocol, binary results, parameters, portals
//! with row limits, SQLSTATEs.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use hourglass_core::SystemClock;
use hourglass_pgwire::PgServer;
use hourglass_query::session::QueryLimits;
use hourglass_query::QueryEngine;
use hourglass_storage::{Engine, EngineConfig};
use tokio_postgres::NoTls;

async fn server(dir: &std::path::Path) -> (PgServer, Arc<Engine>) {
    let engine = Engine::open(EngineConfig::new(dir), Arc::new(SystemClock))
        .await
        .unwrap();
    let query = QueryEngine::new(engine.clone(), QueryLimits::default()).unwrap();
    let pg = PgServer::start("127.0.0.1:0".parse().unwrap(), query)
        .await
        .unwrap();
    (pg, engine)
}

async fn connect(pg: &PgServer, db: &str) -> tokio_postgres::Client {
    let conf = format!("host=127.0.0.1 port={} user=hg dbname={db}", pg.addr.port());
    let (client, conn) = tokio_postgres::connect(&conf, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_binary_results_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (pg, engine) = server(dir.path()).await;
    let mut client = connect(&pg, "db1").await;

    // tokio-postgres always uses the extended protocol with binary results.
    let row = client
        .query_one(
            "SELECT CAST($1 AS BIGINT) + 1, $2 || 'x', CAST(2.5 AS DOUBLE), true, TIMESTAMP '2024-01-02 03:04:05'",
            &[&41i64, &"ab"],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    assert_eq!(row.get::<_, String>(1), "abx");
    assert_eq!(row.get::<_, f64>(2), 2.5);
    assert!(row.get::<_, bool>(3));
    let ts: chrono::NaiveDateTime = row.get(4);
    assert_eq!(ts.to_string(), "2024-01-02 03:04:05");

    // A prepared statement run twice with other values; types inferred by DataFusion.
    let stmt = client
        .prepare("SELECT value FROM generate_series(1, 100) AS t(value) WHERE value > $1 AND value <= $2")
        .await
        .unwrap();
    assert_eq!(
        stmt.params(),
        &[
            tokio_postgres::types::Type::INT8,
            tokio_postgres::types::Type::INT8
        ]
    );
    assert_eq!(
        client.query(&stmt, &[&10i64, &13i64]).await.unwrap().len(),
        3
    );
    assert_eq!(
        client.query(&stmt, &[&90i64, &200i64]).await.unwrap().len(),
        10
    );

    // Portals with row limits: 100 rows fetched 30 at a time.
    let tx = client.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT value FROM generate_series(1, 100) AS t(value)")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut sizes = vec![];
    loop {
        let rows = tx.query_portal(&portal, 30).await.unwrap();
        if rows.is_empty() {
            break;
        }
        sizes.push(rows.len());
    }
    assert_eq!(sizes, vec![30, 30, 30, 10]);
    tx.commit().await.unwrap();

    // Errors carry SQLSTATEs.
    let e = client.query("SELECT * FROM nope", &[]).await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42P01");
    let e = client.query("SELEC 1", &[]).await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42601");
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "db1");

    drop(client);
    pg.shutdown().await;
    engine.shutdown();
}
