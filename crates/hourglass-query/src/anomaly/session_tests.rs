//! The anomaly functions through a whole query engine, in both SQL dialects, and their names
//! checked free of DataFusion's and the Timestream dialect's functions.

use std::sync::Arc;
use std::time::Duration;

use arrow::util::pretty::pretty_format_batches;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;
use hourglass_core::SystemClock;
use hourglass_storage::{Engine, EngineConfig};

use crate::session::QueryLimits;
use crate::QueryEngine;

async fn engine(name: &str) -> (QueryEngine, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("hourglass-anomaly-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = EngineConfig::new(&dir);
    config.maintenance_interval = Duration::from_secs(3600);
    let engine = Engine::open(config, Arc::new(SystemClock)).await.unwrap();
    let limits = QueryLimits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_secs(30),
    };
    (QueryEngine::new(engine, limits).unwrap(), dir)
}

/// Rows 1..=6 with values 108, 112, 110, 108, 112, 120 (zscore of the last, against the
/// five before it: mean 110, s = 2 → 5; ewma with α = 1 is the value itself).
const VALUES: &str =
    "(VALUES (1, 108.0), (2, 112.0), (3, 110.0), (4, 108.0), (5, 112.0), (6, 120.0)) AS t(n, x)";

fn expected() -> &'static str {
    "+---+-------+\n\
     | z | e     |\n\
     +---+-------+\n\
     | 5 | 120.0 |\n\
     +---+-------+"
}

fn query() -> String {
    format!(
        "SELECT CAST(z AS BIGINT) AS z, e FROM (SELECT n, \
           zscore(x) OVER (ORDER BY n ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS z, \
           ewma(x, 1) OVER (ORDER BY n) AS e, \
           mad(x) OVER (ORDER BY n ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS m, \
           robust_zscore(x) OVER (ORDER BY n ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS r, \
           ewm_stddev(x, 0.5) OVER (ORDER BY n) AS s \
         FROM {VALUES}) WHERE n = 6"
    )
}

#[tokio::test]
async fn answer_in_both_dialects() {
    let (q, dir) = engine("dialects").await;
    let sql = q.collect("", &query()).await.unwrap();
    assert_eq!(pretty_format_batches(&sql).unwrap().to_string(), expected());
    let ts = q.collect_timestream(&query()).await.unwrap();
    assert_eq!(pretty_format_batches(&ts).unwrap().to_string(), expected());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn names_are_new() {
    let ctx = SessionContext::new();
    crate::dialect::register(&ctx);
    let state = ctx.state();
    for name in super::udafs()
        .iter()
        .map(|f| f.name().to_string())
        .chain(super::udwfs().iter().map(|f| f.name().to_string()))
    {
        assert!(state.udaf(&name).is_err(), "{name} is an aggregate already");
        assert!(
            state.udwf(&name).is_err(),
            "{name} is a window function already"
        );
        assert!(
            state.udf(&name).is_err(),
            "{name} is a scalar function already"
        );
    }
}
