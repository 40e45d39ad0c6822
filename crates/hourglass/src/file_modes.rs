//! Owner-only files: everything the server and `hourglass user` create under the data directory
//! (WAL segments, catalog, manifests, Parquet files, the audit log, users and keys) is readable
//! by the user running Hourglass only, as PostgreSQL keeps its data directory.
//!
//! The process's file-creation mask is set to `077` before anything is opened, so every file
//! and directory is created `0600`/`0700` whichever library creates it; a data directory that
//! already exists with access for others loses it, with a warning naming both modes.

use std::path::Path;

/// Makes every file and directory this process creates from now on owner-only.
pub fn restrict_new_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Takes group and other access away from an existing data directory (the files in it are then
/// unreachable for other users whatever their own modes). A directory not there yet is created
/// later under the mask of [`restrict_new_files`].
pub fn protect_data_dir(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(dir) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return;
        }
        let owner_only = mode & 0o700;
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(owner_only)) {
            Ok(()) => tracing::warn!(
                dir = %dir.display(),
                "the data directory was accessible to other users (mode {mode:o}); it is now \
                 {owner_only:o}"
            ),
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "the data directory is accessible to other users (mode {mode:o}) and its mode \
                 cannot be changed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn an_open_data_directory_becomes_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        super::protect_data_dir(dir.path());
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
