//! Where UNLOAD may write. `s3://bucket/prefix` is S3 (or any S3-compatible store) through
//! object_store, with the magnetic store's settings (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`: [`MagneticStore::open`]) — unless the
//! bucket is mapped to a local directory by `--unload-buckets bucket=/dir[,bucket2=/dir2]`
//! (`HOURGLASS_UNLOAD_BUCKETS`; the form of `HOURGLASS_SCHEDULED_QUERY_REPORTS`). A query can
//! never name a path of the server's disk: `file://` URLs are refused, and a key prefix holding
//! `.` or `..` segments is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hourglass_core::{Error, Result};
use hourglass_storage::store::MagneticStore;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

/// The buckets kept in local directories, and the magnetic store's own place in S3 (which
/// no UNLOAD may write into: the server's credentials reach it, a query's user may not).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Destinations {
    dirs: BTreeMap<String, PathBuf>,
    /// `(bucket, prefix)` of the magnetic store when it is in S3.
    protected: Option<(String, String)>,
}

/// An opened destination: the bucket's store and the key prefix inside it.
#[derive(Debug, Clone)]
pub struct Target {
    pub store: Arc<dyn ObjectStore>,
    pub bucket: String,
    /// Key prefix without slashes at either end (may be empty).
    pub prefix: String,
}

impl Target {
    fn full(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    /// The object key of `relative` under the prefix, as written (partition values are
    /// already escaped: not escaped again).
    pub fn key(&self, relative: &str) -> Result<ObjectPath> {
        let full = self.full(relative);
        ObjectPath::parse(&full)
            .map_err(|e| Error::invalid(format!("UNLOAD: '{full}' is not an object key: {e}")))
    }

    /// The `s3://` URL of `relative` under the prefix.
    pub fn url(&self, relative: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full(relative))
    }
}

impl Destinations {
    /// Parses `bucket=/dir[,bucket2=/dir2]` (empty: nothing mapped).
    pub fn parse(spec: &str) -> std::result::Result<Destinations, String> {
        let mut dirs = BTreeMap::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((bucket, dir)) = pair.split_once('=') else {
                return Err(format!("'{pair}' is not bucket=/dir"));
            };
            let (bucket, dir) = (bucket.trim(), dir.trim());
            if bucket.is_empty() || dir.is_empty() || bucket.contains('/') {
                return Err(format!("'{pair}' is not bucket=/dir"));
            }
            if dirs
                .insert(bucket.to_string(), PathBuf::from(dir))
                .is_some()
            {
                return Err(format!("bucket '{bucket}' is mapped twice"));
            }
        }
        Ok(Destinations {
            dirs,
            protected: None,
        })
    }

    /// Refuses destinations inside the magnetic store at `object_store` (`--object-store`:
    /// `s3://bucket[/prefix]`; a directory or none protects nothing here, since only mapped
    /// buckets reach the disk).
    pub fn protecting(mut self, object_store: Option<&str>) -> Destinations {
        self.protected = object_store.and_then(|url| split_url(url).ok());
        self
    }

    /// The directory `bucket` is mapped to.
    pub fn dir(&self, bucket: &str) -> Option<&Path> {
        self.dirs.get(bucket).map(PathBuf::as_path)
    }

    /// Opens the destination of `url` (`s3://bucket[/prefix]`).
    pub fn open(&self, url: &str) -> Result<Target> {
        self.open_as(url, "UNLOAD destination")
    }

    /// Opens `url` (`s3://bucket[/prefix]`) for a reader or writer other than UNLOAD (batch
    /// load's sources and reports): the same buckets, mapped directories and S3 settings, and
    /// the same refusal of the magnetic store's place; errors name the location as `role`.
    pub fn open_as(&self, url: &str, role: &str) -> Result<Target> {
        let (bucket, prefix) = split_url(url)?;
        if let Some((store_bucket, store_prefix)) = &self.protected {
            let inside = store_prefix.is_empty()
                || prefix == *store_prefix
                || prefix.starts_with(&format!("{store_prefix}/"));
            if *store_bucket == bucket && inside && !self.dirs.contains_key(&bucket) {
                return Err(Error::invalid(format!(
                    "{role} '{url}' is inside the magnetic store \
                     (s3://{store_bucket}/{store_prefix}); choose another bucket or prefix"
                )));
            }
        }
        let spec = match self.dirs.get(&bucket) {
            Some(dir) => dir.display().to_string(),
            None => {
                let configured = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ACCESS_KEY_ID"]
                    .iter()
                    .any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()));
                if !configured {
                    return Err(Error::invalid(format!(
                        "{role} s3://{bucket}: the bucket is not mapped to a \
                         directory (--unload-buckets) and no S3 is configured (set \
                         AWS_ENDPOINT_URL and AWS credentials on the server)"
                    )));
                }
                format!("s3://{bucket}")
            }
        };
        let store = MagneticStore::open(Some(&spec), Path::new(""))
            .map_err(|e| e.context(format!("{role} s3://{bucket}")))?;
        Ok(Target {
            store: store.store,
            bucket,
            prefix,
        })
    }
}

/// `(bucket, prefix)` of `s3://bucket/prefix/`; anything else is refused.
pub fn split_url(url: &str) -> Result<(String, String)> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("file:") {
        return Err(Error::invalid(format!(
            "UNLOAD destination '{url}': file:// destinations are refused (a query may not \
             write to the server's disk); map a bucket to a directory with --unload-buckets \
             bucket=/dir and UNLOAD to s3://bucket/..."
        )));
    }
    let Some(rest) = lower.strip_prefix("s3://").map(|_| &url.trim()[5..]) else {
        return Err(Error::invalid(format!(
            "UNLOAD destination '{url}' is not an s3://bucket/prefix URL"
        )));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::invalid(format!(
            "UNLOAD destination '{url}' names no bucket"
        )));
    }
    let prefix = prefix.trim_matches('/');
    for segment in prefix
        .split('/')
        .filter(|s| !prefix.is_empty() || !s.is_empty())
    {
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains('\\') {
            return Err(Error::invalid(format!(
                "UNLOAD destination '{url}': the key prefix may not hold empty, '.' or '..' \
                 segments or '\\'"
            )));
        }
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[test]
    fn bucket_mapping() {
        let d = Destinations::parse(" a=/tmp/a , b=/tmp/b").unwrap();
        assert_eq!(d.dir("a"), Some(Path::new("/tmp/a")));
        assert_eq!(d.dir("c"), None);
        assert_eq!(Destinations::parse("").unwrap(), Destinations::default());
        assert!(Destinations::parse("a").is_err());
        assert!(Destinations::parse("a=").is_err());
        assert!(Destinations::parse("a=/x,a=/y").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("s3://b/p/q/").unwrap(),
            ("b".to_string(), "p/q".to_string())
        );
        assert_eq!(
            split_url("S3://b").unwrap(),
            ("b".to_string(), String::new())
        );
        assert!(split_url("file:///etc")
            .unwrap_err()
            .to_string()
            .contains("file:// destinations are refused"));
        assert!(split_url("/etc/passwd").is_err());
        assert!(split_url("s3:///p").is_err());
        assert!(split_url("s3://b/../../etc").is_err());
        assert!(split_url("s3://b/a//c").is_err());
    }

    #[test]
    fn the_magnetic_store_is_no_destination() {
        let d = Destinations::default().protecting(Some("s3://data/hg/magnetic"));
        for url in ["s3://data/hg/magnetic", "s3://data/hg/magnetic/db1/"] {
            let e = d.open(url).unwrap_err().to_string();
            assert!(e.contains("inside the magnetic store"), "{url}: {e}");
        }
        let whole = Destinations::default().protecting(Some("s3://data"));
        assert!(whole
            .open("s3://data/exports")
            .unwrap_err()
            .to_string()
            .contains("inside the magnetic store"));
        // A local magnetic store protects nothing in S3.
        let local = Destinations::default().protecting(Some("/var/lib/hourglass"));
        assert_eq!(local.protected, None);
    }

    #[tokio::test]
    async fn mapped_buckets_are_local_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = Destinations::parse(&format!("exports={}", dir.path().display())).unwrap();
        let t = d.open("s3://exports/run1/").unwrap();
        assert_eq!(t.url("results/x.csv"), "s3://exports/run1/results/x.csv");
        t.store
            .put(
                &t.key("results/x.csv").unwrap(),
                bytes::Bytes::from_static(b"1\n").into(),
            )
            .await
            .unwrap();
        assert!(dir.path().join("run1/results/x.csv").exists());
    }
}
