//! On-disk format of WAL segments: constants, file naming, and the encoding
//! and decoding of the segment header and of entry frames.
//!
//! The byte-by-byte specification lives in `docs/format/wal.md`; this module
//! is its single implementation. All integers are little-endian.
//!
//! ```text
//! segment = header (36 bytes) entry*
//! header  = magic "HGWALSEG" | version u32 | flags u32 | segment_id u64
//!         | base_sequence u64 | header_crc u32 (CRC32C of bytes 0..32)
//! entry   = payload_len u32 | crc u32 (CRC32C of sequence bytes ++ payload)
//!         | sequence u64 | payload
//! ```

/// Magic bytes at the start of every segment file.
pub const MAGIC: [u8; 8] = *b"HGWALSEG";

/// The only format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the segment header in bytes; the first entry starts here.
pub const HEADER_LEN: u64 = 36;

/// Size of an entry frame header (length, CRC, sequence) in bytes.
pub const ENTRY_HEADER_LEN: u64 = 16;

/// Largest payload accepted by `append` and by recovery (256 MiB).
/// A larger length field on disk is treated as corruption, never as a
/// torn write: the writer can never have produced it.
pub const MAX_ENTRY_LEN: u64 = 256 * 1024 * 1024;

/// Sequence number of the first entry ever written to an empty WAL.
pub const FIRST_SEQUENCE: u64 = 1;

const SEGMENT_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".seg";
const SEGMENT_ID_DIGITS: usize = 20;
/// Suffix of a segment being created (header written, not yet renamed).
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// File name of segment `id`: `wal-<id as 20 zero-padded digits>.seg`.
pub fn segment_file_name(id: u64) -> String {
    format!(
        "{SEGMENT_PREFIX}{id:0width$}{SEGMENT_SUFFIX}",
        width = SEGMENT_ID_DIGITS
    )
}

/// Parses a segment file name produced by [`segment_file_name`]; returns
/// `None` for any other name (including temporary files).
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Returns true for the temporary name of a segment under creation.
pub(crate) fn is_tmp_segment_file_name(name: &str) -> bool {
    name.strip_suffix(TMP_SUFFIX)
        .is_some_and(|base| parse_segment_file_name(base).is_some())
}

/// Decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Segment id; must match the id in the file name.
    pub segment_id: u64,
    /// Sequence number the first entry of this segment has (or would have).
    pub base_sequence: u64,
}

/// Why a header failed to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Magic, CRC or reserved fields are wrong.
    Invalid(String),
    /// The header is intact but written by a newer format version.
    UnsupportedVersion(u32),
}

impl SegmentHeader {
    /// Encodes the header into its fixed 36-byte form.
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0u8; HEADER_LEN as usize];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&0u32.to_le_bytes());
        out[16..24].copy_from_slice(&self.segment_id.to_le_bytes());
        out[24..32].copy_from_slice(&self.base_sequence.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..32]);
        out[32..36].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and validates a header. The CRC is checked before the
    /// version so that a damaged version field reads as damage.
    pub fn decode(bytes: &[u8; HEADER_LEN as usize]) -> Result<Self, HeaderError> {
        if bytes[0..8] != MAGIC {
            return Err(HeaderError::Invalid("bad magic".into()));
        }
        let stored_crc = le_u32(bytes, 32);
        let crc = crc32c::crc32c(&bytes[0..32]);
        if stored_crc != crc {
            return Err(HeaderError::Invalid(format!(
                "header checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
            )));
        }
        let version = le_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let flags = le_u32(bytes, 12);
        if flags != 0 {
            return Err(HeaderError::Invalid(format!(
                "unknown header flags {flags:#010x}"
            )));
        }
        Ok(SegmentHeader {
            segment_id: le_u64(bytes, 16),
            base_sequence: le_u64(bytes, 24),
        })
    }
}

/// Decoded entry frame header (the 16 bytes before the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader {
    /// Payload length in bytes.
    pub len: u32,
    /// CRC32C of the sequence (8 bytes LE) followed by the payload.
    pub crc: u32,
    /// Sequence number of the entry.
    pub sequence: u64,
}

impl EntryHeader {
    /// Encodes the frame header.
    pub fn encode(&self) -> [u8; ENTRY_HEADER_LEN as usize] {
        let mut out = [0u8; ENTRY_HEADER_LEN as usize];
        out[0..4].copy_from_slice(&self.len.to_le_bytes());
        out[4..8].copy_from_slice(&self.crc.to_le_bytes());
        out[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        out
    }

    /// Decodes the frame header (no validation: see [`entry_crc`]).
    pub fn decode(bytes: &[u8; ENTRY_HEADER_LEN as usize]) -> Self {
        EntryHeader {
            len: le_u32(bytes, 0),
            crc: le_u32(bytes, 4),
            sequence: le_u64(bytes, 8),
        }
    }
}

/// CRC32C of an entry: over the 8 little-endian sequence bytes, then the
/// payload.
pub fn entry_crc(sequence: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&sequence.to_le_bytes()), payload)
}

/// Same value as [`entry_crc`], from a precomputed `crc32c(payload)`; lets
/// appenders checksum their payload before the sequence is known.
pub fn entry_crc_from_payload_crc(sequence: u64, payload_crc: u32, payload_len: usize) -> u32 {
    crc32c::crc32c_combine(
        crc32c::crc32c(&sequence.to_le_bytes()),
        payload_crc,
        payload_len,
    )
}

/// Total on-disk size of an entry with a payload of `payload_len` bytes.
pub fn frame_len(payload_len: u64) -> u64 {
    ENTRY_HEADER_LEN + payload_len
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_roundtrip() {
        assert_eq!(segment_file_name(7), "wal-00000000000000000007.seg");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("wal-7.seg"), None);
        assert_eq!(
            parse_segment_file_name("wal-0000000000000000000x.seg"),
            None
        );
        assert_eq!(
            parse_segment_file_name("wal-00000000000000000007.seg.tmp"),
            None
        );
        assert!(is_tmp_segment_file_name("wal-00000000000000000007.seg.tmp"));
        assert!(!is_tmp_segment_file_name("other.tmp"));
    }

    #[test]
    fn header_roundtrip_and_validation() {
        let h = SegmentHeader {
            segment_id: 42,
            base_sequence: 1000,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[0..8], b"HGWALSEG");
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));

        for i in 0..bytes.len() {
            let mut bad = bytes;
            bad[i] ^= 0x01;
            assert!(SegmentHeader::decode(&bad).is_err(), "flip at byte {i}");
        }

        // A newer version with a valid CRC is reported as such.
        let mut v2 = bytes;
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32c::crc32c(&v2[0..32]);
        v2[32..36].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            SegmentHeader::decode(&v2),
            Err(HeaderError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn entry_header_roundtrip_and_crc_combine() {
        let e = EntryHeader {
            len: 5,
            crc: 0xdead_beef,
            sequence: 9,
        };
        assert_eq!(EntryHeader::decode(&e.encode()), e);

        let payload = b"hello, world";
        for seq in [0, 1, 255, u64::MAX] {
            assert_eq!(
                entry_crc_from_payload_crc(seq, crc32c::crc32c(payload), payload.len()),
                entry_crc(seq, payload)
            );
        }
        assert_eq!(
            entry_crc_from_payload_crc(3, crc32c::crc32c(&[]), 0),
            entry_crc(3, &[])
        );
        // The standard CRC32C check value (documented in docs/format/wal.md).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // An all-zero frame never checks out, so zero-filled tails are
        // always detected.
        assert_ne!(entry_crc(0, &[]), 0);
    }
}
