//! Where a source lives: a local path, or an object in S3 (or any S3-compatible store: the
//! `AWS_*` settings the magnetic store uses). Objects are fetched to a temporary file before they
//! are read, so memory never holds a whole object.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

/// A file to read.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Object {
        store: Arc<dyn ObjectStore>,
        /// `s3://bucket/key`, as shown in messages and recorded in the state file.
        url: String,
        path: ObjectPath,
    },
}

impl Location {
    /// The name shown in messages, progress and rejects.
    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Object { url, .. } => url.clone(),
        }
    }

    /// The last path segment.
    pub fn file_name(&self) -> String {
        let s = self.display();
        s.rsplit('/').next().unwrap_or(&s).to_string()
    }

    /// A local path to read: the file itself, or the object fetched into `scratch`.
    pub async fn materialize(&self, scratch: &Path) -> anyhow::Result<PathBuf> {
        match self {
            Location::Local(p) => Ok(p.clone()),
            Location::Object { store, url, path } => {
                let target = scratch.join(format!(
                    "{}-{}",
                    std::process::id(),
                    path.as_ref().replace('/', "_")
                ));
                let result = store
                    .get(path)
                    .await
                    .with_context(|| format!("reading {url}"))?;
                let mut stream = result.into_stream();
                let mut file = tokio::fs::File::create(&target)
                    .await
                    .with_context(|| format!("creating {}", target.display()))?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.with_context(|| format!("reading {url}"))?;
                    file.write_all(&chunk).await?;
                }
                file.flush().await?;
                Ok(target)
            }
        }
    }
}

/// `s3://bucket/prefix` → (store, prefix).
pub fn s3_store(url: &str) -> anyhow::Result<(Arc<dyn ObjectStore>, String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow!("not an s3:// URL: {url}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(anyhow!("{url}: no bucket"));
    }
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    if std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_ENDPOINT").is_ok() {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_default();
        builder = builder.with_endpoint(&endpoint);
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
    }
    let store = builder
        .build()
        .with_context(|| format!("opening {url} (S3 settings from AWS_* variables)"))?;
    Ok((
        Arc::new(store),
        bucket.to_string(),
        prefix.trim_end_matches('/').to_string(),
    ))
}

/// Every object under `prefix` (recursively): (key, size).
pub async fn list_objects(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> anyhow::Result<Vec<(ObjectPath, u64)>> {
    let prefix_path = if prefix.is_empty() {
        None
    } else {
        Some(ObjectPath::parse(prefix).map_err(|e| anyhow!("bad prefix {prefix}: {e}"))?)
    };
    let mut out = Vec::new();
    let mut listing = store.list(prefix_path.as_ref());
    while let Some(meta) = listing.next().await {
        let meta = meta.with_context(|| format!("listing {prefix}"))?;
        out.push((meta.location, meta.size));
    }
    out.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    Ok(out)
}

/// Every file under a local directory (recursively), sorted.
pub fn list_local(dir: &Path) -> anyhow::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path(), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}
