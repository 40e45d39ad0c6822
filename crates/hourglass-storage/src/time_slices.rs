//! Cutting a day too large to rewrite at once into time slices of bounded size.
//!
//! A dirty day (files that may hold several writes of one record) is cleaned by rewriting its rows
//! deduplicated. When the day holds more rows than one compaction may merge, it is rewritten slice
//! by slice: duplicates share series *and* time, so the rows of `[lo, hi)` from every file of the
//! day can be resolved without looking at any other time. The result is files with disjoint time
//! ranges, and the day is clean.
//!
//! Slice sizes are estimated from the manifest alone (each file's rows spread evenly over its
//! `min_time..=max_time`), so planning reads no data.

/// A file's time span and row count, as the manifest states them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpan {
    pub min_time: i64,
    /// Inclusive.
    pub max_time: i64,
    pub rows: u64,
}

/// Half-open time ranges `[lo, hi)` covering every file's `min_time..=max_time`, in order, each
/// estimated to hold at most `target_rows` rows (a single instant holding more stays one slice).
pub fn plan(files: &[FileSpan], target_rows: u64) -> Vec<(i64, i64)> {
    let target = target_rows.max(1) as f64;
    // Breakpoints where the estimated row density changes.
    let mut points: Vec<i64> = files
        .iter()
        .flat_map(|f| [f.min_time, f.max_time.saturating_add(1)])
        .collect();
    points.sort_unstable();
    points.dedup();
    let Some((&first, &last)) = points.first().zip(points.last()) else {
        return Vec::new();
    };

    let mut slices = Vec::new();
    let mut slice_start = first;
    let mut acc = 0.0f64;
    for w in points.windows(2) {
        let (seg_lo, seg_hi) = (w[0], w[1]);
        let density: f64 = files
            .iter()
            .filter(|f| f.min_time <= seg_lo && f.max_time >= seg_hi - 1)
            .map(|f| f.rows as f64 / (f.max_time as f64 - f.min_time as f64 + 1.0))
            .sum();
        let mut lo = seg_lo;
        while density > 0.0 && acc + density * (seg_hi - lo) as f64 > target {
            // Cut where the slice reaches the target, at least one nanosecond past its start.
            let room = ((target - acc) / density).floor() as i64;
            let cut = (lo + room.max(0)).max(slice_start + 1).min(seg_hi);
            if cut >= seg_hi {
                break;
            }
            slices.push((slice_start, cut));
            slice_start = cut;
            acc = 0.0;
            lo = cut;
        }
        acc += density * (seg_hi - lo) as f64;
    }
    if slice_start < last {
        slices.push((slice_start, last));
    }
    slices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(min_time: i64, max_time: i64, rows: u64) -> FileSpan {
        FileSpan {
            min_time,
            max_time,
            rows,
        }
    }

    fn covers(slices: &[(i64, i64)], lo: i64, hi_inclusive: i64) {
        assert_eq!(slices.first().map(|s| s.0), Some(lo));
        assert_eq!(slices.last().map(|s| s.1), Some(hi_inclusive + 1));
        for w in slices.windows(2) {
            assert_eq!(w[0].1, w[1].0, "slices are contiguous");
        }
        for s in slices {
            assert!(s.0 < s.1, "slice {s:?} is not empty");
        }
    }

    #[test]
    fn one_small_file_is_one_slice() {
        let s = plan(&[span(100, 199, 10)], 1000);
        assert_eq!(s, vec![(100, 200)]);
    }

    #[test]
    fn evenly_spread_rows_are_cut_at_the_target() {
        // 1,000 rows over [0, 1000): 4 slices of 250.
        let s = plan(&[span(0, 999, 1000)], 250);
        assert_eq!(s, vec![(0, 250), (250, 500), (500, 750), (750, 1000)]);
    }

    #[test]
    fn overlapping_files_add_their_densities() {
        // Two files over the same 1,000 ns, 500 rows each: 1,000 rows, slices of <= 400.
        let s = plan(&[span(0, 999, 500), span(0, 999, 500)], 400);
        covers(&s, 0, 999);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], (0, 400));
    }

    #[test]
    fn sequential_files_with_a_gap_cover_everything() {
        let files = [span(0, 99, 100), span(500, 599, 100), span(590, 1099, 100)];
        let s = plan(&files, 150);
        covers(&s, 0, 1099);
        // No slice is estimated above the target.
        for (lo, hi) in &s {
            let est: f64 = files
                .iter()
                .map(|f| {
                    let a = (*lo).max(f.min_time);
                    let b = (*hi).min(f.max_time + 1);
                    if b > a {
                        f.rows as f64 * (b - a) as f64 / (f.max_time - f.min_time + 1) as f64
                    } else {
                        0.0
                    }
                })
                .sum();
            assert!(est <= 150.0 + 1e-6, "slice {lo}..{hi} holds ~{est}");
        }
    }

    #[test]
    fn a_dense_instant_stays_one_slice() {
        // 10 files of 100 rows at the same nanosecond: cannot be cut.
        let files: Vec<_> = (0..10).map(|_| span(7, 7, 100)).collect();
        assert_eq!(plan(&files, 50), vec![(7, 8)]);
    }

    #[test]
    fn no_files_no_slices() {
        assert!(plan(&[], 10).is_empty());
    }
}
