//! Tests of the embedded console: lookup, types, caching, gzip copies.

use std::io::Read;

use super::*;

#[test]
fn the_index_is_the_default_and_is_html_revalidated_every_time() {
    let index = asset("").expect("index.html embedded");
    assert_eq!(index.path, INDEX);
    assert!(std::ptr::eq(index, asset("/index.html").expect("by name")));
    assert_eq!(index.content_type, "text/html; charset=utf-8");
    assert!(!index.immutable);
    assert_eq!(index.cache_control(), "no-cache");
    let html = std::str::from_utf8(index.bytes).expect("utf-8");
    assert!(html.contains("<main id=\"page\">"), "{html}");
}

#[test]
fn every_script_the_index_loads_is_embedded_hashed_and_immutable() {
    let html = std::str::from_utf8(asset(INDEX).expect("index").bytes).expect("utf-8");
    let scripts: Vec<&str> = html
        .split("src=\"/console/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(!scripts.is_empty(), "no script in {html}");
    for path in scripts {
        let a = asset(path).unwrap_or_else(|| panic!("{path} is not embedded"));
        assert_eq!(a.content_type, "text/javascript; charset=utf-8", "{path}");
        assert!(a.immutable, "{path}");
        assert_eq!(a.cache_control(), "public, max-age=31536000, immutable");
    }
    // No inline script: the Content-Security-Policy allows none.
    assert!(!html.contains("<script>"), "{html}");
}

#[test]
fn unknown_paths_are_none() {
    assert!(asset("no-such-file.js").is_none());
    assert!(asset("assets/").is_none());
    assert!(asset("../Cargo.toml").is_none());
}

#[test]
fn gzip_copies_decompress_to_the_file() {
    let mut any = false;
    for a in assets() {
        if let Some(gz) = a.gzip {
            any = true;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_end(&mut out)
                .expect("valid gzip");
            assert_eq!(out, a.bytes, "{}", a.path);
            assert!(gz.len() < a.bytes.len(), "{}", a.path);
        }
    }
    assert!(any, "no file was gzipped (the JavaScript bundle should be)");
    let (raw, gz) = bundle_size();
    assert!(gz < raw, "{gz} >= {raw}");
}

#[test]
fn etags_are_quoted_and_differ_between_files() {
    let tags: std::collections::HashSet<_> = assets().iter().map(|a| a.etag).collect();
    assert_eq!(tags.len(), assets().len());
    assert!(assets()
        .iter()
        .all(|a| a.etag.starts_with('"') && a.etag.ends_with('"')));
}

#[test]
fn content_types_by_extension() {
    assert_eq!(content_type_for("a/b.JS"), "text/javascript; charset=utf-8");
    assert_eq!(content_type_for("x.css"), "text/css; charset=utf-8");
    assert_eq!(content_type_for("x.svg"), "image/svg+xml");
    assert_eq!(content_type_for("x.woff2"), "font/woff2");
    assert_eq!(content_type_for("noext"), "application/octet-stream");
    assert!(compressible("text/css; charset=utf-8"));
    assert!(!compressible("image/png"));
}
