//! Durability of rules and their states: one JSON file in a directory the caller gives,
//! replaced atomically (temporary file, fsync, rename, fsync of the directory), loaded at start.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rule::AlertRule;
use crate::state::RuleState;

/// The file's name inside the store's directory.
pub const FILE_NAME: &str = "alert_rules.json";
const TEMP_NAME: &str = "alert_rules.json.tmp";
/// The format version written; a file of another version is refused.
pub const FORMAT_VERSION: u32 = 1;

/// Everything that survives a restart: the rules and, by rule name, their states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub rules: Vec<AlertRule>,
    #[serde(default)]
    pub states: BTreeMap<String, RuleState>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            version: FORMAT_VERSION,
            rules: Vec::new(),
            states: BTreeMap::new(),
        }
    }
}

/// A failure to read or write the store, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("alert store {path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("alert store {path}: format version {found}, this build reads {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
}

/// The store in one directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating the directory if needed) and loads the store; an absent file is an empty
    /// snapshot. A leftover temporary file from an interrupted save is removed.
    pub fn open(dir: &Path) -> Result<(Store, Snapshot), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let store = Store {
            dir: dir.to_path_buf(),
        };
        let temp = dir.join(TEMP_NAME);
        if temp.exists() {
            fs::remove_file(&temp).map_err(io(&temp))?;
        }
        let path = store.path();
        let snapshot = match fs::read(&path) {
            Ok(bytes) => {
                let snapshot: Snapshot =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                        path: path.clone(),
                        source,
                    })?;
                if snapshot.version != FORMAT_VERSION {
                    return Err(StoreError::Version {
                        path,
                        found: snapshot.version,
                    });
                }
                snapshot
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => return Err(io(&path)(e)),
        };
        Ok((store, snapshot))
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Replaces the file with `snapshot`, atomically and durably.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let temp = self.dir.join(TEMP_NAME);
        let path = self.path();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let bytes = serde_json::to_vec(snapshot).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        let mut file = fs::File::create(&temp).map_err(io(&temp))?;
        file.write_all(&bytes).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        drop(file);
        fs::rename(&temp, &path).map_err(io(&path))?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Instance;

    fn rule(name: &str) -> AlertRule {
        serde_json::from_value(serde_json::json!({
            "name": name, "query": "SELECT host, v AS value FROM t", "condition": "value > 1",
            "interval": "10s", "labels": {"severity": "page"}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trip_keeps_rules_and_states() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, empty) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(empty, Snapshot::default());

        let r = rule("High");
        let compiled = r.compile().unwrap_or_else(|e| panic!("{e}"));
        let mut state = RuleState::default();
        let instance = Instance {
            labels: [("host".to_string(), "a".to_string())].into(),
            value: Some(2.0),
        };
        state
            .apply(&compiled, 1_700_000_000_000, &[instance], 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let snapshot = Snapshot {
            version: FORMAT_VERSION,
            rules: vec![r, rule("Other")],
            states: [("High".to_string(), state)].into(),
        };
        store.save(&snapshot).unwrap_or_else(|e| panic!("{e}"));
        assert!(!dir.path().join(TEMP_NAME).exists());
        let (_, loaded) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded, snapshot);
    }

    #[test]
    fn leftover_temp_is_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, _) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let snapshot = Snapshot {
            rules: vec![rule("A")],
            ..Snapshot::default()
        };
        store.save(&snapshot).unwrap_or_else(|e| panic!("{e}"));
        fs::write(dir.path().join(TEMP_NAME), b"{ half writ").unwrap_or_else(|e| panic!("{e}"));
        let (_, loaded) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded, snapshot);
        assert!(!dir.path().join(TEMP_NAME).exists());
    }

    #[test]
    fn corrupt_or_foreign_files_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        fs::write(dir.path().join(FILE_NAME), b"not json").unwrap_or_else(|e| panic!("{e}"));
        let err = Store::open(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(FILE_NAME) && err.contains("JSON"), "{err}");
        fs::write(
            dir.path().join(FILE_NAME),
            br#"{"version": 9, "rules": []}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let err = Store::open(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("version 9"), "{err}");
    }
}
