//! A `pg_catalog` schema over Hourglass's databases and tables, enough for psql's `\dt`/`\d` and
//! the metadata queries drivers and BI tools send: each database is a namespace, each table a
//! relation (kind `r`), each column an attribute. Tables are built when a query is planned, from
//! the catalog as it is then.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, MemTable, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use pgwire::api::Type;

mod casts;
mod empty;
mod roles;
mod settings;

pub const PG_CATALOG: &str = "pg_catalog";
pub const PG_CATALOG_OID: i64 = 11;
const OWNER_OID: i64 = 10;
const HEAP_AM_OID: i64 = 2;
/// `pg_default`, the tablespace of every database.
const DEFAULT_TABLESPACE_OID: i64 = 1663;

/// The `hourglass` catalog plus a `pg_catalog` schema.
#[derive(Debug)]
pub struct WithPgCatalog {
    pub inner: Arc<dyn CatalogProvider>,
    pg: Arc<PgCatalogSchema>,
}

impl WithPgCatalog {
    pub fn new(inner: Arc<dyn CatalogProvider>, settings: Vec<(String, String)>) -> Self {
        WithPgCatalog {
            pg: Arc::new(PgCatalogSchema {
                inner: inner.clone(),
                settings,
                cursors: None,
            }),
            inner,
        }
    }

    /// The same catalog with `pg_cursors` listing `cursors` (a connection's).
    pub fn with_cursors(self, cursors: Arc<crate::cursors::Cursors>) -> Self {
        let pg = PgCatalogSchema {
            inner: self.pg.inner.clone(),
            settings: self.pg.settings.clone(),
            cursors: Some(cursors),
        };
        WithPgCatalog {
            inner: self.inner,
            pg: Arc::new(pg),
        }
    }
}

impl CatalogProvider for WithPgCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.inner.schema_names();
        names.push(PG_CATALOG.to_string());
        names
    }
    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == PG_CATALOG {
            Some(self.pg.clone())
        } else {
            let inner = self.inner.schema(name)?;
            Some(Arc::new(SearchPath {
                inner,
                pg: self.pg.clone(),
            }))
        }
    }
}

/// A database's schema as PostgreSQL resolves unqualified names in it: `pg_catalog` is searched
/// first (implicitly on every search path), so `FROM pg_extension` (Grafana's TimescaleDB
/// detection) or `FROM pg_class` finds the catalog table. Only the database's own tables are
/// listed.
#[derive(Debug)]
struct SearchPath {
    inner: Arc<dyn SchemaProvider>,
    pg: Arc<PgCatalogSchema>,
}

#[async_trait]
impl SchemaProvider for SearchPath {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    fn table_exist(&self, name: &str) -> bool {
        is_catalog_table(name) || self.inner.table_exist(name)
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if is_catalog_table(name) {
            return self.pg.table(name).await;
        }
        self.inner.table(name).await
    }
}

/// 32-bit FNV-1a, folded into the range PostgreSQL uses for user objects.
fn oid_of(parts: &[&str]) -> i64 {
    let mut h: u32 = 0x811c_9dc5;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0;
            h = h.wrapping_mul(0x0100_0193);
        }
        for b in p.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    16_384 + i64::from(h % 1_000_000_000)
}

/// The namespace OID of a database.
pub fn namespace_oid(db: &str) -> i64 {
    if db == PG_CATALOG {
        PG_CATALOG_OID
    } else {
        oid_of(&["namespace", db])
    }
}

/// The OID of a database (`pg_database.oid`).
pub fn database_oid(db: &str) -> i64 {
    oid_of(&["database", db])
}

/// `pg_database_size(db)`: the bytes of the database's tables, in their Parquet files and in
/// memory, as the session's `catalog` (a [`WithPgCatalog`] over Hourglass's databases) sees
/// them. `None` for a database the session does not see; 0 for a catalog without storage.
pub fn database_size(catalog: &dyn CatalogProvider, db: &str) -> Option<i64> {
    let schema = catalog.schema(PG_CATALOG)?;
    let inner = schema.downcast_ref::<PgCatalogSchema>()?.inner.as_ref();
    if !inner.schema_names().iter().any(|d| d == db) {
        return None;
    }
    let Some(databases) = inner.downcast_ref::<hourglass_query::catalog::DatabasesCatalog>() else {
        return Some(0);
    };
    let bytes: u64 = inner
        .schema(db)?
        .table_names()
        .iter()
        .filter_map(|t| databases.engine.table_store(db, t))
        .map(|store| {
            let files: u64 = store
                .snapshot()
                .manifest
                .files
                .iter()
                .map(|f| f.bytes)
                .sum();
            files + store.memory_bytes() as u64
        })
        .sum();
    Some(i64::try_from(bytes).unwrap_or(i64::MAX))
}

/// The relation OID of a table.
pub fn table_oid(db: &str, table: &str) -> i64 {
    oid_of(&["table", db, table])
}

/// The PostgreSQL type of an Arrow type, as clients see it in result descriptions.
pub fn pg_type(dt: &DataType) -> Type {
    arrow_pg::datatypes::into_pg_type(dt).unwrap_or(Type::TEXT)
}

/// `information_schema.columns.numeric_precision` as PostgreSQL reports it (binary precision for
/// integers and floats, decimal digits for numeric).
fn numeric_precision(dt: &DataType) -> Option<i32> {
    match dt {
        DataType::Int16 => Some(16),
        DataType::Int32 => Some(32),
        DataType::Int64 => Some(64),
        DataType::Float32 => Some(24),
        DataType::Float64 => Some(53),
        DataType::Decimal128(p, _) => Some(i32::from(*p)),
        _ => None,
    }
}

fn numeric_scale(dt: &DataType) -> Option<i32> {
    match dt {
        DataType::Int16 | DataType::Int32 | DataType::Int64 => Some(0),
        DataType::Decimal128(_, s) => Some(i32::from(*s)),
        _ => None,
    }
}

/// `format_type(oid, typmod)`: the SQL name of a type.
pub fn format_type_name(oid: i64) -> String {
    let Some(t) = u32::try_from(oid).ok().and_then(Type::from_oid) else {
        return "???".to_string();
    };
    match t.name() {
        "int8" => "bigint",
        "int4" => "integer",
        "int2" => "smallint",
        "float8" => "double precision",
        "float4" => "real",
        "bool" => "boolean",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "varchar" => "character varying",
        "bpchar" => "character",
        "_text" => "text[]",
        "_int8" => "bigint[]",
        "_float8" => "double precision[]",
        other => other,
    }
    .to_string()
}

/// A table in a database: its schema.
pub struct TableInfo {
    pub db: String,
    pub name: String,
    pub oid: i64,
    pub schema: SchemaRef,
}

/// Every table of every database (or of one).
pub async fn tables(catalog: &dyn CatalogProvider, only_db: Option<&str>) -> Vec<TableInfo> {
    let mut out = Vec::new();
    let mut dbs = catalog.schema_names();
    dbs.sort();
    for db in dbs {
        if db == PG_CATALOG || only_db.is_some_and(|o| o != db) {
            continue;
        }
        let Some(schema) = catalog.schema(&db) else {
            continue;
        };
        let mut names = schema.table_names();
        names.sort();
        for name in names {
            if let Ok(Some(t)) = schema.table(&name).await {
                out.push(TableInfo {
                    oid: table_oid(&db, &name),
                    db: db.clone(),
                    name,
                    schema: t.schema(),
                });
            }
        }
    }
    out
}

/// The table with a relation OID.
pub async fn table_by_oid(catalog: &dyn CatalogProvider, oid: i64) -> Option<TableInfo> {
    tables(catalog, None)
        .await
        .into_iter()
        .find(|t| t.oid == oid)
}

#[derive(Debug)]
struct PgCatalogSchema {
    inner: Arc<dyn CatalogProvider>,
    settings: Vec<(String, String)>,
    /// The connection's cursors (`pg_cursors`); none outside a connection.
    cursors: Option<Arc<crate::cursors::Cursors>>,
}

const TABLES: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_database",
    "pg_am",
    "pg_tables",
    "pg_description",
    "pg_inherits",
    "pg_index",
    "pg_attrdef",
    "pg_constraint",
    "pg_proc",
    "pg_extension",
    "pg_cast",
    INFORMATION_SCHEMA_COLUMNS,
];

/// Whether `pg_catalog` has a table `name`.
fn is_catalog_table(name: &str) -> bool {
    TABLES.contains(&name)
        || empty::TABLES.contains(&name)
        || roles::TABLES.contains(&name)
        || name == "pg_settings"
        || name == "pg_cursors"
}

/// PostgreSQL's `information_schema.columns` (PostgreSQL type names in `data_type`, `udt_name`),
/// which [`crate::statements::rewrite`] substitutes for DataFusion's (Arrow type names, no
/// `udt_name`): Grafana's query editor reads both columns.
pub const INFORMATION_SCHEMA_COLUMNS: &str = "information_schema_columns";

/// Column builder for one catalog table.
#[derive(Default)]
pub(crate) struct Cols {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Cols {
    fn i64(mut self, name: &str, v: Vec<i64>) -> Self {
        self.fields.push(Field::new(name, DataType::Int64, false));
        self.arrays.push(Arc::new(Int64Array::from(v)));
        self
    }
    fn i32(mut self, name: &str, v: Vec<i32>) -> Self {
        self.fields.push(Field::new(name, DataType::Int32, false));
        self.arrays.push(Arc::new(Int32Array::from(v)));
        self
    }
    fn opt_i32(mut self, name: &str, v: Vec<Option<i32>>) -> Self {
        self.fields.push(Field::new(name, DataType::Int32, true));
        self.arrays.push(Arc::new(Int32Array::from(v)));
        self
    }
    fn i16(mut self, name: &str, v: Vec<i16>) -> Self {
        self.fields.push(Field::new(name, DataType::Int16, false));
        self.arrays.push(Arc::new(Int16Array::from(v)));
        self
    }
    fn f32(mut self, name: &str, v: Vec<f32>) -> Self {
        self.fields.push(Field::new(name, DataType::Float32, false));
        self.arrays.push(Arc::new(Float32Array::from(v)));
        self
    }
    fn text(mut self, name: &str, v: Vec<Option<String>>) -> Self {
        self.fields.push(Field::new(name, DataType::Utf8, true));
        self.arrays.push(Arc::new(StringArray::from(v)));
        self
    }
    fn str(self, name: &str, v: Vec<&str>) -> Self {
        let v = v.into_iter().map(|s| Some(s.to_string())).collect();
        self.text(name, v)
    }
    fn bool(mut self, name: &str, v: Vec<bool>) -> Self {
        self.fields.push(Field::new(name, DataType::Boolean, false));
        self.arrays.push(Arc::new(BooleanArray::from(v)));
        self
    }
    fn column(mut self, field: Field, array: ArrayRef) -> Self {
        self.fields.push(field);
        self.arrays.push(array);
        self
    }
    /// A list column of `n` NULLs, of lists of `item`.
    fn null_list(self, name: &str, item: DataType, n: usize) -> Self {
        let item = Arc::new(Field::new("item", item, true));
        let field = Field::new(name, DataType::List(item.clone()), true);
        self.column(field, Arc::new(ListArray::new_null(item, n)))
    }
    /// A `text[]` column of NULLs (`aclitem[]` columns: no privileges are granted).
    fn null_text_list(self, name: &str, n: usize) -> Self {
        self.null_list(name, DataType::Utf8, n)
    }
    /// An `oid[]` column of an empty table.
    fn empty_i64_list(self, name: &str) -> Self {
        self.null_list(name, DataType::Int64, 0)
    }
    /// A `timestamptz` column of NULLs.
    fn null_timestamptz(self, name: &str, n: usize) -> Self {
        let array = TimestampMicrosecondArray::from(vec![None; n]).with_timezone("UTC");
        let field = Field::new(
            name,
            datafusion::arrow::array::Array::data_type(&array).clone(),
            true,
        );
        self.column(field, Arc::new(array))
    }
    /// An `int2[]` column of an empty table.
    fn empty_i16_list(self, name: &str) -> Self {
        self.null_list(name, DataType::Int16, 0)
    }
    fn table(self) -> DfResult<Arc<dyn TableProvider>> {
        let schema = Arc::new(Schema::new(self.fields));
        let batch = RecordBatch::try_new(schema.clone(), self.arrays)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

fn rep<T: Clone>(v: T, n: usize) -> Vec<T> {
    vec![v; n]
}

/// The types listed in `pg_type`.
const TYPES: &[Type] = &[
    Type::BOOL,
    Type::BYTEA,
    Type::CHAR,
    Type::NAME,
    Type::INT8,
    Type::INT2,
    Type::INT4,
    Type::TEXT,
    Type::OID,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::UNKNOWN,
    Type::BPCHAR,
    Type::VARCHAR,
    Type::DATE,
    Type::TIME,
    Type::TIMESTAMP,
    Type::TIMESTAMPTZ,
    Type::INTERVAL,
    Type::NUMERIC,
    Type::JSON,
    Type::TEXT_ARRAY,
    Type::INT8_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::INT4_ARRAY,
    Type::BOOL_ARRAY,
];

/// `to_regtype(name)`: the OID of a type listed in `pg_type`, by its name or SQL name.
pub fn type_oid_by_name(name: &str) -> Option<i64> {
    let name = name.trim().trim_start_matches("pg_catalog.");
    TYPES
        .iter()
        .find(|t| t.name() == name || format_type_name(i64::from(t.oid())) == name)
        .map(|t| i64::from(t.oid()))
}

/// PostgreSQL's `typcategory` letter of `t`: A array, B boolean, D date/time, N numeric,
/// S string, U user-defined (everything else).
fn type_category(t: &Type) -> &'static str {
    if matches!(t.kind(), postgres_types::Kind::Array(_)) {
        return "A";
    }
    match t.name() {
        "bool" => "B",
        "date" | "time" | "timestamp" | "timestamptz" | "timetz" => "D",
        "interval" => "T",
        "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" | "oid" => "N",
        "text" | "varchar" | "bpchar" | "name" | "char" => "S",
        _ => "U",
    }
}

fn type_len(t: &Type) -> i16 {
    match t.name() {
        "bool" | "char" => 1,
        "int2" => 2,
        "int4" | "float4" | "oid" | "date" => 4,
        "int8" | "float8" | "time" | "timestamp" | "timestamptz" => 8,
        "interval" => 16,
        "name" => 64,
        _ => -1,
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES
            .iter()
            .chain(empty::TABLES)
            .chain(roles::TABLES)
            .chain(&["pg_settings", "pg_cursors"])
            .map(|s| s.to_string())
            .collect()
    }

    fn table_exist(&self, name: &str) -> bool {
        is_catalog_table(name)
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let inner = self.inner.as_ref();
        let table = match name {
            "pg_namespace" => {
                let mut names = inner.schema_names();
                names.sort();
                names.push(PG_CATALOG.to_string());
                names.push("information_schema".to_string());
                let n = names.len();
                Cols::default()
                    .i64("oid", names.iter().map(|d| namespace_oid(d)).collect())
                    .text("nspname", names.into_iter().map(Some).collect())
                    .i64("nspowner", rep(OWNER_OID, n))
                    .null_text_list("nspacl", n)
                    .table()?
            }
            "pg_class" => {
                let ts = tables(inner, None).await;
                let n = ts.len();
                Cols::default()
                    .i64("oid", ts.iter().map(|t| t.oid).collect())
                    .text("relname", ts.iter().map(|t| Some(t.name.clone())).collect())
                    .i64(
                        "relnamespace",
                        ts.iter().map(|t| namespace_oid(&t.db)).collect(),
                    )
                    .i64("reltype", rep(0, n))
                    .i64("reloftype", rep(0, n))
                    .i64("relowner", rep(OWNER_OID, n))
                    .i64("relam", rep(HEAP_AM_OID, n))
                    .i64("relfilenode", rep(0, n))
                    .i64("reltablespace", rep(0, n))
                    .i32("relpages", rep(0, n))
                    .f32("reltuples", rep(-1.0, n))
                    .i64("reltoastrelid", rep(0, n))
                    .bool("relhasindex", rep(false, n))
                    .bool("relisshared", rep(false, n))
                    .str("relpersistence", rep("p", n))
                    .str("relkind", rep("r", n))
                    .i16(
                        "relnatts",
                        ts.iter().map(|t| t.schema.fields().len() as i16).collect(),
                    )
                    .i16("relchecks", rep(0, n))
                    .bool("relhasrules", rep(false, n))
                    .bool("relhastriggers", rep(false, n))
                    .bool("relhassubclass", rep(false, n))
                    .bool("relrowsecurity", rep(false, n))
                    .bool("relforcerowsecurity", rep(false, n))
                    .bool("relispopulated", rep(true, n))
                    .str("relreplident", rep("d", n))
                    .bool("relispartition", rep(false, n))
                    .null_text_list("relacl", n)
                    .text("reloptions", rep(None, n))
                    .text("relpartbound", rep(None, n))
                    .table()?
            }
            "pg_attribute" => {
                let ts = tables(inner, None).await;
                let (mut rel, mut names, mut types, mut nums, mut notnull, mut lens) =
                    (vec![], vec![], vec![], vec![], vec![], vec![]);
                for t in &ts {
                    for (i, f) in t.schema.fields().iter().enumerate() {
                        let ty = pg_type(f.data_type());
                        rel.push(t.oid);
                        names.push(Some(f.name().clone()));
                        types.push(i64::from(ty.oid()));
                        lens.push(type_len(&ty));
                        nums.push(i as i16 + 1);
                        notnull.push(!f.is_nullable());
                    }
                }
                let n = rel.len();
                Cols::default()
                    .i64("attrelid", rel)
                    .text("attname", names)
                    .i64("atttypid", types)
                    .i16("attlen", lens)
                    .i16("attnum", nums)
                    .i32("atttypmod", rep(-1, n))
                    .i16("attndims", rep(0, n))
                    .bool("attnotnull", notnull)
                    .bool("atthasdef", rep(false, n))
                    .bool("attisdropped", rep(false, n))
                    .bool("attislocal", rep(true, n))
                    .str("attidentity", rep("", n))
                    .str("attgenerated", rep("", n))
                    .i64("attcollation", rep(0, n))
                    .str("attstorage", rep("p", n))
                    .null_text_list("attacl", n)
                    .table()?
            }
            "pg_type" => {
                let n = TYPES.len();
                Cols::default()
                    .i64("oid", TYPES.iter().map(|t| i64::from(t.oid())).collect())
                    .text(
                        "typname",
                        TYPES.iter().map(|t| Some(t.name().to_string())).collect(),
                    )
                    .i64("typnamespace", rep(PG_CATALOG_OID, n))
                    .i64("typowner", rep(OWNER_OID, n))
                    .i16("typlen", TYPES.iter().map(type_len).collect())
                    .bool(
                        "typbyval",
                        TYPES
                            .iter()
                            .map(|t| (1..=8).contains(&type_len(t)))
                            .collect(),
                    )
                    .text(
                        "typtype",
                        TYPES.iter().map(|_| Some("b".to_string())).collect(),
                    )
                    .bool("typisdefined", rep(true, n))
                    .str("typdelim", rep(",", n))
                    .i64("typrelid", rep(0, n))
                    .i64(
                        "typelem",
                        TYPES
                            .iter()
                            .map(|t| match t.kind() {
                                postgres_types::Kind::Array(e) => i64::from(e.oid()),
                                _ => 0,
                            })
                            .collect(),
                    )
                    .i64("typarray", rep(0, n))
                    .bool("typnotnull", rep(false, n))
                    .i64("typbasetype", rep(0, n))
                    .i32("typtypmod", rep(-1, n))
                    .i32("typndims", rep(0, n))
                    .text(
                        "typcategory",
                        TYPES
                            .iter()
                            .map(|t| Some(type_category(t).to_string()))
                            .collect(),
                    )
                    .bool("typispreferred", rep(false, n))
                    .str("typalign", rep("d", n))
                    .str("typstorage", rep("p", n))
                    // No domains or defaults: SQLAlchemy's get_domains reads these.
                    .text("typdefault", vec![None; n])
                    .text("typdefaultbin", vec![None; n])
                    .null_text_list("typacl", n)
                    .i64(
                        "typcollation",
                        TYPES
                            .iter()
                            .map(|t| {
                                if t.name() == "text" || t.name() == "varchar" {
                                    100
                                } else {
                                    0
                                }
                            })
                            .collect(),
                    )
                    .table()?
            }
            "pg_database" => {
                let mut names = inner.schema_names();
                names.sort();
                let n = names.len();
                Cols::default()
                    .i64("oid", names.iter().map(|d| database_oid(d)).collect())
                    .text("datname", names.into_iter().map(Some).collect())
                    .i64("datdba", rep(OWNER_OID, n))
                    .i32("encoding", rep(6, n))
                    .str("datcollate", rep("C", n))
                    .str("datctype", rep("C", n))
                    .text("daticulocale", rep(None, n))
                    .text("daticurules", rep(None, n))
                    .str("datlocprovider", rep("c", n))
                    .bool("datistemplate", rep(false, n))
                    .bool("datallowconn", rep(true, n))
                    .i32("datconnlimit", rep(-1, n))
                    .i64("datfrozenxid", rep(0, n))
                    .i64("datminmxid", rep(0, n))
                    .i64("dattablespace", rep(DEFAULT_TABLESPACE_OID, n))
                    .text("datcollversion", rep(None, n))
                    .null_text_list("datacl", n)
                    .table()?
            }
            "pg_am" => Cols::default()
                .i64("oid", vec![HEAP_AM_OID])
                .str("amname", vec!["heap"])
                .str("amtype", vec!["t"])
                .table()?,
            "pg_tables" => {
                let ts = tables(inner, None).await;
                let n = ts.len();
                Cols::default()
                    .text(
                        "schemaname",
                        ts.iter().map(|t| Some(t.db.clone())).collect(),
                    )
                    .text(
                        "tablename",
                        ts.iter().map(|t| Some(t.name.clone())).collect(),
                    )
                    .str("tableowner", rep("hourglass", n))
                    .text("tablespace", rep(None, n))
                    .bool("hasindexes", rep(false, n))
                    .bool("hasrules", rep(false, n))
                    .bool("hastriggers", rep(false, n))
                    .bool("rowsecurity", rep(false, n))
                    .table()?
            }
            "pg_settings" => settings::table(&self.settings)?,
            "pg_cursors" => {
                let open = self.cursors.as_ref().map(|c| c.list()).unwrap_or_default();
                let created: Vec<Option<i64>> =
                    open.iter().map(|c| Some(c.created / 1000)).collect();
                let created = TimestampMicrosecondArray::from(created).with_timezone("UTC");
                let mut cols = Cols::default()
                    .text("name", open.iter().map(|c| Some(c.name.clone())).collect())
                    .text(
                        "statement",
                        open.iter().map(|c| Some(c.statement.clone())).collect(),
                    )
                    .bool("is_holdable", open.iter().map(|c| c.hold).collect())
                    .bool("is_binary", open.iter().map(|c| c.binary).collect())
                    .bool("is_scrollable", vec![false; open.len()]);
                cols.fields.push(Field::new(
                    "creation_time",
                    datafusion::arrow::array::Array::data_type(&created).clone(),
                    false,
                ));
                cols.arrays.push(Arc::new(created));
                cols.table()?
            }
            "pg_cast" => casts::table()?,
            "pg_description" => Cols::default()
                .i64("objoid", vec![])
                .i64("classoid", vec![])
                .i32("objsubid", vec![])
                .text("description", vec![])
                .table()?,
            "pg_inherits" => Cols::default()
                .i64("inhrelid", vec![])
                .i64("inhparent", vec![])
                .i32("inhseqno", vec![])
                .bool("inhdetachpending", vec![])
                .table()?,
            // No indexes (the JDBC driver's getPrimaryKeys/getIndexInfo read these columns).
            "pg_index" => Cols::default()
                .i64("indexrelid", vec![])
                .i64("indrelid", vec![])
                .i16("indnatts", vec![])
                .i16("indnkeyatts", vec![])
                .bool("indisunique", vec![])
                .bool("indisprimary", vec![])
                .bool("indisexclusion", vec![])
                .bool("indimmediate", vec![])
                .bool("indisclustered", vec![])
                .bool("indisvalid", vec![])
                .bool("indisready", vec![])
                .bool("indislive", vec![])
                .bool("indisreplident", vec![])
                .bool("indnullsnotdistinct", vec![])
                .empty_i16_list("indkey")
                .empty_i16_list("indcollation")
                .empty_i16_list("indclass")
                .empty_i16_list("indoption")
                .text("indexprs", vec![])
                .text("indpred", vec![])
                .table()?,
            // No column defaults (the JDBC driver's getColumns LEFT JOINs it).
            "pg_attrdef" => Cols::default()
                .i64("oid", vec![])
                .i64("adrelid", vec![])
                .i16("adnum", vec![])
                .text("adbin", vec![])
                .table()?,
            // No constraints (the JDBC driver's getImportedKeys/getExportedKeys read these).
            "pg_constraint" => Cols::default()
                .i64("oid", vec![])
                .text("conname", vec![])
                .i64("connamespace", vec![])
                .text("contype", vec![])
                .bool("condeferrable", vec![])
                .bool("condeferred", vec![])
                .bool("convalidated", vec![])
                .i64("conrelid", vec![])
                .i64("contypid", vec![])
                .i64("conindid", vec![])
                .i64("confrelid", vec![])
                .text("confupdtype", vec![])
                .text("confdeltype", vec![])
                .text("confmatchtype", vec![])
                .empty_i16_list("conkey")
                .empty_i16_list("confkey")
                .i64("tableoid", vec![])
                .table()?,
            INFORMATION_SCHEMA_COLUMNS => {
                let ts = tables(inner, None).await;
                let mut cols: Vec<(&TableInfo, usize, &Field)> = Vec::new();
                for t in &ts {
                    for (i, f) in t.schema.fields().iter().enumerate() {
                        cols.push((t, i, f.as_ref()));
                    }
                }
                let n = cols.len();
                let types: Vec<Type> = cols
                    .iter()
                    .map(|(_, _, f)| pg_type(f.data_type()))
                    .collect();
                Cols::default()
                    .text(
                        "table_catalog",
                        cols.iter().map(|(t, _, _)| Some(t.db.clone())).collect(),
                    )
                    .text(
                        "table_schema",
                        cols.iter().map(|(t, _, _)| Some(t.db.clone())).collect(),
                    )
                    .text(
                        "table_name",
                        cols.iter().map(|(t, _, _)| Some(t.name.clone())).collect(),
                    )
                    .text(
                        "column_name",
                        cols.iter()
                            .map(|(_, _, f)| Some(f.name().clone()))
                            .collect(),
                    )
                    .i32(
                        "ordinal_position",
                        cols.iter().map(|(_, i, _)| *i as i32 + 1).collect(),
                    )
                    .text("column_default", rep(None, n))
                    .text(
                        "is_nullable",
                        cols.iter()
                            .map(|(_, _, f)| {
                                Some(if f.is_nullable() { "YES" } else { "NO" }.to_string())
                            })
                            .collect(),
                    )
                    .text(
                        "data_type",
                        types
                            .iter()
                            .map(|t| Some(format_type_name(i64::from(t.oid()))))
                            .collect(),
                    )
                    .text(
                        "udt_name",
                        types.iter().map(|t| Some(t.name().to_string())).collect(),
                    )
                    .opt_i32(
                        "numeric_precision",
                        cols.iter()
                            .map(|(_, _, f)| numeric_precision(f.data_type()))
                            .collect(),
                    )
                    .opt_i32(
                        "numeric_scale",
                        cols.iter()
                            .map(|(_, _, f)| numeric_scale(f.data_type()))
                            .collect(),
                    )
                    .table()?
            }
            // No extensions (Grafana looks for `timescaledb` here).
            "pg_extension" => Cols::default()
                .i64("oid", vec![])
                .text("extname", vec![])
                .i64("extowner", vec![])
                .i64("extnamespace", vec![])
                .bool("extrelocatable", vec![])
                .text("extversion", vec![])
                .table()?,
            // No functions are listed (psql's `\df` and `\da` list none).
            "pg_proc" => Cols::default()
                .i64("oid", vec![])
                .text("proname", vec![])
                .i64("pronamespace", vec![])
                .i64("proowner", vec![])
                .i64("prolang", vec![])
                .f32("procost", vec![])
                .f32("prorows", vec![])
                .i64("provariadic", vec![])
                .i64("prosupport", vec![])
                .text("prokind", vec![])
                .bool("prosecdef", vec![])
                .bool("proleakproof", vec![])
                .bool("proisstrict", vec![])
                .bool("proretset", vec![])
                .text("provolatile", vec![])
                .text("proparallel", vec![])
                .i16("pronargs", vec![])
                .i16("pronargdefaults", vec![])
                .i64("prorettype", vec![])
                .text("proargtypes", vec![])
                .empty_i64_list("proallargtypes")
                .null_text_list("proargmodes", 0)
                .null_text_list("proargnames", 0)
                .text("proargdefaults", vec![])
                .empty_i64_list("protrftypes")
                .text("prosrc", vec![])
                .text("probin", vec![])
                .text("prosqlbody", vec![])
                .null_text_list("proconfig", 0)
                .null_text_list("proacl", 0)
                .table()?,
            _ => {
                if let Some(t) = roles::table(name, inner) {
                    return t.map(Some);
                }
                return empty::table(name).transpose();
            }
        };
        Ok(Some(table))
    }
}
