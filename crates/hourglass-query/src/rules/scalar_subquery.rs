//! Correlated scalar subqueries DataFusion refuses, rewritten into ones it plans, with
//! PostgreSQL's answers.
//!
//! This rule works around DataFusion: switched off (`hourglass.disabled_rules =
//! 'scalar_subquery'`), DataFusion refuses these statements as before; it never answers
//! differently. DataFusion 55 plans a correlated scalar subquery only when it is aggregated
//! (`(SELECT max(x) FROM t WHERE t.k = o.k)`), whose WHERE has no conjunct over the outer
//! query's columns only, and whose projection does not read the outer query's columns. Clients
//! send the other forms (SQLAlchemy's Inspector, for the default, identity and collation of each
//! column); this rewrite, on the SQL AST before DataFusion plans it, turns them into the planned
//! form:
//!
//! 1. A non-aggregated `(SELECT e FROM F WHERE p)` (no GROUP BY, HAVING, DISTINCT, LIMIT, ORDER
//!    BY, aggregates, window functions or set operations) becomes
//!    `single_value((SELECT single_value_rows(e) FROM F WHERE p))`. [`single_value_rows`] is an
//!    aggregate keeping the first two values of its group (NULL for an empty group), and
//!    [`single_value`] a scalar function returning the one value of such a list, NULL for none,
//!    and failing with PostgreSQL's "more than one row returned by a subquery used as an
//!    expression" for two. The error is raised where the subquery's value is used, not in the
//!    aggregate: DataFusion decorrelates the subquery into an aggregate over every key of `F`
//!    joined to the outer rows, so an aggregate that failed would fail for keys no outer row
//!    asks for (or for rows a `CASE` never evaluates the subquery on), where PostgreSQL answers.
//! 2. Conjuncts `o` of `p` that read outer columns only move out:
//!    `single_value(CASE WHEN o THEN (SELECT single_value_rows(e) … WHERE rest) ELSE NULL END)`
//!    (exact for the non-aggregated form: when `o` is false or NULL no row qualifies and the
//!    subquery is NULL). The CASE is over the list, not the value: DataFusion turns a boolean
//!    CASE into AND/OR, which would evaluate the subquery, and raise its error, where `o` does
//!    not hold.
//! 3. A projection `e` reading outer columns: each inner column reference `c` of `e` becomes its
//!    own `single_value((SELECT single_value_rows(c) FROM F WHERE rest))` (with `o` as in 2),
//!    guarded by `CASE WHEN single_value((SELECT single_value_rows(1) FROM F WHERE rest)) IS NULL
//!    THEN NULL ELSE e' END`: no row gives NULL, two rows the error, one row `e` over that row.
//!
//! One difference remains, an error where PostgreSQL answers, never a different answer: a
//! boolean subquery of two rows inside the user's own `CASE` (or `AND`/`OR`) may be evaluated,
//! and refused, on rows PostgreSQL's CASE would skip, since DataFusion evaluates boolean CASEs
//! as AND/OR.
//!
//! A column reference is inner when its qualifier names a relation of the subquery's FROM (its
//! alias, or its name or a suffix of it), outer when it names a relation of an enclosing SELECT's
//! FROM and no inner one. Anything else (an unqualified identifier, a qualifier that might name
//! either, a nested subquery, a wildcard, a FROM other than tables and joins) leaves the
//! subquery as it is, for DataFusion to refuse: never a rewrite that could answer differently.
//! Aggregated subqueries, which DataFusion plans, are left alone.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, ListArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, BinaryOperator, CaseWhen, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr,
    TableFactor, TableWithJoins, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::tokenizer::Span;

use super::sql_ast::{factors, function_name, item_name, normalise, single_column_select};
use crate::dialect::ast_util::{call, number};

/// The aggregate keeping the first two values of a group.
pub const ROWS_FUNCTION: &str = "single_value_rows";
/// The scalar function taking the one value out of [`ROWS_FUNCTION`]'s list.
pub const VALUE_FUNCTION: &str = "single_value";
/// PostgreSQL's message (SQLSTATE 21000, cardinality violation).
pub const MORE_THAN_ONE_ROW: &str =
    "more than one row returned by a subquery used as an expression";

/// Rewrites the correlated scalar subqueries of `node` DataFusion refuses (see the module).
pub fn rewrite<N: VisitMut>(node: &mut N) {
    let mut visitor = SubqueryVisitor {
        scopes: Vec::new(),
        not_scalar: HashSet::new(),
    };
    let _ = node.visit(&mut visitor);
}

/// A relation a FROM names: by its alias, or else by its (normalised) name.
#[derive(Debug, Clone)]
struct Relation {
    alias: Option<String>,
    name: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Yes,
    Maybe,
    No,
}

impl Relation {
    fn aliased(alias: &Ident) -> Relation {
        Relation {
            alias: Some(normalise(alias)),
            name: Vec::new(),
        }
    }

    fn named_by(&self, qualifier: &[String]) -> Names {
        if let Some(alias) = &self.alias {
            return if qualifier.len() == 1 && qualifier[0] == *alias {
                Names::Yes
            } else {
                Names::No
            };
        }
        if qualifier.len() <= self.name.len() && self.name.ends_with(qualifier) {
            Names::Yes
        } else if qualifier.len() > self.name.len() && qualifier.ends_with(&self.name) {
            Names::Maybe
        } else {
            Names::No
        }
    }
}

/// The normalised parts of a table's name, `None` when one is not an identifier.
fn table_name(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => Some(normalise(id)),
            _ => None,
        })
        .collect()
}

/// The relations of a FROM, or `None` when it holds anything but tables and joins of them.
fn from_relations(from: &[TableWithJoins]) -> Option<Vec<Relation>> {
    let mut out = Vec::new();
    for f in factors(from) {
        match f {
            TableFactor::Table {
                name, alias, args, ..
            } if args.is_none() => out.push(Relation {
                alias: alias.as_ref().map(|a| normalise(&a.name)),
                name: table_name(name)?,
            }),
            TableFactor::NestedJoin {
                table_with_joins,
                alias: None,
            } => out.extend(from_relations(std::slice::from_ref(&**table_with_joins))?),
            _ => return None,
        }
    }
    Some(out)
}

/// The relations an enclosing SELECT's expressions may name (any kind of FROM item with a
/// name; the others are skipped: a reference to them is not classified and stops a rewrite).
fn scope_relations(from: &[TableWithJoins]) -> Vec<Relation> {
    let mut out = Vec::new();
    for f in factors(from) {
        match f {
            TableFactor::Table { name, alias, .. } => out.push(match alias {
                Some(a) => Relation::aliased(&a.name),
                // A name we cannot read stays empty: a reference that might name it is unsure.
                None => Relation {
                    alias: None,
                    name: table_name(name).unwrap_or_default(),
                },
            }),
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                out.extend(alias.as_ref().map(|a| Relation::aliased(&a.name)));
                out.extend(scope_relations(std::slice::from_ref(&**table_with_joins)));
            }
            other => out.extend(table_factor_alias(other).map(Relation::aliased)),
        }
    }
    out
}

fn table_factor_alias(f: &TableFactor) -> Option<&Ident> {
    match f {
        TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. } => alias.as_ref().map(|a| &a.name),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Inner,
    Outer,
}

/// Which side a column qualifier names; `None` when unsure.
fn classify(qualifier: &[String], inner: &[Relation], scopes: &[Vec<Relation>]) -> Option<Side> {
    // Whether some relation of `rels` is named: `Maybe` wins over `Yes`.
    let named = |rels: &[Relation]| {
        let names: Vec<Names> = rels.iter().map(|r| r.named_by(qualifier)).collect();
        if names.contains(&Names::Maybe) {
            Names::Maybe
        } else if names.contains(&Names::Yes) {
            Names::Yes
        } else {
            Names::No
        }
    };
    match named(inner) {
        Names::Yes => return Some(Side::Inner),
        Names::Maybe => return None,
        Names::No => {}
    }
    for scope in scopes.iter().rev() {
        // An enclosing relation with an unreadable name could be the one named.
        if scope.iter().any(|r| r.alias.is_none() && r.name.is_empty()) {
            return None;
        }
        match named(scope) {
            Names::Yes => return Some(Side::Outer),
            Names::Maybe => return None,
            Names::No => {}
        }
    }
    None
}

/// The sides of the column references of `expr`, or `None` when one cannot be classified (or
/// the expression holds a subquery or a wildcard).
fn sides(expr: &Expr, inner: &[Relation], scopes: &[Vec<Relation>]) -> Option<(bool, bool)> {
    let mut found = (false, false);
    let flow = visit_expressions(expr, |e| {
        match e {
            Expr::CompoundIdentifier(parts) if (2..=4).contains(&parts.len()) => {
                let qualifier: Vec<String> =
                    parts[..parts.len() - 1].iter().map(normalise).collect();
                match classify(&qualifier, inner, scopes) {
                    Some(Side::Inner) => found.0 = true,
                    Some(Side::Outer) => found.1 = true,
                    None => return ControlFlow::Break(()),
                }
            }
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::InSubquery { .. }
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..)
            | Expr::Lambda(_) => return ControlFlow::Break(()),
            Expr::Function(f) => {
                if let FunctionArguments::Subquery(_) = f.args {
                    return ControlFlow::Break(());
                }
                if let FunctionArguments::List(list) = &f.args {
                    if list.args.iter().any(|a| {
                        matches!(
                            a,
                            FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(_))
                                | FunctionArg::Named {
                                    arg: FunctionArgExpr::QualifiedWildcard(_),
                                    ..
                                }
                        )
                    }) {
                        return ControlFlow::Break(());
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(()) => None,
        ControlFlow::Continue(()) => Some(found),
    }
}

/// DataFusion's aggregate function names (and aliases), and Hourglass's.
static AGGREGATES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut names = HashSet::new();
    for f in datafusion::functions_aggregate::all_default_aggregate_functions() {
        names.insert(f.name().to_ascii_lowercase());
        for a in f.aliases() {
            names.insert(a.to_ascii_lowercase());
        }
    }
    names.insert(ROWS_FUNCTION.to_string());
    names
});

/// Whether `expr` calls an aggregate or a window function (or one with FILTER / WITHIN GROUP).
pub(crate) fn aggregates(expr: &Expr) -> bool {
    visit_expressions(expr, |e| {
        if let Expr::Function(f) = e {
            let name = function_name(f);
            if f.over.is_some()
                || f.filter.is_some()
                || !f.within_group.is_empty()
                || f.null_treatment.is_some()
                || name.is_none_or(|n| AGGREGATES.contains(&n))
            {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .is_break()
}

/// The one SELECT of a query with none of the clauses that stop the rewrite.
fn plain_select(query: &Query) -> Option<&Select> {
    if query.order_by.is_some() {
        return None;
    }
    single_column_select(query).filter(|s| !s.from.is_empty())
}

fn conjuncts(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner, out)
        }
        other => out.push(other),
    }
}

fn and_all(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(|acc, e| Expr::BinaryOp {
        left: Box::new(nested(acc)),
        op: BinaryOperator::And,
        right: Box::new(nested(e)),
    })
}

fn nested(e: Expr) -> Expr {
    match e {
        e @ (Expr::Nested(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Identifier(_)
        | Expr::Function(_)
        | Expr::Value(_)) => e,
        e => Expr::Nested(Box::new(e)),
    }
}

fn null() -> Expr {
    Expr::value(Value::Null)
}

fn case_when(condition: Expr, then: Expr, otherwise: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: then,
        }],
        else_result: Some(Box::new(otherwise)),
    }
}

/// The rewritten form of a scalar subquery, or `None` to leave it as it is.
fn rewrite_subquery(query: &Query, scopes: &[Vec<Relation>]) -> Option<Expr> {
    let select = plain_select(query)?;
    let inner = from_relations(&select.from)?;
    let (projected, alias) = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) => (e.clone(), None),
        SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
        _ => return None,
    };
    if aggregates(&projected) {
        return None;
    }
    // Expressions of the FROM (join conditions) must read inner columns only.
    let unfit_from = visit_expressions(&select.from, |e: &Expr| {
        if sides(e, &inner, scopes).is_none_or(|(_, outer)| outer) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if unfit_from.is_break() {
        return None;
    }
    let (_, projected_outer) = sides(&projected, &inner, scopes)?;
    let mut outer_only = Vec::new();
    let mut rest = Vec::new();
    let mut correlated = projected_outer;
    if let Some(p) = &select.selection {
        let mut all = Vec::new();
        conjuncts(p.clone(), &mut all);
        for c in all {
            let (i, o) = sides(&c, &inner, scopes)?;
            correlated |= o;
            if o && !i {
                outer_only.push(c);
            } else {
                rest.push(c);
            }
        }
    }
    if !correlated {
        return None;
    }
    let rest = and_all(rest);
    let outer_only = and_all(outer_only);
    // `single_value((SELECT single_value_rows(e) FROM F WHERE rest))`, with the outer-only
    // conjuncts `o` as `single_value(CASE WHEN o THEN (SELECT …) ELSE NULL END)`: the CASE is
    // over the list, never boolean, so DataFusion keeps it a CASE (it turns a boolean one into
    // AND/OR, which would evaluate the subquery where `o` does not hold).
    let one = |e: Expr, alias: Option<Ident>| -> Expr {
        let mut q = query.clone();
        if let SetExpr::Select(s) = q.body.as_mut() {
            let agg = call(ROWS_FUNCTION, vec![e], Span::empty());
            s.projection = vec![match alias {
                Some(alias) => SelectItem::ExprWithAlias { expr: agg, alias },
                None => SelectItem::UnnamedExpr(agg),
            }];
            s.selection = rest.clone();
        }
        let rows = Expr::Subquery(Box::new(q));
        let rows = match &outer_only {
            Some(o) => case_when(o.clone(), rows, null()),
            None => rows,
        };
        call(VALUE_FUNCTION, vec![rows], Span::empty())
    };
    Some(if projected_outer {
        let mut replaced = projected;
        let mut replacer = InnerColumns {
            inner: &inner,
            replace: &|c: Expr| one(c, None),
        };
        let _ = replaced.visit(&mut replacer);
        let guard = Expr::IsNull(Box::new(one(number(1), None)));
        case_when(guard, null(), replaced)
    } else {
        one(projected, alias)
    })
}

/// Replaces each inner column reference (already classified: every qualified reference that
/// names an inner relation).
struct InnerColumns<'a> {
    inner: &'a [Relation],
    replace: &'a dyn Fn(Expr) -> Expr,
}

impl VisitorMut for InnerColumns<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = expr {
            let qualifier: Vec<String> = parts[..parts.len() - 1].iter().map(normalise).collect();
            if self
                .inner
                .iter()
                .any(|r| r.named_by(&qualifier) == Names::Yes)
            {
                let column = std::mem::replace(expr, null());
                *expr = (self.replace)(column);
            }
        }
        ControlFlow::Continue(())
    }
}

/// Names the unaliased select items that are subqueries about to be rewritten as PostgreSQL
/// names them (after the subquery's one column: `(SELECT t.x …)` is `x`), rather than after the
/// rewrite's function calls; an item whose name would repeat another item's keeps DataFusion's.
fn name_rewritten_items(select: &mut Select, scopes: &[Vec<Relation>]) {
    let names: Vec<Option<String>> = select.projection.iter().map(item_name).collect();
    for i in 0..select.projection.len() {
        let SelectItem::UnnamedExpr(Expr::Subquery(q)) = &select.projection[i] else {
            continue;
        };
        let Some(name) = plain_select(q).and_then(|s| item_name(&s.projection[0])) else {
            continue;
        };
        if rewrite_subquery(q, scopes).is_none()
            || names
                .iter()
                .enumerate()
                .any(|(j, n)| j != i && n.as_deref() == Some(name.as_str()))
        {
            continue;
        }
        let SelectItem::UnnamedExpr(expr) =
            std::mem::replace(&mut select.projection[i], SelectItem::UnnamedExpr(null()))
        else {
            unreachable!("matched above")
        };
        select.projection[i] = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name),
        };
    }
}

struct SubqueryVisitor {
    /// The relations of each enclosing SELECT, outermost first.
    scopes: Vec<Vec<Relation>>,
    /// Subqueries that are not scalar (the right side of `ANY`/`ALL`), by address.
    not_scalar: HashSet<usize>,
}

impl VisitorMut for SubqueryVisitor {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        self.scopes.push(scope_relations(&select.from));
        name_rewritten_items(select, &self.scopes);
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, _select: &mut Select) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } = expr {
            if let Expr::Subquery(q) = right.as_ref() {
                self.not_scalar.insert(q.as_ref() as *const Query as usize);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(q) = expr {
            if self
                .not_scalar
                .contains(&(q.as_ref() as *const Query as usize))
            {
                return ControlFlow::Continue(());
            }
            if let Some(new) = rewrite_subquery(q, &self.scopes) {
                *expr = new;
            }
        }
        ControlFlow::Continue(())
    }
}

/// [`ROWS_FUNCTION`]: the first two values of a group, as a list (NULL for an empty group).
pub fn single_value_rows() -> AggregateUDF {
    AggregateUDF::new_from_impl(SingleValueRows {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// [`VALUE_FUNCTION`]: the one value of a list of at most two, NULL for none, the error for two.
pub fn single_value() -> ScalarUDF {
    ScalarUDF::new_from_impl(SingleValue {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValueRows {
    signature: Signature,
}

impl AggregateUDFImpl for SingleValueRows {
    fn name(&self) -> &str {
        ROWS_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::new_list(arg_types[0].clone(), true))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(RowsAccumulator {
            data_type: acc_args.exprs[0].data_type(acc_args.schema)?,
            values: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[rows]", args.name),
            DataType::new_list(args.input_fields[0].data_type().clone(), true),
            true,
        ))])
    }
}

#[derive(Debug)]
struct RowsAccumulator {
    data_type: DataType,
    values: Vec<ScalarValue>,
}

impl RowsAccumulator {
    fn take_from(&mut self, array: &ArrayRef) -> DfResult<()> {
        let mut i = 0;
        while self.values.len() < 2 && i < array.len() {
            self.values.push(ScalarValue::try_from_array(array, i)?);
            i += 1;
        }
        Ok(())
    }

    fn list(&self) -> ScalarValue {
        if self.values.is_empty() {
            return ScalarValue::List(Arc::new(ListArray::new_null(
                Arc::new(Field::new_list_field(self.data_type.clone(), true)),
                1,
            )));
        }
        ScalarValue::List(ScalarValue::new_list_nullable(
            &self.values,
            &self.data_type,
        ))
    }
}

impl Accumulator for RowsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.take_from(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if self.values.len() >= 2 {
                break;
            }
            if lists.is_valid(i) {
                self.take_from(&lists.value(i))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.list()])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(self.list())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.iter().map(ScalarValue::size).sum::<usize>()
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValue {
    signature: Signature,
}

impl ScalarUDFImpl for SingleValue {
    fn name(&self) -> &str {
        VALUE_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match &arg_types[0] {
            DataType::List(f) => Ok(f.data_type().clone()),
            DataType::Null => Ok(DataType::Null),
            other => {
                exec_err!("{VALUE_FUNCTION} takes the list {ROWS_FUNCTION} makes, not {other}")
            }
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let return_type = args.return_field.data_type().clone();
        let is_scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let array = args.args[0].to_array(args.number_rows)?;
        if array.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        }
        let lists = array.as_list::<i32>();
        let mut out = Vec::with_capacity(lists.len());
        for i in 0..lists.len() {
            if lists.is_null(i) {
                out.push(ScalarValue::try_from(&return_type)?);
                continue;
            }
            let values = lists.value(i);
            match values.len() {
                0 => out.push(ScalarValue::try_from(&return_type)?),
                1 => out.push(ScalarValue::try_from_array(&values, 0)?),
                _ => return Err(more_than_one_row()),
            }
        }
        if is_scalar {
            return Ok(ColumnarValue::Scalar(
                out.pop().unwrap_or(ScalarValue::try_from(&return_type)?),
            ));
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(arrow::array::new_empty_array(
                &return_type,
            )));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

/// PostgreSQL's error for a scalar subquery with two rows (SQLSTATE 21000).
fn more_than_one_row() -> datafusion::error::DataFusionError {
    crate::error::to_datafusion(hourglass_core::Error::invalid(MORE_THAN_ONE_ROW))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        rewrite(&mut statements[0]);
        statements[0].to_string()
    }

    #[test]
    fn non_aggregated_becomes_single_value() {
        assert_eq!(
            rewritten("SELECT (SELECT t.x FROM t WHERE t.k = o.k) FROM o"),
            "SELECT single_value((SELECT single_value_rows(t.x) FROM t WHERE t.k = o.k)) AS \"x\" FROM o"
        );
        assert_eq!(
            rewritten("SELECT (SELECT a.x AS y FROM s.t AS a WHERE a.k = s.o.k) FROM s.o"),
            "SELECT single_value((SELECT single_value_rows(a.x) AS y FROM s.t AS a WHERE a.k = s.o.k)) AS \"y\" FROM s.o"
        );
    }

    #[test]
    fn outer_only_conjuncts_move_out() {
        assert_eq!(
            rewritten("SELECT (SELECT t.x FROM t WHERE o.flag AND t.k = o.k AND o.k > 1) FROM o"),
            "SELECT single_value(CASE WHEN o.flag AND (o.k > 1) THEN (SELECT single_value_rows(t.x) FROM t WHERE t.k = o.k) ELSE NULL END) AS \"x\" FROM o"
        );
        // Every conjunct outer: the subquery is no longer correlated.
        assert_eq!(
            rewritten("SELECT (SELECT t.x FROM t WHERE o.flag) FROM o"),
            "SELECT single_value(CASE WHEN o.flag THEN (SELECT single_value_rows(t.x) FROM t) ELSE NULL END) AS \"x\" FROM o"
        );
    }

    #[test]
    fn outer_columns_in_the_projection() {
        assert_eq!(
            rewritten("SELECT (SELECT o.c + t.x FROM t WHERE t.k = o.k) FROM o"),
            "SELECT CASE WHEN single_value((SELECT single_value_rows(1) FROM t WHERE t.k = o.k)) IS NULL THEN NULL \
             ELSE o.c + single_value((SELECT single_value_rows(t.x) FROM t WHERE t.k = o.k)) END FROM o"
        );
    }

    #[test]
    fn outer_only_conjuncts_and_outer_columns_in_the_projection() {
        assert_eq!(
            rewritten("SELECT (SELECT o.c + t.x FROM t WHERE o.f AND t.k = o.k) FROM o"),
            "SELECT CASE WHEN single_value(CASE WHEN o.f THEN (SELECT single_value_rows(1) FROM t WHERE t.k = o.k) ELSE NULL END) IS NULL THEN NULL \
             ELSE o.c + single_value(CASE WHEN o.f THEN (SELECT single_value_rows(t.x) FROM t WHERE t.k = o.k) ELSE NULL END) END FROM o"
        );
    }

    #[test]
    fn sqlalchemy_columns_query_shape() {
        let sql = "SELECT CASE WHEN pg_catalog.pg_attribute.atthasdef THEN (SELECT pg_catalog.pg_get_expr(pg_catalog.pg_attrdef.adbin, pg_catalog.pg_attrdef.adrelid) AS pg_get_expr_1 \
             FROM pg_catalog.pg_attrdef WHERE pg_catalog.pg_attribute.atthasdef AND pg_catalog.pg_attrdef.adrelid = pg_catalog.pg_attribute.attrelid) ELSE NULL END \
             FROM pg_catalog.pg_attribute";
        assert_eq!(
            rewritten(sql),
            "SELECT CASE WHEN pg_catalog.pg_attribute.atthasdef THEN single_value(CASE WHEN pg_catalog.pg_attribute.atthasdef THEN \
             (SELECT single_value_rows(pg_catalog.pg_get_expr(pg_catalog.pg_attrdef.adbin, pg_catalog.pg_attrdef.adrelid)) AS pg_get_expr_1 \
             FROM pg_catalog.pg_attrdef WHERE pg_catalog.pg_attrdef.adrelid = pg_catalog.pg_attribute.attrelid) ELSE NULL END) ELSE NULL END \
             FROM pg_catalog.pg_attribute"
        );
    }

    #[test]
    fn unaliased_items_keep_postgresql_names() {
        assert_eq!(
            rewritten("SELECT o.k, (SELECT t.x FROM t WHERE t.k = o.k), (SELECT t.x AS y FROM t WHERE t.k = o.k) FROM o"),
            "SELECT o.k, single_value((SELECT single_value_rows(t.x) FROM t WHERE t.k = o.k)) AS \"x\", \
             single_value((SELECT single_value_rows(t.x) AS y FROM t WHERE t.k = o.k)) AS \"y\" FROM o"
        );
        // A name another item has is left to DataFusion.
        assert_eq!(
            rewritten("SELECT o.k, (SELECT t.k FROM t WHERE t.k = o.k) FROM o"),
            "SELECT o.k, single_value((SELECT single_value_rows(t.k) FROM t WHERE t.k = o.k)) FROM o"
        );
    }

    #[test]
    fn left_alone() {
        for sql in [
            // Aggregated: DataFusion plans it.
            "SELECT (SELECT max(t.x) FROM t WHERE t.k = o.k) FROM o",
            "SELECT (SELECT count(*) FROM t WHERE t.k = o.k) FROM o",
            // Uncorrelated.
            "SELECT (SELECT t.x FROM t WHERE t.k = 1) FROM o",
            // Unqualified identifiers.
            "SELECT (SELECT x FROM t WHERE t.k = o.k) FROM o",
            "SELECT (SELECT t.x FROM t WHERE k = o.k) FROM o",
            // A qualifier naming something not in scope, or maybe an inner relation.
            "SELECT (SELECT t.x FROM t WHERE t.k = z.k) FROM o",
            "SELECT (SELECT t.x FROM t WHERE t.k = s.t.k) FROM o",
            // Clauses that stop it.
            "SELECT (SELECT t.x FROM t WHERE t.k = o.k LIMIT 1) FROM o",
            "SELECT (SELECT t.x FROM t WHERE t.k = o.k ORDER BY t.x) FROM o",
            "SELECT (SELECT DISTINCT t.x FROM t WHERE t.k = o.k) FROM o",
            "SELECT (SELECT t.x FROM t WHERE t.k = o.k GROUP BY t.x) FROM o",
            "SELECT (SELECT row_number() OVER () FROM t WHERE t.k = o.k) FROM o",
            "SELECT (SELECT t.x FROM t WHERE t.k = o.k UNION SELECT 1) FROM o",
            // Nested subquery, derived table, ANY.
            "SELECT (SELECT t.x FROM t WHERE t.k = (SELECT max(u.k) FROM u WHERE u.k = o.k)) FROM o",
            "SELECT (SELECT d.x FROM (SELECT 1 AS x) AS d WHERE d.x = o.k) FROM o",
            "SELECT o.k = ANY (SELECT t.x FROM t WHERE t.k = o.k) FROM o",
        ] {
            let original = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0].to_string();
            assert_eq!(rewritten(sql), original, "{sql}");
        }
    }
}
