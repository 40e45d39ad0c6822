//! Property-style tests: random valid lines (with escapes, unicode, every value type, random
//! whitespace, CRLF, comments) are formatted, parsed and compared with what was generated; and
//! random corruptions of such bodies must never panic and must account for every line.
//!
//! The generator is a small deterministic PRNG (splitmix64), so failures are reproducible from
//! the printed seed.

use std::collections::HashMap;

use hourglass_core::time::Precision;

use super::tests::{rows, Val};
use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters names are drawn from: plain, delimiters that need escaping, unicode.
const NAME_CHARS: &[char] = &[
    'a', 'b', 'z', 'Q', '0', '9', '_', '-', '.', ':', '/', ' ', ',', '=', '"', '\'', '\\', 'é',
    '日', '🙂', '#',
];
/// A backslash in a name is written as is (a delimiter after it is escaped with another one), so
/// it may precede anything but the end of the name.
const SAFE_AFTER_BACKSLASH: &[char] = &['a', 'x', '9', 'é', '"', ',', ' ', '='];
const STRING_CHARS: &[char] = &[
    'a', 'b', ' ', ',', '=', '"', '\\', '\t', 'n', '日', '#', '\'', '{', '🙂', '\n', '\r',
];

fn random_name(rng: &mut Rng, allow_backslash: bool) -> String {
    let len = 1 + rng.below(8);
    let mut s = String::new();
    while s.chars().count() < len {
        let c = *rng.pick(NAME_CHARS);
        if c == '\\' {
            if !allow_backslash {
                continue;
            }
            // A literal backslash is ambiguous only at the end of a name.
            s.push('\\');
            s.push(*rng.pick(SAFE_AFTER_BACKSLASH));
        } else {
            s.push(c);
        }
    }
    s
}

fn escape(s: &str, special: &[char]) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn measurement_name(rng: &mut Rng) -> String {
    loop {
        let name = random_name(rng, false).replace('/', "");
        // Table names may not start with '_'; a leading '#' would make the line a comment.
        if !name.is_empty() && !name.starts_with(['_', '#']) && name != "." && name != ".." {
            return name;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    F,
    I,
    U,
    S,
    B,
}

struct TableSpec {
    name: String,
    tags: Vec<String>,
    fields: Vec<(String, Kind)>,
}

fn table_spec(rng: &mut Rng) -> TableSpec {
    let mut used: Vec<String> = vec!["time".into(), "measure_name".into()];
    let mut fresh = |rng: &mut Rng| loop {
        let n = random_name(rng, true);
        if !used.contains(&n) {
            used.push(n.clone());
            return n;
        }
    };
    let tags = (0..rng.below(5)).map(|_| fresh(rng)).collect();
    let kinds = [Kind::F, Kind::I, Kind::U, Kind::S, Kind::B];
    let fields = (0..1 + rng.below(6))
        .map(|_| (fresh(rng), *rng.pick(&kinds)))
        .collect();
    TableSpec {
        name: measurement_name(rng),
        tags,
        fields,
    }
}

fn random_value(rng: &mut Rng, kind: Kind) -> (String, Val) {
    match kind {
        Kind::F => {
            let v = match rng.below(5) {
                0 => (rng.below(2000) as f64 - 1000.0) / 8.0,
                1 => {
                    f64::from_bits(rng.next() & !(0x7FF << 52) | (rng.below(2046) as u64 + 1) << 52)
                }
                2 => -0.0,
                3 => rng.below(100_000) as f64,
                _ => f64::MAX / (1 + rng.below(10)) as f64,
            };
            let text = match rng.below(3) {
                0 => format!("{v:e}"),
                1 => format!("{v:E}"),
                _ => format!("{v}"),
            };
            (text, Val::F(v))
        }
        Kind::I => {
            let v = match rng.below(4) {
                0 => i64::MIN,
                1 => i64::MAX,
                2 => rng.below(2000) as i64 - 1000,
                _ => rng.next() as i64,
            };
            (format!("{v}i"), Val::I(v))
        }
        Kind::U => {
            let v = match rng.below(3) {
                0 => u64::MAX,
                1 => rng.below(10) as u64,
                _ => rng.next(),
            };
            (format!("{v}u"), Val::U(v))
        }
        Kind::B => {
            let (text, v) = *rng.pick(&[
                ("t", true),
                ("T", true),
                ("true", true),
                ("True", true),
                ("TRUE", true),
                ("f", false),
                ("F", false),
                ("false", false),
                ("False", false),
                ("FALSE", false),
            ]);
            (text.to_owned(), Val::B(v))
        }
        Kind::S => {
            let s: String = (0..rng.below(12))
                .map(|_| *rng.pick(STRING_CHARS))
                .collect();
            let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
            (format!("\"{escaped}\""), Val::S(s))
        }
    }
}

fn whitespace(rng: &mut Rng) -> &'static str {
    const SPACES: [&str; 6] = [" ", " ", " ", "  ", "\t", " \t "];
    SPACES[rng.below(SPACES.len())]
}

/// Expected rows of one table, and its columns in first-appearance order.
#[derive(Default)]
struct Expected {
    rows: Vec<HashMap<String, Val>>,
    tags: Vec<String>,
    fields: Vec<String>,
    sources: Vec<u32>,
}

fn shuffled<T: Clone>(rng: &mut Rng, items: &[T]) -> Vec<T> {
    let mut v = items.to_vec();
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

fn generate_body(rng: &mut Rng) -> (String, Vec<(String, Expected)>) {
    let specs: Vec<TableSpec> = (0..1 + rng.below(3)).map(|_| table_spec(rng)).collect();
    let mut expected: Vec<(String, Expected)> = Vec::new();
    let mut body = String::new();
    let mut line_no = 0u32;
    for _ in 0..1 + rng.below(25) {
        line_no += 1;
        if rng.chance(8) {
            const SKIPPED: [&str; 4] = ["", "# comment, with = and \"", "  \t# indented", " \t "];
            body.push_str(SKIPPED[rng.below(SKIPPED.len())]);
            body.push_str(if rng.chance(50) { "\n" } else { "\r\n" });
            continue;
        }
        let spec = rng.pick(&specs);
        let slot = match expected.iter().position(|(n, _)| *n == spec.name) {
            Some(i) => i,
            None => {
                expected.push((spec.name.clone(), Expected::default()));
                expected.len() - 1
            }
        };
        let exp = &mut expected[slot].1;
        let mut row = HashMap::new();
        row.insert("measure_name".to_owned(), Val::Tag(spec.name.clone()));
        let mut line = String::new();
        if rng.chance(10) {
            line.push_str(whitespace(rng));
        }
        line.push_str(&escape(&spec.name, &[',', ' ']));
        for t in shuffled(rng, &spec.tags) {
            if rng.chance(30) {
                continue;
            }
            let value = random_name(rng, true);
            line.push_str(&format!(
                ",{}={}",
                escape(&t, &[',', '=', ' ']),
                escape(&value, &[',', '=', ' '])
            ));
            if !exp.tags.contains(&t) {
                exp.tags.push(t.clone());
            }
            row.insert(t, Val::Tag(value));
        }
        line.push_str(whitespace(rng));
        let mut fields = shuffled(rng, &spec.fields);
        fields.truncate(1 + rng.below(fields.len()));
        for (i, (k, kind)) in fields.iter().enumerate() {
            let (text, val) = random_value(rng, *kind);
            if i > 0 {
                line.push(',');
            }
            line.push_str(&format!("{}={text}", escape(k, &[',', '=', ' '])));
            if !exp.fields.contains(k) {
                exp.fields.push(k.clone());
            }
            row.insert(k.clone(), val);
        }
        let time = if rng.chance(70) {
            let t = rng.next() as i64 >> rng.below(64);
            line.push_str(whitespace(rng));
            line.push_str(&t.to_string());
            t
        } else {
            -1
        };
        row.insert("time".to_owned(), Val::Time(time));
        if rng.chance(20) {
            line.push_str(whitespace(rng));
        }
        body.push_str(&line);
        body.push_str(if rng.chance(50) { "\n" } else { "\r\n" });
        exp.rows.push(row);
        exp.sources.push(line_no);
        // Newlines in string values: the next line's number counts them.
        line_no += line.matches('\n').count() as u32;
    }
    if rng.chance(50) {
        // No newline after the last line.
        while body.ends_with(['\n', '\r']) {
            body.pop();
        }
    }
    (body, expected)
}

#[test]
fn random_valid_lines_round_trip() {
    let options = LineProtocolOptions {
        precision: Precision::Nanosecond,
        default_time: -1,
    };
    for seed in 0..400 {
        let mut rng = Rng(seed);
        let (body, expected) = generate_body(&mut rng);
        let out = parse_line_protocol(body.as_bytes(), &options, &NoExistingTables);
        assert!(
            out.errors.is_empty(),
            "seed {seed}: {:?}\n{body}",
            out.errors
        );
        let names: Vec<_> = out.tables.iter().map(|t| t.table.clone()).collect();
        let want: Vec<_> = expected.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, want, "seed {seed}\n{body}");
        for (w, (_, exp)) in out.tables.iter().zip(&expected) {
            let mut columns = vec!["time".to_owned(), "measure_name".to_owned()];
            columns.extend(exp.tags.iter().cloned());
            columns.extend(exp.fields.iter().cloned());
            let got: Vec<_> = w
                .batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            assert_eq!(got, columns, "seed {seed}\n{body}");
            assert_eq!(w.sources, exp.sources, "seed {seed}\n{body}");
            assert_eq!(rows(w), exp.rows, "seed {seed}\n{body}");
        }
        assert_eq!(
            out.lines_accepted,
            expected.iter().map(|(_, e)| e.rows.len()).sum::<usize>()
        );
    }
}

/// Lines that are neither blank nor comments (a line ends at a `\n` outside string values).
fn data_lines(body: &[u8]) -> usize {
    Lines::new(body)
        .filter(|(_, _, l)| {
            l.iter()
                .find(|&&c| !matches!(c, b' ' | b'\t'))
                .is_some_and(|&c| c != b'#')
        })
        .count()
}

#[test]
fn corrupted_bodies_never_panic_and_account_for_every_line() {
    let options = LineProtocolOptions::default();
    let noise = b" ,=\\\"\t\n\r#-.0123456789eEiutfTF\xff\xc3\x80";
    for seed in 0..1500 {
        let mut rng = Rng(seed ^ 0xABCD);
        let (body, _) = generate_body(&mut rng);
        let mut bytes = body.into_bytes();
        for _ in 0..1 + rng.below(6) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = *rng.pick(noise),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, *rng.pick(noise)),
            }
        }
        let out = parse_line_protocol(&bytes, &options, &NoExistingTables);
        let lines = data_lines(&bytes);
        assert_eq!(
            out.lines_accepted + out.errors.len(),
            lines,
            "seed {seed}: {:?}\n{}",
            out.errors,
            String::from_utf8_lossy(&bytes)
        );
        let rows: usize = out.tables.iter().map(|t| t.batch.num_rows()).sum();
        assert_eq!(rows, out.lines_accepted);
        assert!(out.errors.windows(2).all(|w| w[0].line < w[1].line));
        for t in &out.tables {
            assert_eq!(t.sources.len(), t.batch.num_rows());
        }
    }
}

/// Where a line's series part ends (first space or tab), or its length.
fn series_part_end(line: &str) -> usize {
    line.find([' ', '\t']).unwrap_or(line.len())
}

#[test]
fn lines_repeating_a_known_series_decode_as_if_scanned_in_full() {
    // Bodies whose lines mix the series of one generated line with the fields of another (so
    // series repeat with other fields, types and clashes), then corrupted; the shortcut for known
    // series must change nothing: not the batches, not the errors.
    let options = LineProtocolOptions {
        precision: Precision::Nanosecond,
        default_time: -1,
    };
    let mut hits = 0;
    for seed in 0..1500 {
        let mut rng = Rng(seed ^ 0x5E71E5);
        let (body, _) = generate_body(&mut rng);
        let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        let mut mixed = String::new();
        for _ in 0..lines.len() * 3 {
            let a = rng.pick(&lines).trim_end_matches('\r');
            let b = rng.pick(&lines).trim_end_matches('\r');
            let line = if rng.chance(50) {
                a.to_owned()
            } else {
                format!("{}{}", &a[..series_part_end(a)], &b[series_part_end(b)..])
            };
            mixed.push_str(&line);
            mixed.push('\n');
        }
        let mut bytes = mixed.into_bytes();
        if rng.chance(50) {
            let noise = b" ,=\\\"\t#-.09eiutf\xff";
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = *rng.pick(noise);
            }
        }
        let fast = parse_line_protocol(&bytes, &options, &NoExistingTables);
        let full = parse_line_protocol_without_known_series(&bytes, &options, &NoExistingTables);
        let shown = String::from_utf8_lossy(&bytes);
        assert_eq!(fast.errors, full.errors, "seed {seed}\n{shown}");
        assert_eq!(fast.lines_accepted, full.lines_accepted, "seed {seed}");
        assert_eq!(fast.tables.len(), full.tables.len(), "seed {seed}\n{shown}");
        for (f, g) in fast.tables.iter().zip(&full.tables) {
            assert_eq!(f.table, g.table, "seed {seed}");
            assert_eq!(f.sources, g.sources, "seed {seed}\n{shown}");
            assert_eq!(f.batch, g.batch, "seed {seed}\n{shown}");
        }
        hits += fast.lines_accepted;
    }
    assert!(
        hits > 10_000,
        "only {hits} lines accepted: the bodies test too little"
    );
}
