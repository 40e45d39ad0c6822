//! The line protocol endpoints' contracts: status codes, error shapes of each flavour, gzip,
//! precision, type conflicts, and partial writes keeping the valid lines.

use std::io::Write;

use crate::harness::{TestServer, DEFAULT_NOW};

async fn post(server: &TestServer, path: &str, body: Vec<u8>, gzip: bool) -> (u16, String) {
    let mut req = server.http.post(server.url(path)).body(body);
    if gzip {
        req = req.header("Content-Encoding", "gzip");
    }
    let r = req.send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_flavour_answers_in_its_own_shape() {
    let server = TestServer::start().await;
    let t = DEFAULT_NOW;
    let body = format!("m,host=a v=1 {t}\nm,host=b v= {t}\nm,host=c v=3 {t}\n");

    let (status, text) = post(&server, "/write?db=db", body.clone().into_bytes(), false).await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let message = v["error"].as_str().expect("v1 error");
    assert!(message.starts_with("partial write: line 2: "), "{message}");
    assert!(
        message.ends_with("(1 lines rejected, 2 rows written)"),
        "{message}"
    );

    let (status, text) = post(
        &server,
        "/api/v2/write?org=o&bucket=db2",
        body.clone().into_bytes(),
        false,
    )
    .await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["code"], "invalid");
    assert!(v["message"].as_str().expect("message").contains("line 2: "));

    let (status, text) = post(
        &server,
        "/api/v3/write_lp?db=db3",
        body.clone().into_bytes(),
        false,
    )
    .await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["error"], "partial write of line protocol occurred");
    assert_eq!(v["data"][0]["line_number"], 2);
    assert_eq!(v["data"][0]["original_line"], format!("m,host=b v= {t}"));

    for db in ["db", "db2", "db3"] {
        let rows = server.query(db, "SELECT host FROM m ORDER BY host").await;
        assert_eq!(rows.len(), 2, "{db}: {rows:?}");
    }

    // accept_partial=false writes nothing.
    let (status, text) = post(
        &server,
        "/api/v3/write_lp?db=db4&accept_partial=false",
        body.into_bytes(),
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("parsing failed for write_lp endpoint"),
        "{text}"
    );
    let (status, text) = server.query_raw("db4", "SELECT * FROM m", "json").await;
    assert_eq!(status, 400, "db4.m must not exist: {text}");
    assert!(text.contains("'hourglass.db4.m' not found"), "{text}");

    // Missing database parameter.
    let (status, text) = post(&server, "/write", b"m v=1".to_vec(), false).await;
    assert_eq!(status, 400);
    assert!(text.contains("'db'"), "{text}");
    let (status, text) = post(&server, "/api/v2/write?org=o", b"m v=1".to_vec(), false).await;
    assert_eq!(status, 400);
    assert!(text.contains("'bucket'"), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_precision_and_type_conflicts() {
    let server = TestServer::start().await;
    let secs = DEFAULT_NOW / 1_000_000_000;
    let body = format!("g,host=a v=1i {secs}\n");
    let (status, text) = post(
        &server,
        "/api/v2/write?org=o&bucket=db&precision=s",
        gzip(body.as_bytes()),
        true,
    )
    .await;
    assert_eq!(status, 204, "{text}");
    let rows = server.query("db", "SELECT v, time FROM g").await;
    assert_eq!(rows[0]["v"], 1);
    assert_eq!(rows[0]["time"], "2024-01-02T00:00:00");

    let (status, text) = post(
        &server,
        "/api/v2/write?org=o&bucket=db",
        b"g,host=b v=1.5\n".to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("'v'") && text.contains("float") && text.contains("integer"),
        "{text}"
    );

    let (status, text) = post(
        &server,
        "/api/v2/write?org=o&bucket=db",
        b"not gzip".to_vec(),
        true,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("gzip"), "{text}");

    let (status, text) = post(
        &server,
        "/api/v2/write?org=o&bucket=db&precision=fortnight",
        b"g v=1i".to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("fortnight"), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_formats_and_errors() {
    let server = TestServer::start().await;
    let t = DEFAULT_NOW;
    assert_eq!(
        server
            .write_lp("db", &format!("q,host=a v=1.5 {t}\nq,host=b v=2 {t}\n"))
            .await
            .0,
        204
    );
    let (status, csv) = server
        .query_raw("db", "SELECT host, v FROM q ORDER BY host", "csv")
        .await;
    assert_eq!(status, 200);
    assert_eq!(csv, "host,v\na,1.5\nb,2.0\n");
    let (_, jsonl) = server
        .query_raw("db", "SELECT host FROM db.q ORDER BY host", "jsonl")
        .await;
    assert_eq!(jsonl, "{\"host\":\"a\"}\n{\"host\":\"b\"}\n");
    let (_, pretty) = server
        .query_raw("db", "SELECT host FROM q ORDER BY host", "pretty")
        .await;
    assert!(
        pretty.contains("| host |") && pretty.contains("| b    |"),
        "{pretty}"
    );
    let (_, empty) = server
        .query_raw("db", "SELECT host FROM q WHERE host = 'zz'", "json")
        .await;
    assert_eq!(empty, "[]");
    let (status, err) = server.query_raw("db", "SELEC 1", "json").await;
    assert_eq!(status, 400);
    assert!(err.contains("error"), "{err}");
    let (status, err) = server.query_raw("db", "SELECT 1", "xml").await;
    assert_eq!(status, 400);
    assert!(err.contains("xml"), "{err}");
    let r = server
        .http
        .get(server.url("/api/v3/query_sql?db=db&q=SELECT%20count(*)%20AS%20n%20FROM%20q"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap_or_default(), "[{\"n\":2}]");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_time_limit_gets_a_clear_error_and_others_carry_on() {
    let server = TestServer::start_with(|c| {
        c.query_limits.timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let (status, body) = server
        .query_raw(
            "db",
            "SELECT count(*) FROM generate_series(1, 2000000000) a",
            "json",
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("time limit"), "{body}");
    let (status, body) = server.query_raw("db", "SELECT 1 AS one", "json").await;
    assert_eq!(status, 200);
    assert_eq!(body, "[{\"one\":1}]");
    server.shutdown().await;
}
