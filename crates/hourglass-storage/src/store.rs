//! Where the magnetic store lives: a local directory (default) or an S3-compatible bucket.
//!
//! Everything goes through the `object_store` crate. On the local file system, files written are
//! also fsynced (object_store renames staged files but does not sync them), so a manifest never
//! names a file that a crash could lose. A local store's small ranged reads are done on the
//! calling thread ([`crate::inline_reads`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hourglass_core::{Error, Result};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::inline_reads::{inline_read_bytes, InlineReads};

/// The URL under which the magnetic store is registered with the query engine.
pub const STORE_URL: &str = "hourglass://magnetic";

/// An opened magnetic store.
#[derive(Debug, Clone)]
pub struct MagneticStore {
    pub store: Arc<dyn ObjectStore>,
    /// Set when the store is a local directory, for fsyncs.
    pub local_root: Option<PathBuf>,
    /// A human-readable location (`/path/...` or `s3://bucket/prefix`).
    pub location: String,
}

impl MagneticStore {
    /// Opens `spec` (`s3://bucket[/prefix]`, `file:///dir` or a path), or `data_dir/magnetic` when
    /// `None`. S3 settings come from the standard `AWS_*` environment variables
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP`).
    pub fn open(spec: Option<&str>, data_dir: &Path) -> Result<MagneticStore> {
        match spec {
            Some(s) if s.starts_with("s3://") => open_s3(s),
            Some(s) => {
                let dir = s.strip_prefix("file://").unwrap_or(s);
                open_local(Path::new(dir))
            }
            None => open_local(&data_dir.join("magnetic")),
        }
    }

    /// Writes an object; durable when this returns.
    pub async fn put(&self, path: &ObjectPath, bytes: Bytes) -> Result<()> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(|e| store_error("writing", path, e))?;
        if let Some(root) = &self.local_root {
            let file = root.join(path.as_ref());
            let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
            sync(&file).map_err(|e| Error::io(file.display(), &e))?;
            if let Some(parent) = file.parent() {
                sync(parent).map_err(|e| Error::io(parent.display(), &e))?;
            }
        }
        Ok(())
    }

    pub async fn get(&self, path: &ObjectPath) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| store_error("reading", path, e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error("reading", path, e)),
        }
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, path: &ObjectPath) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error("deleting", path, e)),
        }
    }
}

fn open_local(dir: &Path) -> Result<MagneticStore> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), &e))?;
    let root = dir
        .canonicalize()
        .map_err(|e| Error::io(dir.display(), &e))?;
    let store = LocalFileSystem::new_with_prefix(&root)
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", root.display())))?;
    Ok(MagneticStore {
        store: Arc::new(InlineReads::new(store, inline_read_bytes())),
        location: root.display().to_string(),
        local_root: Some(root),
    })
}

fn open_s3(spec: &str) -> Result<MagneticStore> {
    let url =
        Url::parse(spec).map_err(|e| Error::invalid(format!("object store '{spec}': {e}")))?;
    let bucket = url
        .host_str()
        .ok_or_else(|| Error::invalid(format!("object store '{spec}' names no bucket")))?;
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| Error::invalid(format!("object store '{spec}': {e}")))?;
    let prefix = url.path().trim_matches('/');
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix))
    };
    Ok(MagneticStore {
        store,
        local_root: None,
        location: spec.to_string(),
    })
}

fn store_error(action: &str, path: &ObjectPath, e: object_store::Error) -> Error {
    Error::unavailable(format!("object store error {action} '{path}': {e}"))
}
