//! `measure_value::double` and its siblings: in Timestream the `::<type>` is part of the column
//! name of a single-measure record's value, not a cast (Trino has no `::`).
//!
//! The parser reads `measure_value::double` as a `::` cast of the identifier `measure_value`;
//! when the cast's target is one of the measure types and the expression is the bare identifier
//! `measure_value` (or `t.measure_value`), the cast becomes the quoted identifier
//! `"measure_value::double"`, keeping the identifier's span. Any other `::` cast stays a cast.

use datafusion::sql::sqlparser::ast::{CastKind, Expr, Ident};

use super::ast_util::quoted;

/// The measure types a `measure_value::<type>` column can have.
pub const MEASURE_TYPES: [&str; 5] = ["double", "bigint", "varchar", "boolean", "timestamp"];

/// The column name for `measure_value::<type>`, if `data_type` names a measure type.
pub fn column_name(data_type: &str) -> Option<String> {
    let t = data_type.to_ascii_lowercase();
    MEASURE_TYPES
        .contains(&t.as_str())
        .then(|| format!("measure_value::{t}"))
}

fn is_measure_value(id: &Ident) -> bool {
    id.quote_style.is_none() && id.value.eq_ignore_ascii_case("measure_value")
}

/// Rewrites `expr` in place if it is a `measure_value::<type>` cast.
pub fn rewrite(expr: &mut Expr) {
    let Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: inner,
        data_type,
        format: None,
        ..
    } = expr
    else {
        return;
    };
    let Some(name) = column_name(&data_type.to_string()) else {
        return;
    };
    let replacement = match inner.as_ref() {
        Expr::Identifier(id) if is_measure_value(id) => Expr::Identifier(quoted(&name, id.span)),
        Expr::CompoundIdentifier(ids) if ids.last().is_some_and(is_measure_value) => {
            let mut ids = ids.clone();
            if let Some(last) = ids.last_mut() {
                *last = quoted(&name, last.span);
            }
            Expr::CompoundIdentifier(ids)
        }
        _ => return,
    };
    *expr = replacement;
}
