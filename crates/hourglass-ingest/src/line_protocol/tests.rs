//! Tests of the whole decoder: bodies in, batches and line errors out.

use std::cell::RefCell;
use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{Array, StringArray};
use arrow_schema::{DataType, TimeUnit};
use hourglass_core::time::Precision;
use hourglass_core::{ColumnType, TableWrite};

use super::*;

/// A cell of a decoded row, for comparisons.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Time(i64),
    Tag(String),
    F(f64),
    I(i64),
    U(u64),
    S(String),
    B(bool),
}

/// The non-null cells of each row of a table, by column name.
pub(super) fn rows(w: &TableWrite) -> Vec<HashMap<String, Val>> {
    let b = &w.batch;
    let mut out = vec![HashMap::new(); b.num_rows()];
    for (field, col) in b.schema().fields().iter().zip(b.columns()) {
        for (r, row) in out.iter_mut().enumerate() {
            if col.is_null(r) {
                continue;
            }
            let v = match col.data_type() {
                DataType::Timestamp(TimeUnit::Nanosecond, None) => {
                    Val::Time(col.as_primitive::<TimestampNanosecondType>().value(r))
                }
                DataType::Dictionary(_, _) => {
                    let d = col.as_dictionary::<Int32Type>();
                    let values = d.values().as_string::<i32>();
                    Val::Tag(values.value(d.keys().value(r) as usize).to_owned())
                }
                DataType::Float64 => Val::F(col.as_primitive::<Float64Type>().value(r)),
                DataType::Int64 => Val::I(col.as_primitive::<Int64Type>().value(r)),
                DataType::UInt64 => Val::U(col.as_primitive::<UInt64Type>().value(r)),
                DataType::Utf8 => Val::S(col.as_string::<i32>().value(r).to_owned()),
                DataType::Boolean => Val::B(col.as_boolean().value(r)),
                other => panic!("unexpected type {other}"),
            };
            row.insert(field.name().clone(), v);
        }
    }
    out
}

fn row(cells: &[(&str, Val)]) -> HashMap<String, Val> {
    cells
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn column_names(w: &TableWrite) -> Vec<String> {
    w.batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

const OPTIONS: LineProtocolOptions = LineProtocolOptions {
    precision: Precision::Nanosecond,
    default_time: 42,
};

fn parse(body: &str) -> ParseOutcome {
    parse_line_protocol(body.as_bytes(), &OPTIONS, &NoExistingTables)
}

fn errors(outcome: &ParseOutcome) -> Vec<String> {
    outcome.errors.iter().map(ToString::to_string).collect()
}

fn tag(s: &str) -> Val {
    Val::Tag(s.to_owned())
}

/// Table rules over a fixed catalog, recording the `check_time` calls.
#[derive(Default)]
struct FakeRules {
    columns: HashMap<(String, String), ExistingColumn>,
    /// Times (ns) at or after this are rejected.
    reject_from: Option<i64>,
    checked: RefCell<Vec<(String, i64)>>,
}

impl FakeRules {
    fn with(mut self, table: &str, column: &str, c: ExistingColumn) -> Self {
        self.columns
            .insert((table.to_owned(), column.to_owned()), c);
        self
    }
}

impl TableRules for FakeRules {
    fn existing_column(&self, table: &str, column: &str) -> Option<ExistingColumn> {
        self.columns
            .get(&(table.to_owned(), column.to_owned()))
            .copied()
    }
    fn check_time(&self, table: &str, time: i64) -> Option<String> {
        self.checked.borrow_mut().push((table.to_owned(), time));
        match self.reject_from {
            Some(limit) if time >= limit => Some(format!(
                "The record timestamp {time} of table '{table}' is outside the time range."
            )),
            _ => None,
        }
    }
}

#[test]
fn decodes_every_field_type_into_the_documented_layout() {
    let out =
        parse("cpu,host=a,region=eu f=1.5,i=-3i,u=7u,s=\"hi there\",b=true 1700000000000000000\n");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.lines_accepted, 1);
    assert_eq!(out.tables.len(), 1);
    let w = &out.tables[0];
    assert_eq!(w.table, "cpu");
    assert_eq!(w.sources, [1]);
    let schema = w.batch.schema();
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    assert_eq!(
        types,
        [
            (
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false
            ),
            ("measure_name", dict.clone(), true),
            ("host", dict.clone(), true),
            ("region", dict, true),
            ("f", DataType::Float64, true),
            ("i", DataType::Int64, true),
            ("u", DataType::UInt64, true),
            ("s", DataType::Utf8, true),
            ("b", DataType::Boolean, true),
        ]
    );
    assert_eq!(
        rows(w),
        [row(&[
            ("time", Val::Time(1_700_000_000_000_000_000)),
            ("measure_name", tag("cpu")),
            ("host", tag("a")),
            ("region", tag("eu")),
            ("f", Val::F(1.5)),
            ("i", Val::I(-3)),
            ("u", Val::U(7)),
            ("s", Val::S("hi there".into())),
            ("b", Val::B(true)),
        ])]
    );
}

#[test]
fn tables_in_first_appearance_order_with_their_source_lines() {
    let out = parse("mem f=1 1\ncpu f=2 2\nmem f=3 3\n\ndisk f=4 4\ncpu f=5 5");
    let names: Vec<_> = out.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["mem", "cpu", "disk"]);
    let sources: Vec<_> = out.tables.iter().map(|t| t.sources.clone()).collect();
    assert_eq!(sources, [vec![1, 3], vec![2, 6], vec![5]]);
    assert_eq!(out.lines_accepted, 5);
    let measure_names: Vec<_> = rows(&out.tables[1])
        .iter()
        .map(|r| r["measure_name"].clone())
        .collect();
    assert_eq!(measure_names, [tag("cpu"), tag("cpu")]);
}

#[test]
fn a_table_whose_first_line_is_rejected_is_ordered_by_its_first_accepted_line() {
    let out = parse("a f=x\nb f=1\na f=2");
    let names: Vec<_> = out.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    assert_eq!(out.errors.len(), 1);
}

#[test]
fn valid_lines_are_kept_and_invalid_ones_reported_in_order() {
    let body = "cpu,host=a usage=1 10\n\
                cpu,host usage=2 20\n\
                cpu,host=b usage=3 30\n\
                cpu usage=\n\
                cpu,host=c usage=5 50\n";
    let out = parse(body);
    assert_eq!(
        errors(&out),
        [
            "line 2: expected '=' after tag key 'host' at column 9",
            "line 4: missing value for field 'usage' at column 11",
        ]
    );
    assert_eq!(out.errors[0].line, 2);
    assert_eq!(out.lines_accepted, 3);
    let w = &out.tables[0];
    assert_eq!(w.sources, [1, 3, 5]);
    let hosts: Vec<_> = rows(w).iter().map(|r| r["host"].clone()).collect();
    assert_eq!(hosts, [tag("a"), tag("b"), tag("c")]);
}

#[test]
fn every_syntax_error_is_reported_with_its_line_number() {
    let cases = [
        ("cpu", "missing fields at column 4: expected at least one field=value after the measurement and tags"),
        (",a=b f=1", "empty measurement name at column 1"),
        ("cpu,=b f=1", "empty tag key at column 5"),
        ("cpu =1", "empty field key at column 5"),
        ("cpu f=1x", "invalid number '1x' for field 'f' at column 7"),
        ("cpu f=tru", "invalid boolean 'tru' for field 'f' at column 7: expected t, T, true, True, TRUE, f, F, false, False or FALSE"),
        ("cpu f=1 abc", "invalid timestamp 'abc' at column 9: expected an integer"),
    ];
    for (line, message) in cases {
        let out = parse(&format!("ok f=1\n{line}\nok f=2"));
        assert_eq!(errors(&out), [format!("line 2: {message}")], "{line}");
        assert_eq!(out.lines_accepted, 2);
    }
    // An unclosed string runs to the end of the body (newlines are part of strings).
    let out = parse("ok f=1\ncpu f=\"open\nok f=2");
    assert_eq!(
        errors(&out),
        ["line 2: unterminated string value of field 'f' starting at column 7"]
    );
    assert_eq!(out.lines_accepted, 1);
}

#[test]
fn nan_infinity_and_integer_bounds() {
    let body = "m f=NaN\n\
                m f=-Inf\n\
                m f=1e309\n\
                m i=9223372036854775807i,j=-9223372036854775808i\n\
                m i=9223372036854775808i\n\
                m u=18446744073709551615u\n\
                m u=18446744073709551616u\n\
                m u=-1u\n";
    let out = parse(body);
    assert_eq!(
        errors(&out),
        [
            "line 1: invalid number 'NaN' for field 'f' at column 5: NaN and infinity are not supported",
            "line 2: invalid number '-Inf' for field 'f' at column 5: NaN and infinity are not supported",
            "line 3: invalid number '1e309' for field 'f' at column 5: out of range for a 64-bit float",
            "line 5: invalid integer '9223372036854775808i' for field 'i' at column 5: out of range for a 64-bit signed integer",
            "line 7: invalid unsigned integer '18446744073709551616u' for field 'u' at column 5: out of range for a 64-bit unsigned integer",
            "line 8: invalid unsigned integer '-1u' for field 'u' at column 5: unsigned integers cannot be negative",
        ]
    );
    let r = rows(&out.tables[0]);
    assert_eq!(r[0]["i"], Val::I(i64::MAX));
    assert_eq!(r[0]["j"], Val::I(i64::MIN));
    assert_eq!(r[1]["u"], Val::U(u64::MAX));
}

#[test]
fn invalid_utf8_is_rejected_naming_the_token() {
    let mut body = b"m f=1\n".to_vec();
    body.extend_from_slice(b"m,host=caf\xe9 f=1\n");
    body.extend_from_slice(b"m s=\"\xff\"\n");
    body.extend_from_slice(b"m f=1\xff\n");
    body.extend_from_slice(b"m f=2\n");
    let out = parse_line_protocol(&body, &OPTIONS, &NoExistingTables);
    assert_eq!(
        errors(&out),
        [
            "line 2: invalid UTF-8 in the value of tag 'host' at column 11",
            "line 3: invalid UTF-8 in the string value of field 's' at column 6",
            "line 4: invalid number '1\u{FFFD}' for field 'f' at column 5",
        ]
    );
    assert_eq!(out.lines_accepted, 2);
}

#[test]
fn sparse_tags_and_fields_are_null_padded() {
    let body = "m,a=1 x=1i 1\n\
                m,b=2 y=2i 2\n\
                m z=3i 3\n\
                m,b=4,a=5 x=4i,z=5i 4\n\
                m,c=6 x=6i 5\n";
    let out = parse(body);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let w = &out.tables[0];
    assert_eq!(
        column_names(w),
        ["time", "measure_name", "a", "b", "c", "x", "y", "z"]
    );
    let m = tag("m");
    assert_eq!(
        rows(w),
        [
            row(&[
                ("time", Val::Time(1)),
                ("measure_name", m.clone()),
                ("a", tag("1")),
                ("x", Val::I(1))
            ]),
            row(&[
                ("time", Val::Time(2)),
                ("measure_name", m.clone()),
                ("b", tag("2")),
                ("y", Val::I(2))
            ]),
            row(&[
                ("time", Val::Time(3)),
                ("measure_name", m.clone()),
                ("z", Val::I(3))
            ]),
            row(&[
                ("time", Val::Time(4)),
                ("measure_name", m.clone()),
                ("a", tag("5")),
                ("b", tag("4")),
                ("x", Val::I(4)),
                ("z", Val::I(5)),
            ]),
            row(&[
                ("time", Val::Time(5)),
                ("measure_name", m),
                ("c", tag("6")),
                ("x", Val::I(6))
            ]),
        ]
    );
    for col in w.batch.columns() {
        assert_eq!(col.len(), 5);
    }
    assert_eq!(w.batch.column(4).null_count(), 4); // c
    assert_eq!(w.batch.column(6).null_count(), 4); // y
}

#[test]
fn precisions_convert_to_nanoseconds_with_overflow_checks() {
    let cases = [
        (Precision::Nanosecond, 1_i64),
        (Precision::Microsecond, 1_000),
        (Precision::Millisecond, 1_000_000),
        (Precision::Second, 1_000_000_000),
        (Precision::Minute, 60_000_000_000),
        (Precision::Hour, 3_600_000_000_000),
    ];
    for (precision, unit) in cases {
        let options = LineProtocolOptions {
            precision,
            default_time: 7,
        };
        // The default time is truncated to the precision (see
        // `the_default_time_is_truncated_to_the_precision`).
        let default = 7 - 7 % unit;
        let out = parse_line_protocol(b"m f=1 3\nm f=1 -2\nm f=1", &options, &NoExistingTables);
        let times: Vec<_> = rows(&out.tables[0])
            .iter()
            .map(|r| r["time"].clone())
            .collect();
        assert_eq!(
            times,
            [
                Val::Time(3 * unit),
                Val::Time(-2 * unit),
                Val::Time(default)
            ],
            "{precision:?}"
        );
    }
    let options = LineProtocolOptions {
        precision: Precision::Second,
        default_time: 0,
    };
    let out = parse_line_protocol(
        b"m f=1 9223372036\nm f=1 9223372037\nm f=1 -9223372037",
        &options,
        &NoExistingTables,
    );
    assert_eq!(
        errors(&out),
        [
            "line 2: timestamp 9223372037 at column 7 is out of range: in precision 's' it does \
             not fit in a 64-bit nanosecond time",
            "line 3: timestamp -9223372037 at column 7 is out of range: in precision 's' it does \
             not fit in a 64-bit nanosecond time",
        ]
    );
    assert_eq!(
        rows(&out.tables[0])[0]["time"],
        Val::Time(9_223_372_036_000_000_000)
    );
    let out = parse("m f=1 -9223372036854775808\nm f=1 9223372036854775807");
    let times: Vec<_> = rows(&out.tables[0])
        .iter()
        .map(|r| r["time"].clone())
        .collect();
    assert_eq!(times, [Val::Time(i64::MIN), Val::Time(i64::MAX)]);
}

#[test]
fn lines_without_timestamp_get_the_default_time() {
    let out = parse("m f=1\nm f=2 5\nm f=3   ");
    let times: Vec<_> = rows(&out.tables[0])
        .iter()
        .map(|r| r["time"].clone())
        .collect();
    assert_eq!(times, [Val::Time(42), Val::Time(5), Val::Time(42)]);
}

#[test]
fn crlf_blank_lines_and_comments() {
    let body = "# a comment\r\n\
                m f=1 1\r\n\
                \r\n\
                \t  \r\n\
                \t # indented comment with = and , \"\r\n\
                m f=2 2\r\n\
                \r\n\
                m f=3 3";
    let out = parse(body);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.tables[0].sources, [2, 6, 8]);
    // Nothing at all, or only blank lines and comments.
    for body in ["", "\n", "\n\n\r\n", "# only\n#comments"] {
        let out = parse(body);
        assert!(out.tables.is_empty() && out.errors.is_empty() && out.lines_accepted == 0);
    }
    // A `#` after a measurement is not a comment.
    let out = parse("m#x f=1");
    assert_eq!(out.tables[0].table, "m#x");
    // Line numbers count CRLF lines once.
    let out = parse("m f=1\r\nm f=\r\nm f=1");
    assert_eq!(
        errors(&out),
        ["line 2: missing value for field 'f' at column 5"]
    );
}

#[test]
fn escapes_and_strings_end_to_end() {
    let body = r#"my\ table\,x,tag\ key\==a\,b\ c my\=field="say \"hi\" \\ or \n",plain=1i"#;
    let out = parse(body);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let w = &out.tables[0];
    assert_eq!(w.table, "my table,x");
    assert_eq!(
        column_names(w),
        ["time", "measure_name", "tag key=", "my=field", "plain"]
    );
    let r = &rows(w)[0];
    assert_eq!(r["measure_name"], tag("my table,x"));
    assert_eq!(r["tag key="], tag("a,b c"));
    assert_eq!(r["my=field"], Val::S(r#"say "hi" \ or \n"#.into()));
}

#[test]
fn a_newline_inside_a_string_is_part_of_it() {
    // InfluxDB's TestParsePointWithStringWithNewline, and CRLF / several newlines in strings.
    let body = "cpu,host=serverA,region=us-east value=1.0,str=\"foo\nbar\" 1000000000\n\
                m s=\"one\r\ntwo\n\nthree\",g=\"\n\" 5\r\n\
                m f=\n\
                m s=\"x\ny\" 6";
    let out = parse(body);
    // Lines are numbered by the newlines before them (physical lines): the line after a
    // string holding four newlines starts four numbers later, as an editor shows it.
    assert_eq!(
        errors(&out),
        ["line 8: missing value for field 'f' at column 5"]
    );
    assert_eq!(out.tables[0].sources, [1]);
    assert_eq!(rows(&out.tables[0])[0]["str"], Val::S("foo\nbar".into()));
    let m = &out.tables[1];
    assert_eq!(m.sources, [3, 9]);
    let r = rows(m);
    assert_eq!(r[0]["s"], Val::S("one\r\ntwo\n\nthree".into()));
    assert_eq!(r[0]["g"], Val::S("\n".into()));
    assert_eq!(r[0]["time"], Val::Time(5));
    assert_eq!(r[1]["s"], Val::S("x\ny".into()));

    // Errors in and after a multi-line string: line numbers, and byte columns counted from the
    // start of the line (newlines in strings included).
    let out = parse("m s=\"a\nb\" x\nm f=1\nm s=\"c\nd\",f=\n");
    assert_eq!(
        errors(&out),
        [
            "line 1: invalid timestamp 'x' at column 11: expected an integer",
            "line 4: missing value for field 'f' at column 13",
        ]
    );
    assert_eq!(out.tables[0].sources, [3]);

    // Quotes only matter at the start of a field value: in the measurement, tags and field keys
    // and inside unquoted values they are ordinary characters, and a newline ends the line
    // (InfluxDB's TestParsePointsUnbalancedQuotedTags).
    let out = parse(
        "baz,mytag=\"a x=1 1441103862125\nbaz,mytag=a z=1 1441103862126\n\
         m\"q f=1\nm k\"=1\nm f=1,g=\"s\" 7\nm f=1\"\nm f=2",
    );
    assert_eq!(
        errors(&out),
        ["line 6: invalid number '1\"' for field 'f' at column 5"]
    );
    let baz = rows(&out.tables[0]);
    assert_eq!(
        (&baz[0]["mytag"], &baz[1]["mytag"]),
        (&tag("\"a"), &tag("a"))
    );
    assert_eq!(out.tables[1].table, "m\"q");
    assert_eq!(out.tables[2].sources, [4, 5, 7]);
    assert_eq!(rows(&out.tables[2])[0]["k\""], Val::F(1.0));

    // An escaped quote does not close the string; a quote after `\\` does.
    let out = parse("m s=\"a\\\"\nb\" 1\nm s=\"c\\\\\" 2\nm s=\"d\" 3");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let r = rows(&out.tables[0]);
    assert_eq!(r[0]["s"], Val::S("a\"\nb".into()));
    assert_eq!(r[1]["s"], Val::S("c\\".into()));
    assert_eq!(out.tables[0].sources, [1, 3, 4]);
}

#[test]
fn duplicate_tag_keys_are_rejected_and_the_last_field_wins() {
    // InfluxDB's TestParsePointWithDuplicateTags: "duplicate tags".
    let body = "cpu,host=serverA,host=serverB value=1i 1000000000\n\
                cpu,b=2,b=1,c=3 value=1i 1000000000\n\
                cpu,b=2,c=3,b=1 value=1i 1000000000\n\
                cpu,host=a value=2i 5\n\
                cpu,host=b,host=a value=3i 6\n\
                cpu,x\\ y=1,x\\ y=2 value=4i 7\n";
    let out = parse(body);
    assert_eq!(
        errors(&out),
        [
            "line 1: duplicate tag key 'host': a tag key may appear only once in a line",
            "line 2: duplicate tag key 'b': a tag key may appear only once in a line",
            "line 3: duplicate tag key 'b': a tag key may appear only once in a line",
            "line 5: duplicate tag key 'host': a tag key may appear only once in a line",
            "line 6: duplicate tag key 'x y': a tag key may appear only once in a line",
        ]
    );
    // The other lines are kept, and the rejected ones leave no columns behind.
    let w = &out.tables[0];
    assert_eq!(w.sources, [4]);
    assert_eq!(column_names(w), ["time", "measure_name", "host", "value"]);

    // A field key repeated in one line: the last occurrence wins.
    let out = parse("m,t=1 f=1i,g=true,f=3i\nm,t=4 f=5i,f=6i,f=7i");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let w = &out.tables[0];
    assert_eq!(column_names(w), ["time", "measure_name", "t", "f", "g"]);
    let r = rows(w);
    assert_eq!(
        (&r[0]["t"], &r[0]["f"], &r[0]["g"]),
        (&tag("1"), &Val::I(3), &Val::B(true))
    );
    assert_eq!((&r[1]["t"], &r[1]["f"]), (&tag("4"), &Val::I(7)));
    // The winning value decides the type of a new column; only it is type checked.
    let out = parse("m f=1i,f=2.5\nm f=\"x\",f=3");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let r = rows(&out.tables[0]);
    assert_eq!((&r[0]["f"], &r[1]["f"]), (&Val::F(2.5), &Val::F(3.0)));
}

#[test]
fn the_default_time_is_truncated_to_the_precision() {
    // InfluxDB truncates the server's time to the write's precision, so two writes at
    // `precision=s` within one second write one point.
    let now = 1_704_067_205_123_456_789_i64;
    let cases = [
        (Precision::Nanosecond, now),
        (Precision::Microsecond, 1_704_067_205_123_456_000),
        (Precision::Millisecond, 1_704_067_205_123_000_000),
        (Precision::Second, 1_704_067_205_000_000_000),
        (Precision::Minute, 1_704_067_200_000_000_000),
        (Precision::Hour, 1_704_067_200_000_000_000),
        (Precision::Auto, now),
    ];
    let time_of = |precision, default_time| {
        let options = LineProtocolOptions {
            precision,
            default_time,
        };
        let out = parse_line_protocol(b"m f=1\nm f=2 7", &options, &NoExistingTables);
        let r = rows(&out.tables[0]);
        // Timestamps written in the line are not affected.
        let unit = if precision == Precision::Auto {
            Precision::Second.nanos_per_unit()
        } else {
            precision.nanos_per_unit()
        };
        assert_eq!(r[1]["time"], Val::Time(7 * unit), "{precision:?}");
        r[0]["time"].clone()
    };
    for (precision, want) in cases {
        assert_eq!(time_of(precision, now), Val::Time(want), "{precision:?}");
    }
    let second = 1_704_067_205_000_000_000;
    assert_eq!(
        time_of(Precision::Second, second + 999_999_999),
        time_of(Precision::Second, second)
    );
    // Before 1970 the time is rounded down too.
    assert_eq!(
        time_of(Precision::Second, -1_500_000_000),
        Val::Time(-2_000_000_000)
    );
}

#[test]
fn backslashes_follow_influxdb_1x() {
    // InfluxDB's TestParsePointUnescape and TestPoint_Tags: a delimiter directly after a
    // backslash is escaped and only that backslash is removed; other backslashes are kept.
    let cases: &[(&str, &str, &str)] = &[
        // (line, value of tag `t`, a field key)
        (r"m,t=two\\ words f=1", r"two\ words", "f"),
        (r"m,t=\\ east f=1", r"\ east", "f"),
        (r"m,t=eas\\ t f=1", r"eas\ t", "f"),
        (r"m,t=east\\  f=1", r"east\ ", "f"),
        (r"m,t=eas\t f=1", r"eas\t", "f"),
        (r"m,t=\\,\,\=east f=1", r"\,,=east", "f"),
        (r"m,t=a\\\\\ b f=1", r"a\\\\ b", "f"),
        (r#"m,t=1\"\",u=k f=1"#, r#"1\"\""#, "f"),
        (r"m,t=x \a=1i", "x", r"\a"),
        (r"m,t=x a\\=b=1i", "x", r"a\=b"),
        (r"m,t=x a\\,b=1i", "x", r"a\,b"),
        (r"m,t=x a\\ b=1i", "x", r"a\ b"),
    ];
    for &(line, value, field) in cases {
        let out = parse(line);
        assert!(out.errors.is_empty(), "{line}: {:?}", out.errors);
        let w = &out.tables[0];
        let r = &rows(w)[0];
        assert_eq!(r["t"], tag(value), "{line}");
        assert!(r.contains_key(field), "{line}: {:?}", column_names(w));
    }
    // Tag keys: `reg\\=ion` is the key `reg\=ion`.
    let out = parse(r"cpu,reg\\=ion=east value=1.0");
    assert_eq!(column_names(&out.tables[0])[2], r"reg\=ion");
    // Measurements escape only `,` and space: `cpu\=load` keeps its backslash (and is then
    // refused as a table name, which may not hold one).
    let out = parse(r"cpu\=load,region=east value=1.0");
    assert_eq!(
        errors(&out),
        [r"line 1: table name 'cpu\\=load' contains the character '\\', which is not allowed"]
    );
    // A name cannot end with a backslash before its delimiter: the delimiter is escaped.
    let out = parse(r"m,t=a\ f=1");
    assert_eq!(
        errors(&out),
        [r"line 1: unescaped '=' in the value of tag 't' at column 9 (write it as '\=')"]
    );
}

#[test]
fn control_characters_are_refused_in_names_and_tag_values_alike() {
    let cases: &[(&str, &str)] = &[
        (
            "m\u{1}x f=1",
            "control character U+0001 in the measurement name at column 2",
        ),
        (
            "m,k\u{0}=v f=1",
            "control character U+0000 in a tag key at column 4",
        ),
        (
            "m,k=v\u{7f} f=1",
            "control character U+007F in the value of tag 'k' at column 6",
        ),
        (
            "m,k=a\\\tb f=1",
            "control character U+0009 in the value of tag 'k' at column 7",
        ),
        (
            "m,k=é\u{85} f=1",
            "control character U+0085 in the value of tag 'k' at column 7",
        ),
        (
            "m f\u{1b}=1",
            "control character U+001B in a field key at column 4",
        ),
        (
            "m,k=v a=1,\u{8}b=2",
            "control character U+0008 in a field key at column 11",
        ),
    ];
    for &(line, want) in cases {
        let out = parse(&format!("ok f=1\n{line}\nok f=2"));
        assert_eq!(errors(&out), [format!("line 2: {want}")], "{line:?}");
        assert_eq!(out.lines_accepted, 2);
    }
    // String field values may hold any character; tabs between the parts are separators; and
    // non-ASCII text that is not a control character is fine everywhere.
    let out = parse("m,k=v\ts=\"a\tb\u{1}\u{85}\"\t5\nmé,kä=ü\u{a0} f\u{2028}=1");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        rows(&out.tables[0])[0]["s"],
        Val::S("a\tb\u{1}\u{85}".into())
    );
    assert_eq!(rows(&out.tables[1])[0]["kä"], tag("ü\u{a0}"));
}

#[test]
fn reserved_names_and_tag_field_clashes_are_rejected() {
    let body = "m,time=1 f=1\n\
                m,measure_name=x f=1\n\
                m time=1\n\
                m f=1,measure_name=2\n\
                m,k=v k=1\n\
                m,k=v f=1\n\
                m,k=v f=1,k=2\n\
                m,time=1,z=2 time=3\n";
    let out = parse(body);
    assert_eq!(
        errors(&out),
        [
            "line 1: tag key 'time' is reserved: 'time' and 'measure_name' cannot be used as tag or field keys",
            "line 2: tag key 'measure_name' is reserved: 'time' and 'measure_name' cannot be used as tag or field keys",
            "line 3: field key 'time' is reserved: 'time' and 'measure_name' cannot be used as tag or field keys",
            "line 4: field key 'measure_name' is reserved: 'time' and 'measure_name' cannot be used as tag or field keys",
            "line 5: key 'k' is used as both a tag and a field in the same line",
            "line 7: key 'k' is used as both a tag and a field in the same line",
            "line 8: tag key 'time' is reserved: 'time' and 'measure_name' cannot be used as tag or field keys",
        ]
    );
    assert_eq!(out.tables[0].sources, [6]);
}

#[test]
fn type_conflicts_within_a_body() {
    let body = "cpu usage_user=1.5,n=1i\n\
                cpu usage_user=2i\n\
                cpu n=2.0\n\
                cpu n=3u\n\
                cpu s=\"a\"\n\
                cpu s=true\n\
                cpu,host=a f=1\n\
                cpu host=1\n\
                cpu,usage_user=x f=1\n\
                cpu usage_user=3.5,n=4i,s=\"b\"\n";
    let out = parse(body);
    assert_eq!(
        errors(&out),
        [
            "line 2: field 'usage_user' of table 'cpu' is integer but the column is float",
            "line 3: field 'n' of table 'cpu' is float but the column is integer",
            "line 4: field 'n' of table 'cpu' is unsigned but the column is integer",
            "line 6: field 's' of table 'cpu' is boolean but the column is string",
            "line 8: field 'host' of table 'cpu' is a tag column, not a field",
            "line 9: tag 'usage_user' of table 'cpu' is a float field column, not a tag",
        ]
    );
    assert_eq!(out.tables[0].sources, [1, 5, 7, 10]);
    // The same column name in another table is independent.
    let out = parse("a f=1\nb f=1i\nb,a=1 g=1\nc,g=1 f=1");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
}

#[test]
fn type_conflicts_with_existing_catalog_columns() {
    let rules = FakeRules::default()
        .with(
            "cpu",
            "usage_user",
            ExistingColumn::Measure(ColumnType::Double),
        )
        .with("cpu", "ts", ExistingColumn::Measure(ColumnType::Timestamp))
        .with("cpu", "host", ExistingColumn::Dimension);
    let body = "cpu usage_user=1i\n\
                cpu usage_user=1\n\
                cpu host=1\n\
                cpu,usage_user=a f=1\n\
                cpu,host=a g=1i\n\
                cpu ts=5i\n\
                mem usage_user=1i\n";
    let out = parse_line_protocol(body.as_bytes(), &OPTIONS, &rules);
    assert_eq!(
        errors(&out),
        [
            "line 1: field 'usage_user' of table 'cpu' is integer but the column is float",
            "line 3: field 'host' of table 'cpu' is a tag column, not a field",
            "line 4: tag 'usage_user' of table 'cpu' is a float field column, not a tag",
            "line 6: field 'ts' of table 'cpu' is integer but the column is timestamp",
        ]
    );
    assert_eq!(out.tables[0].sources, [2, 5]);
    assert_eq!(out.tables[1].table, "mem");
}

#[test]
fn catalog_type_applies_even_when_the_first_line_has_another_type() {
    // A column the catalog knows takes the catalog's type, not the first value's.
    let rules = FakeRules::default().with("m", "f", ExistingColumn::Measure(ColumnType::Bigint));
    let out = parse_line_protocol(b"m f=1\nm f=2i", &OPTIONS, &rules);
    assert_eq!(
        errors(&out),
        ["line 1: field 'f' of table 'm' is float but the column is integer"]
    );
    assert_eq!(rows(&out.tables[0])[0]["f"], Val::I(2));
}

#[test]
fn check_time_rejections_use_the_reason_text() {
    let rules = FakeRules {
        reject_from: Some(100),
        ..FakeRules::default()
    };
    let options = LineProtocolOptions {
        precision: Precision::Microsecond,
        // Truncated to the precision: 0.
        default_time: 99,
    };
    let out = parse_line_protocol(b"a f=1 0\nb,new=x g=1 1\nc f=1\nbad\n", &options, &rules);
    assert_eq!(
        errors(&out),
        [
            "line 2: The record timestamp 1000 of table 'b' is outside the time range.",
            "line 4: missing fields at column 4: expected at least one field=value after the \
             measurement and tags",
        ]
    );
    // Called once per otherwise valid line, with the table name and the time in nanoseconds.
    assert_eq!(
        *rules.checked.borrow(),
        [
            ("a".to_owned(), 0),
            ("b".to_owned(), 1000),
            ("c".to_owned(), 0)
        ]
    );
    // A table whose only line was rejected is not returned.
    let names: Vec<_> = out.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
}

#[test]
fn a_rejected_line_leaves_no_partial_state() {
    let rules = FakeRules {
        reject_from: Some(1000),
        ..FakeRules::default()
    };
    // Line 2 introduces tag `t2` and field `g` before its conflicting `f`; line 3 introduces
    // `h` and is rejected by check_time; line 4 introduces `k` and has a bad timestamp.
    let body = "m,t=a f=1 1\n\
                m,t2=b g=1,f=2i 2\n\
                m,t3=c h=1 5000\n\
                m k=1 x\n\
                m,t=d f=3 3\n";
    let out = parse_line_protocol(body.as_bytes(), &OPTIONS, &rules);
    assert_eq!(out.errors.len(), 3, "{:?}", out.errors);
    let w = &out.tables[0];
    assert_eq!(column_names(w), ["time", "measure_name", "t", "f"]);
    assert_eq!(w.sources, [1, 5]);
    let r = rows(w);
    assert_eq!((&r[1]["t"], &r[1]["f"]), (&tag("d"), &Val::F(3.0)));
    // Tag dictionaries hold no values from rejected lines.
    let t = w.batch.column(2).as_dictionary::<Int32Type>();
    let values: Vec<_> = t.values().as_string::<i32>().iter().collect();
    assert_eq!(values, [Some("a"), Some("d")]);
}

#[test]
fn invalid_table_and_column_names_are_rejected() {
    let long = "k".repeat(257);
    let body = format!("a/b f=1\n_internal f=1\nm {long}=1\nm,{long}=v f=1\nok f=1\n");
    let out = parse(&body);
    assert_eq!(
        errors(&out),
        [
            "line 1: table name 'a/b' contains the character '/', which is not allowed".to_owned(),
            "line 2: table name '_internal' is reserved (names may not be '.', '..' or start with '_')"
                .to_owned(),
            format!("line 3: column name '{}...' is 257 bytes long; the limit is 256", &long[..32]),
            format!("line 4: column name '{}...' is 257 bytes long; the limit is 256", &long[..32]),
        ]
    );
    assert_eq!(out.lines_accepted, 1);
}

#[test]
fn the_per_table_byte_limit_rejects_lines_past_it() {
    let mut decoder = Decoder::new(&OPTIONS, &NoExistingTables, 12);
    decoder.run(b"m f=1 1\nm f=2 2\nn f=3 3\n");
    let out = decoder.finish();
    assert_eq!(
        errors(&out),
        [
            "line 2: table 'm' would hold more than 12 bytes of line protocol from one request \
          (7 so far); split the write into smaller requests"
        ]
    );
    assert_eq!(out.lines_accepted, 2);
}

#[test]
fn column_hints_survive_changing_key_order() {
    // The column of each key position is remembered from the previous line; keys that move
    // must still land in their own columns.
    let body = "m,a=1,b=2 x=1i,y=2i\n\
                m,b=3,a=4 y=3i,x=4i\n\
                m,c=5,a=6 z=5i,x=6i\n\
                m,a=7,b=8 x=7i,y=8i\n";
    let out = parse(body);
    let r = rows(&out.tables[0]);
    let get = |i: usize, k: &str| r[i].get(k).cloned();
    assert_eq!((get(1, "a"), get(1, "b")), (Some(tag("4")), Some(tag("3"))));
    assert_eq!(
        (get(1, "x"), get(1, "y")),
        (Some(Val::I(4)), Some(Val::I(3)))
    );
    assert_eq!(
        (get(2, "a"), get(2, "c"), get(2, "b")),
        (Some(tag("6")), Some(tag("5")), None)
    );
    assert_eq!(
        (get(2, "x"), get(2, "z"), get(2, "y")),
        (Some(Val::I(6)), Some(Val::I(5)), None)
    );
    assert_eq!((get(3, "a"), get(3, "b")), (Some(tag("7")), Some(tag("8"))));
}

#[test]
fn tag_values_are_dictionary_encoded_per_column() {
    let out = parse("m,h=x,g=x f=1\nm,h=y,g=x f=1\nm,h=x f=1\n");
    let w = &out.tables[0];
    let h = w.batch.column(2).as_dictionary::<Int32Type>();
    assert_eq!(h.values().len(), 2);
    assert_eq!(h.keys().values().to_vec(), [0, 1, 0]);
    let g = w.batch.column(3).as_dictionary::<Int32Type>();
    let g_values = g.downcast_dict::<StringArray>().unwrap();
    assert_eq!(
        g_values.into_iter().collect::<Vec<_>>(),
        [Some("x"), Some("x"), None]
    );
    let m = w.batch.column(1).as_dictionary::<Int32Type>();
    assert_eq!(m.values().len(), 1);
    assert_eq!(m.null_count(), 0);
}

#[test]
fn line_error_display() {
    let e = LineError {
        line: 3,
        message: "expected '=' after tag key 'host' at column 14".into(),
    };
    assert_eq!(
        e.to_string(),
        "line 3: expected '=' after tag key 'host' at column 14"
    );
}

#[test]
fn lines_with_many_keys_and_duplicates() {
    // More new keys than the linear search handles, with duplicates among them.
    let tags: Vec<String> = (0..40).map(|i| format!(",t{i}={i}")).collect();
    let fields: Vec<String> = (0..50).map(|i| format!("f{}={i}i", i % 45)).collect();
    let body = format!(
        "m{} {}\nm,t3=x f44=1i,t5=1i",
        tags.concat(),
        fields.join(",")
    );
    let out = parse(&body);
    assert_eq!(
        errors(&out),
        ["line 2: field 't5' of table 'm' is a tag column, not a field"]
    );
    let w = &out.tables[0];
    assert_eq!(w.batch.num_columns(), 2 + 40 + 45);
    let r = &rows(w)[0];
    assert_eq!(r["t0"], tag("0"));
    assert_eq!(r["t39"], tag("39"));
    assert_eq!(r["f0"], Val::I(45));
    assert_eq!(r["f44"], Val::I(44));
    let out = parse(&format!("m{} f=1,t20=2", tags.concat()));
    assert_eq!(
        errors(&out),
        ["line 1: key 't20' is used as both a tag and a field in the same line"]
    );
    // A repeated tag among more new keys than the linear search handles.
    let out = parse(&format!("m{},t33=y f=1", tags.concat()));
    assert_eq!(
        errors(&out),
        ["line 1: duplicate tag key 't33': a tag key may appear only once in a line"]
    );
}
