//! Hourglass's own plan rules and operators on top of DataFusion, in one registry.
//!
//! Every optimisation Hourglass adds to DataFusion's planning is here (the Timestream front end in
//! [`crate::dialect`] and the table provider's scan are not plan rules and are not listed):
//!
//! | name | kind | what it does |
//! |---|---|---|
//! | `latest_value` | analyzer rule | `DISTINCT ON (series) … ORDER BY …, time DESC` from each source's last rows ([`last_rows`]) |
//! | `dictionary_group_keys` | optimizer rule (last) | GROUP BY a dimension as string views ([`dictionary_group_keys`]) |
//! | `run_aggregate` | physical rule | partial aggregates over scans in file order fold runs of equal keys ([`run_aggregate`]) |
//! | `first_last` | aggregate functions | `first_value`/`last_value` ordered by one 64-bit key ([`first_last`]) |
//! | `date_bin` | scalar function | `date_bin` over nanosecond timestamps in one pass ([`date_bin`]) |
//! | `lossy_time_cast` | optimizer rule (works around DataFusion) | `CAST(time AS TIMESTAMP(0)) = x` (or `AS DATE`) as the exact range of `time` it selects ([`lossy_time_cast`]); switched off, DataFusion takes `time` for a constant after such a filter and may drop an `ORDER BY time` |
//! | `lambda_variables` | physical rule (Timestream dialect only) | renumbers lambda variables after DataFusion folds projections ([`crate::dialect::timeseries::lambda_plan`]); switched off, a lambda over a folded projection fails to execute (a DataFusion 55 bug), it never answers differently |
//! | `asof_join` | physical rule | `ASOF JOIN`'s indexed operator ([`asof_join`]); switched off, the same join is answered by a nested-loop scan of the right side per left row ([`asof_join::exec`]'s reference probe) |
//! | `scalar_subquery` | SQL rewrite (works around DataFusion) | correlated scalar subqueries DataFusion refuses (not aggregated, a WHERE conjunct over outer columns only, outer columns in the projection) as forms it plans, with PostgreSQL's answers and its "more than one row" error ([`scalar_subquery`]); switched off, DataFusion refuses them, it never answers differently |
//! | `like_escape` | SQL rewrite (works around DataFusion) | `LIKE … ESCAPE 'c'` with `c` not a backslash as a backslash-escaped pattern ([`like_escape`]); switched off, DataFusion refuses it, it never answers differently |
//! | `array_subquery` | SQL rewrite (works around DataFusion) | `ARRAY(SELECT e FROM … [WHERE …] [ORDER BY …])` as `coalesce((SELECT array_agg(e ORDER BY …) FROM … WHERE …), make_array())`, PostgreSQL's empty array for no rows ([`array_subquery`]); switched off, `ARRAY(subquery)` is refused, it never answers differently |
//! | `one_partition` | plan setting | a query whose every scan reads a few series (a dimension `=`/`IN` literals) over at most 7 days is planned and run on one partition ([`one_partition`]) |
//! | `plan_cache` | plan path | a statement whose shape (literals compared with columns in `WHERE` as placeholders) was planned before binds its literals to that shape's optimised plan instead of being planned again ([`crate::plan_cache`]); switched off, every statement is planned on its own |
//! | `stored_time_unit` | scan (expression adapter) | on Parquet files that store `time` in milliseconds or microseconds, comparisons of `time` with a constant as exact comparisons in the stored unit, so statistics and page indexes prune with them ([`crate::stored_time`]); switched off, the stored times are converted to nanoseconds before every comparison (the same answers, no pruning by `time` inside such files) |
//! | `value_bounds` | function wrappers, analyzer rule, optimizer rule (last) | bounds on the size of the values functions, `\|\|`, large constants and window aggregates build ([`crate::bounded_functions`]); switched off, DataFusion's functions build whatever they are asked to; only an operator may switch it off (see below) |
//!
//! Each can be switched off for a session with the setting `hourglass.disabled_rules`: a comma
//! separated list of the names above, `all` or `none` (the default). `all` switches off every
//! optimisation; the rules that work around DataFusion bugs or gaps (`lossy_time_cast`,
//! `lambda_variables`, `scalar_subquery`, `like_escape`, `array_subquery`) stay on unless named, since without
//! them DataFusion answers wrongly or fails — the fuzzer's "rules off" oracle is DataFusion with its known bugs worked around. Switched off, a rule leaves
//! the plan to DataFusion (for the two function replacements: DataFusion's own functions are
//! registered in their place; for `value_bounds`, the functions the wrappers wrap). The
//! differential query fuzzer (`scripts/fuzz_queries.py`) compares every query with and without
//! them; a rule added here without a switch is a rule the fuzzer cannot check.
//!
//! `value_bounds` is also a security limit, so a session honours it switched off only when it was
//! made for an operator or with authentication off: [`allow_lifting_value_bounds`], called where
//! the session is made, records that, and no setting changes it. For anyone else `all` leaves the
//! bounds on, and naming `value_bounds` is refused ("value_bounds can only be switched off by an
//! operator", permission denied).
//!
//! The SQL rewrites run on the parsed statement before DataFusion plans it
//! ([`rewrite_statement`], with `asof_join`'s rewrite).
//!
//! Where the setting comes from: `disabled_rules` of `/api/v3/query_sql`, and
//! `SET hourglass.disabled_rules = '…'` on the PostgreSQL wire or in DataFusion SQL.

pub mod array_subquery;
pub mod asof_join;
pub mod date_bin;
pub mod dictionary_group_keys;
pub mod first_last;
pub mod last_rows;
pub mod like_escape;
pub mod lossy_time_cast;
pub mod one_partition;
pub mod run_aggregate;
pub mod scalar_subquery;
pub mod series_filters;
mod sql_ast;
pub mod string_equals;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{FunctionRegistry, SessionState, SessionStateBuilder};
use datafusion::functions_aggregate::first_last::{first_value_udaf, last_value_udaf};

/// One of Hourglass's plan rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    LatestValue,
    DictionaryGroupKeys,
    RunAggregate,
    FirstLast,
    DateBin,
    AsOfJoin,
    LambdaVariables,
    LossyTimeCast,
    ValueBounds,
    ScalarSubquery,
    LikeEscape,
    ArraySubquery,
    OnePartition,
    PlanCache,
    StoredTimeUnit,
}

impl Rule {
    /// Every rule, in the order of the table above.
    pub const ALL: [Rule; 15] = [
        Rule::LatestValue,
        Rule::DictionaryGroupKeys,
        Rule::RunAggregate,
        Rule::FirstLast,
        Rule::DateBin,
        Rule::AsOfJoin,
        Rule::LambdaVariables,
        Rule::LossyTimeCast,
        Rule::ValueBounds,
        Rule::ScalarSubquery,
        Rule::LikeEscape,
        Rule::ArraySubquery,
        Rule::OnePartition,
        Rule::PlanCache,
        Rule::StoredTimeUnit,
    ];

    /// The name used in `hourglass.disabled_rules`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::LatestValue => "latest_value",
            Rule::DictionaryGroupKeys => "dictionary_group_keys",
            Rule::RunAggregate => "run_aggregate",
            Rule::FirstLast => "first_last",
            Rule::DateBin => "date_bin",
            Rule::AsOfJoin => "asof_join",
            Rule::LambdaVariables => "lambda_variables",
            Rule::LossyTimeCast => "lossy_time_cast",
            Rule::ValueBounds => "value_bounds",
            Rule::ScalarSubquery => "scalar_subquery",
            Rule::LikeEscape => "like_escape",
            Rule::ArraySubquery => "array_subquery",
            Rule::OnePartition => "one_partition",
            Rule::PlanCache => "plan_cache",
            Rule::StoredTimeUnit => "stored_time_unit",
        }
    }

    /// Whether the rule works around a DataFusion bug rather than speeding a plan up: `all`
    /// leaves such rules on.
    pub fn works_around_datafusion(self) -> bool {
        matches!(
            self,
            Rule::LambdaVariables
                | Rule::LossyTimeCast
                | Rule::ScalarSubquery
                | Rule::LikeEscape
                | Rule::ArraySubquery
        )
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// Whether this rule is on in a session with `config` (a session without Hourglass's
    /// settings has every rule on; `value_bounds` is off only where the session may lift it).
    pub fn enabled(self, config: &ConfigOptions) -> bool {
        config
            .extensions
            .get::<HourglassOptions>()
            .is_none_or(|o| !o.switched_off().contains(self))
    }
}

/// Why naming `value_bounds` is refused in a session that may not lift it.
pub const VALUE_BOUNDS_REFUSED: &str = "value_bounds can only be switched off by an operator";

/// A set of switched-off rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisabledRules {
    bits: u16,
    /// Made by `all`, which leaves `value_bounds` on where it may not be lifted (naming it is
    /// refused there instead).
    all: bool,
}

impl DisabledRules {
    /// Every optimisation off (the rules that work around DataFusion bugs stay on), and the
    /// value bounds where the session may lift them.
    pub fn all() -> Self {
        DisabledRules {
            bits: Rule::ALL
                .iter()
                .filter(|r| !r.works_around_datafusion())
                .fold(0, |bits, r| bits | r.bit()),
            all: true,
        }
    }

    pub fn contains(self, rule: Rule) -> bool {
        self.bits & rule.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// Whether `rule` is named (rather than switched off by `all`).
    pub fn names(self, rule: Rule) -> bool {
        self.contains(rule) && !self.all
    }

    /// The same set without `rule`.
    pub fn without(self, rule: Rule) -> Self {
        DisabledRules {
            bits: self.bits & !rule.bit(),
            all: self.all,
        }
    }

    /// Parses `none`, `all` or a comma-separated list of rule names (blank: none).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "" | "none" => return Ok(DisabledRules::default()),
            "all" => return Ok(DisabledRules::all()),
            _ => {}
        }
        let mut set = DisabledRules::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let rule = Rule::ALL
                .into_iter()
                .find(|r| r.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "unknown rule '{name}' in hourglass.disabled_rules (known: {}, or all, none)",
                        Rule::ALL.map(Rule::name).join(", ")
                    )
                })?;
            set.bits |= rule.bit();
        }
        Ok(set)
    }
}

impl fmt::Display for DisabledRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        if self.all {
            // Parsed back, `all` means the same in any session (a list naming `value_bounds`
            // would be refused where the bounds may not be lifted).
            return f.write_str("all");
        }
        let names: Vec<_> = Rule::ALL
            .into_iter()
            .filter(|r| self.contains(*r))
            .map(Rule::name)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The `hourglass.*` session settings, and whether the session may switch the value bounds off.
#[derive(Debug, Clone, Default)]
pub struct HourglassOptions {
    /// The rules switched off, as set (`value_bounds` in it is honoured only where the session
    /// may lift it: [`HourglassOptions::switched_off`]).
    pub disabled_rules: DisabledRules,
    /// Whether the session was made for an operator or with authentication off, and so may
    /// switch `value_bounds` off. Recorded when the session is made
    /// ([`allow_lifting_value_bounds`]), never by a setting (`set` knows only `disabled_rules`);
    /// false by default (the session template, sessions made any other way).
    may_lift_value_bounds: bool,
}

impl HourglassOptions {
    /// The rules switched off in effect: `disabled_rules`, less `value_bounds` where the session
    /// may not lift it.
    pub fn switched_off(&self) -> DisabledRules {
        if self.may_lift_value_bounds {
            self.disabled_rules
        } else {
            self.disabled_rules.without(Rule::ValueBounds)
        }
    }

    /// Whether the session may switch `value_bounds` off.
    pub fn may_lift_value_bounds(&self) -> bool {
        self.may_lift_value_bounds
    }
}

impl ConfigExtension for HourglassOptions {
    const PREFIX: &'static str = "hourglass";
}

impl ExtensionOptions for HourglassOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
        match key {
            "disabled_rules" => {
                let parsed = DisabledRules::parse(value).map_err(DataFusionError::Configuration)?;
                if parsed.names(Rule::ValueBounds) && !self.may_lift_value_bounds {
                    return Err(value_bounds_refused());
                }
                self.disabled_rules = parsed;
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "unknown setting hourglass.{key} (known: hourglass.disabled_rules)"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: "hourglass.disabled_rules".to_string(),
            value: Some(self.disabled_rules.to_string()),
            description: "Hourglass plan rules switched off: none, all, or a comma-separated list",
        }]
    }
}

/// Adds every rule to `state` (a session template): the analyzer and physical rules check the
/// session's setting each time they run; the function replacements are registered here and
/// swapped by [`apply_function_switches`].
pub fn install(mut state: SessionState) -> SessionState {
    state.add_analyzer_rule(Arc::new(last_rows::LastRowsRule));
    let _ = state.register_udf(Arc::new(asof_join::udf()));
    let _ = state.register_udf(Arc::new(like_escape::udf()));
    let _ = state.register_udf(Arc::new(scalar_subquery::single_value()));
    let _ = state.register_udaf(Arc::new(scalar_subquery::single_value_rows()));
    crate::anomaly::register(&mut state);
    // The as-of join rule goes first: it needs the join as planned, inputs in query order.
    let mut physical = vec![Arc::new(asof_join::rule::AsOfJoinRule) as _];
    physical.extend(state.physical_optimizers().iter().cloned());
    // Partial aggregates over scans in file order fold runs of equal keys (after the others:
    // it needs the final shape of the plan below the aggregate).
    physical.push(Arc::new(run_aggregate::RunAggregateRule));
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_optimizer_rule(Arc::new(lossy_time_cast::LossyTimeCast))
        .with_optimizer_rule(Arc::new(dictionary_group_keys::DictionaryGroupKeys))
        .with_physical_optimizer_rules(physical)
        .build();
    state
        .config_mut()
        .options_mut()
        .extensions
        .insert(HourglassOptions::default());
    apply_function_switches(&mut state);
    state
}

/// The SQL rewrites of a parsed statement before DataFusion plans it: `ASOF JOIN`
/// ([`asof_join::rewrite_sql_statement`]), and, where the session has them on, the correlated scalar
/// subqueries ([`scalar_subquery`]), `LIKE … ESCAPE` ([`like_escape`]) and `ARRAY(subquery)`
/// ([`array_subquery`]) DataFusion refuses.
pub fn rewrite_statement(
    statement: &mut datafusion::sql::parser::Statement,
    config: &ConfigOptions,
) -> hourglass_core::Result<()> {
    use datafusion::sql::parser::Statement as DFStatement;
    match statement {
        DFStatement::Statement(s) => {
            asof_join::rewrite_sql_statement(s)?;
            rewrite_sqlparser_statement(s, config);
            Ok(())
        }
        DFStatement::Explain(e) => rewrite_statement(&mut e.statement, config),
        _ => Ok(()),
    }
}

/// [`rewrite_statement`]'s rewrites that work around DataFusion, on any sqlparser node. The
/// Timestream front end does not call it: Trino's semantics differ (its `LIKE … ESCAPE` escapes
/// only `%`, `_` and the escape character, its error for two rows is its own).
pub fn rewrite_sqlparser_statement<N: datafusion::sql::sqlparser::ast::VisitMut>(
    node: &mut N,
    config: &ConfigOptions,
) {
    if Rule::LikeEscape.enabled(config) {
        like_escape::rewrite(node);
    }
    // First: its result is an aggregated subquery, which `scalar_subquery` leaves alone.
    if Rule::ArraySubquery.enabled(config) {
        array_subquery::rewrite(node);
    }
    if Rule::ScalarSubquery.enabled(config) {
        scalar_subquery::rewrite(node);
    }
}

/// Registers Hourglass's or DataFusion's `first_value`/`last_value` and `date_bin`, as the
/// session's `hourglass.disabled_rules` says; call again after the setting changes.
pub fn apply_function_switches(state: &mut SessionState) {
    let options = state.config().options();
    let first_last_on = Rule::FirstLast.enabled(options);
    let date_bin_on = Rule::DateBin.enabled(options);
    if first_last_on {
        for f in first_last::udafs() {
            let _ = state.register_udaf(Arc::new(f));
        }
    } else {
        let _ = state.register_udaf(first_value_udaf());
        let _ = state.register_udaf(last_value_udaf());
    }
    if date_bin_on {
        let _ = state.register_udf(Arc::new(date_bin::udf()));
    } else {
        let _ = state.register_udf(datafusion::functions::datetime::date_bin());
    }
}

/// `hourglass.disabled_rules` as a session with `config` has it set (`none` without Hourglass's
/// settings).
pub fn disabled_rules_setting(config: &ConfigOptions) -> String {
    config
        .extensions
        .get::<HourglassOptions>()
        .map_or_else(|| "none".to_string(), |o| o.switched_off().to_string())
}

/// Sets `hourglass.disabled_rules` on a session state and swaps the functions to match. Naming
/// `value_bounds` in a session that may not lift it is refused (permission denied) and changes
/// nothing.
pub fn set_disabled(state: &mut SessionState, disabled: DisabledRules) -> DfResult<()> {
    if let Some(o) = state
        .config_mut()
        .options_mut()
        .extensions
        .get_mut::<HourglassOptions>()
    {
        if disabled.names(Rule::ValueBounds) && !o.may_lift_value_bounds {
            return Err(value_bounds_refused());
        }
        o.disabled_rules = disabled;
    }
    apply_function_switches(state);
    Ok(())
}

/// Records whether a session may switch `value_bounds` off: only one made for an operator or with
/// authentication off. Called where a session is made for its principal
/// ([`crate::QueryEngine::session_as`]); no setting changes it afterwards.
pub fn allow_lifting_value_bounds(state: &mut SessionState, allowed: bool) {
    let extensions = &mut state.config_mut().options_mut().extensions;
    match extensions.get_mut::<HourglassOptions>() {
        Some(o) => o.may_lift_value_bounds = allowed,
        None => extensions.insert(HourglassOptions {
            disabled_rules: DisabledRules::default(),
            may_lift_value_bounds: allowed,
        }),
    }
}

/// The refusal of `value_bounds` named where the session may not lift it.
fn value_bounds_refused() -> DataFusionError {
    crate::error::to_datafusion(hourglass_core::Error::permission_denied(
        VALUE_BOUNDS_REFUSED,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_all_and_none_and_names_the_unknown() {
        assert_eq!(DisabledRules::parse("all").unwrap(), DisabledRules::all());
        assert!(DisabledRules::parse(" none ").unwrap().is_empty());
        let some = DisabledRules::parse("date_bin, RUN_AGGREGATE").unwrap();
        assert!(some.contains(Rule::DateBin) && some.contains(Rule::RunAggregate));
        assert!(!some.contains(Rule::LatestValue));
        assert_eq!(some.to_string(), "run_aggregate,date_bin");
        let err = DisabledRules::parse("date_bin,bogus").unwrap_err();
        assert!(
            err.contains("'bogus'") && err.contains("latest_value"),
            "{err}"
        );
    }

    #[test]
    fn every_rule_has_a_distinct_name_and_bit() {
        let all = DisabledRules::all();
        for r in Rule::ALL {
            assert_eq!(
                all.contains(r),
                !r.works_around_datafusion(),
                "{}",
                r.name()
            );
            assert_eq!(DisabledRules::parse(r.name()).unwrap().bits, r.bit());
        }
    }

    #[test]
    fn value_bounds_go_off_only_where_the_session_may_lift_them() {
        // A session that may not (the default): `all` leaves them on, naming them is refused
        // and changes nothing, and the permission is no setting.
        let mut o = HourglassOptions::default();
        o.set("disabled_rules", "all").unwrap();
        assert!(o.switched_off().contains(Rule::DateBin));
        assert!(!o.switched_off().contains(Rule::ValueBounds));
        let e = o
            .set("disabled_rules", "date_bin,value_bounds")
            .unwrap_err();
        assert!(e.to_string().contains(VALUE_BOUNDS_REFUSED), "{e}");
        assert_eq!(o.disabled_rules, DisabledRules::all());
        assert!(o.set("may_lift_value_bounds", "true").is_err());
        assert!(!o.may_lift_value_bounds());
        let mut config = ConfigOptions::new();
        config.extensions.insert(o.clone());
        assert!(Rule::ValueBounds.enabled(&config));
        assert!(!Rule::DateBin.enabled(&config));
        // One that may.
        o.may_lift_value_bounds = true;
        o.set("disabled_rules", "value_bounds").unwrap();
        assert_eq!(o.switched_off().to_string(), "value_bounds");
        o.set("disabled_rules", "all").unwrap();
        assert!(o.switched_off().contains(Rule::ValueBounds));
        config.extensions.insert(o);
        assert!(!Rule::ValueBounds.enabled(&config));
        // `all` reads back as `all` (a list naming value_bounds would be refused elsewhere).
        assert_eq!(DisabledRules::all().to_string(), "all");
        assert_eq!(
            DisabledRules::parse(&DisabledRules::all().to_string()).unwrap(),
            DisabledRules::all()
        );
        assert!(DisabledRules::all().contains(Rule::ValueBounds));
        assert!(!DisabledRules::all().names(Rule::ValueBounds));
        assert!(DisabledRules::parse("value_bounds")
            .unwrap()
            .names(Rule::ValueBounds));
    }
}
