//! Authentication through tokio-postgres and a raw socket: SCRAM logins, protocol violations
//! before login (FATAL, audited, no panic), `require_tls` without TLS, and sessions that end
//! when their user is removed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hourglass_auth::{AuditLog, AuthStore, Grant, Permission, Security};
use hourglass_core::SystemClock;
use hourglass_pgwire::{PgServer, PgSettings};
use hourglass_query::session::QueryLimits;
use hourglass_query::QueryEngine;
use hourglass_storage::{Engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

async fn server(dir: &std::path::Path, security: Security) -> PgServer {
    let engine = Engine::open(EngineConfig::new(dir), Arc::new(SystemClock))
        .await
        .unwrap();
    let query = QueryEngine::new(engine, QueryLimits::default()).unwrap();
    PgServer::start_with(
        "127.0.0.1:0".parse().unwrap(),
        query,
        security,
        None,
        PgSettings::default(),
    )
    .await
    .unwrap()
}

fn secured(dir: &std::path::Path) -> Security {
    Security {
        store: Some(Arc::new(AuthStore::open(dir).unwrap())),
        audit: Some(Arc::new(AuditLog::open(dir).unwrap())),
        require_tls: false,
    }
}

fn refusals(dir: &std::path::Path) -> usize {
    hourglass_auth::audit::read_all(&hourglass_auth::audit::path(dir))
        .unwrap_or_default()
        .iter()
        .filter(|e| e.interface == "postgres" && e.outcome == "unauthenticated")
        .count()
}

/// The startup packet, then the server's first message (kind, body).
async fn start(pg: &PgServer, user: &str) -> (tokio::net::TcpStream, u8, Vec<u8>) {
    let mut sock = tokio::net::TcpStream::connect(pg.addr).await.unwrap();
    let params = format!("user\0{user}\0database\0db\0\0");
    let mut packet = ((8 + params.len()) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&196608u32.to_be_bytes());
    packet.extend_from_slice(params.as_bytes());
    sock.write_all(&packet).await.unwrap();
    let (kind, body) = read(&mut sock).await.unwrap();
    (sock, kind, body)
}

async fn read(sock: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    sock.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    sock.read_exact(&mut body).await.ok()?;
    Some((head[0], body))
}

fn sqlstate(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"C"))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_message_after_the_sasl_offer_is_fatal_08p01_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    hourglass_auth::users::add(dir.path(), "u", vec![]).unwrap();
    let pg = server(dir.path(), secured(dir.path())).await;
    let (mut sock, kind, body) = start(&pg, "u").await;
    assert_eq!((kind, &body[..4]), (b'R', &10u32.to_be_bytes()[..]));
    // A cleartext PasswordMessage where the SASLInitialResponse belongs.
    sock.write_all(b"p\0\0\0\x0bsecret\0").await.unwrap();
    let (kind, body) = read(&mut sock).await.unwrap();
    assert_eq!((kind, sqlstate(&body).as_str()), (b'E', "08P01"));
    assert!(read(&mut sock).await.is_none(), "closed after FATAL");
    assert_eq!(refusals(dir.path()), 1);
    // A zero-length message (pgwire's decoder would underflow).
    let (mut sock, _, _) = start(&pg, "u").await;
    sock.write_all(b"p\0\0\0\0").await.unwrap();
    let (kind, body) = read(&mut sock).await.unwrap();
    assert_eq!((kind, sqlstate(&body).as_str()), (b'E', "08P01"));
    assert_eq!(refusals(dir.path()), 2);
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_tls_refuses_plaintext_before_any_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let security = Security {
        require_tls: true,
        ..Security::disabled()
    };
    let pg = server(dir.path(), security).await;
    let (mut sock, kind, body) = start(&pg, "anyone").await;
    assert_eq!((kind, sqlstate(&body).as_str()), (b'E', "28000"));
    assert!(String::from_utf8_lossy(&body).contains("TLS is required"));
    assert!(read(&mut sock).await.is_none());
    pg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_their_user_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let grants = vec![Grant {
        database: "*".into(),
        permission: Permission::Read,
    }];
    let creds = hourglass_auth::users::add(dir.path(), "u", grants).unwrap();
    let pg = server(dir.path(), secured(dir.path())).await;
    let conf = format!(
        "host=127.0.0.1 port={} user=u password={} dbname=db",
        pg.addr.port(),
        creds.password
    );
    let (client, conn) = tokio_postgres::connect(&conf, NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    assert_eq!(client.simple_query("SELECT 1").await.unwrap().len(), 3);
    hourglass_auth::users::remove(dir.path(), "u").unwrap();
    let removed = Instant::now();
    let error = loop {
        match client.simple_query("SELECT 1").await {
            Ok(_) => {
                assert!(removed.elapsed() < Duration::from_millis(1500));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    );
    // The server closed the connection.
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(client.is_closed());
    assert_eq!(refusals(dir.path()), 1);
    pg.shutdown().await;
}
