//! Spotting rewrites of a record (same series and time) at ingest, exactly for regular series.
//!
//! For each series (a 64-bit hash of its dimension values and measure name) the history keeps
//! every time written since the table was opened, compressed as arithmetic runs
//! (`start, step, count`): a series sampled every 10 s is one run however long it is, and rows
//! that arrive out of order (parallel writers, retried requests) extend or join runs. A row is
//! - a rewrite when its time is on a run,
//! - certainly new when it is not, and the series' history is exact there,
//! - *possibly* a rewrite when it is at or before the newest time persisted before the table was
//!   opened (files this history never saw), or inside a range whose runs were collapsed because
//!   the series is too irregular to keep exactly ([`MAX_RUNS`] per series).
//!
//! A possible rewrite only costs a slower query path for its day until compaction rewrites it.

use std::collections::HashMap;

/// Runs kept exactly per series before the oldest are collapsed into a coarse range.
pub const MAX_RUNS: usize = 64;

/// Times `start, start + step, ..., start + step * (count - 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    start: i64,
    /// 0 while `count == 1`.
    step: i64,
    count: i64,
}

impl Run {
    fn single(t: i64) -> Run {
        Run {
            start: t,
            step: 0,
            count: 1,
        }
    }
    fn end(&self) -> i64 {
        self.start + self.step * (self.count - 1)
    }
    fn contains(&self, t: i64) -> bool {
        t >= self.start && t <= self.end() && (self.step == 0 || (t - self.start) % self.step == 0)
    }
    /// The time that would extend the run forward (`None` for a single time: any later time).
    fn next(&self) -> Option<i64> {
        (self.count > 1).then(|| self.end() + self.step)
    }
    fn push_back(&mut self, t: i64) -> bool {
        match self.next() {
            None if t > self.start => {
                self.step = t - self.start;
                self.count = 2;
                true
            }
            Some(n) if n == t => {
                self.count += 1;
                true
            }
            _ => false,
        }
    }
    fn push_front(&mut self, t: i64) -> bool {
        if self.count == 1 && t < self.start {
            self.step = self.start - t;
            self.start = t;
            self.count = 2;
            true
        } else if self.count > 1 && t == self.start - self.step {
            self.start = t;
            self.count += 1;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    /// Sorted by start; their `[start, end]` ranges do not overlap.
    runs: Vec<Run>,
    /// A range whose exact times were given up: anything in it may be a rewrite.
    coarse: Option<(i64, i64)>,
}

impl Series {
    fn widen_coarse(&mut self, lo: i64, hi: i64) {
        self.coarse = Some(match self.coarse {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
    }

    /// Records `t`; true when it may rewrite an earlier record.
    fn observe(&mut self, t: i64) -> bool {
        if let Some((lo, hi)) = self.coarse {
            if t >= lo && t <= hi {
                return true;
            }
        }
        let idx = self.runs.partition_point(|r| r.start <= t);
        if idx > 0 {
            let prev = self.runs[idx - 1];
            if prev.contains(t) {
                return true;
            }
            if t <= prev.end() {
                // Inside a run but off its rhythm: split the run around `t`.
                let k = (t - prev.start) / prev.step;
                let left = Run {
                    start: prev.start,
                    step: if k == 0 { 0 } else { prev.step },
                    count: k + 1,
                };
                let right_count = prev.count - k - 1;
                let right = Run {
                    start: prev.start + (k + 1) * prev.step,
                    step: if right_count == 1 { 0 } else { prev.step },
                    count: right_count,
                };
                self.runs
                    .splice(idx - 1..idx, [left, Run::single(t), right]);
                self.collapse_if_too_many();
                return false;
            }
        }
        let next_start = self.runs.get(idx).map(|r| r.start);
        let extended_prev = idx > 0 && self.runs[idx - 1].push_back(t);
        if extended_prev {
            // A single-time run adopting a step must not jump over the next run.
            if next_start.is_some_and(|n| self.runs[idx - 1].end() >= n) {
                self.runs[idx - 1] = Run::single(self.runs[idx - 1].start);
                self.runs.insert(idx, Run::single(t));
            } else {
                self.merge_at(idx - 1);
            }
        } else if idx < self.runs.len() && self.runs[idx].push_front(t) {
            if idx > 0 {
                self.merge_at(idx - 1);
            }
        } else {
            self.runs.insert(idx, Run::single(t));
        }
        self.collapse_if_too_many();
        false
    }

    /// Gives up the exact times of the oldest half of the runs when there are too many.
    fn collapse_if_too_many(&mut self) {
        if self.runs.len() > MAX_RUNS {
            let old: Vec<Run> = self.runs.drain(..MAX_RUNS / 2).collect();
            let lo = old.first().map_or(i64::MAX, |r| r.start);
            let hi = old.last().map_or(i64::MIN, |r| r.end());
            self.widen_coarse(lo, hi);
        }
    }

    /// Joins run `i` and run `i + 1` when the second continues the first.
    fn merge_at(&mut self, i: usize) {
        let (Some(a), Some(b)) = (self.runs.get(i).copied(), self.runs.get(i + 1).copied()) else {
            return;
        };
        let joined =
            if a.count > 1 && b.start == a.end() + a.step && (b.count == 1 || b.step == a.step) {
                Some(Run {
                    start: a.start,
                    step: a.step,
                    count: a.count + b.count,
                })
            } else {
                None
            };
        if let Some(run) = joined {
            self.runs[i] = run;
            self.runs.remove(i + 1);
        }
    }
}

/// Write times of every series of one table since it was opened.
#[derive(Debug, Default)]
pub struct SeriesHistory {
    series: HashMap<u64, Series>,
    /// Newest time persisted before the table was opened.
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
        let possible = self.series.entry(series).or_default().observe(time);
        possible || time <= self.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_arriving_out_of_order_are_new_and_rewrites_are_caught() {
        let mut h = SeriesHistory::new(i64::MIN);
        // Parallel writers: requests of 10 steps arrive as 2, 0, 3, 1.
        for block in [2, 0, 3, 1] {
            for step in 0..10 {
                assert!(
                    !h.observe(1, (block * 10 + step) * 10),
                    "block {block} step {step}"
                );
            }
        }
        assert_eq!(
            h.series[&1].runs,
            vec![Run {
                start: 0,
                step: 10,
                count: 40
            }]
        );
        for t in [0, 150, 390] {
            assert!(h.observe(1, t), "rewrite at {t}");
        }
        assert!(!h.observe(1, 400));
        assert!(!h.observe(2, 150), "other series are independent");
    }

    #[test]
    fn irregular_times_stay_exact_until_too_many_runs() {
        let mut h = Series::default();
        for t in [5, 100, 7, 50, 51, 1000] {
            assert!(!h.observe(t), "{t}");
        }
        for t in [5, 100, 7, 50, 51, 1000] {
            assert!(h.observe(t), "{t} again");
        }
        assert!(!h.observe(6), "between runs");
        let mut g = Series::default();
        for i in 0..(MAX_RUNS as i64 * 3) {
            g.observe(i * i * 7);
        }
        assert!(g.runs.len() <= MAX_RUNS);
        assert!(g.coarse.is_some());
        assert!(
            g.observe(1),
            "inside the collapsed range is possibly a rewrite"
        );
    }

    #[test]
    fn at_or_before_the_persisted_floor_is_possibly_a_rewrite() {
        let mut h = SeriesHistory::new(100);
        assert!(h.observe(1, 100));
        assert!(h.observe(1, 3));
        assert!(!h.observe(1, 101));
    }

    #[test]
    fn matches_a_set_on_random_inputs() {
        let mut state = 42u64;
        let mut rand = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as i64
        };
        let mut h = Series::default();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            let t = if rand() % 2 == 0 {
                (rand() % 300) * 10
            } else {
                rand() % 3000
            };
            let possible = h.observe(t);
            let in_coarse = h.coarse.is_some_and(|(lo, hi)| t >= lo && t <= hi);
            if seen.contains(&t) {
                assert!(possible, "missed rewrite of {t}");
            } else if !in_coarse {
                assert!(!possible, "false rewrite of {t}");
            }
            seen.insert(t);
        }
    }
}
