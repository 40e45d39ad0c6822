//! The manifest: the query side's only view of a table's magnetic store.
//!
//! One JSON object per table at `<db>/<table>/_manifest.json` lists the table's Parquet files with
//! their time range, row count and size, and the days whose files may hold several writes of one
//! record (resolved by queries until compaction rewrites the day). It is replaced whole by a
//! single object-store put, which is atomic on both the local file system and S3; data files are
//! always written before the manifest that names them and deleted only after a manifest that no
//! longer names them. Format: `docs/format/magnetic-store.md`.

use std::collections::BTreeSet;

use hourglass_core::{Error, Result};
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::store::MagneticStore;

/// The manifest format this build writes. 2: the data files it names may store `time` in
/// milliseconds or microseconds ([`crate::stored_time_unit`]). A build that knows only version 1
/// would read such files with DataFusion's own adapter, which truncates the constants compared
/// with `time`; it refuses a version-2 manifest instead. Version-1 manifests are read as they are
/// (their files hold nanoseconds) and written back as version 2.
pub const MANIFEST_FORMAT_VERSION: u32 = 2;

/// One Parquet file of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Object path relative to the store root.
    pub path: String,
    /// UTC day (days since the epoch) all rows of the file fall in.
    pub day: i64,
    pub min_time: i64,
    pub max_time: i64,
    pub rows: u64,
    pub bytes: u64,
    /// Order of creation within the table; later files hold later writes.
    pub sequence: u64,
    /// The file's last rows of each series ([`crate::last_rows`]), when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rows: Option<String>,
    /// Written by a rewrite of all of its day's files into series ranges
    /// ([`crate::day_layout`]): with the day's other such files it holds disjoint series.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_day: bool,
}

/// The manifest of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Increases by one with every update.
    pub generation: u64,
    pub next_sequence: u64,
    pub files: Vec<FileMeta>,
    /// Days whose files may contain several writes of one record.
    pub dirty_days: BTreeSet<i64>,
    /// WAL sequence of the last `DELETE` whose records are gone from these files
    /// ([`crate::delete`]); WAL replay rewrites files only for later deletions.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deletes_through: u64,
    /// Files a deletion replaced, deleted right after this manifest is stored; listed so a crash
    /// in between cannot leave deleted values on disk (removed when the engine opens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obsolete_files: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub fn table_prefix(db: &str, table: &str) -> String {
    format!("{db}/{table}")
}

pub fn manifest_path(db: &str, table: &str) -> ObjectPath {
    ObjectPath::from(format!("{}/_manifest.json", table_prefix(db, table)))
}

impl Manifest {
    pub async fn load(store: &MagneticStore, db: &str, table: &str) -> Result<Manifest> {
        let path = manifest_path(db, table);
        match store.get(&path).await? {
            None => Ok(Manifest {
                format_version: MANIFEST_FORMAT_VERSION,
                ..Default::default()
            }),
            Some(bytes) => Manifest::decode(&bytes, path.as_ref()),
        }
    }

    /// Decodes the bytes of a `_manifest.json` (`what` names it in errors): a `Corruption`
    /// error for anything unreadable or of a newer format version. Used by [`Manifest::load`]
    /// and the fuzzer.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::corruption(format!("manifest '{what}' is unreadable: {e}")))?;
        if m.format_version > MANIFEST_FORMAT_VERSION {
            return Err(Error::corruption(format!(
                "manifest '{what}' has format version {}, newer than this build's {}",
                m.format_version, MANIFEST_FORMAT_VERSION
            )));
        }
        // Whatever this build adds to it is of its own version.
        let mut m = m;
        m.format_version = MANIFEST_FORMAT_VERSION;
        Ok(m)
    }

    pub async fn store(&self, store: &MagneticStore, db: &str, table: &str) -> Result<()> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| Error::internal(format!("cannot encode manifest: {e}")))?;
        store.put(&manifest_path(db, table), bytes.into()).await
    }

    pub fn max_time(&self) -> Option<i64> {
        self.files.iter().map(|f| f.max_time).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json(version: u32) -> Vec<u8> {
        format!(
            r#"{{"format_version":{version},"generation":3,"next_sequence":1,"files":[],"dirty_days":[]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn older_manifests_are_read_and_written_back_at_this_version_newer_ones_refused() {
        let m = Manifest::decode(&manifest_json(1), "t/_manifest.json").unwrap();
        assert_eq!(m.generation, 3);
        let written: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(written["format_version"], 2);
        assert!(Manifest::decode(&manifest_json(2), "t/_manifest.json").is_ok());
        let err = Manifest::decode(&manifest_json(3), "t/_manifest.json").unwrap_err();
        assert!(
            err.to_string()
                .contains("has format version 3, newer than this build's 2"),
            "{err}"
        );
    }
}
