//! The series (measurement and tags) of one body already accepted, so a line repeating one is
//! not tokenized and resolved again.
//!
//! Writers repeat each series on every line (TSBS: a host's ten tags, ~170 bytes, on every line,
//! each host many times per body). The part of a line before its first space or tab is its
//! series when that part has no backslash: without escapes, a space can only end the tags. The
//! first accepted line of a series records, under those exact bytes, its table, the column each
//! tag resolved to and the dictionary key each tag value got. A later line with the same bytes
//! skips scanning its tags, resolving them and hashing their values: it scans only from the
//! space on, and its tags are appended as those keys. The record lives as long as the body's
//! builders, which only ever add columns and dictionary values, so it stays exact.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use memchr::{memchr, memchr2};

use super::dictionary::{hash_long, random_seed};

/// What the first accepted line of a series resolved its measurement and tags to.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownSeries {
    /// The table builder's index in the body's tables.
    pub table: usize,
    /// (column, dictionary key) of each tag (an accepted line has no repeated tag keys).
    pub tags: Vec<(usize, i32)>,
    /// The column of each tag in line order (the next line's lookup hints).
    pub tag_columns: Vec<u32>,
}

/// Known series by the exact bytes of their line prefix.
#[derive(Default)]
pub(crate) struct KnownSeriesMap<'a> {
    by_prefix: HashMap<&'a [u8], KnownSeries, PrefixHashState>,
}

impl<'a> KnownSeriesMap<'a> {
    pub fn get(&self, prefix: &[u8]) -> Option<&KnownSeries> {
        self.by_prefix.get(prefix)
    }

    pub fn insert(&mut self, prefix: &'a [u8], series: KnownSeries) {
        self.by_prefix.insert(prefix, series);
    }
}

/// Where the series part of `line` ends (its first space or tab), if that part can be
/// recognised by its bytes: not empty and without backslashes.
#[inline]
pub(crate) fn series_end(line: &[u8]) -> Option<usize> {
    let end = memchr2(b' ', b'\t', line)?;
    (end > 0 && memchr(b'\\', &line[..end]).is_none()).then_some(end)
}

/// Hashes a prefix with the dictionary's seeded multiply-fold hash, in four lanes.
#[derive(Default)]
struct PrefixHasher {
    hash: u64,
    seed: u64,
}

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.hash
    }
    fn write(&mut self, bytes: &[u8]) {
        self.hash = hash_long(bytes, self.seed ^ self.hash);
    }
    // A slice's length prefix: `hash_long` already mixes in the length.
    fn write_usize(&mut self, _: usize) {}
}

#[derive(Clone, Copy)]
struct PrefixHashState(u64);

impl Default for PrefixHashState {
    fn default() -> Self {
        PrefixHashState(random_seed())
    }
}

impl BuildHasher for PrefixHashState {
    type Hasher = PrefixHasher;
    fn build_hasher(&self) -> PrefixHasher {
        PrefixHasher {
            hash: 0,
            seed: self.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_ends_at_the_first_space_or_tab_unless_it_has_escapes() {
        assert_eq!(series_end(b"cpu,host=a usage=1 5"), Some(10));
        assert_eq!(series_end(b"cpu\tusage=1"), Some(3));
        assert_eq!(series_end(b"cpu,host=\"a usage=1"), Some(11));
        assert_eq!(series_end(b" cpu usage=1"), None);
        assert_eq!(series_end(b"cpu,host=a\\ b usage=1"), None);
        assert_eq!(series_end(b"cpu"), None);
    }

    #[test]
    fn prefixes_are_found_by_their_exact_bytes() {
        let body = b"cpu,host=a cpu,host=b cpu,host=a";
        let mut map = KnownSeriesMap::default();
        map.insert(
            &body[0..10],
            KnownSeries {
                table: 1,
                ..Default::default()
            },
        );
        map.insert(
            &body[11..21],
            KnownSeries {
                table: 2,
                ..Default::default()
            },
        );
        assert_eq!(map.get(&body[22..32]).map(|s| s.table), Some(1));
        assert_eq!(map.get(b"cpu,host=b").map(|s| s.table), Some(2));
        assert!(map.get(b"cpu,host=c").is_none());
        assert!(map.get(b"cpu,host=").is_none());
    }
}
