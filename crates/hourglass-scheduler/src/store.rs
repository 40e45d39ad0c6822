//! The durable store of scheduled queries: one file per query in
//! `<data-dir>/scheduled_queries/` (`<id>.json`), its definition and the state its runs left.
//! A change rewrites only the files of the queries it changed, each replaced atomically (write,
//! fsync, rename, fsync the directory). The old single file `scheduled_queries.json` (format 1)
//! is migrated at start. Format: `docs/format/scheduled-queries.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::definition::{Definition, RunState};

/// The directory of the per-query files, in the data directory.
pub const DIR_NAME: &str = "scheduled_queries";
/// The single file of format 1, migrated to [`DIR_NAME`] at start.
pub const FILE_NAME: &str = "scheduled_queries.json";
/// The version of the files' layout (1 was the single file).
pub const FORMAT_VERSION: u32 = 2;

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

/// Every scheduled query. Entries are shared between snapshots: a change goes through
/// [`Arc::make_mut`] on the entries it changes only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    pub format_version: u32,
    /// By ARN.
    pub queries: BTreeMap<String, Arc<Entry>>,
}

/// One query's file, as written.
#[derive(Serialize)]
struct FileOut<'a> {
    format_version: u32,
    arn: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// One query's file, as read.
#[derive(Deserialize)]
struct FileIn {
    arn: String,
    #[serde(flatten)]
    entry: Entry,
}

/// The version field alone (read first, so a newer layout is refused by name).
#[derive(Deserialize)]
struct Version {
    format_version: u32,
}

/// The single file of format 1.
#[derive(Deserialize)]
struct FormatOne {
    queries: BTreeMap<String, Entry>,
}

/// The store; changes are serialised and each is durable before it returns.
#[derive(Debug)]
pub struct Store {
    /// The directory of the files; `None`: in memory only.
    dir: Option<PathBuf>,
    contents: Mutex<Arc<Contents>>,
    write: Mutex<()>,
}

/// The file name of the query `arn`: the ARN's last path segment ([`Definition::id`]), with
/// every byte other than ASCII letters, digits, `-` and `_` written `%xx`.
pub fn file_name(arn: &str) -> String {
    let id = match arn.rsplit('/').next() {
        Some(id) if !id.is_empty() => id,
        _ => arn,
    };
    let mut name = String::with_capacity(id.len() + 5);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02x}"));
        }
    }
    name.push_str(".json");
    name
}

impl Store {
    /// Loads the store of `data_dir` (empty when there is none), migrating a format-1
    /// `scheduled_queries.json` first.
    pub fn open(data_dir: &Path) -> Result<Store, String> {
        let dir = data_dir.join(DIR_NAME);
        let old = data_dir.join(FILE_NAME);
        let queries = match std::fs::read(&old) {
            Ok(bytes) => migrate(&old, &bytes, &dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => read_dir(&dir)?,
            Err(e) => return Err(format!("{}: {e}", old.display())),
        };
        Ok(Store {
            dir: Some(dir),
            contents: Mutex::new(Arc::new(Contents {
                format_version: FORMAT_VERSION,
                queries,
            })),
            write: Mutex::new(()),
        })
    }

    /// A store kept in memory only (tests).
    pub fn in_memory() -> Store {
        Store {
            dir: None,
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

    /// A copy of the entry of `arn`.
    pub fn get(&self, arn: &str) -> Option<Entry> {
        self.entry(arn).map(Arc::unwrap_or_clone)
    }

    /// The entry of `arn`, shared (no copy).
    pub fn entry(&self, arn: &str) -> Option<Arc<Entry>> {
        self.snapshot().queries.get(arn).cloned()
    }

    /// Applies `change` to a copy of the contents and, if anything changed, makes the changed
    /// entries durable (their files only) and the copy current. Returns what `change` returned.
    ///
    /// On a failure the contents in memory stay as they were; when several entries changed,
    /// those written before the failure are on disk already (each file is whole).
    pub fn update<T, E: From<StoreFailure>>(
        &self,
        change: impl FnOnce(&mut Contents) -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = self.write.lock();
        let current = self.snapshot();
        let mut next = (*current).clone();
        let out = change(&mut next)?;
        let changed: Vec<(&String, &Arc<Entry>)> = next
            .queries
            .iter()
            .filter(|(arn, e)| {
                current
                    .queries
                    .get(*arn)
                    .is_none_or(|old| !Arc::ptr_eq(old, e) && **old != ***e)
            })
            .collect();
        let removed: Vec<&String> = current
            .queries
            .keys()
            .filter(|arn| !next.queries.contains_key(*arn))
            .collect();
        if changed.is_empty() && removed.is_empty() {
            return Ok(out);
        }
        if let Some(dir) = &self.dir {
            write_changes(dir, &changed, &removed).map_err(|e| E::from(StoreFailure(e)))?;
        }
        next.format_version = FORMAT_VERSION;
        *self.contents.lock() = Arc::new(next);
        Ok(out)
    }
}

/// Writes the files of `changed`, removes those of `removed`, and syncs the directory.
fn write_changes(
    dir: &Path,
    changed: &[(&String, &Arc<Entry>)],
    removed: &[&String],
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (arn, entry) in changed {
        let bytes = encode(arn, entry)?;
        replace_file(&dir.join(file_name(arn)), &bytes)?;
    }
    for arn in removed {
        let path = dir.join(file_name(arn));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    hourglass_storage::catalog::sync_dir(dir).map_err(|e| e.to_string())
}

/// The bytes of the file of `arn`.
fn encode(arn: &str, entry: &Entry) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&FileOut {
        format_version: FORMAT_VERSION,
        arn,
        entry,
    })
    .map_err(|e| format!("cannot encode scheduled query {arn}: {e}"))
}

/// Replaces `path` atomically: writes `<path>.tmp`, fsyncs it and renames it over `path`. The
/// caller fsyncs the directory.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The query files of `dir` (none when it does not exist); leftover temporary files are
/// removed.
fn list(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let listing = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut files = Vec::new();
    let mut leftovers = false;
    for item in listing {
        let path = item.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        match path.extension().and_then(|x| x.to_str()) {
            Some("tmp") => {
                // An update stopped before its rename: the file it was replacing is whole.
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                leftovers = true;
            }
            Some("json") => files.push(path),
            _ => {}
        }
    }
    if leftovers {
        hourglass_storage::catalog::sync_dir(dir).map_err(|e| e.to_string())?;
    }
    Ok(files)
}

/// Reads the files of `dir`.
fn read_dir(dir: &Path) -> Result<BTreeMap<String, Arc<Entry>>, String> {
    let mut queries = BTreeMap::new();
    for path in list(dir)? {
        let (arn, entry) = read_file(&path)?;
        let expected = file_name(&arn);
        if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
            return Err(format!(
                "{}: the file of {arn} must be named {expected}",
                path.display()
            ));
        }
        queries.insert(arn, Arc::new(entry));
    }
    Ok(queries)
}

/// Reads one query's file.
fn read_file(path: &Path) -> Result<(String, Entry), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_version(path, &bytes)?;
    let file: FileIn =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if file.entry.definition.arn != file.arn {
        return Err(format!(
            "{}: arn {} differs from the definition's {}",
            path.display(),
            file.arn,
            file.entry.definition.arn
        ));
    }
    Ok((file.arn, file.entry))
}

/// Refuses a file whose layout is newer than this server's.
fn check_version(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let v: Version =
        serde_json::from_slice(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if v.format_version > FORMAT_VERSION {
        return Err(format!(
            "{}: format version {} is newer than this server's {FORMAT_VERSION}",
            path.display(),
            v.format_version
        ));
    }
    Ok(())
}

/// Migrates the single file `old` (its `bytes`, format 1), which is authoritative: `dir` is
/// made to hold exactly its queries, then `old` is removed. A stop part way repeats it at the
/// next start.
fn migrate(old: &Path, bytes: &[u8], dir: &Path) -> Result<BTreeMap<String, Arc<Entry>>, String> {
    check_version(old, bytes)?;
    let c: FormatOne =
        serde_json::from_slice(bytes).map_err(|e| format!("{}: {e}", old.display()))?;
    let queries: BTreeMap<String, Arc<Entry>> = c
        .queries
        .into_iter()
        .map(|(arn, e)| (arn, Arc::new(e)))
        .collect();
    // Files of queries the old file does not hold (left by a newer server before a downgrade).
    let names: std::collections::BTreeSet<String> = queries.keys().map(|a| file_name(a)).collect();
    for path in list(dir)? {
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| names.contains(n))
        {
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let all: Vec<(&String, &Arc<Entry>)> = queries.iter().collect();
    write_changes(dir, &all, &[])?;
    std::fs::remove_file(old).map_err(|e| format!("{}: {e}", old.display()))?;
    if let Some(parent) = old.parent() {
        hourglass_storage::catalog::sync_dir(parent).map_err(|e| e.to_string())?;
    }
    tracing::info!(
        queries = queries.len(),
        "scheduled queries migrated to one file per query"
    );
    Ok(queries)
}
