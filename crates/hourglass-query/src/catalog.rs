//! Databases and tables as DataFusion catalog objects: the `hourglass` catalog has one schema
//! per database, so `SELECT ... FROM table` (with the request's database as default schema) and
//! `SELECT ... FROM db.table` both resolve.
//!
//! The catalog is built per query for the [`Principal`] it runs as: only the databases that
//! principal may read are listed or resolved (so joins, `information_schema` and `pg_catalog`
//! see nothing else), and the `system` schema's file-backed tables (`system.audit_log`,
//! [`crate::system`]) resolve only for operators (`admin` on `*`; everyone when authentication
//! is off); `system.tables` resolves for everyone, listing only readable databases. `system` is not
//! listed among the schemas, and a real database named `system` takes precedence over it.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use hourglass_auth::Principal;
use hourglass_storage::Engine;

use crate::provider::HourglassTable;

pub const CATALOG_NAME: &str = "hourglass";

/// The databases a principal may read.
#[derive(Debug)]
pub struct DatabasesCatalog {
    pub engine: Arc<Engine>,
    pub principal: Arc<Principal>,
}

impl DatabasesCatalog {
    pub fn new(engine: Arc<Engine>, principal: Arc<Principal>) -> Self {
        DatabasesCatalog { engine, principal }
    }
}

impl CatalogProvider for DatabasesCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.engine
            .catalog
            .snapshot()
            .databases
            .keys()
            .filter(|db| db.as_str() != crate::system::SCHEMA_NAME && self.principal.can_read(db))
            .cloned()
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        // The system schema comes first: a database may never shadow it (its name is reserved,
        // but a data directory from before the reservation may still hold one).
        if name == crate::system::SCHEMA_NAME {
            // Operators see every system table, other principals `system.tables` only.
            return Some(Arc::new(crate::system::SystemSchema::new(
                self.engine.clone(),
                self.principal.clone(),
            )));
        }
        let exists = self.engine.catalog.snapshot().databases.contains_key(name);
        if !exists {
            return None;
        }
        self.principal.can_read(name).then(|| {
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
