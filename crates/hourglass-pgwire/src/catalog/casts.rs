//! `pg_cast`: PostgreSQL's built-in casts between the types `pg_type` lists (psql's `\dC`),
//! with PostgreSQL's contexts (`i` implicit, `a` in assignment, `e` explicit only) and methods
//! (`f` by a function, `b` binary coercible). Hourglass casts with DataFusion's own kernels, and
//! `pg_proc` lists no functions: `castfunc` is 0, so `\dC` shows no function name for the
//! casts PostgreSQL makes by one.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use super::Cols;

const BOOL: i64 = 16;
const CHAR: i64 = 18;
const NAME: i64 = 19;
const INT8: i64 = 20;
const INT2: i64 = 21;
const INT4: i64 = 23;
const TEXT: i64 = 25;
const OID: i64 = 26;
const FLOAT4: i64 = 700;
const FLOAT8: i64 = 701;
const BPCHAR: i64 = 1042;
const VARCHAR: i64 = 1043;
const DATE: i64 = 1082;
const TIME: i64 = 1083;
const TIMESTAMP: i64 = 1114;
const TIMESTAMPTZ: i64 = 1184;
const INTERVAL: i64 = 1186;
const NUMERIC: i64 = 1700;

/// (source, target, context, method), as in PostgreSQL's `pg_cast.dat`.
const CASTS: &[(i64, i64, &str, &str)] = &[
    (INT8, INT2, "a", "f"),
    (INT8, INT4, "a", "f"),
    (INT8, FLOAT4, "i", "f"),
    (INT8, FLOAT8, "i", "f"),
    (INT8, NUMERIC, "i", "f"),
    (INT8, OID, "i", "f"),
    (INT2, INT8, "i", "f"),
    (INT2, INT4, "i", "f"),
    (INT2, FLOAT4, "i", "f"),
    (INT2, FLOAT8, "i", "f"),
    (INT2, NUMERIC, "i", "f"),
    (INT2, OID, "i", "f"),
    (INT4, INT8, "i", "f"),
    (INT4, INT2, "a", "f"),
    (INT4, FLOAT4, "i", "f"),
    (INT4, FLOAT8, "i", "f"),
    (INT4, NUMERIC, "i", "f"),
    (INT4, OID, "i", "b"),
    (INT4, BOOL, "e", "f"),
    (INT4, CHAR, "e", "f"),
    (FLOAT4, INT8, "a", "f"),
    (FLOAT4, INT2, "a", "f"),
    (FLOAT4, INT4, "a", "f"),
    (FLOAT4, FLOAT8, "i", "f"),
    (FLOAT4, NUMERIC, "a", "f"),
    (FLOAT8, INT8, "a", "f"),
    (FLOAT8, INT2, "a", "f"),
    (FLOAT8, INT4, "a", "f"),
    (FLOAT8, FLOAT4, "a", "f"),
    (FLOAT8, NUMERIC, "a", "f"),
    (NUMERIC, INT8, "a", "f"),
    (NUMERIC, INT2, "a", "f"),
    (NUMERIC, INT4, "a", "f"),
    (NUMERIC, FLOAT4, "i", "f"),
    (NUMERIC, FLOAT8, "i", "f"),
    (NUMERIC, NUMERIC, "i", "f"),
    (OID, INT8, "a", "f"),
    (OID, INT4, "a", "b"),
    (BOOL, INT4, "e", "f"),
    (CHAR, INT4, "e", "f"),
    (CHAR, TEXT, "i", "f"),
    (CHAR, BPCHAR, "a", "f"),
    (CHAR, VARCHAR, "a", "f"),
    (NAME, TEXT, "i", "f"),
    (NAME, BPCHAR, "a", "f"),
    (NAME, VARCHAR, "a", "f"),
    (TEXT, BPCHAR, "i", "b"),
    (TEXT, VARCHAR, "i", "b"),
    (TEXT, CHAR, "a", "f"),
    (TEXT, NAME, "i", "f"),
    (BPCHAR, TEXT, "i", "f"),
    (BPCHAR, VARCHAR, "i", "f"),
    (BPCHAR, CHAR, "a", "f"),
    (BPCHAR, NAME, "i", "f"),
    (BPCHAR, BPCHAR, "i", "f"),
    (VARCHAR, TEXT, "i", "b"),
    (VARCHAR, BPCHAR, "i", "b"),
    (VARCHAR, CHAR, "a", "f"),
    (VARCHAR, NAME, "i", "f"),
    (VARCHAR, VARCHAR, "i", "f"),
    (DATE, TIMESTAMP, "i", "f"),
    (DATE, TIMESTAMPTZ, "i", "f"),
    (TIME, INTERVAL, "i", "f"),
    (TIME, TIME, "i", "f"),
    (TIMESTAMP, DATE, "a", "f"),
    (TIMESTAMP, TIME, "a", "f"),
    (TIMESTAMP, TIMESTAMPTZ, "i", "f"),
    (TIMESTAMP, TIMESTAMP, "i", "f"),
    (TIMESTAMPTZ, DATE, "a", "f"),
    (TIMESTAMPTZ, TIME, "a", "f"),
    (TIMESTAMPTZ, TIMESTAMP, "a", "f"),
    (TIMESTAMPTZ, TIMESTAMPTZ, "i", "f"),
    (INTERVAL, TIME, "a", "f"),
    (INTERVAL, INTERVAL, "i", "f"),
];

/// The OID PostgreSQL's casts start at (its `pg_cast` rows are numbered from about 10000).
const FIRST_OID: i64 = 10_000;

/// `pg_cast`.
pub fn table() -> DfResult<Arc<dyn TableProvider>> {
    let n = CASTS.len();
    Cols::default()
        .i64("oid", (0..n as i64).map(|i| FIRST_OID + i).collect())
        .i64("castsource", CASTS.iter().map(|c| c.0).collect())
        .i64("casttarget", CASTS.iter().map(|c| c.1).collect())
        .i64("castfunc", vec![0; n])
        .str("castcontext", CASTS.iter().map(|c| c.2).collect())
        .str("castmethod", CASTS.iter().map(|c| c.3).collect())
        .table()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cast_is_between_listed_types_and_listed_once() {
        let listed: Vec<i64> = super::super::TYPES
            .iter()
            .map(|t| i64::from(t.oid()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for (s, t, context, method) in CASTS {
            assert!(listed.contains(s) && listed.contains(t), "{s} -> {t}");
            assert!(seen.insert((s, t)), "{s} -> {t} twice");
            assert!(["i", "a", "e"].contains(context));
            assert!(["f", "b"].contains(method));
        }
    }
}
