//! Per-subscription counters, rendered as Prometheus text for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one subscription.
#[derive(Debug, Default)]
pub struct Counters {
    pub messages: AtomicU64,
    pub rows: AtomicU64,
    pub rejected: AtomicU64,
    pub dead_letters: AtomicU64,
    pub commits: AtomicU64,
    pub commit_errors: AtomicU64,
    pub connection_errors: AtomicU64,
    pub connected: AtomicU64,
}

/// Picks one counter of a subscription.
type Field = fn(&Counters) -> &AtomicU64;

/// `(metric, type, help, field)` of every counter, in output order.
const METRICS: [(&str, &str, &str, Field); 8] = [
    (
        "hourglass_mqtt_messages_total",
        "counter",
        "MQTT messages written and acknowledged (rejected ones included).",
        |c| &c.messages,
    ),
    (
        "hourglass_mqtt_rows_total",
        "counter",
        "Rows written from MQTT messages.",
        |c| &c.rows,
    ),
    (
        "hourglass_mqtt_rejected_messages_total",
        "counter",
        "MQTT messages that could not be mapped (wholly or partly), acknowledged anyway.",
        |c| &c.rejected,
    ),
    (
        "hourglass_mqtt_dead_letters_total",
        "counter",
        "Rejected messages republished to the dead-letter topic.",
        |c| &c.dead_letters,
    ),
    (
        "hourglass_mqtt_commits_total",
        "counter",
        "WAL commits of MQTT batches.",
        |c| &c.commits,
    ),
    (
        "hourglass_mqtt_commit_errors_total",
        "counter",
        "Failed commits of MQTT batches (retried; nothing acknowledged).",
        |c| &c.commit_errors,
    ),
    (
        "hourglass_mqtt_connection_errors_total",
        "counter",
        "Failed connections to or lost connections with the broker.",
        |c| &c.connection_errors,
    ),
    (
        "hourglass_mqtt_connected",
        "gauge",
        "1 while connected to the broker.",
        |c| &c.connected,
    ),
];

/// Appends the counters of every `(name, counters)` to `out`.
pub fn render(subscriptions: &[(String, &Counters)], out: &mut String) {
    if subscriptions.is_empty() {
        return;
    }
    for (metric, kind, help, field) in METRICS {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for (name, counters) in subscriptions {
            let label = name
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(
                out,
                "{metric}{{subscription=\"{label}\"}} {}",
                field(counters).load(Ordering::Relaxed)
            );
        }
    }
}
