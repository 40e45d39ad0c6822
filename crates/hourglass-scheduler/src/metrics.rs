//! The scheduler's counters for `/metrics` (Prometheus text format): runs by trigger and outcome,
//! SNS messages published, failed and dropped, and the scheduled queries kept.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::definition::State;
use crate::runner::Trigger;
use crate::Scheduler;

/// Runs finished since start, by trigger (auto, manual, late data) and outcome.
#[derive(Debug, Default)]
pub struct RunCounters {
    /// `[trigger][succeeded]`, trigger in [`TRIGGERS`] order.
    counts: [[AtomicU64; 2]; 3],
}

const TRIGGERS: [Trigger; 3] = [Trigger::Auto, Trigger::Manual, Trigger::LateData];

impl RunCounters {
    /// Counts a finished run.
    pub fn count(&self, trigger: Trigger, succeeded: bool) {
        self.counter(trigger, succeeded)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The runs counted for `trigger` that succeeded (or failed).
    pub fn get(&self, trigger: Trigger, succeeded: bool) -> u64 {
        self.counter(trigger, succeeded).load(Ordering::Relaxed)
    }

    fn counter(&self, trigger: Trigger, succeeded: bool) -> &AtomicU64 {
        let i = TRIGGERS.iter().position(|t| *t == trigger).unwrap_or(0);
        &self.counts[i][usize::from(succeeded)]
    }
}

impl Scheduler {
    /// The scheduler's lines of `/metrics`.
    pub fn prometheus_metrics(&self) -> String {
        let contents = self.store.snapshot();
        let enabled = contents
            .queries
            .values()
            .filter(|e| e.definition.state == State::Enabled)
            .count();
        let disabled = contents.queries.len() - enabled;
        let mut out = String::new();
        out.push_str(
            "# HELP hourglass_scheduled_queries Scheduled queries kept, by state.\n\
             # TYPE hourglass_scheduled_queries gauge\n",
        );
        out.push_str(&format!(
            "hourglass_scheduled_queries{{state=\"enabled\"}} {enabled}\n\
             hourglass_scheduled_queries{{state=\"disabled\"}} {disabled}\n"
        ));
        out.push_str(
            "# HELP hourglass_scheduled_query_runs_total Scheduled-query runs finished, by trigger and status.\n\
             # TYPE hourglass_scheduled_query_runs_total counter\n",
        );
        for trigger in TRIGGERS {
            for (succeeded, status) in [(true, "success"), (false, "failure")] {
                out.push_str(&format!(
                    "hourglass_scheduled_query_runs_total{{trigger=\"{}\",status=\"{status}\"}} {}\n",
                    trigger.as_str().to_ascii_lowercase(),
                    self.runs.get(trigger, succeeded)
                ));
            }
        }
        let stats = &self.notifier.stats;
        out.push_str(
            "# HELP hourglass_scheduled_query_notifications_total SNS notifications, by outcome.\n\
             # TYPE hourglass_scheduled_query_notifications_total counter\n",
        );
        for (outcome, n) in [
            ("published", &stats.published),
            ("failed", &stats.failed),
            ("dropped", &stats.dropped),
        ] {
            out.push_str(&format!(
                "hourglass_scheduled_query_notifications_total{{outcome=\"{outcome}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_trigger_and_outcome() {
        let c = RunCounters::default();
        c.count(Trigger::LateData, true);
        c.count(Trigger::LateData, true);
        c.count(Trigger::Manual, false);
        assert_eq!(c.get(Trigger::LateData, true), 2);
        assert_eq!(c.get(Trigger::Manual, false), 1);
        assert_eq!(c.get(Trigger::Auto, true), 0);
    }
}
