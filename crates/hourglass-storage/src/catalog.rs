//! The catalog: databases, tables, their Timestream properties and their growing schemas.
//!
//! Readers take a cheap immutable snapshot ([`Catalog::snapshot`]); every change builds a new
//! [`CatalogState`], writes it durably (temp file, fsync, rename, fsync directory) and only then
//! publishes it. Format: `docs/format/catalog.md`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hourglass_core::names::{validate_column_name, validate_database_name, validate_object_name};
use hourglass_core::{ColumnRole, ColumnType, Error, Result, TableProperties};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

pub const CATALOG_FILE: &str = "catalog.json";
pub const CATALOG_FORMAT_VERSION: u32 = 1;

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub role: ColumnRole,
    /// The measure type; `None` for dimensions, `measure_name` and `time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_type: Option<ColumnType>,
}

/// A table: properties and the columns seen so far, in order of arrival.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub name: String,
    pub properties: TableProperties,
    pub columns: Vec<ColumnDef>,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
    /// Free-form settings kept for APIs that describe them back (Timestream's Schema, tags).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
    pub fn dimensions(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns
            .iter()
            .filter(|c| c.role == ColumnRole::Dimension)
    }
    pub fn measures(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns
            .iter()
            .filter(|c| c.role == ColumnRole::Measure)
    }
}

/// A database and its tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDef {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub tables: BTreeMap<String, TableDef>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The whole catalog at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogState {
    pub format_version: u32,
    /// Increases by one on every change.
    pub generation: u64,
    pub databases: BTreeMap<String, DatabaseDef>,
}

impl CatalogState {
    pub fn table(&self, db: &str, table: &str) -> Option<&TableDef> {
        self.databases.get(db)?.tables.get(table)
    }
}

/// A column a write wants to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewColumn {
    pub name: String,
    pub role: ColumnRole,
    pub measure_type: Option<ColumnType>,
}

/// The durable catalog.
#[derive(Debug)]
pub struct Catalog {
    path: PathBuf,
    state: RwLock<Arc<CatalogState>>,
    /// Serialises writers so each change is computed from the latest state.
    write_lock: Mutex<()>,
}

impl Catalog {
    /// Loads `dir/catalog.json`, or starts empty when there is none.
    pub fn open(dir: &Path) -> Result<Catalog> {
        let path = dir.join(CATALOG_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => decode_catalog(&bytes, &path.display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogState {
                format_version: CATALOG_FORMAT_VERSION,
                ..Default::default()
            },
            Err(e) => return Err(Error::io(path.display(), &e)),
        };
        Ok(Catalog {
            path,
            state: RwLock::new(Arc::new(state)),
            write_lock: Mutex::new(()),
        })
    }

    pub fn snapshot(&self) -> Arc<CatalogState> {
        self.state.read().clone()
    }

    /// Applies `change` to a copy of the current state; if it changed anything, persists and
    /// publishes it. Returns what `change` returned.
    pub fn update<T>(&self, change: impl FnOnce(&mut CatalogState) -> Result<T>) -> Result<T> {
        let _guard = self.write_lock.lock();
        let current = self.snapshot();
        let mut next = (*current).clone();
        let out = change(&mut next)?;
        if next != *current {
            next.generation = current.generation + 1;
            next.format_version = CATALOG_FORMAT_VERSION;
            write_durably(&self.path, &next)?;
            *self.state.write() = Arc::new(next);
        }
        Ok(out)
    }

    pub fn create_database(&self, name: &str, now: i64) -> Result<DatabaseDef> {
        validate_database_name(name)?;
        self.update(|s| {
            if s.databases.contains_key(name) {
                return Err(Error::conflict(format!("database '{name}' already exists")));
            }
            let db = new_database(name, now);
            s.databases.insert(name.to_string(), db.clone());
            Ok(db)
        })
    }

    pub fn create_table(
        &self,
        db: &str,
        table: &str,
        properties: TableProperties,
        now: i64,
    ) -> Result<TableDef> {
        validate_object_name("table", table)?;
        self.update(|s| {
            let database = s
                .databases
                .get_mut(db)
                .ok_or_else(|| Error::not_found(format!("database '{db}' does not exist")))?;
            if database.tables.contains_key(table) {
                return Err(Error::conflict(format!(
                    "table '{table}' already exists in database '{db}'"
                )));
            }
            let def = new_table(table, properties, now);
            database.tables.insert(table.to_string(), def.clone());
            Ok(def)
        })
    }

    /// Makes sure the database and table exist (creating them with `defaults`) and that the
    /// columns exist with the given roles and types. Conflicting columns are an error naming them.
    pub fn ensure_columns(
        &self,
        db: &str,
        table: &str,
        defaults: TableProperties,
        columns: &[NewColumn],
        now: i64,
    ) -> Result<()> {
        // Fast path: everything already there.
        let snapshot = self.snapshot();
        if let Some(def) = snapshot.table(db, table) {
            if columns_present(def, columns)? {
                return Ok(());
            }
        }
        validate_database_name(db)?;
        validate_object_name("table", table)?;
        for c in columns {
            validate_column_name(&c.name)?;
        }
        self.update(|s| {
            let database = s
                .databases
                .entry(db.to_string())
                .or_insert_with(|| new_database(db, now));
            let def = database
                .tables
                .entry(table.to_string())
                .or_insert_with(|| new_table(table, defaults, now));
            if !columns_present(def, columns)? {
                for c in columns {
                    if def.column(&c.name).is_none() {
                        def.columns.push(ColumnDef {
                            name: c.name.clone(),
                            role: c.role,
                            measure_type: c.measure_type,
                        });
                    }
                }
                def.updated_at = now;
            }
            Ok(())
        })
    }
}

/// Decodes the bytes of a `catalog.json` (`what` names it in errors): a `Corruption` error for
/// anything unreadable or of a newer format version. Used by [`Catalog::open`] and the fuzzer.
pub fn decode_catalog(bytes: &[u8], what: &str) -> Result<CatalogState> {
    let state: CatalogState = serde_json::from_slice(bytes)
        .map_err(|e| Error::corruption(format!("catalog {what} is unreadable: {e}")))?;
    if state.format_version > CATALOG_FORMAT_VERSION {
        return Err(Error::corruption(format!(
            "catalog {what} has format version {}, newer than this build's {}",
            state.format_version, CATALOG_FORMAT_VERSION
        )));
    }
    Ok(state)
}

fn new_database(name: &str, now: i64) -> DatabaseDef {
    DatabaseDef {
        name: name.to_string(),
        created_at: now,
        updated_at: now,
        tables: BTreeMap::new(),
        extra: Default::default(),
    }
}

/// A new table with only its `time` and `measure_name` columns.
pub fn new_table(name: &str, properties: TableProperties, now: i64) -> TableDef {
    TableDef {
        name: name.to_string(),
        properties,
        columns: vec![
            ColumnDef {
                name: hourglass_core::TIME_COLUMN.into(),
                role: ColumnRole::Time,
                measure_type: None,
            },
            ColumnDef {
                name: hourglass_core::MEASURE_NAME_COLUMN.into(),
                role: ColumnRole::MeasureName,
                measure_type: None,
            },
        ],
        created_at: now,
        updated_at: now,
        extra: Default::default(),
    }
}

/// True when all `columns` exist with matching role and type; an error on a conflict.
fn columns_present(def: &TableDef, columns: &[NewColumn]) -> Result<bool> {
    let mut all = true;
    for c in columns {
        match def.column(&c.name) {
            None => all = false,
            Some(existing) if existing.role != c.role => {
                return Err(Error::conflict(format!(
                    "column '{}' of table '{}' is a {}, not a {}",
                    c.name,
                    def.name,
                    role_name(existing.role),
                    role_name(c.role)
                )))
            }
            Some(existing) if existing.measure_type != c.measure_type => {
                return Err(Error::conflict(format!(
                    "column '{}' of table '{}' has type {}, not {}",
                    c.name,
                    def.name,
                    existing.measure_type.map_or("none", |t| t.name()),
                    c.measure_type.map_or("none", |t| t.name())
                )))
            }
            Some(_) => {}
        }
    }
    Ok(all)
}

pub fn role_name(role: ColumnRole) -> &'static str {
    match role {
        ColumnRole::Time => "time column",
        ColumnRole::Dimension => "dimension",
        ColumnRole::MeasureName => "measure_name column",
        ColumnRole::Measure => "measure",
    }
}

/// Writes `state` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
fn write_durably(path: &Path, state: &CatalogState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::internal(format!("cannot encode catalog: {e}")))?;
    write_file_durably(path, &bytes)
}

/// Atomically replaces `path` with `bytes` and makes the change durable.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(|e| Error::io(tmp.display(), &e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::io(tmp.display(), &e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io(path.display(), &e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir.display(), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(name: &str, ty: ColumnType) -> NewColumn {
        NewColumn {
            name: name.into(),
            role: ColumnRole::Measure,
            measure_type: Some(ty),
        }
    }

    #[test]
    fn schema_grows_conflicts_are_named_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        let p = TableProperties::default();
        catalog
            .ensure_columns("db", "cpu", p, &[measure("usage", ColumnType::Double)], 1)
            .unwrap();
        catalog
            .ensure_columns(
                "db",
                "cpu",
                p,
                &[NewColumn {
                    name: "host".into(),
                    role: ColumnRole::Dimension,
                    measure_type: None,
                }],
                2,
            )
            .unwrap();
        let err = catalog
            .ensure_columns("db", "cpu", p, &[measure("usage", ColumnType::Bigint)], 3)
            .unwrap_err();
        assert_eq!(
            err.message,
            "column 'usage' of table 'cpu' has type DOUBLE, not BIGINT"
        );
        let generation = catalog.snapshot().generation;
        drop(catalog);
        let reopened = Catalog::open(dir.path()).unwrap();
        let snap = reopened.snapshot();
        assert_eq!(snap.generation, generation);
        let names: Vec<_> = snap
            .table("db", "cpu")
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["time", "measure_name", "usage", "host"]);
    }

    #[test]
    fn duplicate_database_is_a_conflict_and_corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        catalog.create_database("sales", 0).unwrap();
        assert_eq!(
            catalog.create_database("sales", 0).unwrap_err().kind,
            hourglass_core::ErrorKind::Conflict
        );
        std::fs::write(dir.path().join(CATALOG_FILE), b"{not json").unwrap();
        let err = Catalog::open(dir.path()).unwrap_err();
        assert_eq!(err.kind, hourglass_core::ErrorKind::Corruption);
    }
}
