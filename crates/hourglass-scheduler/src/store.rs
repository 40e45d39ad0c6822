//! The durable store of scheduled queries: `<data-dir>/scheduled_queries.json`, every definition
//! and the state its runs left, replaced atomically (write, fsync, rename, fsync the directory)
//! on each change, as the catalog is. The format is documented in `docs/scheduled-queries.md`
//! ("Files").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::definition::{Definition, RunState};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "scheduled_queries.json";
/// The version of the file's layout.
pub const FORMAT_VERSION: u32 = 1;

/// A change could not be made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFailure(pub String);

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StoreFailure> for String {
    fn from(e: StoreFailure) -> String {
        e.0
    }
}

impl From<StoreFailure> for hourglass_timestream::protocol::ApiError {
    fn from(e: StoreFailure) -> Self {
        hourglass_timestream::protocol::ApiError::internal(e.0)
    }
}

/// One scheduled query: its definition and its runs' state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub definition: Definition,
    #[serde(default)]
    pub runs: RunState,
}

/// Everything in the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contents {
    pub format_version: u32,
    /// By ARN.
    pub queries: BTreeMap<String, Entry>,
}

/// The store; changes are serialised and each is durable before it returns.
#[derive(Debug)]
pub struct Store {
    path: Option<PathBuf>,
    contents: Mutex<Arc<Contents>>,
    write: Mutex<()>,
}

impl Store {
    /// Loads the store of `data_dir` (empty when the file does not exist).
    pub fn open(data_dir: &Path) -> Result<Store, String> {
        let path = data_dir.join(FILE_NAME);
        let contents = match std::fs::read(&path) {
            Ok(bytes) => {
                let c: Contents = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if c.format_version > FORMAT_VERSION {
                    return Err(format!(
                        "{}: format version {} is newer than this server's {FORMAT_VERSION}",
                        path.display(),
                        c.format_version
                    ));
                }
                c
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Contents {
                format_version: FORMAT_VERSION,
                ..Default::default()
            },
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Store {
            path: Some(path),
            contents: Mutex::new(Arc::new(contents)),
            write: Mutex::new(()),
        })
    }

    /// A store kept in memory only (tests).
    pub fn in_memory() -> Store {
        Store {
            path: None,
            contents: Mutex::new(Arc::new(Contents {
                format_version: FORMAT_VERSION,
                ..Default::default()
            })),
            write: Mutex::new(()),
        }
    }

    pub fn snapshot(&self) -> Arc<Contents> {
        self.contents.lock().clone()
    }

    pub fn get(&self, arn: &str) -> Option<Entry> {
        self.snapshot().queries.get(arn).cloned()
    }

    /// Applies `change` to a copy of the contents and, if anything changed, makes it durable
    /// and current. Returns what `change` returned.
    pub fn update<T, E: From<StoreFailure>>(
        &self,
        change: impl FnOnce(&mut Contents) -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = self.write.lock();
        let current = self.snapshot();
        let mut next = (*current).clone();
        let out = change(&mut next)?;
        if next != *current {
            next.format_version = FORMAT_VERSION;
            if let Some(path) = &self.path {
                let bytes = serde_json::to_vec_pretty(&next).map_err(|e| {
                    E::from(StoreFailure(format!(
                        "cannot encode scheduled queries: {e}"
                    )))
                })?;
                hourglass_storage::catalog::write_file_durably(path, &bytes)
                    .map_err(|e| E::from(StoreFailure(e.to_string())))?;
            }
            *self.contents.lock() = Arc::new(next);
        }
        Ok(out)
    }
}
