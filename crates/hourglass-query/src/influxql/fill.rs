//! `GROUP BY time()` windows of one series and InfluxQL's `fill()`: every window from the
//! query's start (or the series' first window when the query has no lower time bound) to its
//! end, missing ones filled per column as InfluxDB's fill iterator does — `null` (but `0` for
//! `count()`), `none`, a number, `previous` or `linear` (integers interpolated in integer
//! arithmetic) — in the output's time order.

use std::collections::BTreeMap;

use super::ast::Fill;
use super::result::Value;

/// The aggregates of one window, with whether each column had points there.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub values: Vec<Value>,
    pub present: Vec<bool>,
}

/// Rows `[time, values…]` of every window from `start` (or the first window) to `end`, filled;
/// `None` when that would be more than `budget` rows.
#[allow(clippy::too_many_arguments)]
pub fn fill_windows(
    windows: BTreeMap<i64, Window>,
    start: Option<i64>,
    end: i64,
    interval: i64,
    fill: Fill,
    counts: &[bool],
    descending: bool,
    budget: usize,
) -> Option<Vec<Vec<Value>>> {
    let ncol = counts.len();
    let start = match start.or_else(|| windows.keys().next().copied()) {
        Some(s) => s,
        None => return Some(Vec::new()),
    };
    let mut rows: Vec<(i64, Vec<Option<Value>>)> = Vec::new();
    if end >= start {
        let n = ((end as i128 - start as i128) / interval as i128 + 1) as u128;
        if n > budget as u128 && fill != Fill::None {
            return None;
        }
    }
    let mut add = |t: i64, w: Option<&Window>| {
        let cells = (0..ncol)
            .map(|i| match w {
                Some(w) if w.present[i] => Some(w.values[i].clone()),
                _ => None,
            })
            .collect::<Vec<_>>();
        rows.push((t, cells));
    };
    if fill == Fill::None {
        if end < start {
            return Some(Vec::new());
        }
        // Only windows with points are kept: never walk the empty ones (a range of years in
        // seconds would be millions of rows).
        for (t, w) in windows.range(start..=end) {
            add(*t, Some(w));
        }
    } else {
        let mut t = start;
        while t <= end {
            add(t, windows.get(&t));
            match t.checked_add(interval) {
                Some(n) => t = n,
                None => break,
            }
        }
    }
    if rows.len() > budget {
        return None;
    }
    if descending {
        rows.reverse();
    }
    if fill == Fill::None {
        rows.retain(|(_, cells)| cells.iter().any(Option::is_some));
    }
    for (col, is_count) in counts.iter().enumerate() {
        fill_column(&mut rows, col, fill, *is_count);
    }
    Some(
        rows.into_iter()
            .map(|(t, cells)| {
                let mut row = Vec::with_capacity(ncol + 1);
                row.push(Value::Time(t));
                row.extend(cells.into_iter().map(|c| c.unwrap_or(Value::Null)));
                row
            })
            .collect(),
    )
}

fn fill_column(rows: &mut [(i64, Vec<Option<Value>>)], col: usize, fill: Fill, is_count: bool) {
    match fill {
        Fill::Null | Fill::None => {
            if is_count {
                for (_, cells) in rows.iter_mut() {
                    if cells[col].is_none() {
                        cells[col] = Some(Value::Int(0));
                    }
                }
            }
        }
        Fill::Integer(v) => {
            for (_, cells) in rows.iter_mut() {
                if cells[col].is_none() {
                    cells[col] = Some(Value::Int(v));
                }
            }
        }
        Fill::Number(v) => {
            for (_, cells) in rows.iter_mut() {
                if cells[col].is_none() {
                    cells[col] = Some(Value::Float(v));
                }
            }
        }
        Fill::Previous => {
            let mut prev: Option<Value> = None;
            for (_, cells) in rows.iter_mut() {
                match &cells[col] {
                    Some(v) => prev = Some(v.clone()),
                    None => cells[col] = prev.clone(),
                }
            }
        }
        Fill::Linear => {
            let known: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].1[col].as_ref().is_some_and(|v| !v.is_null()))
                .collect();
            for pair in known.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let (ta, tb) = (rows[a].0, rows[b].0);
                let (va, vb) = (rows[a].1[col].clone(), rows[b].1[col].clone());
                for row in rows.iter_mut().take(b).skip(a + 1) {
                    row.1[col] = interpolate(ta, va.as_ref(), tb, vb.as_ref(), row.0);
                }
            }
        }
    }
}

fn interpolate(ta: i64, va: Option<&Value>, tb: i64, vb: Option<&Value>, t: i64) -> Option<Value> {
    match (va?, vb?) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a as i128, *b as i128);
            let v = a + (b - a) * (t as i128 - ta as i128) / (tb as i128 - ta as i128);
            Some(Value::Int(v as i64))
        }
        (a, b) => {
            let (a, b) = (a.as_f64()?, b.as_f64()?);
            let v = a + (b - a) * ((t as f64 - ta as f64) / (tb as f64 - ta as f64));
            Some(Value::Float(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: f64) -> Window {
        Window {
            values: vec![Value::Float(v)],
            present: vec![true],
        }
    }

    fn run(fill: Fill, start: Option<i64>, end: i64) -> Vec<Value> {
        let mut windows = BTreeMap::new();
        windows.insert(10, w(1.0));
        windows.insert(40, w(4.0));
        fill_windows(windows, start, end, 10, fill, &[false], false, 100)
            .unwrap()
            .into_iter()
            .map(|r| r[1].clone())
            .collect()
    }

    #[test]
    fn every_fill() {
        use Value::*;
        assert_eq!(
            run(Fill::Null, Some(0), 50),
            vec![Null, Float(1.0), Null, Null, Float(4.0), Null]
        );
        assert_eq!(run(Fill::None, Some(0), 50), vec![Float(1.0), Float(4.0)]);
        assert_eq!(
            run(Fill::Integer(7), None, 40),
            vec![Float(1.0), Int(7), Int(7), Float(4.0)]
        );
        assert_eq!(
            run(Fill::Previous, Some(0), 50),
            vec![
                Null,
                Float(1.0),
                Float(1.0),
                Float(1.0),
                Float(4.0),
                Float(4.0)
            ]
        );
        assert_eq!(
            run(Fill::Linear, Some(0), 50),
            vec![Null, Float(1.0), Float(2.0), Float(3.0), Float(4.0), Null]
        );
        assert!(fill_windows(
            BTreeMap::new(),
            Some(0),
            10_000,
            1,
            Fill::Null,
            &[false],
            false,
            100
        )
        .is_none());
    }

    #[test]
    fn fill_none_never_walks_empty_windows() {
        let mut windows = BTreeMap::new();
        windows.insert(0, w(1.0));
        windows.insert(i64::MAX / 2, w(2.0));
        let rows = fill_windows(
            windows,
            Some(0),
            i64::MAX / 2,
            1,
            Fill::None,
            &[false],
            false,
            10,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(fill_windows(
            BTreeMap::new(),
            Some(5),
            1,
            1,
            Fill::None,
            &[false],
            false,
            10
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn count_fills_zero_and_integers_interpolate_as_integers() {
        let mut windows = BTreeMap::new();
        windows.insert(
            0,
            Window {
                values: vec![Value::Int(1)],
                present: vec![true],
            },
        );
        windows.insert(
            30,
            Window {
                values: vec![Value::Int(2)],
                present: vec![true],
            },
        );
        let rows = fill_windows(
            windows.clone(),
            None,
            30,
            10,
            Fill::Null,
            &[true],
            false,
            100,
        )
        .unwrap();
        assert_eq!(rows[1][1], Value::Int(0));
        let rows = fill_windows(windows, None, 30, 10, Fill::Linear, &[false], true, 100).unwrap();
        assert_eq!(
            rows.iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
            vec![Value::Int(2), Value::Int(2), Value::Int(2), Value::Int(1)]
        );
    }
}
