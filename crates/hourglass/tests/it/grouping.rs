//! GROUP BY on dimensions groups by the value cast to a string view (DataFusion has no
//! column-wise group keys for dictionaries) and returns the dimension with its own type.

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
        plan.contains("Utf8View"),
        "group keys cast to string views:\n{plan}"
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
