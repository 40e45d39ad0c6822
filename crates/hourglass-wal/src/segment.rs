//! One segment file: atomic creation, listing, scanning/validation with the
//! torn-tail rules, and truncation.
//!
//! Scanning is shared by recovery (which validates every segment and may
//! find a torn tail in the last one) and replay (which re-reads the
//! validated prefix strictly and hands payloads to a callback).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::format::{
    self, EntryHeader, HeaderError, SegmentHeader, ENTRY_HEADER_LEN, HEADER_LEN, MAX_ENTRY_LEN,
    TMP_SUFFIX,
};

/// Path of segment `id` inside `dir`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format::segment_file_name(id))
}

/// Fsyncs a directory so that file creations, renames and removals in it
/// are durable. A no-op on platforms that cannot open directories.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WalError::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Directory contents relevant to the WAL.
pub(crate) struct Listing {
    /// Segment ids, ascending.
    pub segments: Vec<u64>,
    /// Leftover temporary files of segments whose creation did not finish.
    pub tmp_files: Vec<PathBuf>,
}

/// Lists segment files (and leftover temporary files) in `dir`. Other files
/// are ignored.
pub(crate) fn list_dir(dir: &Path) -> Result<Listing, WalError> {
    let mut segments = Vec::new();
    let mut tmp_files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| WalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = format::parse_segment_file_name(name) {
            segments.push(id);
        } else if format::is_tmp_segment_file_name(name) {
            tmp_files.push(entry.path());
        }
    }
    segments.sort_unstable();
    Ok(Listing {
        segments,
        tmp_files,
    })
}

/// Creates segment `id` whose first entry will have `base_sequence`.
///
/// The header is written to `<name>.tmp`, fsynced, renamed into place, and
/// the directory is fsynced, so a segment file never exists with a partial
/// header (barring file system misbehaviour, which recovery still handles).
/// Returns the file opened for writing.
pub(crate) fn create_segment(dir: &Path, id: u64, base_sequence: u64) -> Result<File, WalError> {
    let path = segment_path(dir, id);
    let mut tmp_name = path.clone().into_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let header = SegmentHeader {
        segment_id: id,
        base_sequence,
    }
    .encode();

    let result = (|| {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| WalError::io(&tmp, e))?;
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .map_err(|e| WalError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| WalError::io(&path, e))?;
        Ok(file)
    })();
    match result {
        Ok(file) => {
            sync_dir(dir)?;
            Ok(file)
        }
        Err(e) => {
            // Best effort: a leftover tmp file is also removed by recovery.
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Truncates the file at `path` to `len` bytes and fsyncs it.
pub(crate) fn truncate_file(path: &Path, len: u64) -> Result<(), WalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io(path, e))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| WalError::io(path, e))
}

/// How to treat damage at the end of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Last segment during recovery: a torn tail (or torn header) is
    /// reported, not an error.
    AllowTorn,
    /// Any damage is an error.
    Strict,
}

/// A torn tail found in the last segment.
#[derive(Debug, Clone)]
pub(crate) struct TornTail {
    /// Offset of the first byte that is not part of a valid entry.
    pub offset: u64,
    /// Why the tail is considered torn.
    pub reason: String,
}

/// Result of scanning a segment whose header is intact.
#[derive(Debug, Clone)]
pub(crate) struct Scanned {
    pub header: SegmentHeader,
    /// Length of the valid prefix (header plus whole valid entries).
    pub valid_len: u64,
    /// Number of valid entries.
    pub entries: u64,
    /// Sequence the next entry after this segment must have.
    pub next_sequence: u64,
    /// Length of the file as found.
    pub file_len: u64,
    /// Set if the segment ends in a torn tail beyond `valid_len`.
    pub torn: Option<TornTail>,
}

/// Outcome of scanning a segment.
#[derive(Debug, Clone)]
pub(crate) enum ScanOutcome {
    /// Header intact; entries scanned.
    Scanned(Scanned),
    /// (`Mode::AllowTorn` only) the file is shorter than a header or is all
    /// zero bytes: the crash happened while creating it.
    TornHeader { file_len: u64 },
}

/// Parameters of a scan.
pub(crate) struct ScanSpec<'a> {
    pub path: &'a Path,
    /// Id from the file name; the header must agree.
    pub id: u64,
    pub mode: Mode,
    /// If set, the header's base sequence must equal this (continuity with
    /// the previous segment).
    pub expected_base: Option<u64>,
    /// Only read this many bytes (replay of a prefix validated at open).
    /// The file must be at least this long.
    pub limit: Option<u64>,
}

const READ_BUF: usize = 256 * 1024;

/// Callback of [`scan`]: `(sequence, payload buffer)` for each valid entry.
pub(crate) type Visitor<'a> = dyn FnMut(u64, &mut Vec<u8>) -> Result<(), WalError> + 'a;

/// Scans a segment, calling `visit(sequence, payload)` for each valid entry
/// in order. `visit` may take the payload buffer with `std::mem::take`.
pub(crate) fn scan(spec: &ScanSpec<'_>, visit: &mut Visitor<'_>) -> Result<ScanOutcome, WalError> {
    let path = spec.path;
    let io_err = |e: io::Error| WalError::io(path, e);
    let file = File::open(path).map_err(io_err)?;
    let actual_len = file.metadata().map_err(io_err)?.len();
    scan_reader(spec, file, actual_len, visit)
}

/// [`scan`] over any reader of `actual_len` bytes (the file, or bytes in memory).
pub(crate) fn scan_reader<R: Read>(
    spec: &ScanSpec<'_>,
    source: R,
    actual_len: u64,
    visit: &mut Visitor<'_>,
) -> Result<ScanOutcome, WalError> {
    let path = spec.path;
    let corrupt = |offset: u64, reason: String| WalError::corrupt(path, offset, reason);
    let io_err = |e: io::Error| WalError::io(path, e);
    let file_len = match spec.limit {
        Some(limit) if actual_len < limit => {
            return Err(corrupt(
                actual_len,
                format!("segment is {actual_len} bytes, shorter than its validated length {limit}"),
            ))
        }
        Some(limit) => limit,
        None => actual_len,
    };
    let mut reader = BufReader::with_capacity(READ_BUF, source.take(file_len));

    // ---- header ----
    if file_len < HEADER_LEN {
        if spec.mode == Mode::AllowTorn {
            return Ok(ScanOutcome::TornHeader { file_len });
        }
        return Err(corrupt(
            0,
            format!("file is {file_len} bytes, shorter than the {HEADER_LEN}-byte header"),
        ));
    }
    let mut hbuf = [0u8; HEADER_LEN as usize];
    reader.read_exact(&mut hbuf).map_err(io_err)?;
    let header = match SegmentHeader::decode(&hbuf) {
        Ok(h) => h,
        Err(HeaderError::UnsupportedVersion(version)) => {
            return Err(WalError::UnsupportedVersion {
                segment: path.to_path_buf(),
                version,
            })
        }
        Err(HeaderError::Invalid(reason)) => {
            if spec.mode == Mode::AllowTorn
                && hbuf.iter().all(|&b| b == 0)
                && rest_is_zero(&mut reader).map_err(io_err)?
            {
                return Ok(ScanOutcome::TornHeader { file_len });
            }
            return Err(corrupt(0, format!("invalid segment header: {reason}")));
        }
    };
    if header.segment_id != spec.id {
        return Err(corrupt(
            16,
            format!(
                "header names segment {} but the file name says {}",
                header.segment_id, spec.id
            ),
        ));
    }
    if let Some(expected) = spec.expected_base {
        if header.base_sequence != expected {
            return Err(corrupt(
                24,
                format!(
                    "segment starts at sequence {} but the previous segment ends before {expected} \
                     (missing or extra segment?)",
                    header.base_sequence
                ),
            ));
        }
    }

    // ---- entries ----
    let mut offset = HEADER_LEN;
    let mut next_sequence = header.base_sequence;
    let mut entries = 0u64;
    let mut payload = Vec::new();
    loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break;
        }
        if remaining < ENTRY_HEADER_LEN {
            let reason = format!("incomplete entry header ({remaining} bytes) at end of file");
            if spec.mode == Mode::AllowTorn {
                return torn_outcome(header, offset, entries, next_sequence, file_len, reason);
            }
            return Err(corrupt(offset, reason));
        }
        let mut ebuf = [0u8; ENTRY_HEADER_LEN as usize];
        reader.read_exact(&mut ebuf).map_err(io_err)?;
        let eh = EntryHeader::decode(&ebuf);
        let len = u64::from(eh.len);
        if len > MAX_ENTRY_LEN {
            return Err(corrupt(
                offset,
                format!("entry length {len} exceeds the maximum {MAX_ENTRY_LEN}"),
            ));
        }
        let end = offset + ENTRY_HEADER_LEN + len;
        if end > file_len {
            let reason = format!(
                "entry of {len} bytes extends {} bytes past end of file",
                end - file_len
            );
            if spec.mode == Mode::AllowTorn {
                return torn_outcome(header, offset, entries, next_sequence, file_len, reason);
            }
            return Err(corrupt(offset, reason));
        }
        payload.clear();
        payload.resize(eh.len as usize, 0);
        reader.read_exact(&mut payload).map_err(io_err)?;
        let crc = format::entry_crc(eh.sequence, &payload);
        if crc != eh.crc {
            let reason = format!(
                "entry checksum mismatch (stored {:#010x}, computed {crc:#010x})",
                eh.crc
            );
            if spec.mode == Mode::AllowTorn && rest_is_zero(&mut reader).map_err(io_err)? {
                let reason = format!("{reason}; only zero bytes follow");
                return torn_outcome(header, offset, entries, next_sequence, file_len, reason);
            }
            return Err(corrupt(offset, format!("{reason}; non-zero data follows")));
        }
        if eh.sequence != next_sequence {
            return Err(corrupt(
                offset,
                format!(
                    "entry has sequence {} but {next_sequence} was expected",
                    eh.sequence
                ),
            ));
        }
        visit(eh.sequence, &mut payload)?;
        next_sequence += 1;
        entries += 1;
        offset = end;
    }
    Ok(ScanOutcome::Scanned(Scanned {
        header,
        valid_len: offset,
        entries,
        next_sequence,
        file_len,
        torn: None,
    }))
}

fn torn_outcome(
    header: SegmentHeader,
    offset: u64,
    entries: u64,
    next_sequence: u64,
    file_len: u64,
    reason: String,
) -> Result<ScanOutcome, WalError> {
    Ok(ScanOutcome::Scanned(Scanned {
        header,
        valid_len: offset,
        entries,
        next_sequence,
        file_len,
        torn: Some(TornTail { offset, reason }),
    }))
}

/// Reads the rest of `reader` and reports whether every byte is zero.
fn rest_is_zero(reader: &mut impl Read) -> io::Result<bool> {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}
