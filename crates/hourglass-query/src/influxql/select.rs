//! InfluxQL `SELECT`: one SQL query per measurement (raw rows, or aggregates grouped by the
//! `GROUP BY` tags and `date_bin` windows), run through the same [`crate::QueryEngine`] session
//! as `/api/v3/query_sql`; the rows are then cut into InfluxDB's series, windows are filled
//! ([`super::fill`]) and `LIMIT`/`OFFSET`/`SLIMIT`/`SOFFSET` applied per series, as InfluxDB's
//! iterators do.

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::DataType;
use hourglass_core::{ColumnType, Error, Result};

use super::ast::{Expr, Field, Select, Source};
use super::fields::{self, check_calls, expand, expr_name, is_aggregate, unique_names};
use super::fill::{fill_windows, Window};
use super::reduce;
use super::result::{Column, Series, Value};
use super::selectors;
use super::sql::{self, ident, timestamp, Measurement, Ref};
use super::subquery;
use super::timecond::{self, TimeRange};
use super::transform::{self, Transform};
use super::Ctx;

/// At most this many rows are built for one statement (windows times series).
pub(super) const MAX_ROWS: usize = 5_000_000;

pub(super) fn unsupported(what: &str) -> Error {
    Error::invalid(format!(
        "{what} is not supported by Hourglass's InfluxQL yet"
    ))
}

pub async fn select(ctx: &Ctx<'_>, s: &Select) -> Result<Vec<Series>> {
    if let Some(e) = &s.invalid {
        return Err(Error::invalid(e.clone()));
    }
    match transform::split(s)? {
        Some((inner, t, outer)) => {
            let mut series = select_with(ctx, &inner, Some(t)).await?;
            if let Some(e) = outer {
                for row in series.iter_mut().flat_map(|s| s.values.iter_mut()) {
                    if let Some(v) = row.get_mut(1) {
                        *v = transform::eval(&e, v);
                    }
                }
            }
            Ok(series)
        }
        None => select_with(ctx, s, None).await,
    }
}

async fn select_with(ctx: &Ctx<'_>, s: &Select, tr: Option<Transform>) -> Result<Vec<Series>> {
    if let Some(e) = &s.invalid {
        return Err(Error::invalid(e.clone()));
    }
    let tz = match &s.tz {
        Some(name) => Some(
            name.parse::<chrono_tz::Tz>()
                .map_err(|_| Error::invalid(format!("unable to find time zone {name}")))?,
        ),
        None => None,
    };
    fields::check_holt_winters(s)?;
    for f in &s.fields {
        check_calls(&f.expr)?;
    }
    let aggregate = is_aggregate(s);
    if s.group_time.is_some() && !aggregate {
        return Err(Error::invalid(
            "GROUP BY requires at least one aggregate function",
        ));
    }
    let selecting = selectors::check(&s.fields)?;
    if aggregate && !selecting {
        for f in &s.fields {
            if has_bare_var(&f.expr) {
                return Err(Error::invalid(
                    "mixing aggregate and non-aggregate queries is not supported",
                ));
            }
        }
    }
    let measurements = match s.from.as_slice() {
        [Source::Subquery(inner)] => subquery::measurements(ctx, s, inner).await?,
        from if from.iter().any(|f| matches!(f, Source::Subquery(_))) => {
            return Err(unsupported("a subquery beside other sources in FROM"))
        }
        from => ctx.measurements(from)?,
    };
    let (mut range, rest) = timecond::split(s.condition.as_ref(), ctx.now)?;
    if s.group_time.is_some() && range.hi.is_none() {
        range.hi = Some(ctx.now);
    }
    let excluded: BTreeSet<String> = if s.group_all {
        measurements.iter().flat_map(|m| m.tags.clone()).collect()
    } else {
        s.group_tags.iter().cloned().collect()
    };
    let zoned;
    let s = match (tz, s.group_time) {
        (Some(tz), Some((iv, off))) => {
            zoned = Select {
                group_time: Some((iv, zoned_offset(tz, iv, off, range)?)),
                ..s.clone()
            };
            &zoned
        }
        _ => s,
    };
    let fields = expand(&s.fields, &measurements, &excluded)?;
    let fields = if selecting {
        selectors::rewrite(fields)
    } else {
        fields
    };
    if fields.is_empty() || range.is_empty() || measurements.is_empty() {
        return Ok(Vec::new());
    }
    let names = unique_names(
        fields
            .iter()
            .map(|f| f.alias.clone().unwrap_or_else(|| expr_name(&f.expr)))
            .collect(),
    );
    let mut columns = vec!["time".to_string()];
    columns.extend(names);
    // A SELECT of tags only has no rows (InfluxDB 1.6 answers no series).
    if !aggregate && all_tags(&fields, &measurements) {
        return Ok(Vec::new());
    }
    // `distinct(field)` as the only column has rows of its own (other uses are refused).
    let sole_call = |fname: &str| match fields.as_slice() {
        [f] => match f.expr.unparen() {
            Expr::Call { name, args } if name == fname && args.len() == 1 => Some(args[0].clone()),
            _ => None,
        },
        _ => None,
    };
    let distinct_arg = sole_call("distinct");
    let reduced = reduce::uses(&fields);
    let mut out = Vec::new();
    for m in &measurements {
        let tags = group_tags(s, m)?;
        let series = if selecting {
            selectors::series(ctx, s, m, &fields, &tags, range, rest.as_ref()).await?
        } else if reduced {
            reduce::series(ctx, s, m, &fields, &tags, range, rest.as_ref(), tr).await?
        } else if let Some(arg) = &distinct_arg {
            distinct_series(ctx, s, m, arg, &tags, range, rest.as_ref()).await?
        } else if aggregate {
            aggregate_series(ctx, s, m, &fields, &tags, range, rest.as_ref(), tr).await?
        } else {
            raw_series(
                ctx,
                s,
                m,
                &fields,
                &tags,
                range,
                rest.as_ref(),
                measurements.len(),
                tr,
            )
            .await?
        };
        for (key, values) in series {
            out.push(Series {
                name: Some(m.name.clone()),
                tags: tags.iter().cloned().zip(key).collect(),
                columns: columns.clone(),
                values,
                tz,
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
    let soffset = s.soffset.unwrap_or(0) as usize;
    let mut out: Vec<Series> = out.into_iter().skip(soffset).collect();
    if let Some(sl) = s.slimit {
        out.truncate(sl as usize);
    }
    // Under ORDER BY time DESC InfluxDB emits the series SLIMIT picked in descending order.
    if s.descending {
        out.reverse();
    }
    Ok(out)
}

/// A variable outside any call (`SELECT mean(v), host` mixes them).
fn has_bare_var(e: &Expr) -> bool {
    match e {
        Expr::Var { .. } | Expr::Wildcard | Expr::Regex(_) => true,
        Expr::Call { name, args } if fields::MATH.contains(&name.as_str()) => {
            args.iter().any(has_bare_var)
        }
        Expr::Binary { lhs, rhs, .. } => has_bare_var(lhs) || has_bare_var(rhs),
        Expr::Paren(e) => has_bare_var(e),
        _ => false,
    }
}

/// Whether every variable of the columns is a tag in every measurement.
fn all_tags(fields: &[Field], measurements: &[Measurement]) -> bool {
    fn vars(e: &Expr, out: &mut Vec<(String, Option<super::ast::Cast>)>) {
        match e {
            Expr::Var { name, cast } => out.push((name.clone(), *cast)),
            Expr::Binary { lhs, rhs, .. } => {
                vars(lhs, out);
                vars(rhs, out);
            }
            Expr::Paren(e) => vars(e, out),
            Expr::Call { args, .. } => args.iter().for_each(|a| vars(a, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    for f in fields {
        vars(&f.expr, &mut all);
    }
    !all.is_empty()
        && all.iter().all(|(name, cast)| {
            measurements
                .iter()
                .all(|m| m.resolve(name, *cast) == Ref::Tag)
        })
}

/// A raw inner statement of a subquery (fields, tags and math: no aggregate, transformation,
/// `GROUP BY time`, limit or `tz()`) as one derived SQL table per measurement: its `GROUP BY`
/// tags, and its columns by their output names; `None` when the statement must be answered
/// first.
pub(super) async fn raw_derived_tables(
    ctx: &Ctx<'_>,
    s: &Select,
) -> Result<Option<Vec<Measurement>>> {
    let plain = s.invalid.is_none()
        && s.group_time.is_none()
        && s.limit.is_none()
        && s.offset.is_none()
        && s.slimit.is_none()
        && s.soffset.is_none()
        && s.tz.is_none()
        && !is_aggregate(s)
        && s.fields.iter().all(|f| check_calls(&f.expr).is_ok())
        && !s.from.iter().any(|f| matches!(f, Source::Subquery(_)))
        && transform::split(s).is_ok_and(|t| t.is_none());
    if !plain {
        return Ok(None);
    }
    let measurements = ctx.measurements(&s.from)?;
    let (range, rest) = timecond::split(s.condition.as_ref(), ctx.now)?;
    // An inner wildcard brings the tags along as tags, not as columns.
    let wildcard = s
        .fields
        .iter()
        .any(|f| matches!(f.expr, Expr::Wildcard | Expr::Regex(_)));
    let excluded: BTreeSet<String> = if s.group_all || wildcard {
        measurements.iter().flat_map(|m| m.tags.clone()).collect()
    } else {
        s.group_tags.iter().cloned().collect()
    };
    let fields = expand(&s.fields, &measurements, &excluded)?;
    if fields.is_empty() || range.is_empty() || all_tags(&fields, &measurements) {
        return Ok(Some(Vec::new()));
    }
    let names = unique_names(
        fields
            .iter()
            .map(|f| f.alias.clone().unwrap_or_else(|| expr_name(&f.expr)))
            .collect(),
    );
    let mut out = Vec::new();
    for m in &measurements {
        let mut tags = group_tags(s, m)?;
        if wildcard {
            tags.extend(
                m.tags
                    .iter()
                    .filter(|t| !tags.contains(t))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            tags.sort();
        }
        if names.iter().any(|n| tags.contains(n)) {
            return Ok(None);
        }
        let mut refs = BTreeSet::new();
        for f in &fields {
            field_refs(m, &f.expr, &mut refs);
        }
        if refs.is_empty() {
            continue;
        }
        let mut select = vec![ident("time")];
        for t in &tags {
            select.push(format!(
                "CAST({} AS VARCHAR) AS {}",
                tag_column(m, t),
                ident(t)
            ));
        }
        for (f, name) in fields.iter().zip(&names) {
            let expr = match f.expr.unparen() {
                Expr::Var { name, cast } if m.resolve(name, *cast) == Ref::Tag => {
                    format!("CAST({} AS VARCHAR)", ident(name))
                }
                e => sql::math(m, e, &mut |_, _| Ok(None))?,
            };
            select.push(format!("{expr} AS {}", ident(name)));
        }
        let mut conds = where_clause(m, range, rest.as_ref())?;
        conds.push(format!(
            "({})",
            refs.iter()
                .map(|f| format!("{} IS NOT NULL", ident(f)))
                .collect::<Vec<_>>()
                .join(" OR ")
        ));
        let q = format!(
            "SELECT {} FROM {} WHERE {}",
            select.join(", "),
            m.table(),
            conds.join(" AND ")
        );
        let schema = ctx.schema(&q).await?;
        let mut types = BTreeMap::new();
        for name in &names {
            let ty = match schema.field_with_name(name).map(|f| f.data_type().clone()) {
                Ok(DataType::Float16 | DataType::Float32 | DataType::Float64) => ColumnType::Double,
                Ok(DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) => {
                    ColumnType::Bigint
                }
                Ok(DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64) => {
                    ColumnType::Ubigint
                }
                Ok(DataType::Boolean) => ColumnType::Boolean,
                Ok(_) => ColumnType::Varchar,
                Err(e) => {
                    return Err(Error::internal(format!(
                        "InfluxQL subquery column {name}: {e}"
                    )))
                }
            };
            types.insert(name.clone(), ty);
        }
        out.push(Measurement {
            db: m.db.clone(),
            name: m.name.clone(),
            tags,
            fields: types,
            source: Some(q),
            by_series: false,
        });
    }
    Ok(Some(out))
}

/// The tags a measurement's series are split by, in name order.
fn group_tags(s: &Select, m: &Measurement) -> Result<Vec<String>> {
    let mut tags: BTreeSet<String> = if s.group_all {
        m.tags.iter().cloned().collect()
    } else {
        s.group_tags.iter().cloned().collect()
    };
    for re in &s.group_tag_regexes {
        let re = fields::compile(re)?;
        tags.extend(m.tags.iter().filter(|t| re.is_match(t)).cloned());
    }
    tags.remove("time");
    Ok(tags.into_iter().collect())
}

pub(super) fn tag_column(m: &Measurement, tag: &str) -> String {
    if m.is_tag(tag) {
        ident(tag)
    } else {
        "CAST(NULL AS VARCHAR)".into()
    }
}

/// The `WHERE` of a measurement's query: time range and the other conditions.
pub(super) fn where_clause(
    m: &Measurement,
    range: TimeRange,
    rest: Option<&Expr>,
) -> Result<Vec<String>> {
    let mut conds = Vec::new();
    if let Some(lo) = range.lo {
        conds.push(format!("{} >= {}", ident("time"), timestamp(lo)));
    }
    if let Some(hi) = range.hi {
        conds.push(format!("{} <= {}", ident("time"), timestamp(hi)));
    }
    if let Some(rest) = rest {
        conds.push(sql::condition(m, rest)?);
    }
    Ok(conds)
}

fn field_refs(m: &Measurement, e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::Var { name, cast } => {
            if matches!(m.resolve(name, *cast), Ref::Field(_)) {
                out.insert(name.clone());
            }
        }
        Expr::Binary { lhs, rhs, .. } => {
            field_refs(m, lhs, out);
            field_refs(m, rhs, out);
        }
        Expr::Paren(e) => field_refs(m, e, out),
        Expr::Call { args, .. } => {
            if let Some(a) = args.first() {
                field_refs(m, a, out);
            }
        }
        _ => {}
    }
}

pub(super) type SeriesRows = Vec<(Vec<String>, Vec<Vec<Value>>)>;

#[allow(clippy::too_many_arguments)]
async fn raw_series(
    ctx: &Ctx<'_>,
    s: &Select,
    m: &Measurement,
    fields: &[Field],
    tags: &[String],
    range: TimeRange,
    rest: Option<&Expr>,
    measurement_count: usize,
    tr: Option<Transform>,
) -> Result<SeriesRows> {
    let mut refs = BTreeSet::new();
    for f in fields {
        field_refs(m, &f.expr, &mut refs);
    }
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let mut select = vec![ident("time")];
    for (i, t) in tags.iter().enumerate() {
        select.push(format!(
            "{} AS {}",
            tag_column(m, t),
            ident(&format!("__g{i}"))
        ));
    }
    for (i, f) in fields.iter().enumerate() {
        let expr = match f.expr.unparen() {
            Expr::Var { name, cast } if m.resolve(name, *cast) == Ref::Tag => {
                format!("CAST({} AS VARCHAR)", ident(name))
            }
            e => sql::math(m, e, &mut |_, _| Ok(None))?,
        };
        select.push(format!("{expr} AS {}", ident(&format!("__c{i}"))));
    }
    let mut conds = where_clause(m, range, rest)?;
    conds.push(format!(
        "({})",
        refs.iter()
            .map(|f| format!("{} IS NOT NULL", ident(f)))
            .collect::<Vec<_>>()
            .join(" OR ")
    ));
    let dir = if s.descending { "DESC" } else { "ASC" };
    let mut order: Vec<String> = (0..tags.len()).map(|i| ident(&format!("__g{i}"))).collect();
    // Over a subquery InfluxDB reads the inner series one after the other (sorted by their
    // tags), each in time order.
    let inner_series: Vec<String> = m
        .tags
        .iter()
        .filter(|t| m.source.is_some() && !tags.contains(t))
        .map(|t| format!("COALESCE(CAST({} AS VARCHAR), '')", ident(t)))
        .collect();
    if m.by_series {
        order.extend(inner_series.iter().cloned());
    }
    order.push(format!("{} {dir}", ident("time")));
    if !m.by_series {
        order.extend(inner_series);
    }
    let mut q = format!(
        "SELECT {} FROM {} WHERE {} ORDER BY {}",
        select.join(", "),
        m.table(),
        conds.join(" AND "),
        order.join(", ")
    );
    if tags.is_empty()
        && measurement_count == 1
        && s.slimit.is_none()
        && s.soffset.is_none()
        && tr.is_none()
    {
        if let Some(limit) = s.limit {
            q.push_str(&format!(
                " LIMIT {}",
                limit.saturating_add(s.offset.unwrap_or(0))
            ));
        }
    }
    let batches = ctx.sql(&q).await?;
    let mut series: BTreeMap<Vec<String>, Vec<Vec<Value>>> = BTreeMap::new();
    let mut total = 0usize;
    for batch in &batches {
        let cols = batch
            .columns()
            .iter()
            .map(Column::new)
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            let key: Vec<String> = (0..tags.len()).map(|i| cols[1 + i].tag(row)).collect();
            let mut values = vec![match cols[0].value(row) {
                Value::Time(t) => Value::Time(t),
                _ => Value::Null,
            }];
            values.extend((0..fields.len()).map(|i| cols[1 + tags.len() + i].value(row)));
            total += 1;
            if total > MAX_ROWS {
                return Err(too_many_rows());
            }
            series.entry(key).or_default().push(values);
        }
    }
    Ok(series
        .into_iter()
        .map(|(k, rows)| {
            let rows = match tr {
                Some(t) => transform::apply(t, rows, s.descending),
                None => rows,
            };
            (k, limit_rows(rows, s))
        })
        .filter(|(_, rows)| !rows.is_empty())
        .collect())
}

/// `distinct(field)`: each series' distinct values in the order first met (by time), at the
/// query's start time, as InfluxDB 1.6 answers.
async fn distinct_series(
    ctx: &Ctx<'_>,
    s: &Select,
    m: &Measurement,
    arg: &Expr,
    tags: &[String],
    range: TimeRange,
    rest: Option<&Expr>,
) -> Result<SeriesRows> {
    if s.group_time.is_some() || s.descending {
        return Err(unsupported(
            "distinct() with GROUP BY time() or ORDER BY time DESC",
        ));
    }
    let Expr::Var { name, cast } = arg.unparen() else {
        return Err(Error::invalid("expected field argument in distinct()"));
    };
    if !matches!(m.resolve(name, *cast), Ref::Field(_)) {
        return Ok(Vec::new());
    }
    let f = ident(name);
    let mut select = Vec::new();
    let mut group = Vec::new();
    let mut order = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let c = tag_column(m, t);
        select.push(format!("{c} AS {}", ident(&format!("__g{i}"))));
        group.push(c);
        order.push(ident(&format!("__g{i}")));
    }
    select.push(format!("{f} AS {}", ident("__v")));
    group.push(f.clone());
    select.push(format!("min({}) AS {}", ident("time"), ident("__t")));
    order.push(format!("{} ASC", ident("__t")));
    order.push(format!("{} ASC", ident("__v")));
    let mut conds = where_clause(m, range, rest)?;
    conds.push(format!("{f} IS NOT NULL"));
    let q = format!(
        "SELECT {} FROM {} WHERE {} GROUP BY {} ORDER BY {}",
        select.join(", "),
        m.table(),
        conds.join(" AND "),
        group.join(", "),
        order.join(", ")
    );
    let time = Value::Time(range.lo.unwrap_or(0));
    let mut series: BTreeMap<Vec<String>, Vec<Vec<Value>>> = BTreeMap::new();
    let mut total = 0usize;
    for batch in ctx.sql(&q).await? {
        let cols = batch
            .columns()
            .iter()
            .map(Column::new)
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            let key: Vec<String> = (0..tags.len()).map(|i| cols[i].tag(row)).collect();
            total += 1;
            if total > MAX_ROWS {
                return Err(too_many_rows());
            }
            series
                .entry(key)
                .or_default()
                .push(vec![time.clone(), cols[tags.len()].value(row)]);
        }
    }
    Ok(series
        .into_iter()
        .map(|(k, rows)| (k, limit_rows(rows, s)))
        .filter(|(_, rows)| !rows.is_empty())
        .collect())
}

pub(super) fn too_many_rows() -> Error {
    Error::exhausted(format!(
        "the statement would return more than {MAX_ROWS} rows: narrow its time range or use a larger GROUP BY time interval"
    ))
}

pub(super) fn limit_rows(rows: Vec<Vec<Value>>, s: &Select) -> Vec<Vec<Value>> {
    let offset = s.offset.unwrap_or(0) as usize;
    let limit = s.limit.map(|l| l as usize).unwrap_or(usize::MAX);
    rows.into_iter().skip(offset).take(limit).collect()
}

/// What a column of an aggregate query needs beyond its SQL.
struct AggColumn {
    sql: String,
    /// Fields whose presence in a window makes the column present there.
    fields: BTreeSet<String>,
    /// A bare `count()`: missing windows are 0 under `fill(null)`, as InfluxDB answers.
    is_count: bool,
}

fn numeric(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Double | ColumnType::Bigint | ColumnType::Ubigint
    )
}

/// One aggregate or selector call as SQL.
fn call_sql(
    m: &Measurement,
    name: &str,
    args: &[Expr],
    used: &mut BTreeSet<String>,
) -> Result<Option<String>> {
    let want = |n: usize| -> Result<()> {
        if args.len() != n {
            return Err(Error::invalid(format!(
                "invalid number of arguments for {name}, expected {n}, got {}",
                args.len()
            )));
        }
        Ok(())
    };
    want(if name == "percentile" { 2 } else { 1 })?;
    if name == "count" && fields::is_distinct_of_var(&args[0]) {
        if let Expr::Call { args: inner, .. } = args[0].unparen() {
            if let Expr::Var { name: f, cast } = inner[0].unparen() {
                if let Ref::Field(_) = m.resolve(f, *cast) {
                    used.insert(f.clone());
                    return Ok(Some(format!("count(DISTINCT {})", ident(f))));
                }
                return Ok(Some(null_for(name)));
            }
        }
    }
    let (field, ty) = match args[0].unparen() {
        Expr::Var { name: f, cast } => match m.resolve(f, *cast) {
            Ref::Field(t) => (f.clone(), t),
            _ => return Ok(Some(null_for(name))),
        },
        _ => {
            return Err(Error::invalid(format!(
                "expected field argument in {name}()"
            )))
        }
    };
    if !numeric(ty) && !matches!(name, "count" | "first" | "last") {
        // InfluxDB's wording, naming its iterator of the field's type.
        let iterator = match ty {
            ColumnType::Boolean => "*query.booleanInterruptIterator",
            _ => "*query.stringInterruptIterator",
        };
        return Err(Error::invalid(format!(
            "unsupported {name} iterator type: {iterator}"
        )));
    }
    used.insert(field.clone());
    let f = ident(&field);
    let t = ident("time");
    let nn = format!("FILTER (WHERE {f} IS NOT NULL)");
    Ok(Some(match name {
        "mean" => format!("avg(CAST({f} AS DOUBLE))"),
        "median" => format!("median(CAST({f} AS DOUBLE))"),
        "count" => format!("count({f})"),
        "sum" => format!("sum({f})"),
        "min" => format!("min({f})"),
        "max" => format!("max({f})"),
        "spread" => format!("(max({f}) - min({f}))"),
        "stddev" => format!("stddev_samp(CAST({f} AS DOUBLE))"),
        "first" => format!("first_value({f} ORDER BY {t} ASC, {f} DESC) {nn}"),
        "last" => format!("first_value({f} ORDER BY {t} DESC, {f} DESC) {nn}"),
        "percentile" => {
            let p = percentile_arg(&args[1])?;
            format!(
                "array_element(array_agg({f} ORDER BY {f} ASC, {t} ASC) {nn}, {})",
                percentile_index(&f, p)
            )
        }
        other => return Err(unsupported(&format!("{other}()"))),
    }))
}

fn null_for(name: &str) -> String {
    if name == "count" {
        "CAST(0 AS BIGINT)".into()
    } else {
        "CAST(NULL AS DOUBLE)".into()
    }
}

fn percentile_arg(e: &Expr) -> Result<f64> {
    match e.unparen() {
        Expr::Integer(v) => Ok(*v as f64),
        Expr::Number(v) => Ok(*v),
        _ => Err(Error::invalid("expected float argument in percentile()")),
    }
}

/// InfluxDB's nearest rank, 1-based: `floor(n * p / 100 + 0.5)` (0 or past `n`: null).
fn percentile_index(f: &str, p: f64) -> String {
    format!(
        "CAST(floor(CAST(count({f}) AS DOUBLE) * CAST({p:?} AS DOUBLE) / 100.0 + 0.5) AS BIGINT)"
    )
}

/// The SQL of a selector's point time, when the statement's only column is that selector and
/// there is no `GROUP BY time` (InfluxDB then answers the selected point's time).
fn selector_time(m: &Measurement, s: &Select, fields: &[Field]) -> Result<Option<String>> {
    if s.group_time.is_some() || fields.len() != 1 {
        return Ok(None);
    }
    let Expr::Call { name, args } = &fields[0].expr else {
        return Ok(None);
    };
    let Some(Expr::Var { name: field, cast }) = args.first().map(Expr::unparen) else {
        return Ok(None);
    };
    if !matches!(m.resolve(field, *cast), Ref::Field(_)) {
        return Ok(None);
    }
    let f = ident(field);
    let t = ident("time");
    let nn = format!("FILTER (WHERE {f} IS NOT NULL)");
    Ok(match name.as_str() {
        "first" => Some(format!("first_value({t} ORDER BY {t} ASC, {f} DESC) {nn}")),
        "last" => Some(format!("first_value({t} ORDER BY {t} DESC, {f} DESC) {nn}")),
        "min" => Some(format!("first_value({t} ORDER BY {f} ASC, {t} ASC) {nn}")),
        "max" => Some(format!("first_value({t} ORDER BY {f} DESC, {t} ASC) {nn}")),
        "percentile" => {
            let p = percentile_arg(args.get(1).unwrap_or(&Expr::Integer(0)))?;
            Some(format!(
                "array_element(array_agg({t} ORDER BY {f} ASC, {t} ASC) {nn}, {})",
                percentile_index(&f, p)
            ))
        }
        _ => None,
    })
}

#[allow(clippy::too_many_arguments)]
async fn aggregate_series(
    ctx: &Ctx<'_>,
    s: &Select,
    m: &Measurement,
    fields: &[Field],
    tags: &[String],
    range: TimeRange,
    rest: Option<&Expr>,
    tr: Option<Transform>,
) -> Result<SeriesRows> {
    let mut columns = Vec::new();
    for f in fields {
        let mut used = BTreeSet::new();
        let sql = sql::math(m, &f.expr, &mut |name, args| {
            call_sql(m, name, args, &mut used)
        })?;
        columns.push(AggColumn {
            sql,
            fields: used,
            is_count: matches!(f.expr.unparen(), Expr::Call { name, .. } if name == "count"),
        });
    }
    if columns.iter().all(|c| c.fields.is_empty()) {
        return Ok(Vec::new());
    }
    let bucket = s.group_time.map(|(iv, off)| {
        format!(
            "date_bin(INTERVAL '{iv} nanoseconds', {}, {})",
            ident("time"),
            timestamp(off)
        )
    });
    let mut select = Vec::new();
    let mut group = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let c = tag_column(m, t);
        select.push(format!("{c} AS {}", ident(&format!("__g{i}"))));
        group.push(c);
    }
    if let Some(b) = &bucket {
        select.push(format!("{b} AS {}", ident("__b")));
        group.push(b.clone());
    }
    for (i, c) in columns.iter().enumerate() {
        select.push(format!("{} AS {}", c.sql, ident(&format!("__c{i}"))));
        let present = if c.fields.is_empty() {
            "FALSE".to_string()
        } else {
            c.fields
                .iter()
                .map(|f| format!("count({}) > 0", ident(f)))
                .collect::<Vec<_>>()
                .join(" OR ")
        };
        select.push(format!("({present}) AS {}", ident(&format!("__p{i}"))));
    }
    let selector = selector_time(m, s, fields)?;
    if let Some(st) = &selector {
        select.push(format!("{st} AS {}", ident("__t")));
    }
    let conds = where_clause(m, range, rest)?;
    let mut q = format!("SELECT {} FROM {}", select.join(", "), m.table());
    if !conds.is_empty() {
        q.push_str(&format!(" WHERE {}", conds.join(" AND ")));
    }
    if !group.is_empty() {
        q.push_str(&format!(" GROUP BY {}", group.join(", ")));
    }
    let batches = ctx.sql(&q).await?;
    // Per series: window start -> (values, presence).
    let mut series: BTreeMap<Vec<String>, BTreeMap<i64, Window>> = BTreeMap::new();
    let ncol = columns.len();
    for batch in &batches {
        let cols = batch
            .columns()
            .iter()
            .map(Column::new)
            .collect::<Result<Vec<_>>>()?;
        let base = tags.len() + usize::from(bucket.is_some());
        for row in 0..batch.num_rows() {
            let key: Vec<String> = (0..tags.len()).map(|i| cols[i].tag(row)).collect();
            let mut values = Vec::with_capacity(ncol);
            let mut present = Vec::with_capacity(ncol);
            for i in 0..ncol {
                values.push(cols[base + 2 * i].value(row));
                present.push(matches!(
                    cols[base + 2 * i + 1].value(row),
                    Value::Bool(true)
                ));
            }
            if !present.iter().any(|p| *p) {
                continue;
            }
            let time = if bucket.is_some() {
                match cols[tags.len()].value(row) {
                    Value::Time(t) => t,
                    _ => continue,
                }
            } else if selector.is_some() {
                match cols[base + 2 * ncol].value(row) {
                    Value::Time(t) => t,
                    _ => range.lo.unwrap_or(0),
                }
            } else {
                range.lo.unwrap_or(0)
            };
            series
                .entry(key)
                .or_default()
                .insert(time, Window { values, present });
        }
    }
    let counts: Vec<bool> = columns.iter().map(|c| c.is_count).collect();
    let mut out = Vec::new();
    let mut total = 0usize;
    for (key, windows) in series {
        let rows = match s.group_time {
            Some((iv, off)) => {
                let start = range.lo.map(|lo| window_start(lo, iv, off));
                let end = window_start(range.hi.unwrap_or(ctx.now), iv, off);
                fill_windows(
                    windows,
                    start,
                    end,
                    iv,
                    s.fill,
                    &counts,
                    s.descending,
                    MAX_ROWS.saturating_sub(total),
                )
                .ok_or_else(too_many_rows)?
            }
            // A column without points in the series (a field the measurement lacks) is null.
            None => windows
                .into_iter()
                .map(|(t, w)| {
                    let mut row = vec![Value::Time(t)];
                    row.extend(w.values.into_iter().zip(w.present).map(|(v, p)| {
                        if p {
                            v
                        } else {
                            Value::Null
                        }
                    }));
                    row
                })
                .collect(),
        };
        total += rows.len();
        let rows = match tr {
            Some(t) => transform::apply(t, rows, s.descending),
            None => rows,
        };
        let rows = limit_rows(rows, s);
        if !rows.is_empty() {
            out.push((key, rows));
        }
    }
    Ok(out)
}

/// The window offset that aligns `GROUP BY time(iv, off)` windows on `tz`'s local time, as
/// InfluxDB does; refused when the zone's UTC offset changes within the query's time range
/// (daylight saving), whose windows InfluxDB bends.
fn zoned_offset(tz: chrono_tz::Tz, iv: i64, off: i64, range: TimeRange) -> Result<i64> {
    use chrono::{Offset, TimeZone};
    let zone = |ns: i64| {
        tz.offset_from_utc_datetime(&chrono::DateTime::from_timestamp_nanos(ns).naive_utc())
            .fix()
            .local_minus_utc() as i64
            * 1_000_000_000
    };
    let (Some(lo), Some(hi)) = (range.lo, range.hi) else {
        return Err(unsupported(
            "tz() with GROUP BY time() and no lower time bound",
        ));
    };
    let first = zone(lo);
    const DAY: i64 = 86_400_000_000_000;
    if hi.saturating_sub(lo) > 800 * DAY {
        return Err(unsupported(
            "tz() with GROUP BY time() over more than 800 days",
        ));
    }
    let mut t = lo;
    while t < hi {
        if zone(t) != first {
            return Err(unsupported(
                "tz() with GROUP BY time() across a change of the zone's UTC offset (daylight saving)",
            ));
        }
        t = t.saturating_add(DAY / 2);
    }
    if zone(hi) != first {
        return Err(unsupported(
            "tz() with GROUP BY time() across a change of the zone's UTC offset (daylight saving)",
        ));
    }
    Ok((off - first).rem_euclid(iv))
}

/// The start of the window holding `t` (InfluxDB's `opt.Window`).
pub fn window_start(t: i64, iv: i64, off: i64) -> i64 {
    let shifted = t.saturating_sub(off);
    shifted
        .saturating_sub(shifted.rem_euclid(iv))
        .saturating_add(off)
}
