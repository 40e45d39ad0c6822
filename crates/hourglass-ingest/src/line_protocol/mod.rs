//! InfluxDB line protocol decoding into Arrow record batches: the public API and the line loop.
//!
//! [`parse_line_protocol`] splits the body into lines (`memchr` on `\n`, `\r\n` accepted), skips
//! blank lines and `#` comments, and for each line:
//!
//! 1. `scanner` tokenizes it into a reusable scratch line (syntax, escapes, values, UTF-8), with
//!    `delimiters` (where the delimiters are), `escape` and `values`; a line whose measurement
//!    and tags repeat, byte for byte, those of a line accepted before (`known_series`) is only
//!    tokenized from its fields on, and its tags are taken as they resolved then;
//! 2. the timestamp is converted to nanoseconds (or `default_time` is used);
//! 3. `resolve` checks it against its table's columns and the [`TableRules`] (reserved names,
//!    duplicate keys, tag/field clashes, types), then [`TableRules::check_time`] is asked;
//! 4. only then is it appended to the table's Arrow builders (`builders`, `dictionary`).
//!
//! A rejected line becomes a [`LineError`] and leaves no trace in the builders; the other lines
//! of the body are still decoded. See `docs/protocols/line-protocol.md` for the accepted syntax.

mod builders;
mod delimiters;
mod dictionary;
mod escape;
mod known_series;
mod resolve;
mod scanner;
mod values;

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use hourglass_core::names::validate_object_name;
use hourglass_core::time::Precision;
use hourglass_core::{ColumnType, TableWrite};
use memchr::memchr;

use builders::{TableBuilder, MAX_TABLE_BYTES};
use known_series::{series_end, KnownSeriesMap};
use resolve::Resolver;
use scanner::{scan_line, ScannedLine};

/// What the decoder needs to know about existing tables (implemented by the storage crate over
/// the catalog).
pub trait TableRules {
    /// The existing column `column` of table `table`, if the table and column exist.
    fn existing_column(&self, table: &str, column: &str) -> Option<ExistingColumn>;
    /// `None` if a row of `table` at `time` (ns) may be written now; else the rejection reason text.
    fn check_time(&self, table: &str, time: i64) -> Option<String>;
}

/// The role (and type) of a column that already exists in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingColumn {
    Dimension,
    Measure(ColumnType),
}

/// [`TableRules`] for a database without tables: every column is new and every time is allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExistingTables;

impl TableRules for NoExistingTables {
    fn existing_column(&self, _table: &str, _column: &str) -> Option<ExistingColumn> {
        None
    }
    fn check_time(&self, _table: &str, _time: i64) -> Option<String> {
        None
    }
}

/// How to read a body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineProtocolOptions {
    /// The unit of the timestamps in the body.
    pub precision: Precision,
    /// The time (ns) of lines without a timestamp, normally "now".
    pub default_time: i64,
}

/// The result of decoding one body.
#[derive(Debug, Clone, Default)]
pub struct ParseOutcome {
    /// One per measurement, ordered by their first accepted line; only valid lines.
    pub tables: Vec<TableWrite>,
    /// One per rejected line, in line order.
    pub errors: Vec<LineError>,
    pub lines_accepted: usize,
}

/// A rejected line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// The 1-based line number in the body.
    pub line: usize,
    pub message: String,
}

/// Decodes a line protocol body. Never fails as a whole: invalid lines are reported in
/// [`ParseOutcome::errors`] and the valid ones are returned in [`ParseOutcome::tables`].
pub fn parse_line_protocol(
    body: &[u8],
    options: &LineProtocolOptions,
    rules: &dyn TableRules,
) -> ParseOutcome {
    let mut decoder = Decoder::new(options, rules, MAX_TABLE_BYTES);
    decoder.run(body);
    decoder.finish()
}

/// [`parse_line_protocol`] scanning and resolving every line's series in full: the reference the
/// known-series shortcut is tested against.
#[cfg(test)]
fn parse_line_protocol_without_known_series(
    body: &[u8],
    options: &LineProtocolOptions,
    rules: &dyn TableRules,
) -> ParseOutcome {
    let mut decoder = Decoder::new(options, rules, MAX_TABLE_BYTES);
    decoder.remember_series = false;
    decoder.run(body);
    decoder.finish()
}

fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Nanosecond => "ns",
        Precision::Microsecond => "us",
        Precision::Millisecond => "ms",
        Precision::Second => "s",
        Precision::Minute => "m",
        Precision::Hour => "h",
        Precision::Auto => "auto",
    }
}

/// The table builders of a body, by name, remembering the last one used.
#[derive(Default)]
struct Tables {
    list: Vec<TableBuilder>,
    index: HashMap<String, usize>,
    last: usize,
}

impl Tables {
    /// The index of the builder of table `name`, created (empty) if needed.
    fn find_or_add(&mut self, name: &str) -> usize {
        if self.list.get(self.last).is_some_and(|t| t.name == name) {
            return self.last;
        }
        let t = match self.index.get(name) {
            Some(&t) => t,
            None => {
                let error = validate_object_name("table", name).err().map(|e| e.message);
                self.list.push(TableBuilder::new(name.to_owned(), error));
                self.index.insert(name.to_owned(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        self.last = t;
        t
    }
}

/// The state of decoding one body.
struct Decoder<'a, 'r> {
    options: &'r LineProtocolOptions,
    rules: &'r dyn TableRules,
    tables: Tables,
    scanned: ScannedLine<'a>,
    resolver: Resolver,
    known_series: KnownSeriesMap<'a>,
    /// Whether accepted series are remembered (always, except in a reference test).
    remember_series: bool,
    errors: Vec<LineError>,
    accepted: usize,
    max_table_bytes: usize,
}

impl<'a, 'r> Decoder<'a, 'r> {
    fn new(
        options: &'r LineProtocolOptions,
        rules: &'r dyn TableRules,
        max_table_bytes: usize,
    ) -> Self {
        Decoder {
            options,
            rules,
            tables: Tables::default(),
            scanned: ScannedLine::default(),
            resolver: Resolver::default(),
            known_series: KnownSeriesMap::default(),
            remember_series: true,
            errors: Vec::new(),
            accepted: 0,
            max_table_bytes,
        }
    }

    fn run(&mut self, body: &'a [u8]) {
        // Checking the whole body at once saves a call per line; if it is not valid UTF-8, each
        // line is checked on its own.
        let body_text = std::str::from_utf8(body).ok();
        let mut start = 0;
        let mut number = 0;
        while start < body.len() {
            let end = memchr(b'\n', &body[start..]).map_or(body.len(), |p| start + p);
            number += 1;
            let mut line = &body[start..end];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            let first = line.iter().find(|&&c| c != b' ' && c != b'\t');
            if first.is_some_and(|&c| c != b'#') {
                let text = body_text.and_then(|t| t.get(start..start + line.len()));
                if let Err(message) = self.line(line, text, number) {
                    self.errors.push(LineError {
                        line: number,
                        message,
                    });
                }
            }
            start = end + 1;
        }
    }

    fn line(&mut self, line: &'a [u8], text: Option<&'a str>, number: usize) -> Result<(), String> {
        let series_end = series_end(line).filter(|_| self.remember_series);
        let prefix = series_end.map(|end| &line[..end]);
        let known = prefix.and_then(|p| self.known_series.get(p));
        scan_line(line, text, known.and(series_end), &mut self.scanned)?;
        let time = match self.scanned.timestamp {
            None => self.options.default_time,
            Some((raw, column)) => self.options.precision.to_nanos(raw).ok_or_else(|| {
                format!(
                    "timestamp {raw} at column {column} is out of range: in precision '{}' it \
                     does not fit in a 64-bit nanosecond time",
                    precision_name(self.options.precision)
                )
            })?,
        };
        let t = match known {
            Some(series) => series.table,
            None => self.tables.find_or_add(self.scanned.measurement()),
        };
        let table = &self.tables.list[t];
        if let Some(e) = &table.name_error {
            return Err(e.clone());
        }
        match known {
            Some(series) => {
                self.resolver
                    .resolve_with_known_series(table, &self.scanned, series, self.rules)?
            }
            None => self.resolver.resolve(table, &self.scanned, self.rules)?,
        }
        if !table.fits(line.len(), self.max_table_bytes) {
            return Err(format!(
                "table '{}' would hold more than {} bytes of line protocol from one request \
                 ({} so far); split the write into smaller requests",
                table.name,
                self.max_table_bytes,
                table.bytes()
            ));
        }
        if let Some(reason) = self.rules.check_time(&table.name, time) {
            return Err(reason);
        }
        let number = u32::try_from(number).unwrap_or(u32::MAX);
        let table = &mut self.tables.list[t];
        self.resolver
            .commit(table, &self.scanned, time, number, line.len());
        if let (Some(prefix), None) = (prefix, known) {
            if let Some(series) = self.resolver.known_series(table, t) {
                self.known_series.insert(prefix, series);
            }
        }
        self.accepted += 1;
        Ok(())
    }

    fn finish(self) -> ParseOutcome {
        let mut errors = self.errors;
        let mut accepted = self.accepted;
        let mut tables = Vec::with_capacity(self.tables.list.len());
        let mut failed = false;
        for table in self.tables.list {
            let name = table.name.clone();
            match table.finish() {
                None => {}
                Some(Ok(write)) => tables.push(write),
                Some(Err((message, sources))) => {
                    // Not reachable with the builders above; reported rather than panicking.
                    failed = true;
                    accepted -= sources.len();
                    errors.extend(sources.iter().map(|&line| LineError {
                        line: line as usize,
                        message: format!("internal error building table '{name}': {message}"),
                    }));
                }
            }
        }
        if failed {
            errors.sort_by_key(|e| e.line);
        }
        tables.sort_by_key(|w| w.sources.first().copied());
        ParseOutcome {
            tables,
            errors,
            lines_accepted: accepted,
        }
    }
}
