//! The catalog information functions psql's meta-commands call, registered on every session
//! after [`crate::functions::register`]'s:
//!
//! * `pg_encoding_to_char(int)` / `pg_char_to_encoding(name)` over PostgreSQL's encoding
//!   numbers (`\l`, `\dc`, `\dO`), and `getdatabaseencoding()` (`UTF8`);
//! * `pg_tablespace_location(oid)` (`\db`): empty for the built-in tablespaces, as PostgreSQL
//!   answers for `pg_default` and `pg_global`;
//! * `pg_database_size(name | oid)` (`\l+`): the bytes the database's tables hold, in Parquet
//!   files and in memory ([`crate::catalog::database_size`]);
//! * `pg_*_is_visible(oid)` of the objects `pg_catalog` lists none of (conversions, operators,
//!   operator classes and families, text search objects, extended statistics): true, like
//!   `pg_type_is_visible`;
//! * `array(...)`: DataFusion drops the subquery of `ARRAY(SELECT ...)` (psql 15's `\du`,
//!   `\dy`, `\dD`) and calls `array()`; planning it fails with a clear error rather than
//!   answering without the subquery.
//!
//! And the SQL types psql casts to that DataFusion does not know ([`PgTypes`]): the
//! schema-qualified built-in types (`CAST('*' AS pg_catalog.text)` in `\da` and `\dd`), `oid`
//! and `regproc` (OIDs are `bigint` here; `pg_proc` lists no functions, so PostgreSQL too would
//! print a `regproc` as its number). DataFusion has no setter for a session's type planner:
//! the session state is built again with it, and taken only when every function name still
//! resolves to the same function (otherwise the types stay unknown, and a warning is logged).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::catalog::CatalogProvider;
use datafusion::common::{not_impl_err, Result as DfResult, ScalarValue};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::DataType as SqlDataType;
use hourglass_query::catalog::CATALOG_NAME;

use crate::functions::{Constant, Mapped};

/// PostgreSQL's encodings, by number (`pg_wchar.h`).
const ENCODINGS: &[&str] = &[
    "SQL_ASCII",
    "EUC_JP",
    "EUC_CN",
    "EUC_KR",
    "EUC_TW",
    "EUC_JIS_2004",
    "UTF8",
    "MULE_INTERNAL",
    "LATIN1",
    "LATIN2",
    "LATIN3",
    "LATIN4",
    "LATIN5",
    "LATIN6",
    "LATIN7",
    "LATIN8",
    "LATIN9",
    "LATIN10",
    "WIN1256",
    "WIN1258",
    "WIN866",
    "WIN874",
    "KOI8R",
    "WIN1251",
    "WIN1252",
    "ISO_8859_5",
    "ISO_8859_6",
    "ISO_8859_7",
    "ISO_8859_8",
    "WIN1250",
    "WIN1253",
    "WIN1254",
    "WIN1255",
    "WIN1257",
    "KOI8U",
    "SJIS",
    "BIG5",
    "GBK",
    "UHC",
    "GB18030",
    "JOHAB",
    "SHIFT_JIS_2004",
];

/// The database encoding (`getdatabaseencoding()`).
const DATABASE_ENCODING: &str = "UTF8";

/// The built-in tablespaces: `pg_default` and `pg_global`.
const TABLESPACES: &[i64] = &[1663, 1664];

/// `pg_encoding_to_char(n)`: the encoding's name, empty for a number that is none.
pub fn encoding_to_char(n: i64) -> &'static str {
    usize::try_from(n)
        .ok()
        .and_then(|i| ENCODINGS.get(i))
        .copied()
        .unwrap_or("")
}

/// `pg_char_to_encoding(name)`: the encoding's number, -1 for a name that is none. Case and
/// punctuation are ignored (`utf-8` is `UTF8`), as PostgreSQL does; `unicode` is `UTF8`.
pub fn char_to_encoding(name: &str) -> i32 {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = clean(name);
    if wanted == "unicode" {
        return 6;
    }
    ENCODINGS
        .iter()
        .position(|e| clean(e) == wanted)
        .map_or(-1, |i| i as i32)
}

/// Registers the functions on `ctx` (whose `hourglass` catalog is registered already).
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(udf("pg_encoding_to_char", 1, DataType::Utf8, |args| {
        let n = cast(&args[0], &DataType::Int64)?;
        let out: StringArray = n
            .as_primitive::<Int64Type>()
            .iter()
            .map(|n| n.map(encoding_to_char))
            .collect();
        Ok(Arc::new(out))
    }));
    ctx.register_udf(udf("pg_char_to_encoding", 1, DataType::Int32, |args| {
        let names = cast(&args[0], &DataType::Utf8)?;
        let out: Int32Array = names
            .as_string::<i32>()
            .iter()
            .map(|n| n.map(char_to_encoding))
            .collect();
        Ok(Arc::new(out))
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(
        "getdatabaseencoding",
        ScalarValue::Utf8(Some(DATABASE_ENCODING.to_string())),
    )));
    ctx.register_udf(udf("pg_tablespace_location", 1, DataType::Utf8, |args| {
        let oids = cast(&args[0], &DataType::Int64)?;
        let out: StringArray = oids
            .as_primitive::<Int64Type>()
            .iter()
            .map(|o| o.filter(|o| TABLESPACES.contains(o)).map(|_| ""))
            .collect();
        Ok(Arc::new(out))
    }));
    for name in [
        "pg_conversion_is_visible",
        "pg_operator_is_visible",
        "pg_opclass_is_visible",
        "pg_opfamily_is_visible",
        "pg_ts_config_is_visible",
        "pg_ts_dict_is_visible",
        "pg_ts_parser_is_visible",
        "pg_ts_template_is_visible",
        "pg_statistics_obj_is_visible",
    ] {
        ctx.register_udf(udf(name, 1, DataType::Boolean, |args| {
            let out: datafusion::arrow::array::BooleanArray = (0..args[0].len())
                .map(|i| (!args[0].is_null(i)).then_some(true))
                .collect();
            Ok(Arc::new(out))
        }));
    }
    if let Some(catalog) = ctx.catalog(CATALOG_NAME) {
        ctx.register_udf(database_size(catalog));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(ArraySubquery::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::with_signature(
        "format",
        Signature::variadic_any(Volatility::Stable),
        DataType::Utf8,
        Arc::new(format_arrays),
    )));
    let state = ctx.state();
    let utf8_view = state
        .config_options()
        .sql_parser
        .map_string_types_to_utf8view;
    let mut builder = SessionStateBuilder::new_from_existing(state);
    let previous = builder.type_planner().clone();
    if previous
        .as_ref()
        .is_some_and(|p| format!("{p:?}").starts_with("PgTypes"))
    {
        return;
    }
    let planner = Arc::new(PgTypes {
        text: if utf8_view {
            DataType::Utf8View
        } else {
            DataType::Utf8
        },
        previous,
    });
    let state = builder.with_type_planner(planner).build();
    // Rebuilding registers every function again, aliases included: a function that replaced
    // an alias of another (or was replaced by one) could be replaced back. The new state is
    // taken only when every name still resolves to the same function.
    let before = ctx.state_ref();
    let mut before = before.write();
    if same_functions(&before, &state) {
        *before = state;
    } else {
        tracing::warn!(
            "pg_catalog types not registered: rebuilding the session changes its functions"
        );
    }
}

/// Whether every function name resolves to the same function in `a` and `b`.
fn same_functions(a: &SessionState, b: &SessionState) -> bool {
    // Equal, not the same `Arc`: building the state makes `now()` and `to_timestamp()` again
    // for its configuration.
    fn same<T: PartialEq>(a: &HashMap<String, Arc<T>>, b: &HashMap<String, Arc<T>>) -> bool {
        a.len() == b.len()
            && a.iter()
                .all(|(k, f)| b.get(k).is_some_and(|g| Arc::ptr_eq(f, g) || f == g))
    }
    same(a.scalar_functions(), b.scalar_functions())
        && same(a.aggregate_functions(), b.aggregate_functions())
        && same(a.window_functions(), b.window_functions())
}

/// The PostgreSQL types DataFusion's SQL planner does not know: `pg_catalog.T` for the
/// built-in types T (as the unqualified type), `oid` and `regproc` (`bigint`). Other types are
/// left to the planner set before, if any, then to DataFusion.
#[derive(Debug)]
pub struct PgTypes {
    /// What DataFusion plans `text` as.
    text: DataType,
    previous: Option<Arc<dyn TypePlanner>>,
}

impl PgTypes {
    fn builtin(&self, name: &str) -> Option<DataType> {
        Some(match name {
            "text" | "varchar" | "bpchar" | "name" | "char" => self.text.clone(),
            "bool" | "boolean" => DataType::Boolean,
            "int2" | "smallint" => DataType::Int16,
            "int4" | "integer" | "int" => DataType::Int32,
            "int8" | "bigint" | "oid" | "regproc" => DataType::Int64,
            "float4" | "real" => DataType::Float32,
            "float8" => DataType::Float64,
            "date" => DataType::Date32,
            _ => return None,
        })
    }
}

impl TypePlanner for PgTypes {
    fn plan_type_field(&self, sql_type: &SqlDataType) -> DfResult<Option<FieldRef>> {
        if let SqlDataType::Custom(name, modifiers) = sql_type {
            let parts: Vec<String> = name
                .0
                .iter()
                .map(|p| p.to_string().trim_matches('"').to_ascii_lowercase())
                .collect();
            let planned = match parts.as_slice() {
                [schema, t] if schema == crate::catalog::PG_CATALOG && modifiers.is_empty() => {
                    self.builtin(t)
                }
                [t] if (t == "oid" || t == "regproc") && modifiers.is_empty() => self.builtin(t),
                _ => None,
            };
            if let Some(t) = planned {
                return Ok(Some(Arc::new(Field::new("", t, true))));
            }
        }
        match &self.previous {
            Some(p) => p.plan_type_field(sql_type),
            None => Ok(None),
        }
    }
}

/// `pg_database_size(name | oid)` over `catalog`: NULL for a database the session does not see.
fn database_size(catalog: Arc<dyn CatalogProvider>) -> ScalarUDF {
    udf_with("pg_database_size", 1, DataType::Int64, move |args| {
        let by_oid = args[0].data_type().is_integer();
        let keys = cast(&args[0], &DataType::Utf8)?;
        let names = catalog.schema_names();
        let out: Int64Array = keys
            .as_string::<i32>()
            .iter()
            .map(|key| {
                let key = key?;
                let db = if by_oid {
                    let oid: i64 = key.parse().ok()?;
                    names
                        .iter()
                        .find(|d| crate::catalog::database_oid(d) == oid)?
                } else {
                    names.iter().find(|d| d.as_str() == key)?
                };
                crate::catalog::database_size(catalog.as_ref(), db)
            })
            .collect();
        Ok(Arc::new(out))
    })
}

/// PostgreSQL's `format(fmt, args...)` with the conversions `%s` (the argument as text, NULL as
/// nothing), `%I` (quoted as an identifier where needed), `%L` (quoted as a literal, NULL as
/// `NULL`) and `%%`; positions, widths and flags are refused (psql's `\\dX` sends
/// `format('%s FROM %s', …)`). A NULL format gives NULL.
pub fn format_text(fmt: &str, args: &[Option<String>]) -> Result<String, String> {
    let mut out = String::with_capacity(fmt.len());
    let mut next = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let conversion = chars.next().ok_or("unterminated format() type specifier")?;
        if conversion == '%' {
            out.push('%');
            continue;
        }
        if !matches!(conversion, 's' | 'I' | 'L') {
            return Err(format!(
                "unrecognized format() type specifier \"{conversion}\" (Hourglass takes %s, %I, %L and %%)"
            ));
        }
        let arg = next.next().ok_or("too few arguments for format()")?;
        match (conversion, arg) {
            ('s', Some(v)) => out.push_str(v),
            ('s', None) => {}
            ('I', Some(v)) => out.push_str(&crate::functions::quote_ident(v)),
            ('I', None) => {
                return Err("null values cannot be formatted as an SQL identifier".into())
            }
            (_, Some(v)) => out.push_str(&crate::functions::quote_literal(v)),
            (_, None) => out.push_str("NULL"),
        }
    }
    Ok(out)
}

fn format_arrays(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let texts = args
        .iter()
        .map(|a| cast(a, &DataType::Utf8))
        .collect::<DfResult<Vec<_>>>()?;
    let n = texts.first().map_or(0, |a| a.len());
    let mut out = Vec::with_capacity(n);
    for row in 0..n {
        let value = |a: &ArrayRef| {
            let a = a.as_string::<i32>();
            a.is_valid(row).then(|| a.value(row).to_string())
        };
        let Some(fmt) = value(&texts[0]) else {
            out.push(None);
            continue;
        };
        let rest: Vec<Option<String>> = texts[1..].iter().map(value).collect();
        out.push(Some(
            format_text(&fmt, &rest).map_err(datafusion::error::DataFusionError::Execution)?,
        ));
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn cast(a: &ArrayRef, to: &DataType) -> DfResult<ArrayRef> {
    Ok(datafusion::arrow::compute::cast(a, to)?)
}

fn udf(
    name: &str,
    arity: usize,
    returns: DataType,
    f: fn(&[ArrayRef]) -> DfResult<ArrayRef>,
) -> ScalarUDF {
    udf_with(name, arity, returns, f)
}

fn udf_with(
    name: &str,
    arity: usize,
    returns: DataType,
    f: impl Fn(&[ArrayRef]) -> DfResult<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(Mapped::new(name, arity, returns, Arc::new(f)))
}

/// `array(...)`, what DataFusion plans `ARRAY(subquery)` as (the subquery dropped): refused.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArraySubquery {
    signature: Signature,
}

impl ArraySubquery {
    fn new() -> Self {
        ArraySubquery {
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Stable,
            ),
        }
    }
}

impl ScalarUDFImpl for ArraySubquery {
    fn name(&self) -> &str {
        "array"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        not_impl_err!("ARRAY(subquery) is not supported")
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        not_impl_err!("ARRAY(subquery) is not supported")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn format_as_postgresql_does() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            format_text("%s FROM %s", &[s("a, b"), s("cpu")]).unwrap(),
            "a, b FROM cpu"
        );
        assert_eq!(
            format_text(
                "%I.%I = %L, %L%%%s",
                &[s("My"), s("x"), s("it's"), None, None]
            )
            .unwrap(),
            "\"My\".x = 'it''s', NULL%"
        );
        assert!(format_text("%s %s", &[s("a")]).is_err());
        assert!(format_text("%1$s", &[s("a")]).is_err());
        assert!(format_text("%I", &[None]).is_err());
    }

    #[test]
    fn encodings_by_number_and_name() {
        assert_eq!(encoding_to_char(6), "UTF8");
        assert_eq!(encoding_to_char(0), "SQL_ASCII");
        assert_eq!(encoding_to_char(8), "LATIN1");
        assert_eq!(encoding_to_char(41), "SHIFT_JIS_2004");
        assert_eq!(encoding_to_char(-1), "");
        assert_eq!(encoding_to_char(42), "");
        assert_eq!(char_to_encoding("UTF8"), 6);
        assert_eq!(char_to_encoding("utf-8"), 6);
        assert_eq!(char_to_encoding("unicode"), 6);
        assert_eq!(char_to_encoding("latin1"), 8);
        assert_eq!(char_to_encoding("ISO_8859_5"), 25);
        assert_eq!(char_to_encoding("klingon"), -1);
        for (i, name) in ENCODINGS.iter().enumerate() {
            assert_eq!(char_to_encoding(name), i as i32);
        }
    }

    async fn one_row(ctx: &SessionContext, sql: &str) -> Vec<Option<String>> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches[0]
            .columns()
            .iter()
            .map(|c| {
                let c = cast(c, &DataType::Utf8).unwrap();
                let c = c.as_string::<i32>();
                (!c.is_null(0)).then(|| c.value(0).to_string())
            })
            .collect()
    }

    #[tokio::test]
    async fn the_functions_psql_calls() {
        let ctx = SessionContext::new();
        register(&ctx);
        let row = one_row(
            &ctx,
            "SELECT pg_encoding_to_char(6), pg_char_to_encoding(getdatabaseencoding()), \
             pg_tablespace_location(1663), pg_tablespace_location(1664), \
             pg_tablespace_location(5), pg_encoding_to_char(CAST(NULL AS INT)), \
             pg_operator_is_visible(1), pg_ts_config_is_visible(CAST(NULL AS BIGINT))",
        )
        .await;
        let want = [
            Some("UTF8"),
            Some("6"),
            Some(""),
            Some(""),
            None,
            None,
            Some("true"),
            None,
        ];
        let want: Vec<Option<String>> = want.iter().map(|w| w.map(str::to_string)).collect();
        assert_eq!(row, want);
        let batches = ctx
            .sql("SELECT pg_char_to_encoding(e) FROM (VALUES ('UTF8'), ('LATIN1'), ('x')) AS t(e)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let got: Vec<Option<i32>> = batches[0]
            .column(0)
            .as_primitive::<Int32Type>()
            .iter()
            .collect();
        assert_eq!(got, [Some(6), Some(8), Some(-1)]);
    }

    #[tokio::test]
    async fn array_of_a_subquery_is_refused_not_answered_without_it() {
        let ctx = SessionContext::new();
        register(&ctx);
        let err = ctx
            .sql("SELECT ARRAY(SELECT 1) AS a")
            .await
            .expect_err("planning ARRAY(subquery) fails");
        assert!(
            err.to_string().contains("ARRAY(subquery) is not supported"),
            "{err}"
        );
        // ARRAY[...] is not a function call and still works.
        let row = one_row(&ctx, "SELECT array_length(ARRAY[1, 2, 3], 1)").await;
        assert_eq!(row, [Some("3".to_string())]);
    }

    #[tokio::test]
    async fn pg_catalog_qualified_types_oid_and_regproc_are_planned() {
        let ctx = SessionContext::new();
        register(&ctx);
        register(&ctx);
        let row = one_row(
            &ctx,
            "SELECT CAST('*' AS pg_catalog.text), CAST(7 AS pg_catalog.int8) + 1, \
             CAST('12' AS oid), CAST(CAST(0 AS regproc) AS oid), CAST(1 AS \"pg_catalog\".bool)",
        )
        .await;
        let want = ["*", "8", "12", "0", "true"];
        let want: Vec<Option<String>> = want.iter().map(|w| Some(w.to_string())).collect();
        assert_eq!(row, want);
        let err = ctx
            .sql("SELECT CAST(1 AS pg_catalog.nosuchtype)")
            .await
            .expect_err("an unknown type is refused");
        assert!(err.to_string().contains("nosuchtype"), "{err}");
    }

    #[tokio::test]
    async fn a_function_replacing_an_alias_stays_registered() {
        // `current_timestamp` is an alias of DataFusion's `now`: registering the session's
        // functions again must not bring `now` back under that name.
        for _ in 0..8 {
            let ctx = SessionContext::new();
            ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(
                "current_timestamp",
                ScalarValue::Utf8(Some("mine".to_string())),
            )));
            register(&ctx);
            let row = one_row(&ctx, "SELECT current_timestamp()").await;
            assert_eq!(row, [Some("mine".to_string())]);
        }
    }

    #[tokio::test]
    async fn database_sizes_are_null_for_databases_not_seen() {
        let ctx = SessionContext::new();
        let catalog = Arc::new(crate::catalog::WithPgCatalog::new(
            Arc::new(datafusion::catalog::MemoryCatalogProvider::new()),
            vec![],
        ));
        ctx.register_catalog(CATALOG_NAME, catalog);
        register(&ctx);
        let row = one_row(&ctx, "SELECT pg_database_size('nope'), pg_database_size(1)").await;
        assert_eq!(row, [None, None]);
    }
}
