//! Dropping tables and databases: the catalog entry, the memory store, every object of the table
//! in the magnetic store, and a tombstone so that WAL replay does not bring a dropped table back.
//!
//! A drop runs in this order, each step durable before the next:
//!
//! 1. the WAL is rotated, so every row written to the table so far sits in a closed segment
//!    `<= S`;
//! 2. a tombstone `(database, table, S)` is added to `DATA_DIR/dropped.json`: replay skips the
//!    table's rows in segments `<= S` (rows written after the drop, in later segments, belong to a
//!    new table of the same name and are replayed);
//! 3. the table leaves the catalog (new WriteRecords fail; a line protocol write creates a new,
//!    empty table);
//! 4. its memory store is forgotten and, once any running persist or compaction of it finished,
//!    its manifest is deleted first (so a later table of the same name never sees it), then every
//!    object under `<db>/<table>/` (and, on a local store, the emptied directories).
//!
//! A tombstone is dropped at open once the WAL holds no segment it covers. A write that passed
//! its checks just before the drop and commits just after it can leave rows in the memory store
//! of a table the catalog no longer has; they are invisible to queries and freed at restart.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use hourglass_core::{Error, Result, WriteBatch};
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::catalog::write_file_durably;
use crate::engine::{wal_error, Engine};
use crate::manifest::{manifest_path, table_prefix};

pub const TOMBSTONES_FILE: &str = "dropped.json";
pub const TOMBSTONES_FORMAT_VERSION: u32 = 1;

/// One dropped table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub database: String,
    pub table: String,
    /// WAL segments up to and including this one may hold rows of the dropped table.
    pub through_segment: u64,
    /// When the table was dropped, ns since the epoch.
    pub dropped_at: i64,
}

/// The dropped tables whose rows may still be in the WAL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstones {
    pub format_version: u32,
    pub entries: Vec<Tombstone>,
}

impl Tombstones {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(TOMBSTONES_FILE)
    }

    /// Loads `DATA_DIR/dropped.json` (none: no tombstones).
    pub fn load(data_dir: &Path) -> Result<Tombstones> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let t: Tombstones = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::corruption(format!("{} is unreadable: {e}", path.display()))
                })?;
                if t.format_version > TOMBSTONES_FORMAT_VERSION {
                    return Err(Error::corruption(format!(
                        "{} has format version {}, newer than this build's {}",
                        path.display(),
                        t.format_version,
                        TOMBSTONES_FORMAT_VERSION
                    )));
                }
                Ok(t)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones {
                format_version: TOMBSTONES_FORMAT_VERSION,
                entries: Vec::new(),
            }),
            Err(e) => Err(Error::io(path.display(), &e)),
        }
    }

    /// Writes the tombstones durably (or removes the file when there are none).
    pub fn store(&self, data_dir: &Path) -> Result<()> {
        let path = Self::path(data_dir);
        if self.entries.is_empty() {
            return match std::fs::remove_file(&path) {
                Ok(()) => crate::catalog::sync_dir(data_dir),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(path.display(), &e)),
            };
        }
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode tombstones: {e}")))?;
        write_file_durably(&path, &bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether rows of `db.table` found in WAL segment `segment` belong to a dropped table.
    pub fn covers(&self, db: &str, table: &str, segment: u64) -> bool {
        self.entries
            .iter()
            .any(|t| t.through_segment >= segment && t.database == db && t.table == table)
    }

    /// `batch` without the tables dropped after WAL segment `segment` was written.
    pub fn filter(&self, mut batch: WriteBatch, segment: u64) -> WriteBatch {
        if !self.entries.is_empty() {
            let db = batch.database.clone();
            batch
                .tables
                .retain(|t| !self.covers(&db, &t.table, segment));
        }
        batch
    }

    /// Forgets tombstones no WAL segment still needs; `oldest_segment` is the oldest segment
    /// holding entries (`None`: the WAL holds none). Returns whether anything was removed.
    pub fn prune(&mut self, oldest_segment: Option<u64>) -> bool {
        let before = self.entries.len();
        match oldest_segment {
            None => self.entries.clear(),
            Some(oldest) => self.entries.retain(|t| t.through_segment >= oldest),
        }
        self.entries.len() != before
    }
}

/// What a table drop removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DroppedTable {
    /// Objects deleted from the magnetic store (Parquet files and the manifest).
    pub objects_deleted: usize,
    /// Memory-store bytes freed.
    pub memory_bytes_freed: usize,
}

impl Engine {
    /// Drops a table: catalog entry, memory store, Parquet files and manifest (see the module
    /// docs for the order). `NotFound` when the table does not exist.
    pub async fn drop_table(&self, db: &str, table: &str) -> Result<DroppedTable> {
        if self.catalog.snapshot().table(db, table).is_none() {
            return Err(Error::not_found(format!(
                "table '{table}' does not exist in database '{db}'"
            )));
        }
        let through_segment = self.wal.rotate().map_err(wal_error)?;
        {
            let mut tombstones = self.tombstones.lock();
            tombstones.format_version = TOMBSTONES_FORMAT_VERSION;
            tombstones.entries.push(Tombstone {
                database: db.to_string(),
                table: table.to_string(),
                through_segment,
                dropped_at: self.clock.now_nanos(),
            });
            tombstones.store(&self.config.data_dir)?;
        }
        self.catalog.update(|s| {
            let database = s
                .databases
                .get_mut(db)
                .ok_or_else(|| Error::not_found(format!("database '{db}' does not exist")))?;
            database.tables.remove(table).ok_or_else(|| {
                Error::not_found(format!("table '{table}' does not exist in database '{db}'"))
            })?;
            Ok(())
        })?;
        let mut dropped = DroppedTable::default();
        let store = self.forget_table(db, table);
        let _guard = match &store {
            Some(s) => {
                dropped.memory_bytes_freed = s.memory_bytes();
                Some(s.maintenance.lock().await)
            }
            None => None,
        };
        dropped.objects_deleted = self.delete_prefix(&table_prefix(db, table)).await?;
        Ok(dropped)
    }

    /// Drops an empty database. `NotFound` when it does not exist, `InvalidInput` when it still
    /// has tables.
    pub async fn drop_database(&self, db: &str) -> Result<()> {
        self.catalog.update(|s| {
            let database = s
                .databases
                .get(db)
                .ok_or_else(|| Error::not_found(format!("database '{db}' does not exist")))?;
            if !database.tables.is_empty() {
                return Err(Error::invalid(format!(
                    "database '{db}' still has {} table(s); delete them first",
                    database.tables.len()
                )));
            }
            s.databases.remove(db);
            Ok(())
        })?;
        self.delete_prefix(db).await?;
        Ok(())
    }

    /// Deletes whatever the magnetic store still holds under the prefix of a table the catalog
    /// does not have (left by a drop interrupted by a crash), so that a new table of that name
    /// starts empty. Returns the objects deleted; does nothing when the table exists.
    pub async fn purge_dropped_table_objects(&self, db: &str, table: &str) -> Result<usize> {
        if self.catalog.snapshot().table(db, table).is_some() {
            return Ok(0);
        }
        self.delete_prefix(&table_prefix(db, table)).await
    }

    /// Deletes `prefix/_manifest.json` (when `prefix` is a table's) first, then every object
    /// under `prefix/`, then (local store) the directory itself. Returns the objects deleted.
    async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let mut deleted = 0usize;
        if let Some((db, table)) = prefix.split_once('/') {
            let manifest = manifest_path(db, table);
            if self.magnetic.get(&manifest).await?.is_some() {
                self.magnetic.delete(&manifest).await?;
                deleted += 1;
            }
        }
        let root = ObjectPath::from(prefix);
        let objects: Vec<_> = self
            .magnetic
            .store
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|e| Error::unavailable(format!("object store error listing '{root}': {e}")))?;
        for object in objects {
            self.magnetic.delete(&object.location).await?;
            deleted += 1;
        }
        if let Some(local) = &self.magnetic.local_root {
            let dir = local.join(prefix);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    if let Some(parent) = dir.parent() {
                        crate::catalog::sync_dir(parent)?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(dir.display(), &e)),
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{RecordBatch, TimestampNanosecondArray};
    use arrow_schema::Schema;
    use hourglass_core::types::time_field;
    use hourglass_core::TableWrite;

    fn write(db: &str, table: &str) -> WriteBatch {
        let schema = Arc::new(Schema::new(vec![time_field()]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(TimestampNanosecondArray::from(vec![1]))],
        )
        .unwrap();
        WriteBatch {
            database: db.into(),
            tables: vec![TableWrite {
                table: table.into(),
                batch,
                sources: vec![1],
            }],
        }
    }

    #[test]
    fn tombstones_filter_by_segment_prune_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tombstones::load(dir.path()).unwrap();
        assert!(t.is_empty());
        t.entries.push(Tombstone {
            database: "db".into(),
            table: "cpu".into(),
            through_segment: 3,
            dropped_at: 0,
        });
        t.store(dir.path()).unwrap();
        let t = Tombstones::load(dir.path()).unwrap();
        assert!(t.filter(write("db", "cpu"), 3).tables.is_empty());
        assert_eq!(t.filter(write("db", "cpu"), 4).tables.len(), 1);
        assert_eq!(t.filter(write("db", "mem"), 1).tables.len(), 1);
        assert_eq!(t.filter(write("other", "cpu"), 1).tables.len(), 1);
        let mut pruned = t.clone();
        assert!(!pruned.prune(Some(2)));
        assert!(pruned.prune(Some(4)));
        assert!(pruned.is_empty());
        pruned.store(dir.path()).unwrap();
        assert!(!Tombstones::path(dir.path()).exists());
    }
}
