//! The data directory lock: `DATA_DIR/LOCK`, held with an exclusive `flock` by a running server
//! and by `hourglass import --data-dir` for as long as they use the directory, so the two never
//! open the same WAL at once. The kernel drops the lock when the process exits, however it
//! exits, so a crash leaves nothing to clean up.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use hourglass_core::{Error, Result};
use rustix::fs::{flock, FlockOperation};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Held while alive.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock, creating the directory and the lock file if needed. Fails at once (never
    /// waits) when another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::io(
                format!("cannot create data directory {}", data_dir.display()),
                &e,
            )
        })?;
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), &e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DataDirLock { _file: file, path }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::conflict(format!(
                "data directory {} is in use by another process (a running `hourglass serve` or \
                 another import holds {}): stop it, or import through the server with --server URL",
                data_dir.display(),
                path.display()
            ))),
            Err(e) => Err(Error::internal(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another process"), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
