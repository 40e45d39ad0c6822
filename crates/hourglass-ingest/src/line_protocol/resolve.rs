//! Checking a scanned line against its table before anything is appended.
//!
//! [`Resolver::resolve`] maps every tag and field of a [`ScannedLine`] to a column of the
//! [`TableBuilder`] (found through the previous line's column positions first, then by name) or
//! to a column the line would create, consulting [`TableRules`] for columns the body has not
//! seen yet. It enforces reserved names, unique tag keys, "last duplicate field wins",
//! tag/field clashes and column types, all into reusable scratch vectors. Only if the whole line
//! passes does [`Resolver::commit`] create the new columns and append the values.

use std::collections::HashMap;

use hourglass_core::names::validate_column_name;
use hourglass_core::{ColumnType, MEASURE_NAME_COLUMN, TIME_COLUMN};

use super::builders::{Cell, ColumnKind, TableBuilder};
use super::known_series::{KnownSeriesMap, Prefix};
use super::scanner::ScannedLine;
use super::values::FieldValue;
use super::{ExistingColumn, TableRules};

/// New columns of one line searched by a linear scan (beyond this, through a map).
const LINEAR_NEW_COLUMNS: usize = 16;

/// Which token of the scanned line a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Tag(usize),
    /// A tag of a known series, by its dictionary key (the line was scanned without its tags).
    TagKey(i32),
    Field(usize),
}

/// A column the line would create. Its index is `table.columns.len()` + its position.
#[derive(Debug, Clone, Copy)]
struct NewColumn {
    source: Source,
    /// `None` for a field the catalog does not know: it takes the type of the (last) value.
    kind: Option<ColumnKind>,
    /// Its entry in `Resolver::entries`.
    entry: usize,
}

/// Scratch state for resolving lines; reused across lines and tables.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    /// (column index, value source) for each distinct key, in first-occurrence order.
    entries: Vec<(usize, Source)>,
    new_columns: Vec<NewColumn>,
    /// Name -> position in `new_columns`, once a line has more than `LINEAR_NEW_COLUMNS`.
    new_index: HashMap<String, usize>,
    tag_columns: Vec<u32>,
    field_columns: Vec<u32>,
    /// Per existing column: the line stamp it was last seen on and its entry on that line.
    seen: Vec<(u64, usize)>,
    stamp: u64,
}

fn source_key<'s>(line: &'s ScannedLine<'_>, source: Source) -> &'s str {
    match source {
        Source::Tag(i) => line.tags.get(i).map_or("", |&(k, _)| line.str(k)),
        // Known series have no new columns.
        Source::TagKey(_) => "",
        Source::Field(i) => line.fields.get(i).map_or("", |&(k, _)| line.str(k)),
    }
}

/// The value of a source as a cell to append.
fn source_cell<'s>(line: &'s ScannedLine<'_>, source: Source) -> Option<Cell<'s>> {
    Some(match source {
        Source::Tag(i) => Cell::Tag(line.str(line.tags.get(i)?.1)),
        Source::TagKey(key) => Cell::TagKey(key),
        Source::Field(i) => match line.fields.get(i)?.1 {
            FieldValue::Float(v) => Cell::Float(v),
            FieldValue::Integer(v) => Cell::Integer(v),
            FieldValue::Unsigned(v) => Cell::Unsigned(v),
            FieldValue::Boolean(v) => Cell::Boolean(v),
            FieldValue::String(s) => Cell::String(line.string(s)),
        },
    })
}

fn check_reserved(what: &str, key: &str) -> Result<(), String> {
    if key == TIME_COLUMN || key == MEASURE_NAME_COLUMN {
        return Err(format!(
            "{what} key '{key}' is reserved: 'time' and 'measure_name' cannot be used as tag or \
             field keys"
        ));
    }
    Ok(())
}

fn tag_is_field(table: &str, key: &str, ty: ColumnType) -> String {
    format!(
        "tag '{key}' of table '{table}' is a {} field column, not a tag",
        ty.line_protocol_name()
    )
}

fn field_is_tag(table: &str, key: &str) -> String {
    format!("field '{key}' of table '{table}' is a tag column, not a field")
}

fn duplicate_tag(key: &str) -> String {
    format!("duplicate tag key '{key}': a tag key may appear only once in a line")
}

fn tag_and_field(key: &str) -> String {
    format!("key '{key}' is used as both a tag and a field in the same line")
}

impl Resolver {
    /// Checks `line` against `table` and `rules`; on success the scratch state describes what
    /// [`Self::commit`] will do.
    pub fn resolve(
        &mut self,
        table: &TableBuilder,
        line: &ScannedLine<'_>,
        rules: &dyn TableRules,
    ) -> Result<(), String> {
        self.begin(table);
        self.resolve_tags(table, line, rules)?;
        self.resolve_fields(table, line, rules)
    }

    /// [`Self::resolve`] for a line whose measurement and tags are `series` (it was scanned
    /// without them): the tags are taken as they resolved before, only the fields are checked.
    pub fn resolve_with_known_series(
        &mut self,
        table: &TableBuilder,
        line: &ScannedLine<'_>,
        tags: &[(usize, i32)],
        tag_columns: &[u32],
        rules: &dyn TableRules,
    ) -> Result<(), String> {
        self.begin(table);
        for &(column, key) in tags {
            self.use_existing(column, Source::TagKey(key));
        }
        self.tag_columns.extend_from_slice(tag_columns);
        self.resolve_fields(table, line, rules)
    }

    /// Remembers the series the line just committed to `table` (table number `t`) under
    /// `prefix` in `known` ([`super::known_series::KnownSeries`]); nothing when a tag did not
    /// end up with a dictionary key (not expected).
    pub fn remember_series<'a>(
        &self,
        table: &TableBuilder,
        t: usize,
        prefix: Prefix<'a>,
        known: &mut KnownSeriesMap<'a>,
    ) {
        known.insert(prefix, t, &self.tag_columns, |tags| {
            for &(column, source) in &self.entries {
                match source {
                    Source::Tag(_) | Source::TagKey(_) => {
                        tags.push((column, table.last_row_tag_key(column)?))
                    }
                    Source::Field(_) => {}
                }
            }
            Some(())
        });
    }

    /// Clears the scratch state for a new line of `table`.
    fn begin(&mut self, table: &TableBuilder) {
        self.stamp += 1;
        self.entries.clear();
        self.new_columns.clear();
        if !self.new_index.is_empty() {
            self.new_index.clear();
        }
        self.tag_columns.clear();
        self.field_columns.clear();
        let existing = table.columns.len();
        if self.seen.len() < existing {
            self.seen.resize(existing, (0, 0));
        }
    }

    fn resolve_tags(
        &mut self,
        table: &TableBuilder,
        line: &ScannedLine<'_>,
        rules: &dyn TableRules,
    ) -> Result<(), String> {
        let existing = table.columns.len();
        for (i, &(key, _)) in line.tags.iter().enumerate() {
            let key = line.str(key);
            // Existing columns passed the reserved-name check when they were created.
            let column = if let Some(c) = table.find(table.tag_hints.get(i), key) {
                if let ColumnKind::Field(ty) = table.columns[c].kind {
                    return Err(tag_is_field(&table.name, key, ty));
                }
                // Tags come first, so a column already seen on this line is a repeated tag.
                if self.seen[c].0 == self.stamp {
                    return Err(duplicate_tag(key));
                }
                self.use_existing(c, Source::Tag(i));
                c
            } else if self.find_new(line, key).is_some() {
                return Err(duplicate_tag(key));
            } else {
                check_reserved("tag", key)?;
                if let Some(ExistingColumn::Measure(ty)) = rules.existing_column(&table.name, key) {
                    return Err(tag_is_field(&table.name, key, ty));
                }
                validate_column_name(key).map_err(|e| e.message)?;
                self.add_new(line, existing, Source::Tag(i), Some(ColumnKind::Tag))
            };
            self.tag_columns.push(column as u32);
        }
        Ok(())
    }

    /// The fields of the line and every value's type; after the tags.
    fn resolve_fields(
        &mut self,
        table: &TableBuilder,
        line: &ScannedLine<'_>,
        rules: &dyn TableRules,
    ) -> Result<(), String> {
        let stamp = self.stamp;
        let existing = table.columns.len();
        for (i, &(key, _)) in line.fields.iter().enumerate() {
            let key = line.str(key);
            let column = if let Some(c) = table.find(table.field_hints.get(i), key) {
                if table.columns[c].kind == ColumnKind::Tag {
                    return Err(if self.seen[c].0 == stamp {
                        tag_and_field(key)
                    } else {
                        field_is_tag(&table.name, key)
                    });
                }
                self.use_existing(c, Source::Field(i));
                c
            } else if let Some(k) = self.find_new(line, key) {
                let new = &mut self.new_columns[k];
                if let Source::Tag(_) = new.source {
                    return Err(tag_and_field(key));
                }
                new.source = Source::Field(i);
                self.entries[new.entry].1 = Source::Field(i);
                existing + k
            } else {
                check_reserved("field", key)?;
                let kind = match rules.existing_column(&table.name, key) {
                    Some(ExistingColumn::Dimension) => return Err(field_is_tag(&table.name, key)),
                    Some(ExistingColumn::Measure(ty)) => Some(ColumnKind::Field(ty)),
                    None => None,
                };
                validate_column_name(key).map_err(|e| e.message)?;
                self.add_new(line, existing, Source::Field(i), kind)
            };
            self.field_columns.push(column as u32);
        }

        // Types, checked on the value that won for each key.
        for &(column, source) in &self.entries {
            let Source::Field(i) = source else { continue };
            let Some(&(key, value)) = line.fields.get(i) else {
                continue;
            };
            let ty = value.column_type();
            let column_ty = match column.checked_sub(existing) {
                None => match table.columns[column].kind {
                    ColumnKind::Field(t) => t,
                    ColumnKind::Tag => continue,
                },
                Some(k) => match self.new_columns[k].kind {
                    Some(ColumnKind::Field(t)) => t,
                    _ => ty,
                },
            };
            if ty != column_ty {
                return Err(format!(
                    "field '{}' of table '{}' is {} but the column is {}",
                    line.str(key),
                    table.name,
                    ty.line_protocol_name(),
                    column_ty.line_protocol_name()
                ));
            }
        }
        Ok(())
    }

    fn use_existing(&mut self, column: usize, source: Source) {
        let seen = &mut self.seen[column];
        if seen.0 == self.stamp {
            self.entries[seen.1].1 = source;
        } else {
            *seen = (self.stamp, self.entries.len());
            self.entries.push((column, source));
        }
    }

    /// The position in `new_columns` of the new column named `key`.
    fn find_new(&self, line: &ScannedLine<'_>, key: &str) -> Option<usize> {
        if self.new_columns.len() <= LINEAR_NEW_COLUMNS {
            self.new_columns
                .iter()
                .position(|n| source_key(line, n.source) == key)
        } else {
            self.new_index.get(key).copied()
        }
    }

    fn add_new(
        &mut self,
        line: &ScannedLine<'_>,
        existing: usize,
        source: Source,
        kind: Option<ColumnKind>,
    ) -> usize {
        let column = existing + self.new_columns.len();
        self.new_columns.push(NewColumn {
            source,
            kind,
            entry: self.entries.len(),
        });
        self.entries.push((column, source));
        // A line with very many new keys switches to a map, so it costs linear time, not
        // quadratic.
        let n = self.new_columns.len();
        if n == LINEAR_NEW_COLUMNS + 1 {
            for (k, c) in self.new_columns.iter().enumerate() {
                self.new_index
                    .insert(source_key(line, c.source).to_owned(), k);
            }
        } else if n > LINEAR_NEW_COLUMNS + 1 {
            self.new_index
                .insert(source_key(line, source).to_owned(), n - 1);
        }
        column
    }

    /// Appends the resolved line to `table` as one row.
    pub fn commit(
        &self,
        table: &mut TableBuilder,
        line: &ScannedLine<'_>,
        time: i64,
        line_number: u32,
        line_bytes: usize,
    ) {
        for new in &self.new_columns {
            let kind = match (new.kind, new.source) {
                (Some(kind), _) => kind,
                (None, Source::Field(i)) => match line.fields.get(i) {
                    Some(&(_, value)) => ColumnKind::Field(value.column_type()),
                    None => continue,
                },
                (None, Source::Tag(_) | Source::TagKey(_)) => ColumnKind::Tag,
            };
            table.add_column(source_key(line, new.source), kind);
        }
        for &(column, source) in &self.entries {
            if let Some(cell) = source_cell(line, source) {
                table.append(column, cell);
            }
        }
        table.end_row(time, line_number, line_bytes);
        table.tag_hints.clear();
        table.tag_hints.extend_from_slice(&self.tag_columns);
        table.field_hints.clear();
        table.field_hints.extend_from_slice(&self.field_columns);
    }
}
