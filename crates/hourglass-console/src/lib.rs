//! The Hourglass web console, embedded: the files that `npm run build` makes of `console/`
//! (SQL editor, result grid and charts, schema browser, status page, login form), built by this
//! crate's build script at compile time and compiled into the binary, which serves them at `/`
//! and `/console/` (`crates/hourglass/src/http/console.rs`). See `docs/console.md`.
//!
//! [`asset`] looks a file up by its path under `/console/`; each [`Asset`] carries its
//! Content-Type, an ETag, a gzip copy of text files and its caching rule (Vite's content-hashed
//! `assets/*` are immutable; `index.html` is revalidated every time).

mod content_type;

pub use content_type::{compressible, content_type_for};

/// One embedded file of the console.
#[derive(Debug)]
pub struct Asset {
    /// The path under the console's root, e.g. `index.html`, `assets/index-AbC123xy.js`.
    pub path: &'static str,
    pub bytes: &'static [u8],
    /// The same bytes gzipped (text files that shrink by 10 % or more), for `Accept-Encoding: gzip`.
    pub gzip: Option<&'static [u8]>,
    pub content_type: &'static str,
    /// A strong ETag (quoted) of the bytes.
    pub etag: &'static str,
    /// The name carries a content hash: the file never changes and may be cached for ever.
    pub immutable: bool,
}

impl Asset {
    /// The `Cache-Control` of the file.
    pub fn cache_control(&self) -> &'static str {
        if self.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }
    }
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The console's page (`index.html`).
pub const INDEX: &str = "index.html";

/// The file at `path` (relative to the console's root; a leading `/` and an empty path, which
/// means [`INDEX`], are accepted), or None.
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { INDEX } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// Every embedded file.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The total size of the embedded files, and of what is sent gzipped (the console's bundle size).
pub fn bundle_size() -> (usize, usize) {
    ASSETS.iter().fold((0, 0), |(raw, gz), a| {
        (
            raw + a.bytes.len(),
            gz + a.gzip.map_or(a.bytes.len(), <[u8]>::len),
        )
    })
}

#[cfg(test)]
mod tests;
