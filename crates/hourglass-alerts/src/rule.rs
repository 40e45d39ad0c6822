//! The alert rule model as the HTTP API takes it (JSON), and its validation into a
//! [`CompiledRule`] with errors naming the offending field.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::duration::parse_duration;
use crate::is_label_name;
use crate::template::Template;

/// The query language of a rule's `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Hourglass SQL (DataFusion).
    #[default]
    Sql,
    /// Amazon Timestream's SQL dialect.
    Timestream,
}

/// An alert rule as stored and exchanged as JSON. Durations are Prometheus duration strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// The rule's name: the `alertname` label of its alerts, and its identity in the API.
    pub name: String,
    /// The query; each row it returns is an alert instance.
    pub query: String,
    #[serde(default)]
    pub dialect: Dialect,
    /// The database the query runs against (SQL: its default database; both dialects: the
    /// database whose permissions govern the rule). The server requires it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The user the rule's query runs as (its creator), set by the server and never taken from
    /// a client; `None` without authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `any row` (the default) or a comparison on the value column, e.g. `value > 3`.
    #[serde(default = "default_condition")]
    pub condition: String,
    /// How often the rule is evaluated (default `1m`, as Prometheus' evaluation interval).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// How long an instance must hold before it fires (default `0s`: fires at once).
    #[serde(default = "zero", rename = "for")]
    pub for_: String,
    /// How long a firing instance keeps firing after its condition stopped holding.
    #[serde(default = "zero")]
    pub keep_firing_for: String,
    /// Labels added to every instance (templates), overriding the query's columns.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations of every instance (templates).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

fn default_condition() -> String {
    "any row".into()
}
fn default_interval() -> String {
    "1m".into()
}
fn zero() -> String {
    "0s".into()
}

/// The shortest evaluation interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest rule name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// A validation error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert rule field `{field}`: {message}")]
pub struct RuleError {
    /// The field's JSON path, e.g. `labels.severity` or `interval`.
    pub field: String,
    pub message: String,
}

impl RuleError {
    fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// A validated rule: the JSON form plus its parsed condition, durations and templates.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: AlertRule,
    pub condition: Condition,
    pub interval: Duration,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: Vec<(String, Template)>,
    pub annotations: Vec<(String, Template)>,
}

impl AlertRule {
    /// Checks every field and compiles the rule; the first error names its field.
    pub fn compile(&self) -> Result<CompiledRule, RuleError> {
        validate_name(&self.name)?;
        if self.query.trim().is_empty() {
            return Err(RuleError::new("query", "must not be empty"));
        }
        if self
            .database
            .as_deref()
            .is_some_and(|d| d.trim().is_empty())
        {
            return Err(RuleError::new("database", "must not be empty when given"));
        }
        let condition = self
            .condition
            .parse::<Condition>()
            .map_err(|e| RuleError::new("condition", e))?;
        let duration =
            |field: &str, text: &str| parse_duration(text).map_err(|e| RuleError::new(field, e));
        let interval = duration("interval", &self.interval)?;
        if interval < MIN_INTERVAL {
            return Err(RuleError::new(
                "interval",
                format!("`{}` is shorter than the minimum, 1s", self.interval),
            ));
        }
        let for_ = duration("for", &self.for_)?;
        let keep_firing_for = duration("keep_firing_for", &self.keep_firing_for)?;
        let labels = compile_templates("labels", &self.labels)?;
        if self.labels.contains_key("alertname") {
            return Err(RuleError::new(
                "labels.alertname",
                "is set from the rule's name and cannot be given",
            ));
        }
        let annotations = compile_templates("annotations", &self.annotations)?;
        Ok(CompiledRule {
            rule: self.clone(),
            condition,
            interval,
            for_,
            keep_firing_for,
            labels,
            annotations,
        })
    }
}

fn validate_name(name: &str) -> Result<(), RuleError> {
    if name.is_empty() {
        return Err(RuleError::new("name", "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(RuleError::new(
            "name",
            format!(
                "is {} bytes long, the maximum is {MAX_NAME_LEN}",
                name.len()
            ),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(RuleError::new(
            "name",
            format!("`{name}` contains {c:?}: use letters, digits, `_`, `-`, `.`, `:`"),
        ));
    }
    Ok(())
}

fn compile_templates(
    what: &str,
    map: &BTreeMap<String, String>,
) -> Result<Vec<(String, Template)>, RuleError> {
    map.iter()
        .map(|(key, text)| {
            let field = format!("{what}.{key}");
            if !is_label_name(key) || key.starts_with("__") {
                return Err(RuleError::new(
                    field,
                    "is not a valid name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with `__`)",
                ));
            }
            let template = Template::parse(text).map_err(|e| RuleError::new(field, e))?;
            Ok((key.clone(), template))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> AlertRule {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn error_field(json: &str) -> String {
        match parse(json).compile() {
            Ok(_) => panic!("{json} should not compile"),
            Err(e) => e.field,
        }
    }

    #[test]
    fn full_rule_round_trips_and_compiles() {
        let rule = parse(
            r#"{"name":"HighPrice","query":"SELECT symbol, max(price) AS value FROM t GROUP BY symbol",
            "dialect":"timestream","condition":"value > 3","interval":"10s","for":"1m",
            "keep_firing_for":"2m","labels":{"severity":"page"},
            "annotations":{"summary":"{{ $labels.symbol }} at {{ $value }}"}}"#,
        );
        assert_eq!(rule.dialect, Dialect::Timestream);
        let compiled = rule.compile().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.interval, Duration::from_secs(10));
        assert_eq!(compiled.for_, Duration::from_secs(60));
        assert_eq!(compiled.keep_firing_for, Duration::from_secs(120));
        let back: AlertRule =
            serde_json::from_str(&serde_json::to_string(&rule).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, rule);
    }

    #[test]
    fn defaults_are_prometheus_ones() {
        let rule = parse(r#"{"name":"a","query":"SELECT 1"}"#);
        let c = rule.compile().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.condition, Condition::AnyRow);
        assert_eq!(c.interval, Duration::from_secs(60));
        assert_eq!(c.for_, Duration::ZERO);
        assert_eq!(rule.dialect, Dialect::Sql);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"name":"","query":"q"}"#, "name"),
            (r#"{"name":"a b","query":"q"}"#, "name"),
            (r#"{"name":"a","query":"  "}"#, "query"),
            (
                r#"{"name":"a","query":"q","condition":"value >> 3"}"#,
                "condition",
            ),
            (r#"{"name":"a","query":"q","interval":"10"}"#, "interval"),
            (r#"{"name":"a","query":"q","interval":"500ms"}"#, "interval"),
            (r#"{"name":"a","query":"q","for":"1x"}"#, "for"),
            (
                r#"{"name":"a","query":"q","keep_firing_for":"x"}"#,
                "keep_firing_for",
            ),
            (
                r#"{"name":"a","query":"q","labels":{"a-b":"x"}}"#,
                "labels.a-b",
            ),
            (
                r#"{"name":"a","query":"q","labels":{"alertname":"x"}}"#,
                "labels.alertname",
            ),
            (
                r#"{"name":"a","query":"q","annotations":{"s":"{{ $nope }}"}}"#,
                "annotations.s",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(error_field(json), field, "{json}");
        }
    }

    #[test]
    fn database_and_owner_round_trip_and_empty_database_is_refused() {
        let rule = parse(r#"{"name":"a","query":"q","database":"prices","owner":"alice"}"#);
        assert_eq!(rule.database.as_deref(), Some("prices"));
        assert_eq!(rule.owner.as_deref(), Some("alice"));
        let json = serde_json::to_value(&rule).unwrap_or_default();
        assert_eq!(json["database"], "prices");
        assert!(parse(r#"{"name":"a","query":"q"}"#).database.is_none());
        assert_eq!(
            error_field(r#"{"name":"a","query":"q","database":" "}"#),
            "database"
        );
    }

    #[test]
    fn unknown_json_fields_are_rejected() {
        let err = serde_json::from_str::<AlertRule>(r#"{"name":"a","query":"q","expr":"x"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("expr"), "{err}");
    }
}
