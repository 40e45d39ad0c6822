//! Statement shapes answered from one optimised plan (`plan_cache`) and few-series queries on one
//! partition (`one_partition`): the same answers as every statement planned on its own with those
//! rules off, over both tiers, for many literal values per shape.

use crate::harness::TestServer;

/// 2024-01-01T00:00:00Z.
const START: i64 = 1_704_067_200_000_000_000;
const STEP: i64 = 10_000_000_000;
const HOSTS: i64 = 6;
const POINTS: i64 = 240;

/// `ns` (within 2024-01-01) as `YYYY-MM-DD HH:MM:SS`.
fn iso(ns: i64) -> String {
    let secs = (ns - START).div_euclid(1_000_000_000);
    assert!((0..86_400).contains(&secs), "within the first day");
    format!(
        "2024-01-01 {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

async fn answer(server: &TestServer, sql: &str, disabled: &str) -> (u16, String) {
    let r = server
        .http
        .post(server.url("/api/v3/query_sql"))
        .json(&serde_json::json!({"db": "db", "q": sql, "format": "json", "disabled_rules": disabled}))
        .send()
        .await
        .expect("query request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn metric(server: &TestServer, outcome: &str) -> u64 {
    let sample = format!("hourglass_plan_cache_statements_total{{outcome=\"{outcome}\"}}");
    server.metric(&sample).await as u64
}

/// A small deterministic sequence for the literals.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as i64
    }
}

/// Rows of `HOSTS` hosts at `POINTS` times: the first half persisted to Parquet, the second in
/// memory.
async fn load_both_tiers(server: &TestServer) {
    let lines = |from: i64, to: i64| -> String {
        (from..to)
            .flat_map(|i| {
                (0..HOSTS).map(move |h| {
                    format!(
                        "cpu,host=h{h},dc=d{} u={}i,f={}.{},s=\"s{}\" {}\n",
                        h % 2,
                        (i * 7 + h * 13) % 100,
                        (i * 3 + h) % 50,
                        i % 10,
                        (i + h) % 3,
                        START + i * STEP
                    )
                })
            })
            .collect()
    };
    // Both tiers: the first half persisted to Parquet, the second in memory.
    assert_eq!(server.write_lp("db", &lines(0, POINTS / 2)).await.0, 204);
    let flushed = server
        .http
        .post(server.url("/admin/flush"))
        .send()
        .await
        .expect("flush");
    assert_eq!(flushed.status().as_u16(), 200);
    assert_eq!(
        server.write_lp("db", &lines(POINTS / 2, POINTS)).await.0,
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_of_one_shape_answer_as_each_planned_alone() {
    let server = TestServer::start().await;
    load_both_tiers(&server).await;

    type Make = fn(&mut Lcg) -> String;
    let shapes: Vec<(&str, Make)> = vec![
        ("one host, a window, 1-minute buckets", |r| {
            let a = START + r.next(POINTS) * STEP;
            format!(
                "SELECT date_bin(INTERVAL '1 minute', time) AS b, max(u) AS m FROM cpu \
                 WHERE host IN ('h{}') AND time >= TIMESTAMP '{}' AND time < TIMESTAMP '{}' \
                 GROUP BY 1 ORDER BY 1",
                r.next(HOSTS + 1),
                iso(a),
                iso(a + (1 + r.next(60)) * STEP)
            )
        }),
        ("numbers against integer and float columns", |r| {
            format!(
                "SELECT host, count(*) AS n, sum(f) AS s FROM cpu WHERE u > {} AND f <= {} \
                 GROUP BY host ORDER BY host",
                r.next(100),
                r.next(50)
            )
        }),
        ("strings as times, BETWEEN", |r| {
            let a = START + r.next(POINTS) * STEP;
            format!(
                "SELECT time, u FROM cpu WHERE host = 'h{}' AND time BETWEEN '{}' AND '{}' \
                 ORDER BY time",
                r.next(HOSTS),
                iso(a),
                iso(a + r.next(40) * STEP)
            )
        }),
        ("OR, NOT and <>", |r| {
            format!(
                "SELECT count(*) AS n FROM cpu WHERE (s = 's{}' OR u = {}) AND NOT (u <> {})",
                r.next(4),
                r.next(100),
                r.next(100)
            )
        }),
        ("IN of two, HAVING", |r| {
            format!(
                "SELECT host, max(u) AS m FROM cpu WHERE host IN ('h{}', 'h{}') AND dc = 'd{}' \
                 GROUP BY host HAVING max(u) > 10 ORDER BY host",
                r.next(HOSTS),
                r.next(HOSTS),
                r.next(2)
            )
        }),
        ("a derived table", |r| {
            format!(
                "SELECT * FROM (SELECT host, u, time FROM cpu WHERE u >= {}) d \
                 WHERE host = 'h{}' ORDER BY u, time LIMIT 7",
                r.next(100),
                r.next(HOSTS)
            )
        }),
        ("decimals against a float column", |r| {
            format!(
                "SELECT time, f FROM cpu WHERE f > {}.{} AND host = 'h{}' ORDER BY time",
                r.next(50),
                r.next(10),
                r.next(HOSTS)
            )
        }),
        // Shapes whose statements are planned on their own: a decimal against an integer column
        // (DataFusion compares as floats), and now() (never kept in a template).
        ("a decimal against an integer column", |r| {
            format!("SELECT count(*) AS n FROM cpu WHERE u > {}.5", r.next(100))
        }),
        ("now()", |r| {
            format!(
                "SELECT count(*) AS n FROM cpu WHERE time < now() AND host = 'h{}'",
                r.next(HOSTS)
            )
        }),
    ];

    let hits_before = metric(&server, "hit").await;
    let bypassed_before = metric(&server, "bypassed").await;
    let mut rng = Lcg(7);
    let mut non_empty = 0;
    for (name, make) in &shapes {
        for _ in 0..12 {
            let sql = make(&mut rng);
            let on = answer(&server, &sql, "none").await;
            let off = answer(&server, &sql, "all").await;
            assert_eq!(on.0, 200, "{name}: {sql}: {}", on.1);
            assert_eq!(on, off, "{name}: {sql}");
            non_empty += usize::from(on.1 != "[]");
        }
    }
    assert!(non_empty > 60, "most statements select rows ({non_empty})");
    // Seven shapes that qualify: one miss each, then eleven hits.
    let hits = metric(&server, "hit").await - hits_before;
    assert!(hits >= 7 * 11, "hits {hits}");
    let bypassed = metric(&server, "bypassed").await - bypassed_before;
    assert!(bypassed >= 2 * 11, "bypassed {bypassed}");

    // A literal that does not convert (a string that is no time) is planned on its own, and
    // fails as it does there.
    let bad = "SELECT count(*) AS n FROM cpu WHERE time > 'soon' AND host = 'h1'";
    let (status, body) = answer(&server, bad, "none").await;
    let (status_off, body_off) = answer(&server, bad, "all").await;
    assert_eq!((status, &body), (status_off, &body_off));
    assert_ne!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_column_makes_a_new_template() {
    let server = TestServer::start().await;
    let at = |i: i64| START + i * STEP;
    let body = format!("m,host=a v=1i {}\nm,host=b v=2i {}\n", at(0), at(1));
    assert_eq!(server.write_lp("db", &body).await.0, 204);
    let sql = |h: &str| format!("SELECT * FROM m WHERE host = '{h}' ORDER BY time");
    let first = server.query("db", &sql("a")).await;
    assert_eq!(first.len(), 1);
    assert!(first[0].get("w").is_none());
    // A new measure: the shape's next statement sees the new column.
    let body = format!("m,host=a v=3i,w=9i {}\n", at(2));
    assert_eq!(server.write_lp("db", &body).await.0, 204);
    let rows = server.query("db", &sql("a")).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["w"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn few_series_over_a_short_span_plan_on_one_partition() {
    let server = TestServer::start().await;
    let body: String = (0..200i64)
        .map(|i| format!("cpu,host=h{} u={i}i {}\n", i % 4, START + i * STEP))
        .collect();
    assert_eq!(server.write_lp("db", &body).await.0, 204);
    let one_host = format!(
        "SELECT date_bin(INTERVAL '1 minute', time) AS b, max(u) AS m FROM cpu \
         WHERE host = 'h1' AND time >= TIMESTAMP '{}' AND time < TIMESTAMP '{}' GROUP BY 1 ORDER BY 1",
        iso(START),
        iso(START + 3600 * 1_000_000_000)
    );
    let every_host = "SELECT date_bin(INTERVAL '1 minute', time) AS b, max(u) AS m FROM cpu \
                      GROUP BY 1 ORDER BY 1";
    let explain = |sql: String, disabled: &'static str| {
        let server = &server;
        async move {
            let (status, plan) = answer(server, &format!("EXPLAIN {sql}"), disabled).await;
            assert_eq!(status, 200, "{plan}");
            plan
        }
    };
    let plan = explain(one_host.clone(), "none").await;
    assert!(!plan.contains("RepartitionExec"), "one partition:\n{plan}");
    let plan = explain(one_host.clone(), "one_partition").await;
    assert!(plan.contains("RepartitionExec"), "switched off:\n{plan}");
    let plan = explain(every_host.to_string(), "none").await;
    assert!(plan.contains("RepartitionExec"), "every host:\n{plan}");
    assert_eq!(
        answer(&server, &one_host, "none").await,
        answer(&server, &one_host, "one_partition").await
    );
}

/// Rows of a simple-protocol answer as text.
async fn pg_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

async fn pg_connect(server: &TestServer) -> tokio_postgres::Client {
    let port = server.running().pg_addr.port();
    let conf = format!("host=127.0.0.1 port={port} user=hourglass dbname=db");
    let (client, conn) = tokio_postgres::connect(&conf, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statements_use_templates_keyed_by_the_connections_settings() {
    let server = TestServer::start().await;
    load_both_tiers(&server).await;
    let on = pg_connect(&server).await;
    let off = pg_connect(&server).await;
    off.batch_execute("SET hourglass.disabled_rules = 'all'")
        .await
        .expect("rules off");
    let one_host = |r: &mut Lcg| {
        let a = START + r.next(POINTS) * STEP;
        format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS b, max(u) AS m, count(*) AS n \
             FROM cpu WHERE host = 'h{}' AND time >= TIMESTAMP '{}' AND time < TIMESTAMP '{}' \
             GROUP BY 1 ORDER BY 1",
            r.next(HOSTS + 1),
            iso(a),
            iso(a + (1 + r.next(60)) * STEP)
        )
    };
    let hits_before = metric(&server, "hit").await;
    let mut rng = Lcg(11);
    let mut non_empty = 0;
    for _ in 0..12 {
        let sql = one_host(&mut rng);
        let simple = pg_rows(&on, &sql).await;
        assert_eq!(simple, pg_rows(&off, &sql).await, "{sql}");
        non_empty += usize::from(!simple.is_empty());
        // The extended protocol (Parse, Describe, Bind, Execute), typed.
        let typed: Vec<(i64, i64)> = on
            .query(sql.as_str(), &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| (r.get::<_, i64>("m"), r.get::<_, i64>("n")))
            .collect();
        let text: Vec<(i64, i64)> = simple
            .iter()
            .map(|r| {
                let n = |i: usize| r[i].as_deref().unwrap().parse::<i64>().unwrap();
                (n(1), n(2))
            })
            .collect();
        assert_eq!(typed, text, "{sql}");
    }
    assert!(non_empty >= 8, "most statements select rows ({non_empty})");
    let hits = metric(&server, "hit").await - hits_before;
    assert!(
        hits >= 20,
        "both protocols answered from the template: {hits} hits"
    );

    // Another connection with other settings plans the shape again (a miss), and answers alike.
    let other = pg_connect(&server).await;
    other
        .batch_execute("SET hourglass.disabled_rules = 'one_partition'")
        .await
        .expect("set");
    let misses_before = metric(&server, "miss").await;
    let sql = one_host(&mut rng);
    assert_eq!(pg_rows(&other, &sql).await, pg_rows(&off, &sql).await);
    assert_eq!(metric(&server, "miss").await - misses_before, 1);
    // And a connection with the first one's settings finds its template (no miss).
    let same = pg_connect(&server).await;
    let misses_before = metric(&server, "miss").await;
    let sql = one_host(&mut rng);
    assert_eq!(pg_rows(&same, &sql).await, pg_rows(&off, &sql).await);
    assert_eq!(metric(&server, "miss").await - misses_before, 0);
}
