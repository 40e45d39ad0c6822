//! The S3 side of batch load: the buckets of sources, data models and reports are opened as
//! UNLOAD opens its destinations ([`hourglass_unload::Destinations::open_as`]): buckets mapped
//! to directories by `--unload-buckets`, any other through the magnetic store's object-store
//! settings (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...), never the magnetic store itself.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use hourglass_unload::Destinations;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// An opened bucket.
#[derive(Clone)]
pub struct Bucket {
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket({})", self.name)
    }
}

/// Opens `bucket` (`role` names it in errors).
pub fn open(destinations: &Destinations, bucket: &str, role: &str) -> Result<Bucket, String> {
    let target = destinations
        .open_as(&format!("s3://{bucket}"), role)
        .map_err(|e| e.to_string())?;
    Ok(Bucket {
        name: bucket.to_string(),
        store: target.store,
    })
}

impl Bucket {
    /// The keys (and sizes) of the objects whose key starts with `prefix`, in key order. An S3
    /// prefix need not end at a `/`: the listing is of its folder, filtered by the prefix.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, String> {
        let folder = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let folder = folder.trim_matches('/');
        let path = (!folder.is_empty()).then(|| ObjectPath::from(folder));
        let mut out: Vec<(String, u64)> = self
            .store
            .list(path.as_ref())
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| format!("listing s3://{}/{prefix}: {e}", self.name))?
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix.trim_start_matches('/')) && !k.ends_with('/'))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Whether the bucket can be listed (it exists and the credentials reach it).
    pub async fn check(&self) -> Result<(), String> {
        let mut stream = self.store.list(None);
        match stream.try_next().await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("the bucket {} cannot be read: {e}", self.name)),
        }
    }

    /// The bytes of object `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, String> {
        let path =
            ObjectPath::parse(key).map_err(|e| format!("'{key}' is not an object key: {e}"))?;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|e| format!("reading s3://{}/{key}: {e}", self.name))?;
        got.bytes()
            .await
            .map_err(|e| format!("reading s3://{}/{key}: {e}", self.name))
    }

    /// Writes object `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        let path =
            ObjectPath::parse(key).map_err(|e| format!("'{key}' is not an object key: {e}"))?;
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| format!("writing s3://{}/{key}: {e}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prefixes_need_not_end_at_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = Destinations::parse(&format!("src={}", dir.path().display())).unwrap();
        let b = open(&d, "src", "batch load source").unwrap();
        for key in ["in/a1.csv", "in/a2.csv", "in/b.csv", "other.csv"] {
            b.put(key, b"x\n".to_vec()).await.unwrap();
        }
        let keys = |v: Vec<(String, u64)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(b.list("in/a").await.unwrap()),
            vec!["in/a1.csv", "in/a2.csv"]
        );
        assert_eq!(keys(b.list("in/").await.unwrap()).len(), 3);
        assert_eq!(keys(b.list("").await.unwrap()).len(), 4);
        assert_eq!(b.get("in/b.csv").await.unwrap().as_ref(), b"x\n");
        b.check().await.unwrap();
    }
}
