//! InfluxQL's `SHOW`, `CREATE DATABASE` and `DROP MEASUREMENT`, answered from the catalog (names,
//! tag keys, field types) or, for what only the data knows (tag values, series keys), by SQL
//! `SELECT DISTINCT` through the same query session as everything else.

use std::collections::BTreeSet;

use hourglass_core::{Error, Result};

use super::ast::{Expr, NameFilter, Source};
use super::fields::compile;
use super::result::{Column, Series, Value};
use super::sql::{self, field_type_name, ident, Measurement};
use super::Ctx;

fn one(name: Option<&str>, columns: &[&str], values: Vec<Vec<Value>>) -> Series {
    Series {
        name: name.map(str::to_string),
        tags: Vec::new(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        values,
        tz: None,
    }
}

fn page<T>(items: Vec<T>, limit: Option<u64>, offset: Option<u64>) -> Vec<T> {
    let limit = limit
        .filter(|l| *l > 0)
        .map(|l| l as usize)
        .unwrap_or(usize::MAX);
    items
        .into_iter()
        .skip(offset.unwrap_or(0) as usize)
        .take(limit)
        .collect()
}

fn matches(filter: &NameFilter, name: &str) -> Result<bool> {
    Ok(match filter {
        NameFilter::Eq(n) => n == name,
        NameFilter::NotEq(n) => n != name,
        NameFilter::In(ns) => ns.iter().any(|n| n == name),
        NameFilter::Regex(r) => compile(r)?.is_match(name),
        NameFilter::NotRegex(r) => !compile(r)?.is_match(name),
    })
}

pub fn databases(ctx: &Ctx<'_>) -> Vec<Series> {
    let catalog = ctx.engine.engine.catalog.snapshot();
    let values = catalog
        .databases
        .keys()
        .filter(|db| ctx.principal.can_read(db))
        .map(|db| vec![Value::Str(db.clone())])
        .collect();
    vec![one(Some("databases"), &["name"], values)]
}

pub fn retention_policies(ctx: &Ctx<'_>, on: Option<&str>) -> Result<Vec<Series>> {
    let db = ctx.database(on)?;
    let _ = db;
    Ok(vec![one(
        None,
        &[
            "name",
            "duration",
            "shardGroupDuration",
            "replicaN",
            "default",
        ],
        vec![vec![
            Value::Str("autogen".into()),
            Value::Str("0s".into()),
            Value::Str("168h0m0s".into()),
            Value::Int(1),
            Value::Bool(true),
        ]],
    )])
}

pub async fn measurements(
    ctx: &Ctx<'_>,
    on: Option<&str>,
    filter: Option<&NameFilter>,
    condition: Option<&Expr>,
    limit: Option<u64>,
    offset: Option<u64>,
) -> Result<Vec<Series>> {
    let ms = match ctx.measurements_in(on, &[]) {
        Ok(ms) => ms,
        // InfluxDB answers no series for a database that does not exist.
        Err(e) if e.kind == hourglass_core::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for m in ms {
        if let Some(f) = filter {
            if !matches(f, &m.name)? {
                continue;
            }
        }
        // With `WHERE`: only measurements with a point that matches.
        if condition.is_some() {
            let where_ = where_sql(&m, condition, ctx.now)?;
            let q = format!("SELECT 1 FROM {}{where_} LIMIT 1", m.table());
            if !ctx.sql(&q).await?.iter().any(|b| b.num_rows() > 0) {
                continue;
            }
        }
        names.push(vec![Value::Str(m.name)]);
    }
    let names = page(names, limit, offset);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![one(Some("measurements"), &["name"], names)])
}

pub fn tag_keys(
    ctx: &Ctx<'_>,
    on: Option<&str>,
    from: &[Source],
    limit: Option<u64>,
    offset: Option<u64>,
) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for m in ctx.measurements_in(on, from)? {
        let keys = page(m.tags.clone(), limit, offset);
        if keys.is_empty() {
            continue;
        }
        out.push(one(
            Some(&m.name),
            &["tagKey"],
            keys.into_iter().map(|k| vec![Value::Str(k)]).collect(),
        ));
    }
    Ok(out)
}

pub fn field_keys(
    ctx: &Ctx<'_>,
    on: Option<&str>,
    from: &[Source],
    limit: Option<u64>,
    offset: Option<u64>,
) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for m in ctx.measurements_in(on, from)? {
        let keys: Vec<_> = m
            .fields
            .iter()
            .map(|(k, t)| {
                vec![
                    Value::Str(k.clone()),
                    Value::Str(field_type_name(*t).into()),
                ]
            })
            .collect();
        let keys = page(keys, limit, offset);
        if keys.is_empty() {
            continue;
        }
        out.push(one(Some(&m.name), &["fieldKey", "fieldType"], keys));
    }
    Ok(out)
}

fn where_sql(m: &Measurement, condition: Option<&Expr>, now: i64) -> Result<String> {
    let (range, rest) = super::timecond::split(condition, now)?;
    let mut conds = Vec::new();
    if let Some(lo) = range.lo {
        conds.push(format!("{} >= {}", ident("time"), sql::timestamp(lo)));
    }
    if let Some(hi) = range.hi {
        conds.push(format!("{} <= {}", ident("time"), sql::timestamp(hi)));
    }
    if let Some(rest) = rest {
        conds.push(sql::condition(m, &rest)?);
    }
    Ok(if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn tag_values(
    ctx: &Ctx<'_>,
    on: Option<&str>,
    from: &[Source],
    key: &NameFilter,
    condition: Option<&Expr>,
    limit: Option<u64>,
    offset: Option<u64>,
) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for m in ctx.measurements_in(on, from)? {
        let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
        let where_ = where_sql(&m, condition, ctx.now)?;
        for k in &m.tags {
            if !matches(key, k)? {
                continue;
            }
            let col = ident(k);
            let cond = if where_.is_empty() {
                format!(" WHERE {col} IS NOT NULL")
            } else {
                format!("{where_} AND {col} IS NOT NULL")
            };
            let q = format!(
                "SELECT DISTINCT CAST({col} AS VARCHAR) FROM {}{cond}",
                m.table()
            );
            for batch in ctx.sql(&q).await? {
                let c = Column::new(batch.column(0))?;
                for row in 0..batch.num_rows() {
                    pairs.insert((k.clone(), c.tag(row)));
                }
            }
        }
        let values: Vec<_> = pairs
            .into_iter()
            .map(|(k, v)| vec![Value::Str(k), Value::Str(v)])
            .collect();
        let values = page(values, limit, offset);
        if !values.is_empty() {
            out.push(one(Some(&m.name), &["key", "value"], values));
        }
    }
    Ok(out)
}

/// InfluxDB's escaping of series keys: `,` and space in measurements, `,` `=` and space in tags.
fn escape(s: &str, tag: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ',' || c == ' ' || (tag && c == '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub async fn series(
    ctx: &Ctx<'_>,
    on: Option<&str>,
    from: &[Source],
    condition: Option<&Expr>,
    limit: Option<u64>,
    offset: Option<u64>,
) -> Result<Vec<Series>> {
    let mut keys = BTreeSet::new();
    for m in ctx.measurements_in(on, from)? {
        let where_ = where_sql(&m, condition, ctx.now)?;
        if m.tags.is_empty() {
            let q = format!("SELECT 1 FROM {}{where_} LIMIT 1", m.table());
            if ctx.sql(&q).await?.iter().any(|b| b.num_rows() > 0) {
                keys.insert(escape(&m.name, false));
            }
            continue;
        }
        let cols: Vec<String> = m
            .tags
            .iter()
            .map(|t| format!("CAST({} AS VARCHAR)", ident(t)))
            .collect();
        let q = format!(
            "SELECT DISTINCT {} FROM {}{where_}",
            cols.join(", "),
            m.table()
        );
        for batch in ctx.sql(&q).await? {
            let cs = batch
                .columns()
                .iter()
                .map(Column::new)
                .collect::<Result<Vec<_>>>()?;
            for row in 0..batch.num_rows() {
                let mut key = escape(&m.name, false);
                for (i, t) in m.tags.iter().enumerate() {
                    let v = cs[i].tag(row);
                    if !v.is_empty() {
                        key.push(',');
                        key.push_str(&escape(t, true));
                        key.push('=');
                        key.push_str(&escape(&v, true));
                    }
                }
                keys.insert(key);
            }
        }
    }
    let values: Vec<_> = keys.into_iter().map(|k| vec![Value::Str(k)]).collect();
    let values = page(values, limit, offset);
    if values.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![one(None, &["key"], values)])
}

pub fn create_database(ctx: &Ctx<'_>, name: &str) -> Result<Vec<Series>> {
    if !ctx.principal.can_admin(name) {
        let e = Error::permission_denied(format!(
            "error authorizing query: {} not authorized to execute statement 'CREATE DATABASE {name}', requires admin privilege",
            ctx.principal.name
        ));
        (ctx.audit)("CreateDatabase", name, "denied", &e.message);
        return Err(e);
    }
    let engine = &ctx.engine.engine;
    if engine.catalog.snapshot().databases.contains_key(name) {
        return Ok(Vec::new());
    }
    let now = engine.clock.now_nanos();
    match engine.catalog.create_database(name, now) {
        Ok(_) => {
            (ctx.audit)("CreateDatabase", name, "ok", "created by InfluxQL");
            Ok(Vec::new())
        }
        Err(e) if e.kind == hourglass_core::ErrorKind::Conflict => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

pub async fn drop_measurement(ctx: &Ctx<'_>, name: &str) -> Result<Vec<Series>> {
    let db = ctx.database(None)?;
    let target = format!("{db}.{name}");
    if !ctx.principal.can_admin(&db) {
        let e = Error::permission_denied(format!(
            "error authorizing query: {} not authorized to execute statement 'DROP MEASUREMENT {name}', requires admin privilege on {db}",
            ctx.principal.name
        ));
        (ctx.audit)("DeleteTable", &target, "denied", &e.message);
        return Err(e);
    }
    let engine = &ctx.engine.engine;
    if engine.catalog.snapshot().table(&db, name).is_none() {
        // InfluxDB answers success for a measurement that does not exist.
        return Ok(Vec::new());
    }
    let result = engine.drop_table(&db, name).await;
    match &result {
        Ok(_) => (ctx.audit)("DeleteTable", &target, "ok", "dropped by InfluxQL"),
        Err(e) => (ctx.audit)("DeleteTable", &target, "error", &e.message),
    }
    result.map(|_| Vec::new())
}
