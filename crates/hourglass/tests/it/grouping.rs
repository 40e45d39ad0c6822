//! GROUP BY on dimensions groups by the value as a string view (DataFusion has no column-wise
//! group keys for dictionaries) and returns the dimension with its own type; first/last by time.

use std::collections::BTreeMap;

use crate::harness::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_by_dimensions_uses_string_views_and_keeps_the_answer() {
    let server = TestServer::start().await;
    let body: String = (0..300i64)
        .map(|i| {
            let dc = if i % 7 == 0 {
                String::new()
            } else {
                format!(",dc=dc{}", i % 3)
            };
            format!(
                "m,host=h{}{dc} v={i}i {}\n",
                i % 11,
                1_704_067_200_000_000_000 + i
            )
        })
        .collect();
    assert_eq!(server.write_lp("db", &body).await.0, 204);

    let sql =
        "SELECT host, dc, count(*) AS n, sum(v) AS s FROM m GROUP BY host, dc ORDER BY host, dc";
    let (status, plan) = server
        .query_raw("db", &format!("EXPLAIN {sql}"), "csv")
        .await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan.contains("hourglass_dictionary_as_view"),
        "group keys converted to string views:\n{plan}"
    );

    // The same groups computed here from the rows themselves.
    let mut expected: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for r in server.query("db", "SELECT host, dc, v FROM m").await {
        let e = expected
            .entry((r["host"].to_string(), r["dc"].to_string()))
            .or_default();
        e.0 += 1;
        e.1 += r["v"].as_i64().unwrap();
    }
    let rows = server.query("db", sql).await;
    let got: BTreeMap<(String, String), (i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                (r["host"].to_string(), r["dc"].to_string()),
                (r["n"].as_i64().unwrap(), r["s"].as_i64().unwrap()),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), rows.len(), "one row per group");
    assert!(
        rows.iter().any(|r| r["dc"].is_null()),
        "NULL dimensions form their own group"
    );
    assert_eq!(
        rows.iter().map(|r| r["n"].as_i64().unwrap()).sum::<i64>(),
        300
    );

    // The output column keeps the dimension's type (a dictionary, shown as Utf8 to clients).
    let (status, text) = server
        .query_raw(
            "db",
            "SELECT arrow_typeof(host) AS t FROM (SELECT host FROM m GROUP BY host) LIMIT 1",
            "csv",
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Dictionary(Int32, Utf8)"), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_and_last_by_time_agree_with_datafusions_general_accumulator() {
    let server = TestServer::start().await;
    let engine = server.running().engine.clone();
    let t0 = 1_704_067_200_000_000_000i64;
    // Three writes (two persisted, one in memory), out of time order, some values missing.
    for round in 0..3i64 {
        let body: String = (0..2_000i64)
            .map(|i| {
                let t = t0 + ((i * 7919 + round * 104_729) % 6_000) * 1_000_000_000 + round;
                let price = if (i + round) % 13 == 0 {
                    String::new()
                } else {
                    format!("price={}.5,", (i * 31 + round) % 997)
                };
                format!(
                    "trades,sym=S{} {price}size={}i {t}\n",
                    i % 17,
                    i % 50 + round
                )
            })
            .collect();
        assert_eq!(server.write_lp("db", &body).await.0, 204);
        if round < 2 {
            engine.persist_all().await.expect("flush");
        }
    }
    let query = |order: &str| {
        format!(
            "SELECT sym, date_bin(INTERVAL '1 minute', time) AS b, \
             first_value(price ORDER BY {order}) AS open, last_value(price ORDER BY {order}) AS close, \
             first_value(price ORDER BY {desc}) AS close_too, last_value(size ORDER BY {order}) AS last_size, \
             first_value(price IGNORE NULLS ORDER BY {order}) AS open_known, \
             last_value(price IGNORE NULLS ORDER BY {order}) AS close_known \
             FROM trades GROUP BY 1, 2 ORDER BY 1, 2",
            desc = order.replace("time", "time DESC"),
        )
    };
    // Ordered by time alone: this module's accumulator. By (time, sym): DataFusion's own (a
    // second key that never breaks a tie within a group, so the answers must be equal).
    let fast = server.query("db", &query("time")).await;
    let general = server.query("db", &query("time, sym")).await;
    assert!(fast.len() > 1000, "{} groups", fast.len());
    assert_eq!(fast, general);
    assert!(
        fast.iter().any(|r| r["open"].is_null()) && fast.iter().all(|r| !r["open_known"].is_null()),
        "a NULL first price is returned as NULL, and skipped with IGNORE NULLS"
    );
    for r in &fast {
        assert_eq!(
            r["close"], r["close_too"],
            "last ascending = first descending"
        );
    }
    server.shutdown().await;
}
