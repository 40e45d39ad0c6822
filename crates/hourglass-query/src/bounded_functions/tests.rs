//! Tests of the bounds: ordinary calls answer as DataFusion does, oversized ones are refused
//! (functions, `||`, constants, aggregates, windows, lambdas), and the estimates.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::ArrayRef;
use arrow::util::pretty::pretty_format_batches;
use datafusion::common::ScalarValue;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ColumnarValue;
use datafusion::prelude::SessionContext;
use hourglass_auth::{Grant, Permission, Principal};
use hourglass_core::{ErrorKind, SystemClock};
use hourglass_storage::{Engine, EngineConfig};

use super::estimate::{estimate, series_len, Kind};
use super::BoundedUdf;
use crate::session::QueryLimits;
use crate::QueryEngine;

pub(super) const MIB: usize = 1 << 20;

/// A query engine over an empty data directory, with `memory_mb` of query memory (a value
/// may then take a quarter of it).
pub(super) async fn engine(memory_mb: usize) -> (QueryEngine, std::path::PathBuf) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hourglass-bounded-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = EngineConfig::new(&dir);
    config.maintenance_interval = Duration::from_secs(3600);
    let engine = Engine::open(config, Arc::new(SystemClock)).await.unwrap();
    let limits = QueryLimits {
        memory_bytes: memory_mb * MIB,
        timeout: Duration::from_secs(30),
    };
    (QueryEngine::new(engine, limits).unwrap(), dir)
}

/// DataFusion without the bounds (and with the dialect's functions, unbounded).
pub(super) fn reference() -> SessionContext {
    let ctx = SessionContext::new();
    crate::dialect::register(&ctx);
    ctx
}

pub(super) async fn text(q: &QueryEngine, sql: &str) -> String {
    let batches = q
        .collect("", sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches).unwrap().to_string()
}

pub(super) async fn reference_text(sql: &str) -> String {
    let batches = reference()
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches).unwrap().to_string()
}

pub(super) async fn refused(q: &QueryEngine, sql: &str) -> hourglass_core::Error {
    match q.collect("", sql).await {
        Ok(b) => panic!("{sql} was answered: {}", pretty_format_batches(&b).unwrap()),
        Err(e) => e,
    }
}

/// Ordinary calls answer exactly as DataFusion does, with constant and column arguments.
#[tokio::test]
async fn bounded_functions_answer_ordinary_calls_as_datafusion_does() {
    let (q, dir) = engine(64).await;
    let rows = "(VALUES ('ab', 2, ','), ('c', 0, '-'), (NULL, 3, NULL), ('déjà', 5, '**')) \
                AS t(s, n, f)";
    let queries = [
        "SELECT repeat('ab', 3), lpad('x', 5, 'ab'), rpad('hi', 6), lpad('é', 3, 'ü'), \
         rpad('abcdef', 3)"
            .to_string(),
        format!(
            "SELECT repeat(s, n), lpad(s, n), rpad(s, n + 2, f), lpad(s, 7, 'é'), \
             replace(s, 'a', 'xyz'), replace(s, '', 'q'), regexp_replace(s, '(a)', '[\\1]', 'g'), \
             concat(s, s, n, NULL), concat_ws(f, s, s, n), s || s || f, \
             overlay(s placing 'ZZ' from 2 for 1), string_to_array(s, 'b'), \
             array_repeat(s, n), array_repeat(n, 2), make_array(s, s), struct(s, n), \
             named_struct('a', s, 'b', n) FROM {rows}"
        ),
        format!(
            "SELECT range(n), range(1, n + 5, 2), generate_series(n, 6), sequence(n, 1), \
             sequence(1, n + 1, 2), array_resize(make_array(n), n, 7), \
             array_replace_all(make_array(n, 1, n), n, 9), array_replace_n(make_array(n, n, n), n, 0, 2), \
             array_replace(make_array(n, n), n, 4), array_to_string(make_array(n, NULL, n), f, 'nil'), \
             array_concat(make_array(n), make_array(1, 2)), array_append(make_array(n), 3), \
             array_prepend(0, make_array(n)), arrays_zip(make_array(n), make_array(s)) FROM {rows}"
        ),
        "SELECT range(DATE '2024-01-31', DATE '2024-06-01', INTERVAL '1 month'), \
         generate_series(TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-01-01 03:00:00', INTERVAL '90 minutes'), \
         sequence(DATE '2024-01-01', DATE '2024-01-04'), \
         sequence(TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-01-01 00:01:00', INTERVAL '20 seconds'), \
         to_char(TIMESTAMP '2024-01-02 03:04:05', '%Y-%m-%d %H:%M'), \
         format_datetime(TIMESTAMP '2024-01-02 03:04:05', 'yyyy-MM-dd HH:mm'), \
         array_to_string([[1, 2], [3]], '/'), map(['a', 'b'], [1, 2]), [1, 2] || [3], \
         regexp_replace('foobar', 'o', 'X', 'g'), concat('a', 1, NULL, 'b')"
            .to_string(),
    ];
    for sql in &queries {
        assert_eq!(text(&q, sql).await, reference_text(sql).await, "{sql}");
    }
    // The bounded functions are the session's (and keep DataFusion's aliases).
    let state = q.session("").state();
    for name in [
        "repeat",
        "list_repeat",
        "array_cat",
        "make_list",
        "date_format",
    ] {
        let f = state.udf(name).unwrap();
        assert!(f.inner().is::<BoundedUdf>(), "{name}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// With 64 MiB of query memory a value may take 16 MiB: each bounded function refuses to
/// build more, naming itself and the limit.
#[tokio::test]
async fn bounded_functions_refuse_oversized_results() {
    let (q, dir) = engine(64).await;
    // A 4 MiB column value to build on.
    let big = "(SELECT repeat('x', v) AS s FROM (VALUES (4000000)) AS t(v))";
    let cases = [
        ("repeat", "SELECT length(repeat('x', 1500000000))".to_string()),
        ("repeat", "SELECT length(repeat(s, 5)) FROM (VALUES ('abcd')) AS t(s) CROSS JOIN (SELECT 5000000 AS k)".replace("repeat(s, 5)", "repeat(s, k)")),
        ("lpad", "SELECT length(lpad('x', 100000000))".to_string()),
        ("rpad", "SELECT length(rpad('x', 100000000, 'ab'))".to_string()),
        ("array_repeat", "SELECT cardinality(array_repeat(1, 100000000))".to_string()),
        ("array_resize", "SELECT cardinality(array_resize([1], 100000000, 0))".to_string()),
        ("range", "SELECT cardinality(range(100000000))".to_string()),
        ("generate_series", "SELECT cardinality(generate_series(1, 100000000))".to_string()),
        (
            "generate_series",
            "SELECT cardinality(generate_series(TIMESTAMP '2000-01-01 00:00:00', \
             TIMESTAMP '2024-01-01 00:00:00', INTERVAL '1 second'))"
                .to_string(),
        ),
        (
            "sequence",
            "SELECT count(cardinality(sequence(v, v + 10000))) FROM generate_series(1, 8192) AS t(v)"
                .to_string(),
        ),
        ("replace", "SELECT length(replace(repeat('a', 1000000), 'a', repeat('b', 100)))".to_string()),
        (
            "regexp_replace",
            "SELECT length(regexp_replace(repeat('a', 100000), 'a', repeat('b', 1000), 'g'))".to_string(),
        ),
        (
            "array_replace_all",
            "SELECT cardinality(array_replace_all(array_repeat('a', 100000), 'a', repeat('b', 1000)))"
                .to_string(),
        ),
        (
            "array_to_string",
            "SELECT length(array_to_string(range(1000000), repeat('-', 100)))".to_string(),
        ),
        ("string_to_array", format!("SELECT cardinality(string_to_array(s, NULL)) FROM {big}")),
        (
            "to_char",
            "SELECT length(to_char(TIMESTAMP '2024-01-01 00:00:00', repeat('%c', 600000)))".to_string(),
        ),
        ("concat", format!("SELECT length(concat(s, s, s, s, s)) FROM {big}")),
        ("concat_ws", format!("SELECT length(concat_ws(s, s, s, s)) FROM {big}")),
        ("make_array", format!("SELECT cardinality(make_array(s, s, s, s, s)) FROM {big}")),
        ("overlay", format!("SELECT length(overlay(s placing concat(s, s, s, s) from 2)) FROM {big}")),
        ("||", format!("SELECT length(s || s || s || s || s) FROM {big}")),
        // A constant repeated over the rows of a batch.
        (
            "repeated over",
            "SELECT repeat('x', 100000) FROM generate_series(1, 10000)".to_string(),
        ),
        (
            "repeated over",
            format!("SELECT '{}' AS c FROM generate_series(1, 10000)", "y".repeat(100_000)),
        ),
        (
            "repeated over",
            format!(
                "SELECT max(length(CASE WHEN v > 0 THEN '{}' ELSE 'a' END)) FROM \
                 generate_series(1, 10000) AS t(v)",
                "y".repeat(100_000)
            ),
        ),
        (
            "repeated over",
            format!(
                "SELECT v % 3, max(concat(CAST(v AS VARCHAR), '{}')) FROM \
                 generate_series(1, 10000) AS t(v) GROUP BY v % 3",
                "y".repeat(100_000)
            ),
        ),
        (
            "repeated over",
            "SELECT v FROM generate_series(1, 10000) AS t(v) ORDER BY repeat('x', 100000) || \
             CAST(v AS VARCHAR) LIMIT 1"
                .to_string(),
        ),
        // Constants of one query together.
        (
            "constants of the query",
            "SELECT repeat('x', 5000000) a, repeat('y', 5000000) b, repeat('z', 5000000) c, \
             repeat('w', 5000000) d"
                .to_string(),
        ),
    ];
    for (what, sql) in &cases {
        let e = refused(&q, sql).await;
        assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
        assert!(e.message.contains(what), "{sql}: {e}");
        assert!(
            e.message.contains("16.0 MiB") || e.message.contains("memory limit"),
            "{sql}: {e}"
        );
    }
    // Results of many calls live in the memory pool together: 25 values of 3 MB in one row
    // are more than 64 MiB.
    let many: Vec<String> = (0..25)
        .map(|i| format!("lpad(s, {})", 3_000_000 + i))
        .collect();
    let sql = format!("SELECT {} FROM (VALUES ('a')) AS t(s)", many.join(", "));
    let e = refused(&q, &sql).await;
    assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{e}");
    assert!(e.message.contains("query memory limit has free"), "{e}");
    // And are returned to it when dropped: the same query with 5 of them is answered.
    let sql = format!(
        "SELECT {} FROM (VALUES ('a')) AS t(s)",
        many[..5].join(", ")
    );
    assert_eq!(q.collect("", &sql).await.unwrap()[0].num_rows(), 1);
    assert_eq!(q.engine.clone().catalog.snapshot().databases.len(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// Aggregates keep their state in accumulators DataFusion reserves in the memory pool:
/// `string_agg` and `array_agg` past the query memory limit are refused.
#[tokio::test]
async fn aggregates_are_bounded_by_the_memory_pool() {
    let (q, dir) = engine(64).await;
    let rows = "(SELECT v, lpad(CAST(v AS VARCHAR), 1000, 'x') AS s FROM generate_series(1, 200000) AS t(v))";
    for sql in [
        format!("SELECT length(string_agg(s, ',')) FROM {rows}"),
        format!("SELECT cardinality(array_agg(s)) FROM {rows}"),
        format!("SELECT v % 2, length(string_agg(s, ',')) FROM {rows} GROUP BY v % 2"),
        format!("SELECT v % 2, cardinality(array_agg(s)) FROM {rows} GROUP BY v % 2"),
    ] {
        let e = refused(&q, &sql).await;
        assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
    }
    // Small ones are answered.
    let small = "SELECT length(string_agg(s, ',')) AS l FROM (SELECT lpad(CAST(v AS VARCHAR), 10, 'x') AS s FROM generate_series(1, 1000) AS t(v))";
    assert!(text(&q, small).await.contains("10999"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Over a window an accumulator is evaluated once per row, each result as large as the rows
/// so far: DataFusion does not account those results, so the bounded aggregates do.
#[tokio::test]
async fn aggregates_over_windows_are_bounded() {
    let (q, dir) = engine(64).await;
    let rows = "(SELECT v, lpad(CAST(v AS VARCHAR), 1000, 'x') AS s FROM generate_series(1, 1200) AS t(v))";
    for sql in [
        format!(
            "SELECT max(length(a)) FROM (SELECT string_agg(s, ',') OVER (ORDER BY v ROWS \
             BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS a FROM {rows})"
        ),
        format!(
            "SELECT max(cardinality(a)) FROM (SELECT array_agg(s) OVER (ORDER BY v) AS a \
             FROM {rows})"
        ),
        format!(
            "SELECT max(cardinality(a)) FROM (SELECT array_agg(s) OVER (ORDER BY v ROWS \
             BETWEEN 1000 PRECEDING AND CURRENT ROW) AS a FROM {rows})"
        ),
    ] {
        let e = refused(&q, &sql).await;
        assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
        assert!(e.message.contains("over a window"), "{sql}: {e}");
    }
    // Ordinary windows answer as DataFusion does.
    let sql = "SELECT v, string_agg(CAST(v AS VARCHAR), ',') OVER (ORDER BY v) AS s, \
               array_agg(v) OVER (ORDER BY v ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS w, \
               array_agg(v) OVER (PARTITION BY v % 2 ORDER BY v) AS a \
               FROM generate_series(1, 20) AS t(v) ORDER BY v";
    assert_eq!(text(&q, sql).await, reference_text(sql).await);
    let _ = std::fs::remove_dir_all(dir);
}

/// A principal without a read grant anywhere may not run queries, not even `SELECT 1`.
#[tokio::test]
async fn write_only_principals_may_not_query() {
    let (q, dir) = engine(64).await;
    let writer = Arc::new(Principal::user(
        "w",
        vec![Grant {
            database: "db".into(),
            permission: Permission::Write,
        }],
    ));
    let reader = Arc::new(Principal::user(
        "r",
        vec![Grant {
            database: "db".into(),
            permission: Permission::Read,
        }],
    ));
    for sql in [
        "SELECT 1",
        "SELECT length(repeat('x', 1500000000))",
        "EXPLAIN SELECT 1",
    ] {
        let e = q.execute_as("db", sql, &writer).await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "{sql}: {e}");
        assert!(e.message.contains("no read grant"), "{e}");
        let e = q.execute_timestream_as(sql, &writer).await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "{sql}: {e}");
        // A session made for the writer (the PostgreSQL wire plans through its own) refuses
        // too.
        let ctx = q.session_as("db", &writer);
        let e = match ctx.sql(sql).await {
            Ok(df) => df.collect().await.err().unwrap(),
            Err(e) => e,
        };
        let e = crate::from_datafusion(e);
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "{sql}: {e}");
    }
    assert!(q.execute_as("db", "SELECT 1", &reader).await.is_ok());
    assert!(q.execute_timestream_as("SELECT 1", &reader).await.is_ok());
    let ctx = q.session_as("db", &reader);
    assert_eq!(
        ctx.sql("SELECT 1")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .len(),
        1
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A `reduce` doubling its state stops at the bound instead of running away.
#[tokio::test]
async fn lambdas_building_values_are_bounded() {
    let (q, dir) = engine(64).await;
    let e = q
        .collect_timestream(
            "SELECT length(reduce(sequence(1, 100), 'ab', (s, x) -> s || s, s -> s))",
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

fn estimate_all(kind: Kind, args: &[ColumnarValue], rows: usize) -> u128 {
    estimate(kind, args, rows, u128::MAX)
}

#[test]
fn estimates_count_what_the_functions_build() {
    let s = |v: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.to_string())));
    let i = |v: i64| ColumnarValue::Scalar(ScalarValue::Int64(Some(v)));
    assert_eq!(estimate_all(Kind::Repeat, &[s("ab"), i(1000)], 1), 2004);
    assert_eq!(estimate_all(Kind::Repeat, &[s("ab"), i(-5)], 1), 4);
    assert_eq!(
        estimate_all(Kind::Pad, &[s("a"), i(100), s("é")], 1),
        1 + 200 + 4
    );
    assert_eq!(series_len(&[i(10)], 0), 11);
    assert_eq!(series_len(&[i(1), i(10), i(3)], 0), 4);
    assert_eq!(series_len(&[i(10), i(1), i(1)], 0), 0);
    assert_eq!(series_len(&[i(10), i(1)], 0), 10);
    assert_eq!(
        estimate_all(Kind::Replace, &[s("aXa"), s("a"), s("bbb")], 1),
        3 + 2 * 2 + 4
    );
    assert_eq!(
        estimate_all(Kind::Replace, &[s("aXa"), s(""), s("bbb")], 1),
        3 + 4
    );
    let column: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["abc", "de"]));
    let col = ColumnarValue::Array(column);
    assert_eq!(
        estimate_all(Kind::Sum { separator: false }, &[col.clone(), s("xy")], 2),
        (5 + 8) + 4 + 8
    );
    assert_eq!(
        estimate_all(Kind::Repeat, &[col, i(10)], 2),
        (4 + 3) * 10 + 4 + (4 + 2) * 10 + 4
    );
}
