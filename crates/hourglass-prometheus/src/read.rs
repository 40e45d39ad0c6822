//! Remote read: which tables a query needs and the SQL that reads each (time range and the
//! matchers that SQL can decide exactly), then the rows back to series. Every matcher is checked
//! again on each series' labels in Rust, so the answer is exact whatever SQL left to do
//! (regular expressions are only ever decided here). Series come out sorted by their labels,
//! samples by time, as Prometheus requires.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use hourglass_core::{Error, Result, MEASURE_NAME_COLUMN, TIME_COLUMN};

use crate::matcher::{MatchOp, Matcher};
use crate::names::{
    column_for_label, label_for_column, table_for_metric, METRIC_NAME_LABEL, OTHER_METRICS_TABLE,
    VALUE_COLUMN,
};
use crate::proto::{Label, Query, QueryResult, Sample, TimeSeries};

const NANOS_PER_MILLI: i64 = 1_000_000;

/// A table as the read path needs to know it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    /// Its dimension columns (not `measure_name`).
    pub dimensions: Vec<String>,
    /// Whether it has the DOUBLE column `measure_value::double` (else it holds no samples).
    pub has_values: bool,
}

/// One query of a read request, checked.
#[derive(Debug, Clone)]
pub struct ReadQuery {
    pub start_ms: i64,
    pub end_ms: i64,
    pub matchers: Vec<Matcher>,
}

impl ReadQuery {
    pub fn from_proto(query: &Query) -> Result<ReadQuery> {
        let matchers = query
            .matchers
            .iter()
            .map(Matcher::from_proto)
            .collect::<Result<Vec<_>>>()?;
        Ok(ReadQuery {
            start_ms: query.start_timestamp_ms,
            end_ms: query.end_timestamp_ms,
            matchers,
        })
    }
}

/// The SQL reading one table for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableScan {
    pub table: String,
    pub sql: String,
}

/// The scans a query needs. `table`: the one table all metrics were written to (else a table
/// per metric, [`table_for_metric`]).
pub fn plan_scans(
    database: &str,
    query: &ReadQuery,
    tables: &[TableInfo],
    table: Option<&str>,
) -> Vec<TableScan> {
    if query.start_ms > query.end_ms {
        return Vec::new();
    }
    candidate_tables(query, tables, table)
        .into_iter()
        .filter_map(|t| {
            scan_sql(database, query, t).map(|sql| TableScan {
                table: t.name.clone(),
                sql,
            })
        })
        .collect()
}

fn candidate_tables<'a>(
    query: &ReadQuery,
    tables: &'a [TableInfo],
    table: Option<&str>,
) -> Vec<&'a TableInfo> {
    let usable = tables.iter().filter(|t| t.has_values);
    if let Some(name) = table {
        return usable.filter(|t| t.name == name).collect();
    }
    let names: Vec<&Matcher> = query
        .matchers
        .iter()
        .filter(|m| m.name == METRIC_NAME_LABEL)
        .collect();
    // The tables of the metrics an exact matcher allows, when one does.
    let exact: Option<Vec<&str>> = names.iter().find_map(|m| match (m.op, &m.literals) {
        (MatchOp::Equal, _) => Some(vec![table_for_metric(&m.value)]),
        (MatchOp::Regex, Some(literals)) => {
            Some(literals.iter().map(|l| table_for_metric(l)).collect())
        }
        _ => None,
    });
    usable
        .filter(|t| match &exact {
            Some(wanted) => wanted.contains(&t.name.as_str()),
            // The shared table may hold any metric; any other holds the metric it is named by.
            None => t.name == OTHER_METRICS_TABLE || names.iter().all(|m| m.matches(&t.name)),
        })
        .collect()
}

/// `None` when no row of the table can match.
fn scan_sql(database: &str, query: &ReadQuery, table: &TableInfo) -> Option<String> {
    let start = query.start_ms.saturating_mul(NANOS_PER_MILLI);
    let end = query
        .end_ms
        .saturating_mul(NANOS_PER_MILLI)
        .saturating_add(NANOS_PER_MILLI - 1);
    let mut conditions = vec![
        format!("{} >= {}", ident(TIME_COLUMN), timestamp(start)),
        format!("{} <= {}", ident(TIME_COLUMN), timestamp(end)),
    ];
    for m in &query.matchers {
        let column = if m.name == METRIC_NAME_LABEL {
            MEASURE_NAME_COLUMN.to_string()
        } else {
            column_for_label(&m.name).into_owned()
        };
        if column != MEASURE_NAME_COLUMN && !table.dimensions.contains(&column) {
            // No row has the label: it is "" everywhere.
            if m.matches("") {
                continue;
            }
            return None;
        }
        if let Some(condition) = condition(&ident(&column), m) {
            conditions.push(condition);
        }
    }
    let mut columns = vec![ident(TIME_COLUMN), ident(MEASURE_NAME_COLUMN)];
    columns.extend(table.dimensions.iter().map(|d| ident(d)));
    columns.push(ident(VALUE_COLUMN));
    Some(format!(
        "SELECT {} FROM {}.{} WHERE {}",
        columns.join(", "),
        ident(database),
        ident(&table.name),
        conditions.join(" AND ")
    ))
}

/// The SQL condition deciding `m` exactly, or one rows must meet for it (regular expressions);
/// `None` when SQL can tell nothing. An empty value is the same as NULL (absent).
fn condition(column: &str, m: &Matcher) -> Option<String> {
    let in_list = |values: &[String]| {
        values
            .iter()
            .map(|v| literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(match (m.op, &m.literals) {
        (MatchOp::Equal, _) if m.value.is_empty() => format!("({column} IS NULL OR {column} = '')"),
        (MatchOp::Equal, _) => format!("{column} = {}", literal(&m.value)),
        (MatchOp::NotEqual, _) if m.value.is_empty() => format!("{column} <> ''"),
        (MatchOp::NotEqual, _) => {
            format!("({column} IS NULL OR {column} <> {})", literal(&m.value))
        }
        (MatchOp::Regex, Some(values)) => format!("{column} IN ({})", in_list(values)),
        (MatchOp::NotRegex, Some(values)) => {
            format!(
                "({column} IS NULL OR {column} NOT IN ({}))",
                in_list(values)
            )
        }
        _ if !m.matches("") => format!("{column} <> ''"),
        _ => return None,
    })
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn timestamp(nanos: i64) -> String {
    format!("arrow_cast({nanos}, 'Timestamp(Nanosecond, None)')")
}

/// Gathers the rows of a query's scans into series.
pub struct SeriesCollector {
    matchers: Vec<Matcher>,
    index: HashMap<Vec<Label>, usize>,
    series: Vec<TimeSeries>,
    samples: usize,
    limit: usize,
}

impl SeriesCollector {
    /// `limit`: most samples the answer may hold (an error past it).
    pub fn new(query: &ReadQuery, limit: usize) -> SeriesCollector {
        SeriesCollector {
            matchers: query.matchers.clone(),
            index: HashMap::new(),
            series: Vec::new(),
            samples: 0,
            limit,
        }
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Adds the rows of one batch of a scan ([`plan_scans`]' column layout).
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = batch.schema();
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::internal(format!("remote read: scan lacks column '{name}'")))
        };
        let times = column(TIME_COLUMN)?;
        let times = match times.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                times.as_primitive::<TimestampNanosecondType>()
            }
            other => return Err(unexpected(TIME_COLUMN, other)),
        };
        let values = column(VALUE_COLUMN)?;
        let values = values
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| unexpected(VALUE_COLUMN, values.data_type()))?;
        // Every string column as (label, per-row key, values); key u32::MAX = absent.
        let mut labels: Vec<(String, Vec<u32>, Vec<String>)> = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let name = field.name();
            if name == TIME_COLUMN || name == VALUE_COLUMN {
                continue;
            }
            let label = if name == MEASURE_NAME_COLUMN {
                METRIC_NAME_LABEL.to_string()
            } else {
                label_for_column(name).to_string()
            };
            let (keys, strings) = keyed(batch.column(i), name)?;
            labels.push((label, keys, strings));
        }
        let metric = labels
            .iter()
            .position(|(l, _, _)| l == METRIC_NAME_LABEL)
            .ok_or_else(|| Error::internal("remote read: scan lacks measure_name"))?;
        let mut local: HashMap<Vec<u32>, Option<usize>> = HashMap::new();
        let mut scratch: Vec<u32> = Vec::with_capacity(labels.len());
        for row in 0..batch.num_rows() {
            if values.is_null(row) || times.is_null(row) {
                continue;
            }
            scratch.clear();
            scratch.extend(labels.iter().map(|(_, keys, _)| keys[row]));
            if scratch[metric] == u32::MAX {
                continue;
            }
            let slot = match local.get(scratch.as_slice()) {
                Some(slot) => *slot,
                None => {
                    let slot = self.series_slot(&labels, &scratch);
                    local.insert(scratch.clone(), slot);
                    slot
                }
            };
            let Some(slot) = slot else { continue };
            if self.samples >= self.limit {
                return Err(Error::invalid(format!(
                    "remote read answer exceeds {} samples: narrow the query's time range or matchers",
                    self.limit
                )));
            }
            self.samples += 1;
            self.series[slot].samples.push(Sample {
                value: Some(values.value(row)),
                timestamp: times.value(row).div_euclid(NANOS_PER_MILLI),
            });
        }
        Ok(())
    }

    /// The series of a key tuple, created on first sight; `None` when the matchers refuse it.
    fn series_slot(
        &mut self,
        labels: &[(String, Vec<u32>, Vec<String>)],
        key: &[u32],
    ) -> Option<usize> {
        let mut set: Vec<Label> = labels
            .iter()
            .zip(key)
            .filter(|(_, &k)| k != u32::MAX)
            .map(|((name, _, strings), &k)| Label {
                name: name.clone(),
                value: strings[k as usize].clone(),
            })
            .collect();
        set.sort();
        let value_of = |name: &str| {
            set.iter()
                .find(|l| l.name == name)
                .map_or("", |l| l.value.as_str())
        };
        if !self.matchers.iter().all(|m| m.matches(value_of(&m.name))) {
            return None;
        }
        if let Some(&slot) = self.index.get(&set) {
            return Some(slot);
        }
        self.series.push(TimeSeries {
            labels: set.clone(),
            samples: Vec::new(),
            histograms: Vec::new(),
        });
        self.index.insert(set, self.series.len() - 1);
        Some(self.series.len() - 1)
    }

    /// The answer: series sorted by labels, samples by time.
    pub fn finish(mut self) -> QueryResult {
        for s in &mut self.series {
            s.samples.sort_by_key(|s| s.timestamp);
        }
        self.series.retain(|s| !s.samples.is_empty());
        self.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        QueryResult {
            timeseries: self.series,
        }
    }
}

fn unexpected(column: &str, data_type: &DataType) -> Error {
    Error::internal(format!(
        "remote read: column '{column}' has the unexpected type {data_type}"
    ))
}

/// A string column as per-row keys into its distinct values; NULL and "" are `u32::MAX`.
fn keyed(array: &dyn Array, name: &str) -> Result<(Vec<u32>, Vec<String>)> {
    if let Some(dict) = array.as_dictionary_opt::<Int32Type>() {
        let Some(strings) = dict.values().as_string_opt::<i32>() else {
            return Err(unexpected(name, array.data_type()));
        };
        let values: Vec<String> = strings
            .iter()
            .map(|v| v.unwrap_or("").to_string())
            .collect();
        let keys = dict
            .keys()
            .iter()
            .map(|k| match k {
                Some(k) if !values.get(k as usize).is_none_or(String::is_empty) => k as u32,
                _ => u32::MAX,
            })
            .collect();
        return Ok((keys, values));
    }
    let rows: Vec<Option<&str>> = if let Some(s) = array.as_string_opt::<i32>() {
        s.iter().collect()
    } else if let Some(s) = array.as_string_opt::<i64>() {
        s.iter().collect()
    } else if let Some(s) = array.as_string_view_opt() {
        s.iter().collect()
    } else {
        return Err(unexpected(name, array.data_type()));
    };
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut values = Vec::new();
    let keys = rows
        .into_iter()
        .map(|v| match v {
            Some(v) if !v.is_empty() => *index.entry(v).or_insert_with(|| {
                values.push(v.to_string());
                values.len() as u32 - 1
            }),
            _ => u32::MAX,
        })
        .collect();
    Ok((keys, values))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::LabelMatcher;
    use crate::proto::WriteRequest;
    use crate::write::plan_write;

    fn query(matchers: &[(i32, &str, &str)]) -> ReadQuery {
        ReadQuery::from_proto(&Query {
            start_timestamp_ms: 1000,
            end_timestamp_ms: 2000,
            matchers: matchers
                .iter()
                .map(|&(t, n, v)| LabelMatcher {
                    r#type: t,
                    name: n.into(),
                    value: v.into(),
                })
                .collect(),
        })
        .unwrap()
    }

    fn tables() -> Vec<TableInfo> {
        let t = |name: &str, dims: &[&str]| TableInfo {
            name: name.into(),
            dimensions: dims.iter().map(|d| d.to_string()).collect(),
            has_values: true,
        };
        vec![
            t("up", &["instance", "job"]),
            t("go_gc", &["job"]),
            t(OTHER_METRICS_TABLE, &["job"]),
            TableInfo {
                name: "cpu".into(),
                dimensions: vec![],
                has_values: false,
            },
        ]
    }

    #[test]
    fn exact_metric_names_pick_their_table() {
        let scans = plan_scans(
            "db",
            &query(&[(0, "__name__", "up"), (0, "job", "a'b")]),
            &tables(),
            None,
        );
        assert_eq!(scans.len(), 1);
        assert_eq!(scans[0].table, "up");
        assert_eq!(
            scans[0].sql,
            "SELECT \"time\", \"measure_name\", \"instance\", \"job\", \"measure_value::double\" \
             FROM \"db\".\"up\" WHERE \"time\" >= arrow_cast(1000000000, 'Timestamp(Nanosecond, None)') \
             AND \"time\" <= arrow_cast(2000999999, 'Timestamp(Nanosecond, None)') \
             AND \"measure_name\" = 'up' AND \"job\" = 'a''b'"
        );
        let scans = plan_scans(
            "db",
            &query(&[(2, "__name__", "up|go_gc")]),
            &tables(),
            None,
        );
        let names: Vec<&str> = scans.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(names, ["up", "go_gc"]);
        assert!(
            scans[0]
                .sql
                .ends_with("\"measure_name\" IN ('up', 'go_gc')"),
            "{}",
            scans[0].sql
        );
    }

    #[test]
    fn regex_names_scan_matching_tables_and_the_shared_one() {
        let scans = plan_scans("db", &query(&[(2, "__name__", "go_.*")]), &tables(), None);
        let names: Vec<&str> = scans.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(names, ["go_gc", OTHER_METRICS_TABLE]);
        // A matcher on a label a table lacks: "" must match, else the table is skipped.
        let scans = plan_scans(
            "db",
            &query(&[(2, "__name__", ".+"), (0, "instance", "x")]),
            &tables(),
            None,
        );
        let names: Vec<&str> = scans.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(names, ["up"]);
        let scans = plan_scans(
            "db",
            &query(&[(2, "__name__", ".+"), (0, "instance", "")]),
            &tables(),
            None,
        );
        assert_eq!(scans.len(), 3);
        assert!(
            scans[0]
                .sql
                .contains("(\"instance\" IS NULL OR \"instance\" = '')"),
            "{}",
            scans[0].sql
        );
        // One named table.
        let scans = plan_scans(
            "db",
            &query(&[(0, "__name__", "up")]),
            &tables(),
            Some("go_gc"),
        );
        assert_eq!(scans.len(), 1);
        assert_eq!(scans[0].table, "go_gc");
        // An empty range reads nothing.
        let mut q = query(&[(0, "__name__", "up")]);
        q.end_ms = 999;
        assert!(plan_scans("db", &q, &tables(), None).is_empty());
    }

    #[test]
    fn collector_filters_groups_and_sorts() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let request = WriteRequest {
            timeseries: vec![
                crate::write::tests::series(
                    &[("__name__", "up"), ("job", "b")],
                    &[(2000, 1.0), (1000, stale)],
                ),
                crate::write::tests::series(
                    &[("__name__", "up"), ("job", "a"), ("instance", "i")],
                    &[(1500, 2.0)],
                ),
                crate::write::tests::series(&[("__name__", "up"), ("job", "c")], &[(1500, 3.0)]),
                crate::write::tests::series(&[("__name__", "up")], &[(1500, 4.0)]),
            ],
        };
        let plan = plan_write(&request, None, |_, _| None).unwrap();
        let batch = &plan.tables[0].batch;
        let mut c = SeriesCollector::new(&query(&[(0, "__name__", "up"), (3, "job", "c")]), 100);
        c.add(batch).unwrap();
        let result = c.finish();
        let got: Vec<String> = result
            .timeseries
            .iter()
            .map(|s| {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                let samples: Vec<String> = s
                    .samples
                    .iter()
                    .map(|x| format!("{}@{}", x.value.unwrap_or(0.0).to_bits(), x.timestamp))
                    .collect();
                format!("{} {}", labels.join(","), samples.join(","))
            })
            .collect();
        assert_eq!(
            got,
            [
                format!("__name__=up {}@1500", 4.0f64.to_bits()),
                format!("__name__=up,instance=i,job=a {}@1500", 2.0f64.to_bits()),
                format!(
                    "__name__=up,job=b {}@1000,{}@2000",
                    stale.to_bits(),
                    1.0f64.to_bits()
                ),
            ]
        );
        let mut small = SeriesCollector::new(&query(&[]), 2);
        let e = small.add(batch).unwrap_err();
        assert!(e.message.contains("exceeds 2 samples"), "{}", e.message);
    }
}
