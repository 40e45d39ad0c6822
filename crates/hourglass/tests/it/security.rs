//! `--require-auth` in-process: tokens on HTTP, grants, SQL visibility, the audit table, SCRAM
//! over tokio-postgres, and the refusal to bind non-loopback addresses without authentication.

use hourglass::server::ServerConfig;
use hourglass_auth::users::{self, grants_from};

use crate::harness::TestServer;

fn add(dir: &std::path::Path, name: &str, db: &str, permission: &str) -> users::Credentials {
    let grants = grants_from(&[db.to_string()], &[permission.to_string()]).expect("grants");
    users::add(dir, name, grants).expect("user add")
}

async fn send(
    t: &TestServer,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut r = t.http.post(t.url(path));
    if let Some(token) = token {
        r = r.header("Authorization", format!("Token {token}"));
    }
    if let Some(body) = body {
        r = r.body(body.to_string());
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

fn sql(db: &str, q: &str) -> String {
    format!(
        "/api/v3/query_sql?db={db}&q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    )
}

#[tokio::test]
async fn tokens_grants_visibility_and_audit() {
    let t = TestServer::start_with(|c| c.require_auth = true).await;
    let writer = add(&t.dir, "writer", "a", "write");
    let reader = add(&t.dir, "reader", "b", "read");
    let op = add(&t.dir, "op", "*", "admin");
    let lp = "m,t=x v=1i 1704153600000000000";
    let (status, body) = send(&t, "/api/v3/write_lp?db=a", None, Some(lp)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = send(&t, "/api/v3/write_lp?db=a", Some("hgt_x"), Some(lp)).await;
    assert_eq!(status, 401);
    // A write grant does not create the database; its admin (here the operator) does.
    let (status, body) = send(&t, "/api/v3/write_lp?db=a", Some(&writer.token), Some(lp)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = send(&t, "/api/v3/write_lp?db=a", Some(&op.token), Some(lp)).await;
    assert_eq!(status, 204);
    let (status, body) = send(&t, "/api/v3/write_lp?db=a", Some(&writer.token), Some(lp)).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = send(&t, "/api/v3/write_lp?db=b", Some(&op.token), Some(lp)).await;
    assert_eq!(status, 204);
    let (status, _) = send(&t, "/api/v3/write_lp?db=b", Some(&reader.token), Some(lp)).await;
    assert_eq!(status, 403);
    // The reader of b sees b only.
    let (status, rows) = send(
        &t,
        &sql("b", "SELECT count(*) AS n FROM m"),
        Some(&reader.token),
        None,
    )
    .await;
    assert_eq!((status, rows), (200, serde_json::json!([{"n": 1}])));
    let (status, _) = send(
        &t,
        &sql("b", "SELECT * FROM a.m"),
        Some(&reader.token),
        None,
    )
    .await;
    assert!(status >= 400);
    let (_, rows) = send(
        &t,
        &sql(
            "b",
            "SELECT DISTINCT table_schema AS s FROM information_schema.tables ORDER BY s",
        ),
        Some(&reader.token),
        None,
    )
    .await;
    assert_eq!(
        rows,
        serde_json::json!([{"s": "b"}, {"s": "information_schema"}])
    );
    // Operators only: admin endpoints and the audit log.
    let (status, _) = send(&t, "/admin/flush", Some(&reader.token), None).await;
    assert_eq!(status, 403);
    let (status, _) = send(&t, "/admin/flush", Some(&op.token), None).await;
    assert_eq!(status, 200);
    let q = "SELECT action, outcome FROM system.audit_log WHERE interface = 'http' ORDER BY time";
    let (status, _) = send(&t, &sql("", q), Some(&reader.token), None).await;
    assert!(status >= 400);
    let (status, rows) = send(&t, &sql("", q), Some(&op.token), None).await;
    assert_eq!(status, 200);
    let events: Vec<(String, String)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").into(),
                r["outcome"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(events.contains(&("POST /api/v3/write_lp".into(), "unauthenticated".into())));
    assert!(events.contains(&("write".into(), "denied".into())));
    assert!(events.contains(&("POST /admin/flush".into(), "ok".into())));
    t.shutdown().await;
}

#[tokio::test]
async fn postgres_scram_with_tokio_postgres() {
    let t = TestServer::start_with(|c| c.require_auth = true).await;
    let user = add(&t.dir, "pg", "db", "read");
    let port = t.running().pg_addr.port();
    let connect = |password: String| async move {
        let conf = format!("host=127.0.0.1 port={port} user=pg dbname=db password={password}");
        tokio_postgres::connect(&conf, tokio_postgres::NoTls).await
    };
    let (client, conn) = connect(user.password.clone()).await.expect("connects");
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT 1::BIGINT", &[])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i64>(0), 1);
    let err = connect("wrong".into()).await.err().expect("refused");
    assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{err}");
    t.shutdown().await;
}

#[tokio::test]
async fn non_loopback_addresses_need_auth_or_an_override() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::for_tests(tmp.path());
    config.http_addr = "0.0.0.0:0".parse().expect("addr");
    let clock = std::sync::Arc::new(hourglass_core::ManualClock::new(0));
    let err = hourglass::server::start(config.clone(), clock.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--require-auth"), "{err}");
    config.allow_insecure_bind = true;
    let server = hourglass::server::start(config, clock)
        .await
        .expect("starts");
    server.shutdown().await;
}
