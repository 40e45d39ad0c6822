//! The line protocol decoder: any body, every precision, with and without existing columns.
#![no_main]

use hourglass_core::time::Precision;
use hourglass_core::ColumnType;
use hourglass_ingest::{
    parse_line_protocol, ExistingColumn, LineProtocolOptions, NoExistingTables, TableRules,
};
use libfuzzer_sys::fuzz_target;

/// Rules of a database that already has columns `host` (tag) and `v`, `n`, `s` (fields) in
/// every table, and a write window of +-1 day around the epoch of 2024.
struct Existing;

const NOW: i64 = 1_704_067_200_000_000_000;
const DAY: i64 = 86_400_000_000_000;

impl TableRules for Existing {
    fn existing_column(&self, _table: &str, column: &str) -> Option<ExistingColumn> {
        match column {
            "host" => Some(ExistingColumn::Dimension),
            "v" => Some(ExistingColumn::Measure(ColumnType::Double)),
            "n" => Some(ExistingColumn::Measure(ColumnType::Bigint)),
            "s" => Some(ExistingColumn::Measure(ColumnType::Varchar)),
            _ => None,
        }
    }
    fn check_time(&self, _table: &str, time: i64) -> Option<String> {
        (time < NOW - DAY || time > NOW + DAY).then(|| "outside the write window".to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let (selector, body) = match data.split_first() {
        Some((s, rest)) => (*s, rest),
        None => (0, data),
    };
    let precision = match selector % 7 {
        0 => Precision::Nanosecond,
        6 => Precision::Auto,
        1 => Precision::Microsecond,
        2 => Precision::Millisecond,
        3 => Precision::Second,
        4 => Precision::Minute,
        _ => Precision::Hour,
    };
    let options = LineProtocolOptions {
        precision,
        default_time: NOW,
    };
    let outcome = if selector & 0x80 == 0 {
        parse_line_protocol(body, &options, &NoExistingTables)
    } else {
        parse_line_protocol(body, &options, &Existing)
    };
    // Every accepted row is in a table; every table's batch is consistent.
    let rows: usize = outcome.tables.iter().map(|t| t.batch.num_rows()).sum();
    assert_eq!(rows, outcome.lines_accepted);
    for t in &outcome.tables {
        assert_eq!(t.sources.len(), t.batch.num_rows());
    }
});
