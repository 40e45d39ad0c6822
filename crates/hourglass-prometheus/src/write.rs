//! Remote write: a decoded `WriteRequest` to one Arrow batch per table, in the write-batch layout
//! (`time`, `measure_name`, label dimensions, `measure_value::double`). A sample is one row; a
//! label missing from a series is NULL in its rows (it reads back as absent), as is a label with
//! an empty value (Prometheus treats the two alike). Values are stored bit for bit (stale
//! markers and other NaNs included).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_schema::Schema;
use hourglass_core::types::{dimension_field, measure_field, time_field};
use hourglass_core::{ColumnType, Error, Result, TableWrite, MEASURE_NAME_COLUMN};

use crate::names::{
    check_label_name, column_for_label, table_for_metric, METRIC_NAME_LABEL, VALUE_COLUMN,
};
use crate::proto::{TimeSeries, WriteRequest};

/// Milliseconds to nanoseconds.
const NANOS_PER_MILLI: i64 = 1_000_000;

/// What a write request becomes.
#[derive(Debug, Default)]
pub struct WritePlan {
    /// The rows to commit, one batch per table.
    pub tables: Vec<TableWrite>,
    /// Samples in `tables`.
    pub samples: usize,
    /// Samples refused by the write window (not in `tables`), and the first reason.
    pub rejected: usize,
    pub first_rejection: Option<String>,
    /// Native histogram samples, which Hourglass does not store.
    pub histograms: usize,
}

/// Maps a request to table batches. `table`: every series goes to that one table (the
/// Timestream connector's layout) instead of a table per metric. `check_time(table, nanos)`
/// returns why a sample's time may not be written (the table's write window), or `None`.
/// A malformed series (no metric name, a repeated or empty label name, a timestamp out of range)
/// fails the whole request: nothing of it is written.
pub fn plan_write(
    request: &WriteRequest,
    table: Option<&str>,
    check_time: impl Fn(&str, i64) -> Option<String>,
) -> Result<WritePlan> {
    let mut plan = WritePlan::default();
    let mut builders: Vec<TableBuilder> = Vec::new();
    let mut by_table: HashMap<&str, usize> = HashMap::new();
    for (index, series) in request.timeseries.iter().enumerate() {
        plan.histograms += series.histograms.len();
        let labels = SeriesLabels::new(series)?;
        let target = table.unwrap_or_else(|| table_for_metric(labels.metric));
        let slot = *by_table.entry(target).or_insert_with(|| {
            builders.push(TableBuilder::new(target));
            builders.len() - 1
        });
        let builder = &mut builders[slot];
        let start = builder.times.len();
        for sample in &series.samples {
            let nanos = sample
                .timestamp
                .checked_mul(NANOS_PER_MILLI)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "series {}: sample timestamp {} ms is out of range",
                        describe(series),
                        sample.timestamp
                    ))
                })?;
            if let Some(reason) = check_time(target, nanos) {
                plan.rejected += 1;
                plan.first_rejection.get_or_insert_with(|| {
                    format!(
                        "series {}: sample at {} ms: {reason}",
                        describe(series),
                        sample.timestamp
                    )
                });
                continue;
            }
            builder.times.push(nanos);
            builder.values.push(sample.value.unwrap_or(0.0));
        }
        let rows = builder.times.len() - start;
        if rows == 0 {
            continue;
        }
        builder
            .sources
            .resize(builder.times.len(), (index + 1) as u32);
        let key = builder.metric.key(labels.metric);
        builder.metric.push(start, key, rows);
        for (column, value) in labels.dimensions {
            let dim = builder.dims.entry(column).or_default();
            let key = dim.key(value);
            dim.push(start, key, rows);
        }
        plan.samples += rows;
    }
    for builder in builders {
        if builder.times.is_empty() {
            continue;
        }
        plan.tables.push(builder.finish()?);
    }
    Ok(plan)
}

/// A series' metric name and its other labels as (column, value), checked.
struct SeriesLabels<'a> {
    metric: &'a str,
    dimensions: Vec<(Cow<'a, str>, &'a str)>,
}

impl<'a> SeriesLabels<'a> {
    fn new(series: &'a TimeSeries) -> Result<Self> {
        let mut metric = None;
        let mut names: Vec<&str> = Vec::with_capacity(series.labels.len());
        let mut dimensions = Vec::with_capacity(series.labels.len());
        for label in &series.labels {
            names.push(&label.name);
            if label.name == METRIC_NAME_LABEL {
                metric = Some(label.value.as_str());
                continue;
            }
            check_label_name(&label.name).map_err(|e| {
                Error::invalid(format!("series {}: {}", describe(series), e.message))
            })?;
            if !label.value.is_empty() {
                dimensions.push((column_for_label(&label.name), label.value.as_str()));
            }
        }
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(format!(
                "series {}: label '{}' appears more than once",
                describe(series),
                pair[0].escape_debug()
            )));
        }
        let metric = metric.filter(|m| !m.is_empty()).ok_or_else(|| {
            Error::invalid(format!(
                "series {} has no metric name (label __name__)",
                describe(series)
            ))
        })?;
        Ok(SeriesLabels { metric, dimensions })
    }
}

/// A series' labels as PromQL writes them, shortened, for error messages.
pub fn describe(series: &TimeSeries) -> String {
    let mut text = String::from("{");
    for (i, label) in series.labels.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&format!("{}={:?}", label.name, label.value));
        if text.len() > 200 {
            text.push_str(", ...");
            break;
        }
    }
    text.push('}');
    text
}

/// One dictionary-encoded string column under construction.
#[derive(Default)]
struct DimColumn<'a> {
    keys: Vec<Option<i32>>,
    index: HashMap<&'a str, i32>,
    values: Vec<&'a str>,
}

impl<'a> DimColumn<'a> {
    fn key(&mut self, value: &'a str) -> i32 {
        let next = self.values.len() as i32;
        *self.index.entry(value).or_insert_with(|| {
            self.values.push(value);
            next
        })
    }

    /// Sets rows `start..start + rows` to `key` (rows before `start` not yet set are NULL).
    fn push(&mut self, start: usize, key: i32, rows: usize) {
        self.keys.resize(start, None);
        self.keys.resize(start + rows, Some(key));
    }

    fn finish(mut self, rows: usize) -> Result<ArrayRef> {
        self.keys.resize(rows, None);
        let array = DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(self.keys),
            Arc::new(StringArray::from(self.values)),
        )
        .map_err(|e| Error::internal(format!("building a label column: {e}")))?;
        Ok(Arc::new(array))
    }
}

/// The rows of one table under construction.
struct TableBuilder<'a> {
    table: &'a str,
    times: Vec<i64>,
    values: Vec<f64>,
    sources: Vec<u32>,
    metric: DimColumn<'a>,
    dims: BTreeMap<Cow<'a, str>, DimColumn<'a>>,
}

impl<'a> TableBuilder<'a> {
    fn new(table: &'a str) -> Self {
        TableBuilder {
            table,
            times: Vec::new(),
            values: Vec::new(),
            sources: Vec::new(),
            metric: DimColumn::default(),
            dims: BTreeMap::new(),
        }
    }

    fn finish(self) -> Result<TableWrite> {
        let rows = self.times.len();
        let mut fields = vec![time_field(), dimension_field(MEASURE_NAME_COLUMN)];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(self.times)),
            self.metric.finish(rows)?,
        ];
        for (name, dim) in self.dims {
            fields.push(dimension_field(&name));
            columns.push(dim.finish(rows)?);
        }
        fields.push(measure_field(VALUE_COLUMN, ColumnType::Double));
        columns.push(Arc::new(Float64Array::from(self.values)));
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::internal(format!("building the write batch: {e}")))?;
        Ok(TableWrite {
            table: self.table.to_string(),
            batch,
            sources: self.sources,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::{Label, Sample};
    use arrow_array::cast::AsArray;
    use arrow_array::Array;

    pub(crate) fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample {
                    value: Some(value),
                    timestamp,
                })
                .collect(),
            histograms: vec![],
        }
    }

    fn dim(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let column = batch.column_by_name(name).unwrap();
        let dict = column.as_dictionary::<Int32Type>();
        let values = dict.values().as_string::<i32>();
        dict.keys()
            .iter()
            .map(|k| k.map(|k| values.value(k as usize).to_string()))
            .collect()
    }

    #[test]
    fn one_table_per_metric_with_absent_labels_null() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let request = WriteRequest {
            timeseries: vec![
                series(
                    &[("__name__", "up"), ("job", "a"), ("instance", "x")],
                    &[(1000, 1.0), (2000, stale)],
                ),
                series(
                    &[("job", "b"), ("__name__", "up"), ("zone", "")],
                    &[(1000, 0.0)],
                ),
                series(&[("__name__", "_odd"), ("time", "t")], &[(1000, 2.5)]),
            ],
        };
        let plan = plan_write(&request, None, |_, _| None).unwrap();
        assert_eq!(plan.samples, 4);
        assert_eq!(plan.tables.len(), 2);
        let up = &plan.tables[0];
        assert_eq!(up.table, "up");
        let b = &up.batch;
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "time",
                "measure_name",
                "instance",
                "job",
                "measure_value::double"
            ]
        );
        assert_eq!(
            dim(b, "job"),
            [Some("a".into()), Some("a".into()), Some("b".into())]
        );
        assert_eq!(
            dim(b, "instance"),
            [Some("x".into()), Some("x".into()), None]
        );
        assert_eq!(up.sources, [1, 1, 2]);
        let values = b
            .column(4)
            .as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(values.value(1).to_bits(), 0x7ff0_0000_0000_0002);
        let times = b
            .column(0)
            .as_primitive::<arrow_array::types::TimestampNanosecondType>();
        assert_eq!(times.value(1), 2_000_000_000);
        let odd = &plan.tables[1];
        assert_eq!(odd.table, crate::names::OTHER_METRICS_TABLE);
        assert_eq!(dim(&odd.batch, "measure_name"), [Some("_odd".into())]);
        assert_eq!(dim(&odd.batch, "label:time"), [Some("t".into())]);
    }

    #[test]
    fn one_table_when_named_and_window_rejections_counted() {
        let request = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "a")], &[(1, 1.0), (5, 2.0)]),
                series(&[("__name__", "b")], &[(1, 1.0)]),
            ],
        };
        let plan = plan_write(&request, Some("prom"), |table, t| {
            assert_eq!(table, "prom");
            (t < 2_000_000).then(|| "too old".to_string())
        })
        .unwrap();
        assert_eq!(plan.tables.len(), 1);
        assert_eq!(plan.samples, 1);
        assert_eq!(plan.rejected, 2);
        assert!(plan.first_rejection.unwrap().contains("too old"));
        assert_eq!(plan.tables[0].batch.num_rows(), 1);
        assert_eq!(plan.tables[0].batch.column(1).null_count(), 0);
    }

    #[test]
    fn malformed_series_fail_the_request() {
        let bad = [
            series(&[("job", "a")], &[(1, 1.0)]),
            series(&[("__name__", "")], &[(1, 1.0)]),
            series(&[("__name__", "m"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
            series(&[("__name__", "m"), ("", "1")], &[(1, 1.0)]),
            series(&[("__name__", "m")], &[(i64::MAX, 1.0)]),
        ];
        let expect = [
            "no metric name",
            "no metric name",
            "more than once",
            "empty name",
            "out of range",
        ];
        for (s, want) in bad.into_iter().zip(expect) {
            let request = WriteRequest {
                timeseries: vec![s],
            };
            let e = plan_write(&request, None, |_, _| None).unwrap_err();
            assert!(e.message.contains(want), "{}: {}", want, e.message);
        }
    }
}
