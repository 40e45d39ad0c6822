//! `SHOW DATABASES`, `SHOW TABLES [FROM db] [LIKE 'p']`, `SHOW MEASURES FROM db.tbl [LIKE 'p']`
//! and `DESCRIBE db.tbl`, answered from the catalog in Timestream's result shapes:
//!
//! * `SHOW DATABASES` → `Database`; `SHOW TABLES` → `Table` (sorted names);
//! * `SHOW MEASURES` → `measure_name`, `data_type`, `dimensions` ([`measures`]);
//! * `DESCRIBE` → `Column`, `Type`, `Timestream attribute type` (`DIMENSION`, `MEASURE_NAME`,
//!   `TIMESTAMP`, `MEASURE_VALUE` for `measure_value::<type>`, `MULTI` for named measures).
//!
//! These statements are recognised on the token stream ([`parse`]; sqlparser has no
//! `SHOW MEASURES`).

mod measures;
mod parse;

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::tokenizer::Span;
use hourglass_core::{ColumnRole, ColumnType, Error, Result, MEASURE_NAME_COLUMN};
use hourglass_storage::{Engine, TableDef};

pub use parse::{like, parse};

use super::errors::at_span;

/// A metadata statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Metadata {
    ShowDatabases {
        like: Option<String>,
    },
    ShowTables {
        database: String,
        span: Span,
        like: Option<String>,
    },
    ShowMeasures {
        database: String,
        table: String,
        span: Span,
        like: Option<String>,
    },
    Describe {
        database: String,
        table: String,
        span: Span,
    },
}

fn names_batch(column: &str, names: Vec<String>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(names))])
        .map_err(|e| Error::internal(e.to_string()))
}

fn filtered(names: impl Iterator<Item = String>, pattern: &Option<String>) -> Vec<String> {
    let mut v: Vec<String> = names
        .filter(|n| pattern.as_deref().is_none_or(|p| like(p, n)))
        .collect();
    v.sort();
    v
}

fn table<'a>(
    catalog: &'a hourglass_storage::CatalogState,
    database: &str,
    table: &str,
    span: Span,
) -> Result<&'a TableDef> {
    if !catalog.databases.contains_key(database) {
        return Err(at_span(
            span,
            format!("Database '{database}' does not exist"),
        ));
    }
    catalog
        .table(database, table)
        .ok_or_else(|| at_span(span, format!("Table '{database}.{table}' does not exist")))
}

/// The lower-case Timestream name of a measure type.
pub fn type_name(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Double => "double",
        ColumnType::Bigint | ColumnType::Ubigint => "bigint",
        ColumnType::Varchar => "varchar",
        ColumnType::Boolean => "boolean",
        ColumnType::Timestamp => "timestamp",
    }
}

/// Answers a metadata statement.
pub async fn execute(
    m: Metadata,
    ctx: &SessionContext,
    engine: &Engine,
) -> Result<Vec<RecordBatch>> {
    let catalog = engine.catalog.snapshot();
    // Only the databases the session's principal may read exist here.
    let visible: std::collections::BTreeSet<String> = ctx
        .catalog(crate::catalog::CATALOG_NAME)
        .map(|c| c.schema_names().into_iter().collect())
        .unwrap_or_default();
    let mut catalog = (*catalog).clone();
    catalog.databases.retain(|name, _| visible.contains(name));
    match m {
        Metadata::ShowDatabases { like } => {
            let names = filtered(catalog.databases.keys().cloned(), &like);
            Ok(vec![names_batch("Database", names)?])
        }
        Metadata::ShowTables {
            database,
            span,
            like,
        } => {
            let db = catalog
                .databases
                .get(&database)
                .ok_or_else(|| at_span(span, format!("Database '{database}' does not exist")))?;
            let names = filtered(db.tables.keys().cloned(), &like);
            Ok(vec![names_batch("Table", names)?])
        }
        Metadata::Describe {
            database,
            table: name,
            span,
        } => {
            let def = table(&catalog, &database, &name, span)?;
            Ok(vec![describe(def)?])
        }
        Metadata::ShowMeasures {
            database,
            table: name,
            span,
            like,
        } => {
            let def = table(&catalog, &database, &name, span)?.clone();
            measures::show_measures(ctx, &database, &def, like).await
        }
    }
}

fn describe(def: &TableDef) -> Result<RecordBatch> {
    let schema = hourglass_storage::schema::table_schema(def);
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut roles = Vec::new();
    for field in schema.fields() {
        let name = field.name().clone();
        let column = def.column(&name);
        let role = column.map(|c| c.role).unwrap_or(match name.as_str() {
            "time" => ColumnRole::Time,
            MEASURE_NAME_COLUMN => ColumnRole::MeasureName,
            _ => ColumnRole::Dimension,
        });
        let (ty, attr) = match role {
            ColumnRole::Dimension => ("varchar", "DIMENSION"),
            ColumnRole::MeasureName => ("varchar", "MEASURE_NAME"),
            ColumnRole::Time => ("timestamp", "TIMESTAMP"),
            ColumnRole::Measure => {
                let ty = column
                    .and_then(|c| c.measure_type)
                    .map(type_name)
                    .unwrap_or("varchar");
                let attr = if name.starts_with("measure_value::") {
                    "MEASURE_VALUE"
                } else {
                    "MULTI"
                };
                (ty, attr)
            }
        };
        names.push(name);
        types.push(ty.to_string());
        roles.push(attr.to_string());
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("Column", DataType::Utf8, false),
        Field::new("Type", DataType::Utf8, false),
        Field::new("Timestream attribute type", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(types)),
            Arc::new(StringArray::from(roles)),
        ],
    )
    .map_err(|e| Error::internal(e.to_string()))
}
