//! When compaction rewrites a whole day by series (with `EngineConfig::rewrite_days_by_series`,
//! off by default; the serve flag `--rewrite-days-by-series`): the day's rows as one stream
//! sorted by series then time, in files that each hold a contiguous range of series for the whole
//! day ([`crate::series_merge`]).
//!
//! Persists write what the memory store holds, so a day loaded over time ends up as many files,
//! each a slice of time across all series. Files of 500,000 rows and more are not "small" and
//! were never merged: a TSBS day of 1,000 hosts stayed 9 files of 480,000–1,870,000 rows, each
//! holding 480–1,870 rows of every host. Then a query for one host opens and prunes all nine,
//! and each series' values are cut into short runs, which delta encoding packs worse (its first
//! delta after a series boundary widens a whole miniblock). Rewritten whole, the same day is
//! 5 files of series ranges: one host's day is in one file, in one run.
//!
//! It is off by default because the layout trades one kind of query for another. On the
//! side-by-side data (release, 1,000 hosts; docs/benchmarks.md "Storage") few-series queries over
//! many hours got faster (`cpu-max-all-8` 11.7–16.0 → 8.9–9.3 ms, `high-cpu-1` 5.2–5.4 → 4.1–4.5)
//! but all-series queries over part of the day slower (`groupby-orderby-limit` 18.7–20.3 →
//! 31.1–34.7 ms, `double-groupby-all` 131.6–143.2 → 166.7–168.2): a time slice outside a query's
//! range is skipped by its file's time range, a whole-day file never is.
//!
//! A day is rewritten when it has several files and files not written by such a rewrite hold at
//! least [`MIN_UNSORTED_SHARE`] of its rows (a few late rows into a rewritten day wait for the
//! small-file merge instead of costing a rewrite of the whole day). Periodic maintenance waits
//! until the day is quiet — no rows of it in the memory store and no file added to it for
//! [`QUIET_PERIOD`] — so a day still being loaded is not rewritten again and again, and rewrites
//! one such day per table and pass (a store upgraded with many sliced days is rewritten a day at
//! a time); an explicit compaction (`/admin/compact`) rewrites every such day at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::manifest::FileMeta;

/// Share of a day's rows outside earlier whole-day rewrites from which the day is rewritten.
pub const MIN_UNSORTED_SHARE: f64 = 0.10;

/// How long a day must go without a new file (and hold no memory-store rows) before periodic
/// maintenance rewrites it (the default of `EngineConfig::day_rewrite_quiet_period`).
pub const QUIET_PERIOD: Duration = Duration::from_secs(600);

/// Whether a clean day's `files` (all of them) should be rewritten as one merge.
pub fn wants_rewrite(files: &[&FileMeta]) -> bool {
    if files.len() < 2 {
        return false;
    }
    let total: u64 = files.iter().map(|f| f.rows).sum();
    let unsorted: u64 = files.iter().filter(|f| !f.whole_day).map(|f| f.rows).sum();
    unsorted > 0 && unsorted as f64 >= MIN_UNSORTED_SHARE * total as f64
}

/// When to rewrite a day that [`wants_rewrite`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutPolicy {
    /// Now (explicit compaction).
    Now,
    /// Once the day is quiet ([`QuietDays`]).
    WhenQuiet,
}

/// A table's day: (database, table, day).
type DayKey = (String, String, i64);

/// Remembers, per table and day, the newest file seen and since when, to tell a quiet day.
#[derive(Debug, Default)]
pub struct QuietDays {
    seen: Mutex<HashMap<DayKey, (u64, Instant)>>,
}

impl QuietDays {
    /// Whether `day` of `db.table` is quiet at `now`: no memory-store rows in it
    /// (`has_memory_rows` false) and its newest file (`newest_sequence`) unchanged for `period`
    /// of observations.
    pub fn is_quiet(
        &self,
        key: (&str, &str, i64),
        newest_sequence: u64,
        has_memory_rows: bool,
        now: Instant,
        period: Duration,
    ) -> bool {
        let (db, table, day) = key;
        let mut seen = self.seen.lock();
        let entry = seen
            .entry((db.to_string(), table.to_string(), day))
            .or_insert((newest_sequence, now));
        if has_memory_rows || entry.0 != newest_sequence {
            *entry = (newest_sequence, now);
            return false;
        }
        now.duration_since(entry.1) >= period
    }

    /// Forgets a day (rewritten, or its files gone).
    pub fn forget(&self, db: &str, table: &str, day: i64) {
        self.seen
            .lock()
            .remove(&(db.to_string(), table.to_string(), day));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rows: u64, whole_day: bool) -> FileMeta {
        FileMeta {
            path: String::new(),
            day: 0,
            min_time: 0,
            max_time: 0,
            rows,
            bytes: 0,
            sequence: 0,
            last_rows: None,
            whole_day,
        }
    }

    #[test]
    fn a_day_is_rewritten_when_unsorted_files_hold_enough_of_it() {
        let (a, b) = (file(600_000, false), file(700_000, false));
        assert!(wants_rewrite(&[&a, &b]), "two time slices");
        assert!(!wants_rewrite(&[&a]), "one file is its own layout");
        let (s1, s2) = (file(2_000_000, true), file(1_500_000, true));
        assert!(!wants_rewrite(&[&s1, &s2]), "already rewritten");
        let late = file(10_000, false);
        assert!(!wants_rewrite(&[&s1, &s2, &late]), "a few late rows wait");
        let much = file(500_000, false);
        assert!(wants_rewrite(&[&s1, &s2, &much]), "14 % of the day");
    }

    #[test]
    fn a_day_is_quiet_after_the_period_without_new_files_or_memory_rows() {
        let q = QuietDays::default();
        let t0 = Instant::now();
        let key = ("db", "t", 5);
        assert!(!q.is_quiet(key, 3, false, t0, QUIET_PERIOD));
        assert!(!q.is_quiet(key, 3, false, t0 + QUIET_PERIOD / 2, QUIET_PERIOD));
        assert!(q.is_quiet(key, 3, false, t0 + QUIET_PERIOD, QUIET_PERIOD));
        // A new file starts the period again, and so do rows in the memory store.
        assert!(!q.is_quiet(key, 4, false, t0 + QUIET_PERIOD * 2, QUIET_PERIOD));
        assert!(!q.is_quiet(key, 4, true, t0 + QUIET_PERIOD * 4, QUIET_PERIOD));
        assert!(!q.is_quiet(key, 4, false, t0 + QUIET_PERIOD * 4, QUIET_PERIOD));
        assert!(q.is_quiet(key, 4, false, t0 + QUIET_PERIOD * 5, QUIET_PERIOD));
        assert!(
            !q.is_quiet(
                ("db", "t", 6),
                4,
                false,
                t0 + QUIET_PERIOD * 5,
                QUIET_PERIOD
            ),
            "days are independent"
        );
    }
}
