//! Functions PostgreSQL clients and TimescaleDB users call, registered on every session this
//! endpoint creates: `time_bucket`, `version()`, `current_database()`, `current_schema()`,
//! `current_user`, and the catalog helpers psql and BI tools use (`pg_table_is_visible`,
//! `pg_get_userbyid`, `format_type`, `obj_description`, `col_description`, `pg_backend_pid`,
//! and the JDBC driver's `current_schemas(bool)` and `pg_get_expr`),
//! and those of Grafana's query editor (`current_setting`, `quote_ident`, `parse_ident`);
//! plus the `pg_get_*def` functions, `has_*_privilege`, relation sizes and `pg_size_pretty`,
//! `array_lower`/`array_upper`, `to_regtype`/`to_regclass`, `json_build_object` and
//! `generate_subscripts` that psql, psycopg and SQLAlchemy's Inspector call; and
//! `quote_literal`/`quote_nullable` (asyncpg's `copy_from_query` with arguments inlines them
//! with `quote_literal`) and `set_config` (accepted, not applied). `current_user`,
//! `session_user` and `user` are the connection's user.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::ListBuilder;
use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, TimeUnit};
use datafusion::catalog::CatalogProvider;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::catalog::{format_type_name, table_oid};

/// TimescaleDB's default origin of `time_bucket`: Monday 2000-01-03 00:00:00 UTC.
const TIME_BUCKET_ORIGIN_NANOS: i64 = 946_857_600_000_000_000;

/// The reported server version (`version()`, `SHOW server_version`).
pub const SERVER_VERSION: &str = "16.6";

pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (Hourglass {}), compatible; Apache DataFusion backend",
        env!("CARGO_PKG_VERSION")
    )
}

/// Registers every function on `ctx`, for a connection to `database`.
pub fn register(ctx: &SessionContext, database: &str, catalog: Arc<dyn CatalogProvider>) {
    ctx.register_udf(ScalarUDF::new_from_impl(TimeBucket::new()));
    register_catalog_helpers(ctx);
    let text = |name: &str, value: String| {
        ScalarUDF::new_from_impl(Constant::new(name, ScalarValue::Utf8(Some(value))))
    };
    ctx.register_udf(text("version", version_string()));
    ctx.register_udf(text("current_database", database.to_string()));
    ctx.register_udf(text("current_schema", database.to_string()));
    ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(
        "pg_backend_pid",
        ScalarValue::Int32(Some(std::process::id() as i32)),
    )));
    let schema_db = database.to_string();
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "current_schemas",
        1,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Arc::new(move |args: &[ArrayRef]| {
            // `current_schemas(include_implicit)`: the search path, `pg_catalog` (implicitly
            // searched first) included when asked. The JDBC driver's getSchemas reads `[1]`.
            let implicit = datafusion::arrow::compute::cast(&args[0], &DataType::Boolean)?;
            let mut out = ListBuilder::new(StringBuilder::new());
            for flag in implicit.as_boolean().iter() {
                match flag {
                    None => out.append_null(),
                    Some(flag) => {
                        if flag {
                            out.values().append_value(crate::catalog::PG_CATALOG);
                        }
                        out.values().append_value(&schema_db);
                        out.append(true);
                    }
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        }),
    )));
    // `pg_get_expr(expr, relation)`: the catalog stores no expression trees here (no defaults,
    // no partial indexes), so the text stored is the text returned.
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::arities(
        "pg_get_expr",
        &[2, 3],
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef]| {
            Ok(datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?)
        }),
    )));
    let database = database.to_string();
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "pg_table_is_visible",
        1,
        DataType::Boolean,
        Arc::new(move |args: &[ArrayRef]| {
            let visible: Vec<i64> = catalog
                .schema(&database)
                .map(|s| {
                    s.table_names()
                        .iter()
                        .map(|t| table_oid(&database, t))
                        .collect()
                })
                .unwrap_or_default();
            let oids = cast_i64(&args[0])?;
            let out: BooleanArray = oids
                .as_primitive::<Int64Type>()
                .iter()
                .map(|o| o.map(|o| visible.contains(&o)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        }),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "pg_get_userbyid",
        1,
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef]| {
            let out: StringArray = (0..args[0].len())
                .map(|i| (!args[0].is_null(i)).then_some("hourglass"))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        }),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "format_type",
        2,
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef]| {
            let oids = cast_i64(&args[0])?;
            let out: StringArray = oids
                .as_primitive::<Int64Type>()
                .iter()
                .map(|o| o.map(format_type_name))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        }),
    )));
    for (name, arities) in [
        ("obj_description", &[1, 2][..]),
        ("col_description", &[2]),
        ("shobj_description", &[2]),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Mapped::arities(
            name,
            arities,
            DataType::Utf8,
            Arc::new(|args: &[ArrayRef]| {
                let out: StringArray = (0..args[0].len()).map(|_| None::<&str>).collect();
                Ok(Arc::new(out) as ArrayRef)
            }),
        )));
    }
    crate::catalog_functions::register(ctx);
}

/// The catalog helpers whose answer follows from Hourglass having no indexes, constraints,
/// views, sequences, functions, comments or privileges to check: `pg_get_*def` of an object
/// that cannot exist is NULL (as PostgreSQL answers for an unknown OID), every privilege is
/// held (the endpoint is read-only; authorization is checked by the query itself), sizes are 0.
fn register_catalog_helpers(ctx: &SessionContext) {
    let nulls = |name: &str, arities: &[usize], returns: DataType| {
        let out_type = returns.clone();
        ScalarUDF::new_from_impl(Mapped::arities(
            name,
            arities,
            returns,
            Arc::new(move |args: &[ArrayRef]| {
                let n = args.first().map_or(1, |a| a.len());
                Ok(datafusion::arrow::array::new_null_array(&out_type, n))
            }),
        ))
    };
    for (name, arities) in [
        ("pg_get_constraintdef", &[1, 2][..]),
        ("pg_get_indexdef", &[1, 3]),
        ("pg_get_viewdef", &[1, 2]),
        ("pg_get_serial_sequence", &[2]),
        ("pg_get_function_arguments", &[1]),
        ("pg_get_function_identity_arguments", &[1]),
        ("pg_get_function_result", &[1]),
        ("pg_get_functiondef", &[1]),
        ("pg_get_triggerdef", &[1, 2]),
        ("pg_get_ruledef", &[1, 2]),
        ("pg_get_statisticsobjdef_columns", &[1]),
        ("pg_get_partkeydef", &[1]),
        ("pg_get_partition_constraintdef", &[1]),
    ] {
        ctx.register_udf(nulls(name, arities, DataType::Utf8));
    }
    let constant = |name: &str, arities: &[usize], value: ScalarValue| {
        ScalarUDF::new_from_impl(Mapped::arities(
            name,
            arities,
            value.data_type(),
            Arc::new(move |args: &[ArrayRef]| {
                let n = args.first().map_or(1, |a| a.len());
                value.to_array_of_size(n)
            }),
        ))
    };
    for (name, arities) in [
        ("has_table_privilege", &[2, 3][..]),
        ("has_schema_privilege", &[2, 3]),
        ("has_database_privilege", &[2, 3]),
        ("has_column_privilege", &[3, 4]),
        ("has_sequence_privilege", &[2, 3]),
        ("has_function_privilege", &[2, 3]),
        ("has_any_column_privilege", &[2, 3]),
        ("pg_has_role", &[2, 3]),
        ("pg_collation_is_visible", &[1]),
        ("pg_type_is_visible", &[1]),
        ("pg_function_is_visible", &[1]),
    ] {
        ctx.register_udf(constant(name, arities, ScalarValue::Boolean(Some(true))));
    }
    for name in [
        "pg_total_relation_size",
        "pg_table_size",
        "pg_relation_size",
        "pg_indexes_size",
    ] {
        ctx.register_udf(constant(name, &[1, 2], ScalarValue::Int64(Some(0))));
    }
    // `pg_database_size` and `pg_encoding_to_char` are answered by [`crate::catalog_functions`].
    // `to_regtype(name)` / `to_regclass(name)`: the OID of the type or catalog relation named,
    // NULL for a name that is none.
    type Lookup = fn(&str) -> Option<i64>;
    let lookups: [(&str, Lookup); 2] = [
        ("to_regtype", crate::catalog::type_oid_by_name),
        ("to_regclass", crate::statements::catalog_relation_oid),
    ];
    for (name, lookup) in lookups {
        ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
            name,
            1,
            DataType::Int64,
            Arc::new(move |args: &[ArrayRef]| {
                let names = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
                let out: datafusion::arrow::array::Int64Array = names
                    .as_string::<i32>()
                    .iter()
                    .map(|n| n.and_then(lookup))
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            }),
        )));
    }
    // The subscripts of a one-dimensional array, as a list: `statements::rewrite` unnests it,
    // making PostgreSQL's set-returning `generate_subscripts(a, 1)`.
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "generate_subscripts",
        2,
        DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
        Arc::new(|args: &[ArrayRef]| {
            let upper = array_bound(&args[0], &args[1], true)?;
            let mut out = ListBuilder::new(datafusion::arrow::array::Int32Builder::new());
            for n in upper
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .iter()
            {
                for i in 1..=n.unwrap_or(0) {
                    out.values().append_value(i);
                }
                out.append(true);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        }),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::arities(
        "json_build_object",
        &[0, 2, 4, 6, 8, 10, 12, 14, 16],
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef]| json_build_object(args)),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "pg_size_pretty",
        1,
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef]| {
            let sizes = cast_i64(&args[0])?;
            let out: StringArray = sizes
                .as_primitive::<Int64Type>()
                .iter()
                .map(|s| s.map(size_pretty))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        }),
    )));
    for (name, upper) in [("array_lower", false), ("array_upper", true)] {
        ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
            name,
            2,
            DataType::Int32,
            Arc::new(move |args: &[ArrayRef]| array_bound(&args[0], &args[1], upper)),
        )));
    }
}

/// `array_lower(a, dim)` / `array_upper(a, dim)` of one-dimensional lists: 1 and the length,
/// NULL for an empty or NULL array or another dimension.
fn array_bound(arrays: &ArrayRef, dims: &ArrayRef, upper: bool) -> DfResult<ArrayRef> {
    let dims = cast_i64(dims)?;
    let dims = dims.as_primitive::<Int64Type>();
    let len = |i: usize| -> Option<usize> {
        if arrays.is_null(i) {
            return None;
        }
        match arrays.data_type() {
            DataType::List(_) => Some(arrays.as_list::<i32>().value(i).len()),
            DataType::LargeList(_) => Some(arrays.as_list::<i64>().value(i).len()),
            _ => None,
        }
    };
    let out: datafusion::arrow::array::Int32Array = (0..arrays.len())
        .map(|i| {
            let n = len(i).filter(|n| *n > 0)?;
            (dims.is_valid(i) && dims.value(i) == 1).then_some(if upper { n as i32 } else { 1 })
        })
        .collect();
    Ok(Arc::new(out) as ArrayRef)
}

/// `json_build_object(k1, v1, ...)` as JSON text: numbers and booleans bare, NULL as `null`,
/// anything else a string.
fn json_build_object(args: &[ArrayRef]) -> DfResult<ArrayRef> {
    let rows = args.first().map_or(1, |a| a.len());
    let texts = args
        .iter()
        .map(|a| datafusion::arrow::compute::cast(a, &DataType::Utf8))
        .collect::<Result<Vec<_>, _>>()?;
    let quote = |v: &str| {
        let mut q = String::from('"');
        for c in v.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                c if (c as u32) < 0x20 => q.push_str(&format!("\\u{:04x}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    };
    let mut out = StringBuilder::new();
    for row in 0..rows {
        let mut parts = Vec::with_capacity(args.len() / 2);
        for pair in texts.chunks(2).zip(args.chunks(2)) {
            let (text, raw) = pair;
            let (Some(key), Some(value), Some(raw)) = (text.first(), text.get(1), raw.get(1))
            else {
                continue;
            };
            let key = key.as_string::<i32>();
            let key = if key.is_null(row) { "" } else { key.value(row) };
            let value_text = value.as_string::<i32>();
            let value = if value_text.is_null(row) {
                "null".to_string()
            } else if raw.data_type().is_numeric() || raw.data_type() == &DataType::Boolean {
                value_text.value(row).to_string()
            } else {
                quote(value_text.value(row))
            };
            parts.push(format!("{} : {value}", quote(key)));
        }
        out.append_value(format!("{{{}}}", parts.join(", ")));
    }
    Ok(Arc::new(out.finish()) as ArrayRef)
}

/// PostgreSQL's `pg_size_pretty(bigint)`.
pub fn size_pretty(bytes: i64) -> String {
    let mut size = bytes;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if size.abs() < 10 * 1024 {
            return format!("{size} {unit}");
        }
        size = (size + size.signum() * 512) / 1024;
    }
    format!("{size} PB")
}

/// Registers `current_setting(name)` over the connection's settings (those `SHOW` answers),
/// and the identifier helpers `quote_ident(text)` and `parse_ident(text)`.
///
/// `current_user`, `session_user` and `user` are the connection's user (its
/// `session_authorization` setting: the startup `user`, the one authenticated with
/// `--require-auth`); `quote_literal` and `quote_nullable` are registered here too.
pub fn register_settings(ctx: &SessionContext, settings: &[(String, String)]) {
    let user = settings
        .iter()
        .find(|(k, _)| k == SESSION_AUTHORIZATION)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "hourglass".to_string());
    for name in ["current_user", "session_user", "user"] {
        ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(
            name,
            ScalarValue::Utf8(Some(user.clone())),
        )));
    }
    for (name, null) in [("quote_literal", None), ("quote_nullable", Some("NULL"))] {
        ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
            name,
            1,
            DataType::Utf8,
            Arc::new(move |args: &[ArrayRef]| {
                let values = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
                let out: StringArray = values
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(quote_literal).or(null.map(str::to_string)))
                    .collect();
                Ok(Arc::new(out) as ArrayRef)
            }),
        )));
    }
    // `set_config(name, value, is_local)`: accepted and not applied (asyncpg turns `jit` off
    // around its type introspection); returns the value, as PostgreSQL does.
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "set_config",
        3,
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef]| {
            Ok(datafusion::arrow::compute::cast(&args[1], &DataType::Utf8)?)
        }),
    )));
    let settings = settings.to_vec();
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "current_setting",
        1,
        DataType::Utf8,
        Arc::new(move |args: &[ArrayRef]| {
            let names = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
            let mut out = StringBuilder::new();
            for name in names.as_string::<i32>().iter() {
                match name {
                    None => out.append_null(),
                    Some(name) => {
                        let name = name.to_ascii_lowercase();
                        match settings.iter().find(|(k, _)| *k == name) {
                            Some((_, v)) => out.append_value(v),
                            None => {
                                return datafusion::common::plan_err!(
                                    "unrecognized configuration parameter \"{name}\""
                                )
                            }
                        }
                    }
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        }),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "quote_ident",
        1,
        DataType::Utf8,
        Arc::new(|args: &[ArrayRef]| {
            let names = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
            let out: StringArray = names
                .as_string::<i32>()
                .iter()
                .map(|n| n.map(quote_ident))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        }),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Mapped::new(
        "parse_ident",
        1,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Arc::new(|args: &[ArrayRef]| {
            let names = datafusion::arrow::compute::cast(&args[0], &DataType::Utf8)?;
            let mut out = ListBuilder::new(StringBuilder::new());
            for name in names.as_string::<i32>().iter() {
                match name {
                    None => out.append_null(),
                    Some(name) => {
                        for part in parse_ident(name) {
                            out.values().append_value(part);
                        }
                        out.append(true);
                    }
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        }),
    )));
}

/// The setting holding the connection's user name (`SHOW session_authorization`).
pub const SESSION_AUTHORIZATION: &str = "session_authorization";

/// PostgreSQL's `quote_literal(text)`: single-quoted, quotes doubled; a value holding a
/// backslash is an escape string (`E'...'`) with the backslashes doubled.
pub fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// PostgreSQL's `quote_ident`: double-quoted unless a plain lower-case identifier.
/// (PostgreSQL also quotes reserved key words; not done here.)
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// PostgreSQL's `parse_ident`: a dotted name split into its parts, unquoted parts lower-cased.
pub fn parse_ident(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            c => current.extend(c.to_lowercase()),
        }
    }
    parts.push(current);
    parts
}

fn cast_i64(a: &ArrayRef) -> DfResult<ArrayRef> {
    Ok(datafusion::arrow::compute::cast(a, &DataType::Int64)?)
}

/// A function of no arguments returning a constant.
#[derive(Debug)]
pub(crate) struct Constant {
    name: String,
    signature: Signature,
    value: ScalarValue,
}

impl Constant {
    pub(crate) fn new(name: &str, value: ScalarValue) -> Self {
        Constant {
            name: name.to_string(),
            signature: Signature::nullary(Volatility::Stable),
            value,
        }
    }
}

impl PartialEq for Constant {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value
    }
}
impl Eq for Constant {}
impl Hash for Constant {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.value.data_type())
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

pub(crate) type ArrayFn = Arc<dyn Fn(&[ArrayRef]) -> DfResult<ArrayRef> + Send + Sync>;

/// A function over arrays (any argument types; scalars expanded to the batch's rows).
pub(crate) struct Mapped {
    name: String,
    signature: Signature,
    returns: DataType,
    f: ArrayFn,
}

impl Mapped {
    pub(crate) fn new(name: &str, arity: usize, returns: DataType, f: ArrayFn) -> Self {
        Self::arities(name, &[arity], returns, f)
    }

    /// A function taking any of several numbers of arguments.
    fn arities(name: &str, arities: &[usize], returns: DataType, f: ArrayFn) -> Self {
        let signature = match arities {
            [one] => Signature::any(*one, Volatility::Stable),
            many => Signature::one_of(
                many.iter()
                    .map(|n| datafusion::logical_expr::TypeSignature::Any(*n))
                    .collect(),
                Volatility::Stable,
            ),
        };
        Self::with_signature(name, signature, returns, f)
    }

    /// A function of `signature` (at least one argument: `f` is given the argument arrays).
    pub(crate) fn with_signature(
        name: &str,
        signature: Signature,
        returns: DataType,
        f: ArrayFn,
    ) -> Self {
        Mapped {
            name: name.to_string(),
            signature,
            returns,
            f,
        }
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped").field("name", &self.name).finish()
    }
}
impl PartialEq for Mapped {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Mapped {}
impl Hash for Mapped {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Mapped {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let arrays: Vec<ArrayRef> = arrays
            .into_iter()
            .map(|a| {
                if a.len() == args.number_rows {
                    Ok(a)
                } else {
                    ScalarValue::try_from_array(&a, 0)?.to_array_of_size(args.number_rows)
                }
            })
            .collect::<DfResult<_>>()?;
        (self.f)(&arrays).map(ColumnarValue::Array)
    }
}

/// TimescaleDB's `time_bucket(interval, ts [, origin])`: rewritten to DataFusion's `date_bin`
/// with TimescaleDB's default origin (Monday 2000-01-03), so week buckets start on Mondays.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeBucket {
    signature: Signature,
}

impl TimeBucket {
    fn new() -> Self {
        TimeBucket {
            signature: Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Any(2),
                    datafusion::logical_expr::TypeSignature::Any(3),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

fn bucket_type(ts: &DataType) -> DataType {
    match ts {
        DataType::Timestamp(unit, tz) => DataType::Timestamp(*unit, tz.clone()),
        _ => DataType::Timestamp(TimeUnit::Nanosecond, None),
    }
}

impl ScalarUDFImpl for TimeBucket {
    fn name(&self) -> &str {
        "time_bucket"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(bucket_type(&args[1]))
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        datafusion::common::internal_err!("time_bucket is rewritten to date_bin before execution")
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        let mut args = args;
        let ts_type = info.get_data_type(&args[1])?;
        let target = bucket_type(&ts_type);
        let origin = if args.len() == 3 {
            args.pop()
                .map(|o| o.cast_to(&target, info.schema().as_ref()))
                .transpose()?
        } else {
            None
        };
        let ts = args.pop();
        let stride = args.pop();
        let (Some(stride), Some(ts)) = (stride, ts) else {
            return datafusion::common::plan_err!("time_bucket takes (interval, timestamp)");
        };
        let ts = if ts_type == target {
            ts
        } else {
            ts.cast_to(&target, info.schema().as_ref())?
        };
        let origin = match origin {
            Some(o) => o,
            None => {
                let tz = match &target {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                let origin = Expr::Literal(
                    ScalarValue::TimestampNanosecond(Some(TIME_BUCKET_ORIGIN_NANOS), tz),
                    None,
                );
                origin.cast_to(&target, info.schema().as_ref())?
            }
        };
        Ok(ExprSimplifyResult::Simplified(
            datafusion::functions::datetime::expr_fn::date_bin(stride, ts, origin),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_and_parse_identifiers() {
        assert_eq!(quote_ident("cpu_1"), "cpu_1");
        assert_eq!(quote_ident("Cpu"), "\"Cpu\"");
        assert_eq!(quote_ident("my-db"), "\"my-db\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(parse_ident("cpu"), vec!["cpu"]);
        assert_eq!(parse_ident("Db.\"My.Table\""), vec!["db", "My.Table"]);
        assert_eq!(parse_ident("\"a\"\"b\".c"), vec!["a\"b", "c"]);
    }

    #[test]
    fn quote_literal_as_postgresql_does() {
        assert_eq!(quote_literal("abc"), "'abc'");
        assert_eq!(quote_literal(""), "''");
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_literal("O''Neil"), "'O''''Neil'");
        assert_eq!(quote_literal(r"a\b"), r"E'a\\b'");
        assert_eq!(quote_literal(r"it's C:\x"), r"E'it''s C:\\x'");
        assert_eq!(
            quote_literal("2024-03-01 08:00:00"),
            "'2024-03-01 08:00:00'"
        );
        assert_eq!(quote_literal("ü\n"), "'ü\n'");
    }

    #[tokio::test]
    async fn quote_functions_and_the_session_user() {
        let ctx = SessionContext::new();
        register_settings(
            &ctx,
            &[(SESSION_AUTHORIZATION.to_string(), "alice".to_string())],
        );
        let batches = ctx
            .sql(
                "SELECT quote_literal('a''b'), quote_literal(CAST(NULL AS TEXT)), \
                 quote_nullable(CAST(NULL AS TEXT)), quote_nullable(42), quote_literal(1.5), \
                 quote_literal('x\\y'), current_user, session_user, user",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let row: Vec<Option<String>> = batches[0]
            .columns()
            .iter()
            .map(|c| {
                let c = datafusion::arrow::compute::cast(c, &DataType::Utf8).unwrap();
                let c = c.as_string::<i32>();
                (!c.is_null(0)).then(|| c.value(0).to_string())
            })
            .collect();
        let want = [
            "'a''b'", "", "NULL", "'42'", "'1.5'", r"E'x\\y'", "alice", "alice", "alice",
        ];
        let want: Vec<Option<String>> = want
            .iter()
            .map(|w| (!w.is_empty()).then(|| w.to_string()))
            .collect();
        assert_eq!(row, want);
    }

    #[test]
    fn sizes_are_pretty_as_postgresql_prints_them() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(1_000_000_000), "954 MB");
    }
}
