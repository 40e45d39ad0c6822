//! Spreading a scan's Parquet files evenly over the scan's partitions.
//!
//! Each partition runs on its own core, so a scan takes as long as its largest partition. Whole
//! files dealt round-robin leave partitions very uneven (a day's files range from a few hundred
//! thousand to two million rows); instead every partition gets an equal share of the bytes, files
//! cut into byte ranges where a share ends. The Parquet reader assigns each row group to the range
//! holding its first page, so ranges covering `0..size` read every row group exactly once.
//! Bytes count in proportion to how much of a file's time span the query wants.

use datafusion::datasource::listing::PartitionedFile;
use hourglass_storage::FileMeta;

use crate::time_range::TimeRange;

/// The share of `f`'s rows a query over `window` reads, assuming its rows spread evenly over its
/// time span (a file holds every series of its span, so any byte range of it has the same mix).
fn share_in_window(f: &FileMeta, window: TimeRange) -> f64 {
    let span = (f.max_time as i128 - f.min_time as i128 + 1).max(1);
    let lo = (f.min_time as i128).max(window.min as i128);
    let hi = (f.max_time as i128 + 1).min(window.max as i128);
    ((hi - lo).max(0) as f64 / span as f64).clamp(0.0, 1.0)
}

/// At most `partitions` groups of (parts of) `files`, in file order, of about equal work: bytes
/// weighted by the share of each file inside the query's time `window` (the page index skips
/// the rest, so a file half outside the window costs half its bytes).
pub fn balanced(
    files: &[&FileMeta],
    partitions: usize,
    window: TimeRange,
) -> Vec<Vec<PartitionedFile>> {
    let partitions = partitions.max(1);
    // Work per byte of each file; a file wholly outside the window still gets a part (its row
    // groups are pruned quickly) but counts as a sliver of work.
    let rates: Vec<f64> = files
        .iter()
        .map(|f| share_in_window(f, window).max(1e-3))
        .collect();
    let total: f64 = files
        .iter()
        .zip(&rates)
        .map(|(f, r)| f.bytes as f64 * r)
        .sum();
    let share = (total / partitions as f64).max(1.0);
    let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new()];
    let mut room = share;
    for (f, &rate) in files.iter().zip(&rates) {
        let mut start = 0u64;
        while start < f.bytes {
            if room <= 0.0 {
                if groups.len() < partitions {
                    groups.push(Vec::new());
                    room = share;
                } else {
                    room = f64::INFINITY;
                }
            }
            let fits = (room / rate).ceil().min(f.bytes as f64) as u64;
            let end = f.bytes.min(start.saturating_add(fits.max(1)));
            let part = PartitionedFile::new(f.path.clone(), f.bytes);
            let part = if start == 0 && end == f.bytes {
                part
            } else {
                part.with_range(start as i64, end as i64)
            };
            if let Some(group) = groups.last_mut() {
                group.push(part);
            }
            room -= (end - start) as f64 * rate;
            start = end;
        }
        if f.bytes == 0 {
            if let Some(group) = groups.last_mut() {
                group.push(PartitionedFile::new(f.path.clone(), 0));
            }
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, bytes: u64) -> FileMeta {
        FileMeta {
            path: path.to_string(),
            day: 0,
            min_time: 0,
            max_time: 0,
            rows: 1,
            bytes,
            sequence: 0,
            last_rows: None,
            whole_day: false,
        }
    }

    /// (path, start, end) of every part, per group.
    fn parts(groups: &[Vec<PartitionedFile>]) -> Vec<Vec<(String, i64, i64)>> {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|p| {
                        let (s, e) = p
                            .range
                            .as_ref()
                            .map_or((0, p.object_meta.size as i64), |r| (r.start, r.end));
                        (p.object_meta.location.to_string(), s, e)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn uneven_files_are_cut_into_equal_shares() {
        let files = [file("a", 400), file("b", 100), file("c", 300)];
        let refs: Vec<&FileMeta> = files.iter().collect();
        let groups = parts(&balanced(&refs, 2, TimeRange::default()));
        assert_eq!(
            groups,
            vec![
                vec![("a".to_string(), 0, 400)],
                vec![("b".to_string(), 0, 100), ("c".to_string(), 0, 300)],
            ]
        );
        let files = [file("a", 1000), file("b", 200)];
        let refs: Vec<&FileMeta> = files.iter().collect();
        assert_eq!(
            parts(&balanced(&refs, 2, TimeRange::default())),
            vec![
                vec![("a".to_string(), 0, 600)],
                vec![("a".to_string(), 600, 1000), ("b".to_string(), 0, 200)],
            ]
        );
    }

    #[test]
    fn files_count_by_the_share_of_their_span_in_the_window() {
        let mut a = file("a", 1000);
        a.max_time = 999;
        let mut b = file("b", 1000);
        (b.min_time, b.max_time) = (1000, 1999);
        let window = TimeRange { min: 0, max: 1500 };
        assert_eq!(
            parts(&balanced(&[&a, &b], 2, window)),
            vec![
                vec![("a".to_string(), 0, 750)],
                vec![("a".to_string(), 750, 1000), ("b".to_string(), 0, 1000)],
            ]
        );
        let outside = TimeRange {
            min: 5000,
            max: 6000,
        };
        let groups = parts(&balanced(&[&a, &b], 2, outside));
        assert_eq!(
            groups.concat(),
            vec![("a".to_string(), 0, 1000), ("b".to_string(), 0, 1000)],
            "files outside the window are still read once (and pruned there)"
        );
    }

    #[test]
    fn every_byte_is_in_exactly_one_part() {
        let files: Vec<FileMeta> = (0..7)
            .map(|i| file(&format!("f{i}"), 97 * (i + 1)))
            .collect();
        let refs: Vec<&FileMeta> = files.iter().collect();
        for partitions in 1..6 {
            let groups = parts(&balanced(&refs, partitions, TimeRange::default()));
            assert!(groups.len() <= partitions);
            for f in &files {
                let mut ranges: Vec<(i64, i64)> = groups
                    .iter()
                    .flatten()
                    .filter(|(p, _, _)| *p == f.path)
                    .map(|(_, s, e)| (*s, *e))
                    .collect();
                ranges.sort();
                assert_eq!(ranges.first().map(|r| r.0), Some(0));
                assert_eq!(ranges.last().map(|r| r.1), Some(f.bytes as i64));
                for w in ranges.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                }
            }
            let sizes: Vec<i64> = groups
                .iter()
                .map(|g| g.iter().map(|(_, s, e)| e - s).sum())
                .collect();
            let total: i64 = files.iter().map(|f| f.bytes as i64).sum();
            let share = (total + partitions as i64 - 1) / partitions as i64;
            assert!(sizes.iter().all(|&s| s <= share), "{sizes:?} > {share}");
        }
    }

    #[test]
    fn one_file_one_partition_is_whole() {
        let files = [file("a", 10)];
        let refs: Vec<&FileMeta> = files.iter().collect();
        assert_eq!(
            parts(&balanced(&refs, 1, TimeRange::default())),
            vec![vec![("a".to_string(), 0, 10)]]
        );
        assert!(balanced(&[], 2, TimeRange::default()).is_empty());
    }
}
