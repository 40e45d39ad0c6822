//! A bitmap of the delimiter bytes of one line, so the scanner jumps from delimiter to delimiter.
//!
//! [`Delimiters::index_from`] marks every `,` `=` space, tab, `\` and `"` of a line, testing 8 bytes
//! at a time with word arithmetic (SWAR; the crate forbids `unsafe`, so no SIMD intrinsics) in a
//! branch-free loop the compiler vectorizes; lines without tabs, backslashes and quotes (checked
//! first with `memchr3`) only need the three common delimiters looked for. [`Delimiters::next`] then finds the next marked
//! position with `trailing_zeros`. Name tokens are short (TSBS averages 8 bytes), so skipping
//! their bytes without a per-byte branch is what makes the scanner fast.

use memchr::memchr3;

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Non-zero if some byte of `w` is below 0x20 or at least 0x7F: an ASCII control character, DEL,
/// or part of a non-ASCII character (which may be a C1 control). Only whether it is zero matters.
#[inline(always)]
fn control_candidates(w: u64) -> u64 {
    // A byte below 0x20 borrows into its own high bit (exact as a test for any such byte).
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    // (b & 0x7F) + 1 reaches 0x80 only for 0x7F; bytes from 0x80 have their high bit already.
    let del_or_high = ((w & LOW7) + ONES) | w;
    (below_space | del_or_high) & HIGHS
}

/// 0x80 in every byte of `w` that equals `b`, 0 elsewhere (exact: no false positives).
#[inline(always)]
fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// One bit per byte of an 8-byte group: bit k set if byte k is a delimiter. Without `RARE`,
/// only `,` `=` and space are looked for (the line has no tab, backslash or quote).
#[inline(always)]
fn mask8<const RARE: bool>(group: [u8; 8]) -> u64 {
    let w = u64::from_le_bytes(group);
    let mut m = bytes_equal(w, b',') | bytes_equal(w, b'=') | bytes_equal(w, b' ');
    if RARE {
        m |= bytes_equal(w, b'\t') | bytes_equal(w, b'\\') | bytes_equal(w, b'"');
    }
    // The flags sit at bits 7, 15, ..., 63; gather them into the low byte.
    let mut m = m >> 7;
    m |= m >> 7;
    m |= m >> 14;
    m |= m >> 28;
    m & 0xFF
}

/// A 64-byte block's delimiter bits, and its [`control_candidates`] (OR-ed over its words).
#[inline(always)]
fn mask64<const RARE: bool>(block: &[u8; 64]) -> (u64, u64) {
    let mut word = 0;
    let mut controls = 0;
    for k in 0..8 {
        let mut group = [0u8; 8];
        group.copy_from_slice(&block[k * 8..k * 8 + 8]);
        word |= mask8::<RARE>(group) << (8 * k);
        controls |= control_candidates(u64::from_le_bytes(group));
    }
    (word, controls)
}

/// The delimiter positions of the line last indexed; reused from line to line.
#[derive(Debug, Default)]
pub(crate) struct Delimiters {
    words: Vec<u64>,
    len: usize,
    /// Whether the indexed bytes may hold a control character (see [`Self::may_have_controls`]).
    controls: bool,
}

impl Delimiters {
    /// Marks the delimiters of `line` at or after byte `from` (the 64-byte block holding
    /// `from` onwards), replacing the previous line's; [`Self::next`] must then only be asked
    /// for positions at or after `from`.
    pub fn index_from(&mut self, line: &[u8], from: usize) {
        self.words.clear();
        self.len = line.len();
        let first_block = from.min(line.len()) >> 6;
        self.words.resize(first_block, 0);
        let rest = &line[first_block << 6..];
        // Most lines have no tab, backslash or quote: one SIMD pass over the line (memchr3)
        // lets them be indexed looking for three bytes instead of six.
        if memchr3(b'\t', b'\\', b'"', rest).is_some() {
            self.index_blocks::<true>(rest);
        } else {
            self.index_blocks::<false>(rest);
        }
    }

    fn index_blocks<const RARE: bool>(&mut self, line: &[u8]) {
        let mut controls = 0;
        let mut blocks = line.chunks_exact(64);
        for block in &mut blocks {
            let mut b = [0u8; 64];
            b.copy_from_slice(block);
            let (word, c) = mask64::<RARE>(&b);
            self.words.push(word);
            controls |= c;
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            // Zero padding is not a delimiter; padding with spaces keeps it from counting as a
            // control character.
            let mut b = [b' '; 64];
            b[..rest.len()].copy_from_slice(rest);
            let (word, c) = mask64::<RARE>(&b);
            // The padding's spaces are not delimiters of the line.
            self.words.push(word & ((1u64 << rest.len()) - 1));
            controls |= c;
        }
        self.controls = controls != 0;
    }

    /// False if no byte indexed by the last [`Self::index_from`] is a control character (below
    /// 0x20, or 0x7F) or non-ASCII; true means there may be one, and names must be checked.
    #[inline]
    pub fn may_have_controls(&self) -> bool {
        self.controls
    }

    /// The first delimiter position at or after `from`, or the line length if there is none.
    #[inline]
    pub fn next(&self, from: usize) -> usize {
        let mut w = from >> 6;
        let Some(&first) = self.words.get(w) else {
            return self.len;
        };
        let mut bits = first & (u64::MAX << (from & 63));
        loop {
            if bits != 0 {
                return (w << 6) + bits.trailing_zeros() as usize;
            }
            w += 1;
            match self.words.get(w) {
                Some(&b) => bits = b,
                None => return self.len,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_delimiter(c: u8) -> bool {
        matches!(c, b',' | b'=' | b' ' | b'\t' | b'\\' | b'"')
    }

    #[test]
    fn matches_a_byte_by_byte_scan() {
        // Every byte value in every position of a group, plus lines of awkward lengths.
        let mut line: Vec<u8> = (0..=255u8).collect();
        line.extend((0..=255u8).rev());
        line.extend(b"a,b=c d\te\\f\"g\x80\xff,");
        // The same without tabs, backslashes and quotes, for the three-delimiter path.
        let common: Vec<u8> = line
            .iter()
            .map(|&c| {
                if matches!(c, b'\t' | b'\\' | b'"') {
                    b'x'
                } else {
                    c
                }
            })
            .collect();
        let mut d = Delimiters::default();
        for (line, len) in [0, 1, 7, 8, 9, 63, 64, 65, 127, 128, 200, line.len()]
            .into_iter()
            .flat_map(|len| [(&line, len), (&common, len)])
        {
            let l = &line[..len];
            for start in [0, 1, 63, 64, 100, 130].into_iter().filter(|&s| s <= len) {
                d.index_from(l, start);
                let mut want = Vec::new();
                let mut got = Vec::new();
                for from in start..=len + 2 {
                    want.push((from..len).find(|&i| is_delimiter(l[i])).unwrap_or(len));
                    got.push(d.next(from));
                }
                assert_eq!(got, want, "len {len}, indexed from {start}");
            }
        }
    }

    #[test]
    fn control_characters_are_flagged_wherever_they_are() {
        let mut d = Delimiters::default();
        for len in [1, 7, 8, 9, 63, 64, 65, 130] {
            let plain = vec![b'a'; len];
            d.index_from(&plain, 0);
            assert!(!d.may_have_controls(), "len {len}");
            for at in 0..len {
                for c in [0u8, b'\t', b'\n', 0x1F, 0x7F, 0x80, 0xC2, 0xFF] {
                    let mut line = plain.clone();
                    line[at] = c;
                    d.index_from(&line, 0);
                    assert!(d.may_have_controls(), "len {len}, byte {c:#x} at {at}");
                }
                for c in [b' ', b'~', b'!', b'"', b'\\', b'='] {
                    let mut line = plain.clone();
                    line[at] = c;
                    d.index_from(&line, 0);
                    assert!(!d.may_have_controls(), "len {len}, byte {c:#x} at {at}");
                }
            }
        }
        // Only the indexed blocks count.
        let mut line = vec![b'a'; 130];
        line[3] = 0;
        d.index_from(&line, 64);
        assert!(!d.may_have_controls());
        d.index_from(&line, 63);
        assert!(d.may_have_controls());
    }

    #[test]
    fn next_past_the_end_is_the_length() {
        let mut d = Delimiters::default();
        d.index_from(b"abc,", 0);
        assert_eq!(d.next(0), 3);
        assert_eq!(d.next(4), 4);
        assert_eq!(d.next(1000), 4);
    }
}
