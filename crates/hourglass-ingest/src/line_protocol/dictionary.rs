//! The builder of dictionary-encoded tag columns, and the fast short-string hash and equality
//! it and the column lookup use.
//!
//! Tag values repeat a lot (TSBS: 10 tags per line, a few thousand distinct values), so each
//! append is a hash lookup. Arrow's `StringDictionaryBuilder` spends most of that time in a
//! generic hasher and a `memcmp` call per probe; [`TagBuilder`] hashes with a seeded
//! multiply-fold hash over 8-byte words, maps the 64-bit hash to the value's key, and confirms
//! with an inline comparison. Two different values with the same 64-bit hash are still kept
//! apart (the second goes to a small fallback map), so the output is exact.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::OnceLock;

use arrow_array::builder::{ArrayBuilder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array};
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};
use arrow_schema::ArrowError;

#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn half(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Byte equality for names and values, inline for up to 32 bytes (no `memcmp` call).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => {
            word(a, 0) == word(b, 0)
                && word(a, 8) == word(b, 8)
                && word(a, n - 16) == word(b, n - 16)
                && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xBF58_476D_1CE4_E5B9;
const K3: u64 = 0x94D0_49BB_1331_11EB;

/// A per-process random seed, so that colliding values cannot be prepared in advance.
pub(crate) fn random_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| RandomState::new().hash_one(0x6c70_u64))
}

/// A fast seeded hash of a short byte string (wyhash-style multiply-fold over 8-byte words).
#[inline]
pub(crate) fn hash_bytes(s: &[u8], seed: u64) -> u64 {
    let n = s.len();
    let mut h = seed ^ (n as u64).wrapping_mul(K1);
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            h = fold_mul(h ^ word(s, i), K2);
            i += 8;
        }
        // The last 8 bytes, overlapping the previous word if `n` is not a multiple of 8.
        h = fold_mul(h ^ word(s, n - 8), K3);
    } else if n >= 4 {
        h = fold_mul(h ^ (half(s, 0) << 32 | half(s, n - 4)), K3);
    } else if n > 0 {
        let v = u64::from(s[0]) << 16 | u64::from(s[n / 2]) << 8 | u64::from(s[n - 1]);
        h = fold_mul(h ^ v, K3);
    }
    fold_mul(h, K1)
}

/// [`hash_bytes`] for longer strings (line prefixes, ~170 bytes in TSBS): four multiply-folds
/// over each 32-byte block, independent of each other, so a word does not wait for the previous
/// word's multiplication (the single chain took ~40 ns for a TSBS prefix, 7 % of decoding).
#[inline]
pub(crate) fn hash_long(s: &[u8], seed: u64) -> u64 {
    let n = s.len();
    if n <= 32 {
        return hash_bytes(s, seed);
    }
    let mut lanes = [
        seed ^ (n as u64).wrapping_mul(K1),
        seed ^ K2,
        seed.rotate_left(21) ^ K3,
        seed.rotate_left(42) ^ K1,
    ];
    let mut i = 0;
    while i + 32 < n {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane = fold_mul(*lane ^ word(s, i + 8 * l), K2);
        }
        i += 32;
    }
    // The last 32 bytes, overlapping the previous block if `n` is not a multiple of 32.
    for (l, lane) in lanes.iter_mut().enumerate() {
        *lane = fold_mul(*lane ^ word(s, n - 32 + 8 * l), K3);
    }
    let h = fold_mul(lanes[0] ^ lanes[2].rotate_left(32), lanes[1] ^ K1);
    fold_mul(h ^ lanes[3], K2)
}

/// A hasher for keys that already are good 64-bit hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default, Clone, Copy)]
struct PassThroughState;

impl BuildHasher for PassThroughState {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// Builds a `Dictionary(Int32, Utf8)` array of tag values.
pub(crate) struct TagBuilder {
    keys: Vec<i32>,
    nulls: NullBufferBuilder,
    values: StringBuilder,
    /// Hash of a value -> its key.
    by_hash: HashMap<u64, i32, PassThroughState>,
    /// Values whose hash is already taken by another value (practically never used).
    collided: HashMap<String, i32>,
    seed: u64,
}

impl Default for TagBuilder {
    fn default() -> Self {
        TagBuilder {
            keys: Vec::new(),
            nulls: NullBufferBuilder::new(0),
            values: StringBuilder::new(),
            by_hash: HashMap::default(),
            collided: HashMap::new(),
            seed: random_seed(),
        }
    }
}

impl TagBuilder {
    fn value(&self, key: i32) -> &[u8] {
        let offsets = self.values.offsets_slice();
        let k = key as usize;
        match (offsets.get(k), offsets.get(k + 1)) {
            (Some(&start), Some(&end)) => self
                .values
                .values_slice()
                .get(start as usize..end as usize)
                .unwrap_or_default(),
            _ => &[],
        }
    }

    /// The key of `v`, adding it to the dictionary if new; `None` if keys are exhausted.
    #[inline]
    fn key(&mut self, v: &str) -> Option<i32> {
        let h = hash_bytes(v.as_bytes(), self.seed);
        if let Some(&key) = self.by_hash.get(&h) {
            if same_bytes(self.value(key), v.as_bytes()) {
                return Some(key);
            }
            if let Some(&key) = self.collided.get(v) {
                return Some(key);
            }
            let key = self.add_value(v)?;
            self.collided.insert(v.to_owned(), key);
            return Some(key);
        }
        let key = self.add_value(v)?;
        self.by_hash.insert(h, key);
        Some(key)
    }

    fn add_value(&mut self, v: &str) -> Option<i32> {
        let key = i32::try_from(self.values.len()).ok()?;
        self.values.append_value(v);
        Some(key)
    }

    /// Appends a value. Keys cannot run out: a table holds fewer than `i32::MAX` rows (see
    /// `TableBuilder::fits`); if they did, a null would be appended.
    #[inline]
    pub fn append(&mut self, v: &str) {
        match self.key(v) {
            Some(key) => {
                self.keys.push(key);
                self.nulls.append_non_null();
            }
            None => self.append_nulls(1),
        }
    }

    /// Appends the value that [`Self::append`] gave `key` (see [`Self::last_key`]).
    #[inline]
    pub fn append_key(&mut self, key: i32) {
        self.keys.push(key);
        self.nulls.append_non_null();
    }

    /// The key of the last slot appended, `None` if it is a null or there is none.
    pub fn last_key(&self) -> Option<i32> {
        let last = self.keys.len().checked_sub(1)?;
        self.nulls.is_valid(last).then(|| self.keys[last])
    }

    pub fn append_nulls(&mut self, n: usize) {
        self.keys.resize(self.keys.len() + n, 0);
        self.nulls.append_n_nulls(n);
    }

    pub fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let keys = Int32Array::new(
            ScalarBuffer::from(std::mem::take(&mut self.keys)),
            self.nulls.finish(),
        );
        let values: ArrayRef = Arc::new(self.values.finish());
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
            keys, values,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::Array;

    #[test]
    fn same_bytes_agrees_with_slice_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..40 {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 1;
                assert!(!same_bytes(a, &b), "len {n}, byte {i}");
            }
            assert!(!same_bytes(a, &base[..n + 1]));
        }
    }

    #[test]
    fn hash_depends_on_every_byte_and_the_length() {
        let base: Vec<u8> = (0..40u8).collect();
        let mut seen = std::collections::HashSet::new();
        for n in 0..40 {
            assert!(seen.insert(hash_bytes(&base[..n], 7)), "len {n}");
            for i in 0..n {
                let mut b = base[..n].to_vec();
                b[i] ^= 0x80;
                assert!(seen.insert(hash_bytes(&b, 7)), "len {n}, byte {i}");
            }
        }
        assert_ne!(hash_bytes(b"abc", 1), hash_bytes(b"abc", 2));
        // The same for the long-string hash: every length to 300, every byte changed.
        let base: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut seen = std::collections::HashSet::new();
        for n in 0..=base.len() {
            assert!(seen.insert(hash_long(&base[..n], 7)), "long, len {n}");
            for i in 0..n {
                let mut b = base[..n].to_vec();
                b[i] ^= 0x20;
                assert!(seen.insert(hash_long(&b, 7)), "long, len {n}, byte {i}");
            }
        }
        assert_ne!(hash_long(&base, 1), hash_long(&base, 2));
    }

    #[test]
    fn builds_a_dictionary_with_nulls() {
        let mut b = TagBuilder::default();
        b.append("a");
        b.append_nulls(2);
        b.append("bb");
        b.append("a");
        let array = b.finish().unwrap();
        let dict = array.as_dictionary::<Int32Type>();
        assert_eq!(dict.len(), 5);
        assert_eq!(dict.null_count(), 2);
        assert_eq!(dict.values().len(), 2);
        let values = dict.downcast_dict::<arrow_array::StringArray>().unwrap();
        let got: Vec<_> = values.into_iter().collect();
        assert_eq!(got, [Some("a"), None, None, Some("bb"), Some("a")]);
    }

    #[test]
    fn values_with_equal_hashes_stay_distinct() {
        let mut b = TagBuilder::default();
        // Force a collision: register "x"'s hash as belonging to "y"'s key.
        b.append("y");
        let hx = hash_bytes(b"x", b.seed);
        b.by_hash.insert(hx, 0);
        b.append("x");
        b.append("x");
        b.append("y");
        let array = b.finish().unwrap();
        let dict = array.as_dictionary::<Int32Type>();
        let values = dict.downcast_dict::<arrow_array::StringArray>().unwrap();
        let got: Vec<_> = values.into_iter().collect();
        assert_eq!(got, [Some("y"), Some("x"), Some("x"), Some("y")]);
        assert_eq!(dict.values().len(), 2);
    }
}
