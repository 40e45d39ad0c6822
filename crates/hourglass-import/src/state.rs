//! The resume state file (`docs/format/import-state.md`): per source file, whether it is
//! finished, or how far into it every row is durable (rows or lines, and bytes). Rewritten
//! atomically (temporary file, fsync, rename) after each checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const STATE_FORMAT_VERSION: u32 = 1;

/// Progress in one source file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    /// The file's size when the import read it (a different size starts it over).
    pub size: u64,
    pub done: bool,
    /// Rows (Parquet) or lines (CSV, line protocol; the header included) durable so far.
    pub rows: u64,
    /// Bytes of the (decompressed) text durable so far; informational for Parquet.
    pub bytes: u64,
    /// Rows loaded and rejected so far.
    pub loaded: u64,
    pub rejected: u64,
}

/// The whole state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportState {
    pub version: u32,
    pub database: String,
    /// `data-dir:<dir>` or `server:<url>`.
    pub target: String,
    pub files: BTreeMap<String, FileState>,
}

/// The state and its file.
pub struct StateFile {
    path: PathBuf,
    pub state: ImportState,
}

impl StateFile {
    /// Loads the state of a `--resume`d run (a fresh state when there is none or it is for
    /// another database or target), or starts a fresh one.
    pub fn open(path: &Path, resume: bool, database: &str, target: &str) -> anyhow::Result<Self> {
        let fresh = ImportState {
            version: STATE_FORMAT_VERSION,
            database: database.to_string(),
            target: target.to_string(),
            files: BTreeMap::new(),
        };
        let state = if resume && path.exists() {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let state: ImportState = serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not an import state file", path.display()))?;
            if state.version != STATE_FORMAT_VERSION {
                anyhow::bail!(
                    "{}: unknown state file version {}",
                    path.display(),
                    state.version
                );
            }
            if state.database != database || state.target != target {
                anyhow::bail!(
                    "{}: this state is of an import into {} at {}, not {database} at {target}: \
                     remove it or name another with --state",
                    path.display(),
                    state.database,
                    state.target
                );
            }
            state
        } else {
            fresh
        };
        Ok(StateFile {
            path: path.to_path_buf(),
            state,
        })
    }

    /// Where a file stands (a size change starts it over).
    pub fn file(&self, id: &str, size: u64) -> FileState {
        match self.state.files.get(id) {
            Some(f) if f.size == size => f.clone(),
            _ => FileState {
                size,
                ..Default::default()
            },
        }
    }

    pub fn record(&mut self, id: &str, file: FileState) -> anyhow::Result<()> {
        self.state.files.insert(id.to_string(), file);
        self.save()
    }

    fn save(&self) -> anyhow::Result<()> {
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(&self.state)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.write_all(&bytes)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_reads_back_what_was_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut s = StateFile::open(&path, false, "db", "data-dir:x").unwrap();
        let f = FileState {
            size: 10,
            rows: 4,
            bytes: 7,
            ..Default::default()
        };
        s.record("a.csv", f.clone()).unwrap();
        let s = StateFile::open(&path, true, "db", "data-dir:x").unwrap();
        assert_eq!(s.file("a.csv", 10), f);
        assert_eq!(s.file("a.csv", 11).rows, 0);
        assert!(StateFile::open(&path, true, "other", "data-dir:x").is_err());
        let s = StateFile::open(&path, false, "db", "data-dir:x").unwrap();
        assert!(s.state.files.is_empty());
    }
}
