//! The write rules decoders check against: existing column types and the table's write window.

use hourglass_core::{Clock, ColumnRole, TableProperties};
use hourglass_ingest::{ExistingColumn, TableRules};

use crate::catalog::CatalogState;

/// [`TableRules`] over one catalog snapshot, for one database.
pub struct CatalogRules<'a> {
    pub catalog: &'a CatalogState,
    pub database: &'a str,
    /// Properties of tables the write will create.
    pub defaults: TableProperties,
    pub now: i64,
}

impl<'a> CatalogRules<'a> {
    pub fn new(
        catalog: &'a CatalogState,
        database: &'a str,
        defaults: TableProperties,
        clock: &dyn Clock,
    ) -> Self {
        CatalogRules {
            catalog,
            database,
            defaults,
            now: clock.now_nanos(),
        }
    }

    pub fn properties(&self, table: &str) -> TableProperties {
        self.catalog
            .table(self.database, table)
            .map_or(self.defaults, |t| t.properties)
    }
}

impl TableRules for CatalogRules<'_> {
    fn existing_column(&self, table: &str, column: &str) -> Option<ExistingColumn> {
        let def = self.catalog.table(self.database, table)?.column(column)?;
        Some(match def.role {
            ColumnRole::Measure => ExistingColumn::Measure(
                def.measure_type
                    .unwrap_or(hourglass_core::ColumnType::Varchar),
            ),
            _ => ExistingColumn::Dimension,
        })
    }

    fn check_time(&self, table: &str, time: i64) -> Option<String> {
        self.properties(table).check_write_time(time, self.now)
    }
}
