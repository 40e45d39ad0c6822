//! The state of a rule and of each of its alert instances, with Prometheus' semantics
//! (`rules/alerting.go`): inactive → pending → firing → resolved, `for`, `keep_firing_for`,
//! resolved instances kept and re-sent for [`RESOLVED_RETENTION`], re-sending every
//! `resend_delay` while firing with `endsAt` = now + 4 × max(resend delay, interval).
//!
//! Every transition yields a [`StateChange`] (one row of the `system.alerts` history). A failed
//! evaluation marks the rule's health `err` with its error and leaves the instances as they were.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::condition::Instance;
use crate::rule::CompiledRule;
use crate::template::TemplateData;
use crate::{Labels, Millis};

/// How long a resolved instance is kept, and re-sent as resolved, after it resolved.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Prometheus' default `--rules.alert.resend-delay`.
pub const DEFAULT_RESEND_DELAY: Duration = Duration::from_secs(60);

/// The state of an alert instance; a resolved instance is `Inactive` with `resolved_at` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

/// One alert instance of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The instance's labels: the query's label columns, the rule's labels, `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    /// The value at the last evaluation that returned the instance.
    pub value: Option<f64>,
    pub state: AlertState,
    pub active_at: Millis,
    pub fired_at: Option<Millis>,
    pub resolved_at: Option<Millis>,
    pub last_sent_at: Option<Millis>,
    pub keep_firing_since: Option<Millis>,
    /// `endsAt` of the last notification of a firing instance.
    pub valid_until: Option<Millis>,
}

impl Alert {
    /// Prometheus' `needsSending`: never while pending; at once after resolving; else when the
    /// resend delay has passed since the last send.
    fn needs_sending(&self, ts: Millis, resend_delay: Duration) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(Millis::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        last.saturating_add(ms(resend_delay)) < ts
    }
}

/// The health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Unknown,
    Ok,
    Err,
}

/// What a state change is, as written to the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A new instance: inactive → pending.
    Pending,
    /// pending → firing.
    Firing,
    /// firing → inactive.
    Resolved,
    /// pending → inactive without having fired.
    Inactive,
}

/// One transition of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub rule: String,
    pub labels: Labels,
    pub kind: ChangeKind,
    pub at: Millis,
    pub value: Option<f64>,
}

/// The evaluation state of one rule: health and instances keyed by their labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "RuleStateRepr", into = "RuleStateRepr")]
pub struct RuleState {
    pub health: Health,
    pub last_error: Option<String>,
    pub last_evaluation: Option<Millis>,
    pub last_duration_ms: Option<u64>,
    alerts: BTreeMap<Labels, Alert>,
}

#[derive(Serialize, Deserialize)]
struct RuleStateRepr {
    health: Health,
    last_error: Option<String>,
    last_evaluation: Option<Millis>,
    last_duration_ms: Option<u64>,
    alerts: Vec<Alert>,
}

impl From<RuleStateRepr> for RuleState {
    fn from(r: RuleStateRepr) -> Self {
        RuleState {
            health: r.health,
            last_error: r.last_error,
            last_evaluation: r.last_evaluation,
            last_duration_ms: r.last_duration_ms,
            alerts: r
                .alerts
                .into_iter()
                .map(|a| (a.labels.clone(), a))
                .collect(),
        }
    }
}

impl From<RuleState> for RuleStateRepr {
    fn from(s: RuleState) -> Self {
        RuleStateRepr {
            health: s.health,
            last_error: s.last_error,
            last_evaluation: s.last_evaluation,
            last_duration_ms: s.last_duration_ms,
            alerts: s.alerts.into_values().collect(),
        }
    }
}

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

impl RuleState {
    /// All instances, pending, firing and recently resolved, sorted by labels.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// The rule's state: the highest state of its instances.
    pub fn state(&self) -> AlertState {
        self.alerts
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Records a failed evaluation: health `err`, the error kept; instances unchanged.
    pub fn record_error(&mut self, ts: Millis, error: String, took_ms: u64) {
        self.health = Health::Err;
        self.last_error = Some(error);
        self.last_evaluation = Some(ts);
        self.last_duration_ms = Some(took_ms);
    }

    /// Applies the active instances of an evaluation at `ts`, returning the transitions.
    /// Fails, leaving the state untouched, if two instances have the same labels once the
    /// rule's labels are applied.
    pub fn apply(
        &mut self,
        rule: &CompiledRule,
        ts: Millis,
        instances: &[Instance],
        took_ms: u64,
    ) -> Result<Vec<StateChange>, String> {
        let name = &rule.rule.name;
        let mut current: BTreeMap<Labels, (Labels, Option<f64>)> = BTreeMap::new();
        for instance in instances {
            let data = TemplateData {
                labels: &instance.labels,
                value: instance.value,
            };
            let mut labels = instance.labels.clone();
            for (key, template) in &rule.labels {
                labels.insert(key.clone(), template.expand(data));
            }
            labels.insert("alertname".into(), name.clone());
            let annotations = rule
                .annotations
                .iter()
                .map(|(k, t)| (k.clone(), t.expand(data)))
                .collect();
            if current
                .insert(labels.clone(), (annotations, instance.value))
                .is_some()
            {
                return Err(format!(
                    "two rows have the same labels once the rule's labels are applied: {labels:?}"
                ));
            }
        }

        let mut changes = Vec::new();
        let mut change = |alert: &Alert, kind| {
            changes.push(StateChange {
                rule: name.clone(),
                labels: alert.labels.clone(),
                kind,
                at: ts,
                value: alert.value,
            })
        };
        for (labels, (annotations, value)) in &current {
            if let Some(alert) = self.alerts.get_mut(labels) {
                if alert.state != AlertState::Inactive {
                    alert.value = *value;
                    alert.annotations = annotations.clone();
                    continue;
                }
            }
            let alert = Alert {
                labels: labels.clone(),
                annotations: annotations.clone(),
                value: *value,
                state: AlertState::Pending,
                active_at: ts,
                fired_at: None,
                resolved_at: None,
                last_sent_at: None,
                keep_firing_since: None,
                valid_until: None,
            };
            change(&alert, ChangeKind::Pending);
            self.alerts.insert(labels.clone(), alert);
        }

        let keep_for = ms(rule.keep_firing_for);
        let retention = ms(RESOLVED_RETENTION);
        let hold = ms(rule.for_);
        let mut expired = Vec::new();
        for (labels, alert) in self.alerts.iter_mut() {
            if !current.contains_key(labels) {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && keep_for > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_for;
                }
                if alert.state == AlertState::Pending
                    || alert.resolved_at.is_some_and(|r| ts - r > retention)
                {
                    expired.push(labels.clone());
                }
                if alert.state != AlertState::Inactive && !keep_firing {
                    let kind = if alert.state == AlertState::Firing {
                        ChangeKind::Resolved
                    } else {
                        ChangeKind::Inactive
                    };
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                    change(alert, kind);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                alert.keep_firing_since = None;
            }
            if alert.state == AlertState::Pending && ts - alert.active_at >= hold {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(ts);
                change(alert, ChangeKind::Firing);
            }
        }
        for labels in expired {
            self.alerts.remove(&labels);
        }
        self.health = Health::Ok;
        self.last_error = None;
        self.last_evaluation = Some(ts);
        self.last_duration_ms = Some(took_ms);
        Ok(changes)
    }

    /// The instances to notify at `ts` (Prometheus' `sendAlerts`), marking them sent; a firing
    /// instance's `valid_until` becomes `ts + 4 × max(resend_delay, interval)`.
    pub fn alerts_to_send(
        &mut self,
        ts: Millis,
        resend_delay: Duration,
        interval: Duration,
    ) -> Vec<Alert> {
        let delta = ms(resend_delay.max(interval));
        let mut out = Vec::new();
        for alert in self.alerts.values_mut() {
            if alert.needs_sending(ts, resend_delay) {
                alert.last_sent_at = Some(ts);
                alert.valid_until = Some(ts.saturating_add(delta.saturating_mul(4)));
                out.push(alert.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::AlertRule;

    const S: Millis = 1000;
    const T0: Millis = 1_700_000_000_000;

    fn rule(for_: &str, keep: &str) -> CompiledRule {
        AlertRule {
            name: "High".into(),
            query: "SELECT 1".into(),
            dialect: Default::default(),
            database: None,
            owner: None,
            condition: "value > 3".into(),
            interval: "10s".into(),
            for_: for_.into(),
            keep_firing_for: keep.into(),
            labels: [("severity".to_string(), "page".to_string())].into(),
            annotations: [(
                "summary".to_string(),
                "{{ $labels.host }}={{ $value }}".to_string(),
            )]
            .into(),
        }
        .compile()
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn inst(host: &str, value: f64) -> Instance {
        Instance {
            labels: [("host".to_string(), host.to_string())].into(),
            value: Some(value),
        }
    }

    fn kinds(changes: &[StateChange]) -> Vec<ChangeKind> {
        changes.iter().map(|c| c.kind).collect()
    }

    fn apply(
        state: &mut RuleState,
        r: &CompiledRule,
        ts: Millis,
        i: &[Instance],
    ) -> Vec<ChangeKind> {
        kinds(&state.apply(r, ts, i, 1).unwrap_or_else(|e| panic!("{e}")))
    }

    fn only(state: &RuleState) -> &Alert {
        let all: Vec<&Alert> = state.alerts().collect();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0]
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let r = rule("30s", "0s");
        let mut st = RuleState::default();
        assert_eq!(
            apply(&mut st, &r, T0, &[inst("a", 5.0)]),
            [ChangeKind::Pending]
        );
        let a = only(&st);
        assert_eq!(a.state, AlertState::Pending);
        assert_eq!(a.labels.get("alertname").map(String::as_str), Some("High"));
        assert_eq!(a.labels.get("severity").map(String::as_str), Some("page"));
        assert_eq!(
            a.annotations.get("summary").map(String::as_str),
            Some("a=5")
        );
        assert!(apply(&mut st, &r, T0 + 20 * S, &[inst("a", 6.0)]).is_empty());
        assert_eq!(only(&st).state, AlertState::Pending);
        assert_eq!(
            only(&st).annotations.get("summary").map(String::as_str),
            Some("a=6")
        );
        assert_eq!(
            apply(&mut st, &r, T0 + 30 * S, &[inst("a", 7.0)]),
            [ChangeKind::Firing]
        );
        assert_eq!(only(&st).fired_at, Some(T0 + 30 * S));
        assert_eq!(only(&st).active_at, T0);
        assert_eq!(apply(&mut st, &r, T0 + 40 * S, &[]), [ChangeKind::Resolved]);
        let a = only(&st);
        assert_eq!(a.state, AlertState::Inactive);
        assert_eq!(a.resolved_at, Some(T0 + 40 * S));
        assert_eq!(a.value, Some(7.0), "the last value is kept");
        assert_eq!(st.health, Health::Ok);
    }

    #[test]
    fn for_zero_fires_on_first_evaluation() {
        let r = rule("0s", "0s");
        let mut st = RuleState::default();
        assert_eq!(
            apply(&mut st, &r, T0, &[inst("a", 5.0)]),
            [ChangeKind::Pending, ChangeKind::Firing]
        );
        assert_eq!(st.state(), AlertState::Firing);
    }

    #[test]
    fn pending_that_disappears_is_dropped() {
        let r = rule("1m", "0s");
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        assert_eq!(apply(&mut st, &r, T0 + 10 * S, &[]), [ChangeKind::Inactive]);
        assert_eq!(st.alerts().count(), 0);
        // Coming back starts over: a new ActiveAt.
        apply(&mut st, &r, T0 + 20 * S, &[inst("a", 5.0)]);
        assert_eq!(only(&st).active_at, T0 + 20 * S);
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let r = rule("0s", "25s");
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        assert!(apply(&mut st, &r, T0 + 10 * S, &[]).is_empty());
        assert_eq!(only(&st).state, AlertState::Firing);
        assert_eq!(only(&st).keep_firing_since, Some(T0 + 10 * S));
        assert!(apply(&mut st, &r, T0 + 30 * S, &[]).is_empty(), "20s < 25s");
        assert_eq!(apply(&mut st, &r, T0 + 40 * S, &[]), [ChangeKind::Resolved]);
        // A return while kept firing resets keep_firing_since.
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        apply(&mut st, &r, T0 + 10 * S, &[]);
        apply(&mut st, &r, T0 + 20 * S, &[inst("a", 5.0)]);
        assert_eq!(only(&st).keep_firing_since, None);
        assert!(apply(&mut st, &r, T0 + 40 * S, &[]).is_empty());
        assert_eq!(only(&st).state, AlertState::Firing);
    }

    #[test]
    fn resolved_is_kept_fifteen_minutes_and_a_return_starts_anew() {
        let r = rule("0s", "0s");
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        apply(&mut st, &r, T0 + 10 * S, &[]);
        apply(&mut st, &r, T0 + 10 * S + 15 * 60 * S, &[]);
        assert_eq!(st.alerts().count(), 1, "exactly 15 min: still kept");
        apply(&mut st, &r, T0 + 20 * S + 15 * 60 * S, &[]);
        assert_eq!(st.alerts().count(), 0);

        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        apply(&mut st, &r, T0 + 10 * S, &[]);
        assert_eq!(
            apply(&mut st, &r, T0 + 20 * S, &[inst("a", 9.0)]),
            [ChangeKind::Pending, ChangeKind::Firing]
        );
        let a = only(&st);
        assert_eq!((a.active_at, a.resolved_at), (T0 + 20 * S, None));
    }

    #[test]
    fn sending_follows_prometheus() {
        let r = rule("10s", "0s");
        let resend = DEFAULT_RESEND_DELAY;
        let interval = Duration::from_secs(10);
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        assert!(
            st.alerts_to_send(T0, resend, interval).is_empty(),
            "pending is not sent"
        );
        apply(&mut st, &r, T0 + 10 * S, &[inst("a", 5.0)]);
        let sent = st.alerts_to_send(T0 + 10 * S, resend, interval);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].valid_until, Some(T0 + 10 * S + 4 * 60 * S));
        assert!(
            st.alerts_to_send(T0 + 70 * S, resend, interval).is_empty(),
            "60s: not yet"
        );
        assert_eq!(st.alerts_to_send(T0 + 71 * S, resend, interval).len(), 1);
        apply(&mut st, &r, T0 + 80 * S, &[]);
        let sent = st.alerts_to_send(T0 + 80 * S, resend, interval);
        assert_eq!(sent.len(), 1, "resolved is sent at once");
        assert_eq!(sent[0].resolved_at, Some(T0 + 80 * S));
        assert!(st.alerts_to_send(T0 + 90 * S, resend, interval).is_empty());
        assert_eq!(
            st.alerts_to_send(T0 + 141 * S, resend, interval).len(),
            1,
            "re-sent"
        );
        // A longer interval than the resend delay widens endsAt.
        let mut st = RuleState::default();
        let r0 = rule("0s", "0s");
        apply(&mut st, &r0, T0, &[inst("a", 5.0)]);
        let sent = st.alerts_to_send(T0, resend, Duration::from_secs(120));
        assert_eq!(sent[0].valid_until, Some(T0 + 8 * 60 * S));
    }

    #[test]
    fn errors_keep_instances_and_report() {
        let r = rule("0s", "0s");
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        st.record_error(T0 + 10 * S, "table t not found".into(), 3);
        assert_eq!(st.health, Health::Err);
        assert_eq!(st.last_error.as_deref(), Some("table t not found"));
        assert_eq!(only(&st).state, AlertState::Firing);
        apply(&mut st, &r, T0 + 20 * S, &[inst("a", 5.0)]);
        assert_eq!((st.health, st.last_error.clone()), (Health::Ok, None));
    }

    #[test]
    fn duplicate_labels_after_rule_labels_fail_without_change() {
        let mut compiled = rule("0s", "0s");
        compiled.labels = vec![(
            "host".into(),
            crate::template::Template::parse("same").unwrap_or_else(|e| panic!("{e}")),
        )];
        let mut st = RuleState::default();
        let err = st
            .apply(&compiled, T0, &[inst("a", 5.0), inst("b", 6.0)], 1)
            .err()
            .unwrap_or_default();
        assert!(err.contains("same labels"), "{err}");
        assert_eq!(st.alerts().count(), 0);
    }

    #[test]
    fn instances_are_independent() {
        let r = rule("20s", "0s");
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0)]);
        apply(&mut st, &r, T0 + 10 * S, &[inst("a", 5.0), inst("b", 5.0)]);
        assert_eq!(
            apply(&mut st, &r, T0 + 20 * S, &[inst("a", 5.0), inst("b", 5.0)]),
            [ChangeKind::Firing]
        );
        let states: Vec<AlertState> = st.alerts().map(|a| a.state).collect();
        assert_eq!(states, [AlertState::Firing, AlertState::Pending]);
    }

    #[test]
    fn serde_round_trip() {
        let r = rule("0s", "0s");
        let mut st = RuleState::default();
        apply(&mut st, &r, T0, &[inst("a", 5.0), inst("b", 1.0)]);
        st.alerts_to_send(T0, DEFAULT_RESEND_DELAY, Duration::from_secs(10));
        let json = serde_json::to_string(&st).unwrap_or_default();
        let back: RuleState = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, st);
    }
}
