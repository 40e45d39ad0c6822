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
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Range;

use memchr::{memchr, memchr2};

use super::dictionary::{hash_long, random_seed};

/// What the first accepted line of a series resolved its measurement and tags to: its table
/// and where its tags lie in the map's [`KnownSeriesMap::tags`] and
/// [`KnownSeriesMap::tag_columns`] (one buffer each for all of a body's series, so remembering
/// a series allocates nothing of its own).
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownSeries {
    /// The table builder's index in the body's tables.
    pub table: usize,
    /// Its (column, dictionary key) pairs, one per tag (an accepted line has no repeated keys).
    tags: Range<usize>,
    /// The column of each tag in line order (the next line's lookup hints).
    tag_columns: Range<usize>,
}

/// A line prefix with its hash, worked out once per line for both the lookup and, on a miss,
/// the insertion.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefix<'a> {
    bytes: &'a [u8],
    hash: u64,
}

impl PartialEq for Prefix<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.bytes == other.bytes
    }
}

impl Eq for Prefix<'_> {}

impl Hash for Prefix<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Known series by the exact bytes of their line prefix.
#[derive(Default)]
pub(crate) struct KnownSeriesMap<'a> {
    by_prefix: HashMap<Prefix<'a>, KnownSeries, PrefixHashState>,
    tags: Vec<(usize, i32)>,
    tag_columns: Vec<u32>,
}

impl<'a> KnownSeriesMap<'a> {
    /// `prefix` hashed (with the dictionary's seeded hash, in four lanes), for [`Self::get`] and
    /// [`Self::insert`].
    pub fn prefix(&self, prefix: &'a [u8]) -> Prefix<'a> {
        Prefix {
            bytes: prefix,
            hash: hash_long(prefix, self.by_prefix.hasher().0),
        }
    }

    pub fn get(&self, prefix: &Prefix<'a>) -> Option<&KnownSeries> {
        self.by_prefix.get(prefix)
    }

    /// The (column, dictionary key) of each of `series`' tags.
    pub fn tags(&self, series: &KnownSeries) -> &[(usize, i32)] {
        &self.tags[series.tags.clone()]
    }

    /// The column of each of `series`' tags, in line order.
    pub fn tag_columns(&self, series: &KnownSeries) -> &[u32] {
        &self.tag_columns[series.tag_columns.clone()]
    }

    /// Remembers `prefix` as a series of table `table` with `tag_columns`, whose tags `fill`
    /// pushes; nothing is remembered when `fill` returns `None`.
    pub fn insert(
        &mut self,
        prefix: Prefix<'a>,
        table: usize,
        tag_columns: &[u32],
        fill: impl FnOnce(&mut Vec<(usize, i32)>) -> Option<()>,
    ) {
        let tags_start = self.tags.len();
        if fill(&mut self.tags).is_none() {
            self.tags.truncate(tags_start);
            return;
        }
        let columns_start = self.tag_columns.len();
        self.tag_columns.extend_from_slice(tag_columns);
        let series = KnownSeries {
            table,
            tags: tags_start..self.tags.len(),
            tag_columns: columns_start..self.tag_columns.len(),
        };
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

/// Passes a [`Prefix`]'s hash through: it was worked out once already.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("a Prefix hashes as its u64")
    }
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// The seed of the prefixes' hash (the dictionary's, random per process).
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
        PrefixHasher(0)
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
        let a = map.prefix(&body[0..10]);
        map.insert(a, 1, &[4], |tags| {
            tags.push((4, 0));
            Some(())
        });
        let b = map.prefix(&body[11..21]);
        map.insert(b, 2, &[5], |tags| {
            tags.push((5, 1));
            Some(())
        });
        // Not remembered: its tags could not be filled.
        let c = map.prefix(b"cpu,host=c");
        map.insert(c, 3, &[6], |tags| {
            tags.push((6, 2));
            None
        });
        let again = map.get(&map.prefix(&body[22..32])).unwrap();
        assert_eq!(again.table, 1);
        assert_eq!(map.tags(again), &[(4, 0)]);
        assert_eq!(map.tag_columns(again), &[4]);
        let b = map.get(&map.prefix(b"cpu,host=b")).unwrap();
        assert_eq!(
            (b.table, map.tags(b), map.tag_columns(b)),
            (2, &[(5, 1)][..], &[5][..])
        );
        assert!(map.get(&map.prefix(b"cpu,host=c")).is_none());
        assert!(map.get(&map.prefix(b"cpu,host=")).is_none());
        assert_eq!(map.tags.len(), 2, "the failed fill left nothing behind");
    }
}
