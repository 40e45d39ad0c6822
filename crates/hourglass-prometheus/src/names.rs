//! The names of the mapping (`docs/protocols/prometheus.md`): which table a metric goes to, which
//! column holds a label, and back.
//!
//! - A metric is stored in the table named by its `__name__` when that is a valid table name
//!   (not empty, at most 256 bytes, not starting with `_`, no `/`, `\` or control characters);
//!   other metrics share the table [`OTHER_METRICS_TABLE`]. Every row also carries the metric
//!   name in `measure_name` (as the Timestream connector wrote it), so a table holding several
//!   metrics still reads back exactly.
//! - A label is the dimension column of its name, except the names the table's own columns use
//!   (`time`, `measure_name`, `measure_value::double`) and names starting with
//!   [`LABEL_ESCAPE`]: those are stored as `label:` + name.

use hourglass_core::{Error, Result, MEASURE_NAME_COLUMN, TIME_COLUMN};

/// The label holding the metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";
/// The measure column of a sample's value (the Timestream connector's single-measure DOUBLE).
pub const VALUE_COLUMN: &str = "measure_value::double";
/// The table of metrics whose name is not a valid table name (`.` never occurs in a classic
/// Prometheus metric name, so no ordinary metric is named so).
pub const OTHER_METRICS_TABLE: &str = "prometheus.other";
/// The prefix of columns holding labels whose own name is taken (see the module documentation).
pub const LABEL_ESCAPE: &str = "label:";

/// The table a metric's samples go to.
pub fn table_for_metric(metric: &str) -> &str {
    if hourglass_core::names::validate_object_name("table", metric).is_ok() {
        metric
    } else {
        OTHER_METRICS_TABLE
    }
}

/// The dimension column of a label (not `__name__`, which is `measure_name`).
pub fn column_for_label(label: &str) -> std::borrow::Cow<'_, str> {
    if label == TIME_COLUMN
        || label == MEASURE_NAME_COLUMN
        || label == VALUE_COLUMN
        || label.starts_with(LABEL_ESCAPE)
    {
        format!("{LABEL_ESCAPE}{label}").into()
    } else {
        label.into()
    }
}

/// The label a dimension column holds (the inverse of [`column_for_label`]).
pub fn label_for_column(column: &str) -> &str {
    column.strip_prefix(LABEL_ESCAPE).unwrap_or(column)
}

/// Checks a label name of a written series (`__name__` excluded).
pub fn check_label_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("a label has an empty name"));
    }
    let column = column_for_label(name);
    hourglass_core::names::validate_column_name(&column)
        .map_err(|e| Error::invalid(format!("label '{}': {}", name.escape_debug(), e.message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_map_to_tables() {
        assert_eq!(
            table_for_metric("http_requests_total"),
            "http_requests_total"
        );
        assert_eq!(table_for_metric("job:rate5m:sum"), "job:rate5m:sum");
        assert_eq!(table_for_metric("_private"), OTHER_METRICS_TABLE);
        assert_eq!(table_for_metric("a/b"), OTHER_METRICS_TABLE);
        assert_eq!(table_for_metric(&"x".repeat(300)), OTHER_METRICS_TABLE);
        assert_eq!(table_for_metric(OTHER_METRICS_TABLE), OTHER_METRICS_TABLE);
    }

    #[test]
    fn labels_round_trip_through_columns() {
        for label in [
            "job",
            "le",
            "time",
            "measure_name",
            "measure_value::double",
            "label:x",
        ] {
            let column = column_for_label(label);
            assert_eq!(label_for_column(&column), label, "{label} -> {column}");
        }
        assert_eq!(column_for_label("time"), "label:time");
        assert_eq!(column_for_label("label:x"), "label:label:x");
        assert_eq!(column_for_label("instance"), "instance");
        assert!(check_label_name("").is_err());
        assert!(check_label_name(&"l".repeat(300)).is_err());
        assert!(check_label_name("job").is_ok());
    }
}
