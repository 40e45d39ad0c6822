//! Tests of the `value_bounds` switch: off in a session with authentication off (or an
//! operator's), everything is DataFusion's own; for anyone else it stays on, whatever the
//! setting says.

use std::sync::Arc;

use arrow::util::pretty::pretty_format_batches;
use futures::TryStreamExt;
use hourglass_auth::{Grant, Permission, Principal};
use hourglass_core::{Error, ErrorKind};

use super::tests::{engine, reference_text};
use crate::rules::{DisabledRules, HourglassOptions, Rule, VALUE_BOUNDS_REFUSED};
use crate::QueryEngine;

/// `sql` as `principal` with `rules` switched off (as `/api/v3/query_sql` runs it).
async fn run(
    q: &QueryEngine,
    principal: &Arc<Principal>,
    rules: &str,
    sql: &str,
) -> hourglass_core::Result<String> {
    let disabled = DisabledRules::parse(rules).map_err(Error::invalid)?;
    let stream = q.execute_with_rules("db", sql, principal, disabled).await?;
    let batches: Vec<_> = stream.try_collect().await.map_err(crate::from_datafusion)?;
    Ok(pretty_format_batches(&batches).unwrap().to_string())
}

/// Queries the bounds refuse with 1 MiB of query memory (a value may take 1 MiB): a function,
/// `||`, a constant repeated over a batch, an aggregate over a window. Each is cheap unbounded.
fn over_the_bounds() -> Vec<String> {
    vec![
        "SELECT length(repeat('x', 2000000)) AS l".to_string(),
        "SELECT length(s || s || s) AS l FROM (SELECT repeat('x', v) AS s FROM (VALUES (400000)) \
         AS t(v))"
            .to_string(),
        format!(
            "SELECT max(length(CASE WHEN v > 0 THEN '{}' ELSE 'a' END)) AS l FROM \
             generate_series(1, 100) AS t(v)",
            "y".repeat(20_000)
        ),
        "SELECT max(length(a)) AS l FROM (SELECT string_agg(s, ',') OVER (ORDER BY v ROWS \
         BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS a FROM (SELECT v, \
         lpad(CAST(v AS VARCHAR), 100, 'x') AS s FROM generate_series(1, 300) AS t(v)))"
            .to_string(),
    ]
}

fn user(name: &str, database: &str, permission: Permission) -> Arc<Principal> {
    Arc::new(Principal::user(
        name,
        vec![Grant {
            database: database.into(),
            permission,
        }],
    ))
}

/// With authentication off (and for an operator), `value_bounds` switched off — named, or by
/// `all` — leaves every call to DataFusion: what the bounds refuse is answered as DataFusion
/// answers it.
#[tokio::test]
async fn value_bounds_switched_off_leave_everything_to_datafusion() {
    let (q, dir) = engine(1).await;
    let unrestricted = Arc::new(Principal::unrestricted());
    let operator = user("op", "*", Permission::Admin);
    for sql in over_the_bounds() {
        let e = run(&q, &unrestricted, "none", &sql).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
        let expected = reference_text(&sql).await;
        for rules in ["value_bounds", "all"] {
            let answer = run(&q, &unrestricted, rules, &sql).await;
            assert_eq!(answer.as_ref(), Ok(&expected), "{rules}: {sql}");
        }
        let answer = run(&q, &operator, "value_bounds", &sql).await;
        assert_eq!(answer.as_ref(), Ok(&expected), "operator: {sql}");
        // Other rules switched off leave the bounds on.
        let e = run(&q, &unrestricted, "date_bin,run_aggregate", &sql)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
    }
    // `SET` in a session with authentication off switches them off too.
    let ctx = q.session("db");
    ctx.sql("SET hourglass.disabled_rules = 'value_bounds'")
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT length(repeat('x', 2000000)) AS l")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(pretty_format_batches(&batches)
        .unwrap()
        .to_string()
        .contains("2000000"));
    let _ = std::fs::remove_dir_all(dir);
}

/// For a principal who is not an operator (even one with `admin` on its database), the bounds
/// stay on: `all` leaves them on, naming `value_bounds` is refused, and no setting gives the
/// session the right to lift them.
#[tokio::test]
async fn value_bounds_stay_on_for_principals_who_are_not_operators() {
    let (q, dir) = engine(1).await;
    for principal in [
        user("r", "db", Permission::Read),
        user("a", "db", Permission::Admin),
    ] {
        for sql in over_the_bounds() {
            let e = run(&q, &principal, "all", &sql).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::ResourceExhausted, "{sql}: {e}");
        }
        let e = run(&q, &principal, "date_bin, value_bounds", "SELECT 1")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
        assert!(e.message.contains(VALUE_BOUNDS_REFUSED), "{e}");

        // The same through the session's settings (the PostgreSQL wire's `SET`).
        let ctx = q.session_as("db", &principal);
        {
            let state = ctx.state_ref();
            let mut state = state.write();
            let options = state.config_mut().options_mut();
            let e = options
                .set("hourglass.disabled_rules", "value_bounds")
                .unwrap_err();
            assert!(e.to_string().contains(VALUE_BOUNDS_REFUSED), "{e}");
            assert_eq!(crate::from_datafusion(e).kind, ErrorKind::PermissionDenied);
            for (key, value) in [
                ("hourglass.may_lift_value_bounds", "true"),
                ("hourglass_bounds.value_bytes", "0"),
            ] {
                assert!(options.set(key, value).is_err(), "{key}");
            }
            options.set("hourglass.disabled_rules", "all").unwrap();
            let hourglass = options.extensions.get::<HourglassOptions>().unwrap();
            assert!(!hourglass.may_lift_value_bounds());
            assert!(hourglass.switched_off().contains(Rule::DateBin));
            assert!(!hourglass.switched_off().contains(Rule::ValueBounds));
        }
        let e = match ctx.sql("SELECT length(repeat('x', 2000000))").await {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(crate::from_datafusion(e).kind, ErrorKind::ResourceExhausted);
        // DataFusion's own `SET` is refused the same way.
        let e = match ctx
            .sql("SET hourglass.disabled_rules = 'value_bounds'")
            .await
        {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        assert!(e.to_string().contains(VALUE_BOUNDS_REFUSED), "{e}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
