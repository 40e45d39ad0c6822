//! Spotting rewrites of a record (same series and time) at ingest, cheaply and almost exactly.
//!
//! For each series (a 64-bit hash of its dimension values and measure name) the history keeps
//! the most recent [`TRACKED_TIMES`] distinct times written since the table was opened, sorted.
//! A new row is
//! - certainly new when it is newer than everything seen (the common, in-order case),
//! - a rewrite when its time is among the tracked times,
//! - certainly new when it falls between tracked times or before them while the history is
//!   complete (nothing was evicted) and after the newest time persisted before the table opened,
//! - otherwise *possibly* a rewrite (older than the tracked window, or at or before data persisted
//!   in an earlier run), which only costs a slower query path for its day until compaction.
//!
//! Parallel writers whose requests arrive slightly out of order therefore do not mark anything.

use std::collections::HashMap;

/// Distinct times remembered per series.
pub const TRACKED_TIMES: usize = 32;

#[derive(Debug, Default)]
struct Recent {
    /// Ascending, distinct.
    times: Vec<i64>,
    /// Whether older times were evicted (the history is no longer complete).
    evicted: bool,
}

/// Recent write times of every series of one table.
#[derive(Debug, Default)]
pub struct SeriesHistory {
    series: HashMap<u64, Recent>,
    /// Newest time persisted before the table was opened: rows at or before it may rewrite
    /// records this history never saw.
    floor: i64,
}

impl SeriesHistory {
    pub fn new(floor: i64) -> Self {
        SeriesHistory {
            series: HashMap::new(),
            floor,
        }
    }

    /// Records a row; returns true when it may rewrite an earlier record.
    pub fn observe(&mut self, series: u64, time: i64) -> bool {
        let floor = self.floor;
        let recent = self.series.entry(series).or_default();
        let times = &mut recent.times;
        match times.last() {
            Some(&last) if time > last => {
                times.push(time);
            }
            None => {
                if time <= floor {
                    return true;
                }
                times.push(time);
                return false;
            }
            Some(_) => match times.binary_search(&time) {
                Ok(_) => return true,
                Err(0) if recent.evicted || time <= floor => return true,
                Err(pos) => times.insert(pos, time),
            },
        }
        if times.len() > TRACKED_TIMES {
            times.remove(0);
            recent.evicted = true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_and_slightly_out_of_order_rows_are_new_and_rewrites_are_caught() {
        let mut h = SeriesHistory::new(i64::MIN);
        for t in [10, 20, 30] {
            assert!(!h.observe(1, t));
        }
        assert!(!h.observe(1, 25), "a gap filled late is new");
        assert!(!h.observe(1, 5), "before everything, history complete: new");
        assert!(h.observe(1, 20), "same time again is a rewrite");
        assert!(!h.observe(2, 20), "other series are independent");
    }

    #[test]
    fn beyond_the_tracked_window_or_the_persisted_floor_is_possibly_a_rewrite() {
        let mut h = SeriesHistory::new(100);
        assert!(h.observe(1, 100), "at the floor");
        assert!(!h.observe(1, 101));
        for t in 0..(TRACKED_TIMES as i64 + 5) {
            assert!(!h.observe(7, 1_000 + t * 10));
        }
        assert!(h.observe(7, 1_000), "evicted from the window");
        assert!(!h.observe(7, 1_000 + 10 * TRACKED_TIMES as i64 + 1), "between tracked times");
    }
}
