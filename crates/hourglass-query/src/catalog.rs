//! Databases and tables as DataFusion catalog objects: the `hourglass` catalog has one schema
//! per database, so `SELECT ... FROM table` (with the request's database as default schema) and
//! `SELECT ... FROM db.table` both resolve.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use hourglass_storage::Engine;

use crate::provider::HourglassTable;

pub const CATALOG_NAME: &str = "hourglass";

/// All databases.
#[derive(Debug)]
pub struct DatabasesCatalog {
    pub engine: Arc<Engine>,
}

impl CatalogProvider for DatabasesCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.engine
            .catalog
            .snapshot()
            .databases
            .keys()
            .cloned()
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.engine
            .catalog
            .snapshot()
            .databases
            .contains_key(name)
            .then(|| {
                Arc::new(DatabaseSchema {
                    engine: self.engine.clone(),
                    db: name.to_string(),
                }) as Arc<dyn SchemaProvider>
            })
    }
}

/// The tables of one database.
#[derive(Debug)]
pub struct DatabaseSchema {
    pub engine: Arc<Engine>,
    pub db: String,
}

#[async_trait]
impl SchemaProvider for DatabaseSchema {
    fn table_names(&self) -> Vec<String> {
        self.engine
            .catalog
            .snapshot()
            .databases
            .get(&self.db)
            .map(|d| d.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let catalog = self.engine.catalog.snapshot();
        Ok(catalog.table(&self.db, name).map(|def| {
            Arc::new(HourglassTable::new(
                self.engine.clone(),
                &self.db,
                def.clone(),
            )) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.engine
            .catalog
            .snapshot()
            .table(&self.db, name)
            .is_some()
    }
}
