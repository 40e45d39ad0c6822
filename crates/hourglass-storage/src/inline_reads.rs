//! The local magnetic store's small reads, done on the calling thread.
//!
//! `object_store`'s `LocalFileSystem` hands every read to tokio's blocking pool
//! (`spawn_blocking`): a thread wakes, opens the file, reads and wakes the caller again. A query
//! for one series reads a few kilobytes per file (the pages its row groups and page index kept;
//! footers are cached), already in the page cache, and the hand-offs cost more than the reads.
//! Measured with `perf` on the side-by-side data (1,000 hosts, a one-host one-hour query over
//! HTTP, release): the blocking pool's threads were 17 % of the server's CPU samples, and the
//! futex wake-ups and context switches around them most of the 7 % the kernel spent switching.
//!
//! [`InlineReads`] wraps the store: `get_ranges` whose ranges total at most
//! [`inline_read_bytes`] (default [`DEFAULT_INLINE_READ_BYTES`], set by
//! `HOURGLASS_INLINE_READ_BYTES`; 0 sends every read to the pool as before) are read with
//! `pread` on the calling thread. Larger reads, and everything else (writes, renames, lists,
//! deletes, whole-object gets), go to `LocalFileSystem` unchanged.

use std::fmt;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Reads up to this many bytes in one `get_ranges` are done on the calling thread.
pub const DEFAULT_INLINE_READ_BYTES: u64 = 1 << 20;

/// The limit in force: `HOURGLASS_INLINE_READ_BYTES` when it is set to a number, else
/// [`DEFAULT_INLINE_READ_BYTES`].
pub fn inline_read_bytes() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("HOURGLASS_INLINE_READ_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_INLINE_READ_BYTES)
    })
}

/// A local file system store whose small ranged reads skip the blocking pool.
#[derive(Debug)]
pub struct InlineReads {
    inner: Arc<LocalFileSystem>,
    limit: u64,
}

impl InlineReads {
    pub fn new(inner: LocalFileSystem, limit: u64) -> Self {
        InlineReads {
            inner: Arc::new(inner),
            limit,
        }
    }

    fn read_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = self.inner.path_to_filesystem(location)?;
        let file = std::fs::File::open(&path).map_err(|e| io_error(location, e))?;
        ranges
            .iter()
            .map(|r| {
                let mut buf = vec![0u8; (r.end - r.start) as usize];
                file.read_exact_at(&mut buf, r.start).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: format!(
                                "range {}..{} is past the end of {location}",
                                r.start, r.end
                            )
                            .into(),
                        }
                    } else {
                        io_error(location, e)
                    }
                })?;
                Ok(Bytes::from(buf))
            })
            .collect()
    }
}

fn io_error(location: &Path, e: std::io::Error) -> object_store::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: location.to_string(),
            source: Box::new(e),
        }
    } else {
        object_store::Error::Generic {
            store: "LocalFileSystem",
            source: format!("reading {location}: {e}").into(),
        }
    }
}

impl fmt::Display for InlineReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InlineReads({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for InlineReads {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if total > self.limit || ranges.iter().any(|r| r.end < r.start) {
            return self.inner.get_ranges(location, ranges).await;
        }
        self.read_ranges(location, ranges)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn store(dir: &std::path::Path, limit: u64) -> InlineReads {
        InlineReads::new(LocalFileSystem::new_with_prefix(dir).unwrap(), limit)
    }

    #[tokio::test]
    async fn small_reads_inline_and_large_reads_pooled_return_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let path = Path::from("db/t/2016-01-01/a.parquet");
        let inline = store(dir.path(), 1 << 20);
        inline
            .put(&path, PutPayload::from(content.clone()))
            .await
            .unwrap();
        let pooled = store(dir.path(), 0);
        let ranges = [0..10, 4_096..12_288, 199_990..200_000, 7..7];
        let a = inline.get_ranges(&path, &ranges).await.unwrap();
        let b = pooled.get_ranges(&path, &ranges).await.unwrap();
        assert_eq!(a, b);
        for (got, r) in a.iter().zip(&ranges) {
            assert_eq!(&got[..], &content[r.start as usize..r.end as usize]);
        }
    }

    #[tokio::test]
    async fn a_missing_file_is_not_found_and_a_range_past_the_end_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let inline = store(dir.path(), 1 << 20);
        let missing = inline
            .get_ranges(&Path::from("db/t/gone.parquet"), &[0..4, 8..12])
            .await
            .unwrap_err();
        assert!(
            matches!(missing, object_store::Error::NotFound { .. }),
            "{missing}"
        );
        let path = Path::from("db/t/short.parquet");
        inline
            .put(&path, PutPayload::from(vec![1u8; 100]))
            .await
            .unwrap();
        let past = inline
            .get_ranges(&path, &[0..10, 50..150])
            .await
            .unwrap_err();
        assert!(past.to_string().contains("past the end"), "{past}");
    }
}
