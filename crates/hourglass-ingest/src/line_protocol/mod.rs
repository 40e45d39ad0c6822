//! InfluxDB line protocol decoding into Arrow record batches: the public API and the line loop.
//!
//! [`parse_line_protocol`] splits the body into lines (`memchr` on `\n`, `\r\n` accepted; only a
//! line with a `"` is walked to keep newlines inside string values, see `quoted_line_end`),
//! numbers them by physical line, skips blank lines and `#` comments, and for each line:
//!
//! 1. `scanner` tokenizes it into a reusable scratch line (syntax, escapes, values, UTF-8), with
//!    `delimiters` (where the delimiters are), `escape` and `values`; a line whose measurement
//!    and tags repeat, byte for byte, those of a line accepted before (`known_series`) is only
//!    tokenized from its fields on, and its tags are taken as they resolved then;
//! 2. the timestamp is converted to nanoseconds (or `default_time`, truncated to the precision,
//!    is used);
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
use memchr::{memchr, memchr2, memchr_iter};

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
    /// The time (ns) of lines without a timestamp, normally "now"; the decoder truncates it to
    /// `precision` (as InfluxDB does).
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

/// The lines of a body: (line number, byte offset, the line without its `\n` or `\r\n`).
///
/// A line ends at a newline that is not inside a quoted field value ([`quoted_line_end`]).
/// Lines are numbered by the newlines before them (physical lines, 1-based), so a line holding a
/// newline in a string value takes up more than one number and the next line's number is still
/// the one an editor shows.
struct Lines<'a> {
    body: &'a [u8],
    start: usize,
    next_number: usize,
    /// The first `"` at or after `start` (or the body's length): only a line holding one can go
    /// on past its first newline.
    quote: usize,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Lines {
            body,
            start: 0,
            next_number: 1,
            quote: memchr(b'"', body).unwrap_or(body.len()),
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, usize, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (body, start) = (self.body, self.start);
        if start >= body.len() {
            return None;
        }
        let mut end = memchr(b'\n', &body[start..]).map_or(body.len(), |p| start + p);
        if self.quote < start {
            self.quote = memchr(b'"', &body[start..]).map_or(body.len(), |p| start + p);
        }
        let number = self.next_number;
        self.next_number += 1;
        if self.quote < end {
            end = quoted_line_end(body, start, end);
            self.next_number += memchr_iter(b'\n', &body[start..end]).count();
        }
        self.start = end + 1;
        let line = &body[start..end];
        Some((number, start, line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

/// `time` (ns) rounded down to a whole unit of `precision` (InfluxDB does the same with the
/// server's time for lines without a timestamp, so that two writes at `precision=s` within one
/// second write the same point). `Auto` has no unit: `time` is returned as is.
fn truncate_to_precision(time: i64, precision: Precision) -> i64 {
    time - time.rem_euclid(precision.nanos_per_unit().max(1))
}

/// The end of the line starting at `start`, which holds a `"` before its first newline `nl`:
/// the first newline not inside a quoted field value (InfluxDB reads a newline there as part of
/// the string). It follows the scanner's token rules: the measurement and tags end at the first
/// space or tab not directly after a backslash, where a `"` is an ordinary character; in the field
/// set, a value is quoted when it starts with `"`, and inside it a backslash escapes the next
/// byte. A line the scanner will reject still ends at a definite place: outside a string, any
/// newline ends it; an unclosed string runs to the end of the body.
fn quoted_line_end(b: &[u8], start: usize, nl: usize) -> usize {
    let is_blank = |c: u8| c == b' ' || c == b'\t';
    let next_newline = |from: usize| memchr(b'\n', &b[from..]).map_or(b.len(), |p| from + p);
    // The first byte from `i` in `stops` (and not directly after a backslash), or a newline.
    let find = |mut i: usize, stops: &[u8]| -> usize {
        while i < b.len() {
            let c = b[i];
            if c == b'\n' || (stops.contains(&c) && (i == start || b[i - 1] != b'\\')) {
                return i;
            }
            i += 1;
        }
        i
    };

    // Blank lines and comments.
    let mut i = start + b[start..nl].iter().take_while(|&&c| is_blank(c)).count();
    if i >= nl || b[i] == b'#' {
        return nl;
    }
    // The measurement and tags.
    loop {
        match memchr2(b' ', b'\t', &b[i..nl]) {
            None => return nl,
            Some(p) if b[i + p - 1] == b'\\' => i += p + 1,
            Some(p) => {
                i += p;
                break;
            }
        }
    }
    while i < b.len() && is_blank(b[i]) {
        i += 1;
    }
    // The fields: `key=value` separated by commas.
    loop {
        let eq = find(i, b" \t,=");
        if b.get(eq) != Some(&b'=') {
            return next_newline(eq);
        }
        i = eq + 1;
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
                    None => return b.len(),
                    Some(p) if b[i + p] == b'\\' => i += p + 2,
                    Some(p) => {
                        i += p + 1;
                        break;
                    }
                }
            }
        } else {
            // Unquoted values have no escapes.
            while i < b.len() && !matches!(b[i], b' ' | b'\t' | b',' | b'\n') {
                i += 1;
            }
        }
        if b.get(i) != Some(&b',') {
            return next_newline(i.min(b.len()));
        }
        i += 1;
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
    /// The time of lines without a timestamp: `options.default_time` truncated to the precision.
    default_time: i64,
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
            default_time: truncate_to_precision(options.default_time, options.precision),
        }
    }

    fn run(&mut self, body: &'a [u8]) {
        // Checking the whole body at once saves a call per line; if it is not valid UTF-8, each
        // line is checked on its own.
        let body_text = std::str::from_utf8(body).ok();
        for (number, start, line) in Lines::new(body) {
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
        }
    }

    fn line(&mut self, line: &'a [u8], text: Option<&'a str>, number: usize) -> Result<(), String> {
        let series_end = series_end(line).filter(|_| self.remember_series);
        let prefix = series_end.map(|end| self.known_series.prefix(&line[..end]));
        let known = prefix.as_ref().and_then(|p| self.known_series.get(p));
        scan_line(line, text, known.and(series_end), &mut self.scanned)?;
        let time = match self.scanned.timestamp {
            None => self.default_time,
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
            Some(series) => self.resolver.resolve_with_known_series(
                table,
                &self.scanned,
                self.known_series.tags(series),
                self.known_series.tag_columns(series),
                self.rules,
            )?,
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
            self.resolver
                .remember_series(table, t, prefix, &mut self.known_series);
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
