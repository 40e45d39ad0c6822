//! Alert rules for Hourglass, evaluated with Prometheus' alerting semantics.
//!
//! A rule is a query (SQL or Timestream dialect) whose rows are alert instances, identified by
//! their non-value columns. The crate holds the rule model ([`rule`]), conditions ([`condition`]),
//! templates of labels and annotations ([`template`]), the per-instance state machine
//! ([`state`]), notification targets ([`alertmanager`]), durability ([`store`]) and the
//! evaluation loop ([`evaluator`]) that runs queries through a [`query::QueryRunner`] the server
//! provides. The contract is documented in `docs/alerts.md`.

pub mod alertmanager;
pub mod condition;
pub mod delivery;
pub mod duration;
pub mod evaluator;
pub mod query;
pub mod rule;
pub mod state;
pub mod store;
pub mod template;

use std::collections::BTreeMap;

/// A label set: label name to value, sorted by name (the identity of an alert instance).
pub type Labels = BTreeMap<String, String>;

/// Milliseconds since the Unix epoch, UTC: every instant in this crate.
pub type Millis = i64;

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`), the names
/// Alertmanager accepts.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 3339 rendering (milliseconds, `Z`) of an instant, as Alertmanager expects it.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names() {
        assert!(is_label_name("symbol"));
        assert!(is_label_name("_a1"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
        assert!(!is_label_name("count(*)"));
    }

    #[test]
    fn rfc3339_renders_millis_utc() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
