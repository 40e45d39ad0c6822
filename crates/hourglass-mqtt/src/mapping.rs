//! JSON messages to rows: a [`CompiledMapping`] turns one message (and its topic) into line
//! protocol lines appended to a buffer, which the engine then writes like any line protocol body
//! (same typing, table creation and validation). Errors name the reading and the path.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::config::{CompiledMapping, NumberType, TimeUnit};

/// Appends the rows of one message to `out` (nothing on error) and returns how many.
pub fn map_message(
    mapping: &CompiledMapping,
    topic: &str,
    payload: &[u8],
    arrival_ns: i64,
    out: &mut String,
) -> Result<usize, String> {
    let root: Value =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let vars = match &mapping.topic {
        Some(t) => t.capture(topic)?,
        None => Vec::new(),
    };
    let table = mapping.table.render(&vars);
    let mut prefix = String::with_capacity(64);
    escape_into(&mut prefix, &table, Escape::Measurement)?;
    for (name, value) in &vars {
        if !mapping.table.uses(name) {
            prefix.push(',');
            escape_into(&mut prefix, name, Escape::Key)?;
            prefix.push('=');
            escape_into(&mut prefix, value, Escape::Key)?;
        }
    }
    let start = out.len();
    let result = match &mapping.records {
        None => write_row(mapping, &prefix, &root, &root, arrival_ns, out).map(|()| 1),
        Some(path) => {
            let records = path
                .get(&root)
                .ok_or_else(|| format!("records_path '{}' not found", path.text))?
                .as_array()
                .ok_or_else(|| format!("records_path '{}' is not an array", path.text))?;
            records
                .iter()
                .enumerate()
                .try_for_each(|(i, record)| {
                    if !record.is_object() {
                        return Err(format!("reading {i} of '{}' is not an object", path.text));
                    }
                    write_row(mapping, &prefix, record, &root, arrival_ns, out)
                        .map_err(|e| format!("reading {i} of '{}': {e}", path.text))
                })
                .map(|()| records.len())
        }
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// One line: the prefix (table and topic dimensions), payload dimensions, measures, time.
fn write_row(
    mapping: &CompiledMapping,
    prefix: &str,
    record: &Value,
    root: &Value,
    arrival_ns: i64,
    out: &mut String,
) -> Result<(), String> {
    out.push_str(prefix);
    for (name, path) in &mapping.dimensions {
        let Some(value) = path.lookup(record, root) else {
            continue; // an absent dimension is NULL
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(format!(
                    "dimension '{name}' at '{}' is an object or array",
                    path.text
                ))
            }
        };
        if text.is_empty() {
            continue;
        }
        out.push(',');
        escape_into(out, name, Escape::Key)?;
        out.push('=');
        escape_into(out, &text, Escape::Key)?;
    }
    out.push(' ');
    let fields_start = out.len();
    if mapping.measures.is_empty() {
        let skip: Vec<&str> = mapping
            .dimensions
            .iter()
            .map(|(_, p)| p)
            .chain(mapping.time.as_ref())
            .chain(mapping.records.as_ref())
            .filter(|p| !p.rooted || std::ptr::eq(record, root))
            .filter_map(|p| p.first_key())
            .collect();
        if let Value::Object(map) = record {
            auto_measures(mapping.numbers, map, "", &skip, out)?;
        }
    } else {
        for (name, path) in &mapping.measures {
            if let Some(value) = path.lookup(record, root) {
                if matches!(value, Value::Object(_) | Value::Array(_)) {
                    return Err(format!(
                        "measure '{name}' at '{}' is an object or array",
                        path.text
                    ));
                }
                write_field(mapping.numbers, name, value, out)?;
            }
        }
    }
    if out.len() == fields_start {
        return Err("no measure values (every measure absent or null)".into());
    }
    let time = match &mapping.time {
        None => arrival_ns,
        Some(path) => {
            let value = path
                .lookup(record, root)
                .ok_or_else(|| format!("time_path '{}' not found", path.text))?;
            time_ns(value, mapping.time_unit)
                .map_err(|e| format!("time at '{}': {e}", path.text))?
        }
    };
    let _ = writeln!(out, " {time}");
    Ok(())
}

/// Every number, boolean and string of `map` (nested objects flattened as `a_b`), skipping the
/// top-level keys in `skip` (the time, dimensions and records), arrays and nulls.
fn auto_measures(
    numbers: NumberType,
    map: &Map<String, Value>,
    prefix: &str,
    skip: &[&str],
    out: &mut String,
) -> Result<(), String> {
    for (key, value) in map {
        if prefix.is_empty() && skip.contains(&key.as_str()) {
            continue;
        }
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}_{key}")
        };
        match value {
            Value::Object(inner) => auto_measures(numbers, inner, &name, &[], out)?,
            Value::Array(_) | Value::Null => {}
            _ => write_field(numbers, &name, value, out)?,
        }
    }
    Ok(())
}

fn write_field(
    numbers: NumberType,
    name: &str,
    value: &Value,
    out: &mut String,
) -> Result<(), String> {
    if name.is_empty() {
        return Err("a measure has an empty name".into());
    }
    if !out.ends_with(' ') {
        out.push(',');
    }
    escape_into(out, name, Escape::Key)?;
    out.push('=');
    match value {
        Value::Number(n) => match (numbers, n.as_i64()) {
            (NumberType::Infer, Some(i)) if !n.is_f64() => {
                let _ = write!(out, "{i}i");
            }
            _ => {
                let f = n
                    .as_f64()
                    .ok_or_else(|| format!("measure '{name}': {n} is not a finite number"))?;
                let _ = write!(out, "{f:?}");
            }
        },
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => {
            out.push('"');
            escape_into(out, s, Escape::String)?;
            out.push('"');
        }
        _ => return Err(format!("measure '{name}' is not a scalar")),
    }
    Ok(())
}

/// A JSON time value in nanoseconds since the epoch.
fn time_ns(value: &Value, unit: TimeUnit) -> Result<i64, String> {
    if unit == TimeUnit::Rfc3339 {
        let s = value
            .as_str()
            .ok_or_else(|| format!("{value} is not an RFC 3339 string"))?;
        let t = chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("'{s}' is not an RFC 3339 time: {e}"))?;
        return t
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("'{s}' is out of range"));
    }
    let scale: i64 = match unit {
        TimeUnit::S => 1_000_000_000,
        TimeUnit::Ms => 1_000_000,
        TimeUnit::Us => 1_000,
        _ => 1,
    };
    let number = match value {
        Value::Number(n) => n.clone(),
        Value::String(s) => s
            .trim()
            .parse::<serde_json::Number>()
            .map_err(|_| format!("'{s}' is not a number"))?,
        other => return Err(format!("{other} is not a number")),
    };
    if let Some(i) = number.as_i64() {
        return i
            .checked_mul(scale)
            .ok_or_else(|| format!("{i} is out of range"));
    }
    let f = number
        .as_f64()
        .ok_or_else(|| format!("{number} is not a number"))?;
    let ns = (f * scale as f64).round();
    if !ns.is_finite() || ns.abs() >= 9.2e18 {
        return Err(format!("{number} is out of range"));
    }
    Ok(ns as i64)
}

/// Line protocol escaping positions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    Measurement,
    Key,
    String,
}

fn escape_into(out: &mut String, s: &str, escape: Escape) -> Result<(), String> {
    if escape != Escape::String && (s.contains('\n') || s.ends_with('\\')) {
        return Err(format!(
            "'{}' holds a newline or ends with a backslash, which a name or dimension value cannot",
            s.escape_debug()
        ));
    }
    for c in s.chars() {
        let escaped = match escape {
            Escape::Measurement => matches!(c, ',' | ' '),
            Escape::Key => matches!(c, ',' | '=' | ' '),
            Escape::String => matches!(c, '"' | '\\'),
        };
        if escaped {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(())
}
