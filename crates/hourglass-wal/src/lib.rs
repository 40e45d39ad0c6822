//! Hourglass write-ahead log.
//!
//! Every write the server acknowledges is first appended to this log and
//! made durable with `fdatasync`; the acknowledgement is sent only after
//! [`Wal::append`] returns. Payloads are opaque bytes (the storage crate
//! stores Arrow IPC in them). The byte format is specified in
//! `docs/format/wal.md`.
//!
//! # Flow
//!
//! 1. **Open** — [`Wal::open`] creates the directory if needed, validates
//!    every segment (`wal-<20-digit id>.seg`) frame by frame, truncates a
//!    torn tail of the *last* segment (the only place a crash can leave
//!    one), and refuses to open with [`WalError::Corrupt`] on any other
//!    damage. It then creates a **new** segment for appends: recovered
//!    segments are never appended to.
//! 2. **Replay** — [`Wal::replay`] hands every recovered entry, in segment
//!    then offset order, to a callback that rebuilds in-memory state.
//! 3. **Append** — [`Wal::append`] is called concurrently by many threads.
//!    Concurrent appenders share one `write` + `fdatasync` (group commit,
//!    see the `writer` module); each gets back its `(segment, sequence)`
//!    once its entry is durable. Sequences start at 1 and increase by one
//!    across segments; a failed group (e.g. disk full) consumes none and is
//!    cut off the segment, and the log keeps working.
//! 4. **Rotate** — once the current segment passes
//!    [`WalConfig::segment_target_bytes`] the next group goes to a new
//!    segment; [`Wal::rotate`] forces this (e.g. when the storage layer
//!    starts persisting a memtable).
//! 5. **Truncate** — when data up to a segment is persisted elsewhere,
//!    [`Wal::remove_through`] deletes the closed segments up to it.
//! 6. **Close** — [`Wal::close`] flushes pending entries and rejects
//!    further appends.
//!
//! ```no_run
//! # fn main() -> Result<(), hourglass_wal::WalError> {
//! use hourglass_wal::{Wal, WalConfig};
//! let wal = std::sync::Arc::new(Wal::open(WalConfig::new("/var/lib/hourglass/wal"))?);
//! wal.replay(|entry| {
//!     // apply entry.payload to the memtable
//!     Ok(())
//! })?;
//! let (segment, sequence) = wal.append(b"arrow ipc bytes")?; // durable now
//! # let _ = (segment, sequence);
//! # Ok(()) }
//! ```

mod error;
pub mod format;
mod recovery;
mod replay;
mod segment;
mod writer;

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

pub use error::WalError;

/// What [`decode_segment`] found in a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSegment {
    /// Sequence number of the segment's first entry.
    pub base_sequence: u64,
    /// The valid entries in order: `(sequence, payload)`.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// Bytes of the valid prefix (header and whole valid entries).
    pub valid_len: u64,
    /// Why the bytes after `valid_len` were treated as a torn tail, if they were.
    pub torn_tail: Option<String>,
}

/// Decodes the bytes of segment `id` with the rules recovery applies to the last segment of
/// a log (a torn tail is reported, other damage is an error); used by the fuzzer and by tools.
/// Never panics; a segment that was being created (shorter than a header, or all zeros)
/// decodes as empty.
pub fn decode_segment(bytes: &[u8], id: u64) -> Result<DecodedSegment, WalError> {
    let path = PathBuf::from(format::segment_file_name(id));
    let spec = segment::ScanSpec {
        path: &path,
        id,
        mode: segment::Mode::AllowTorn,
        expected_base: None,
        limit: None,
    };
    let mut entries = Vec::new();
    let outcome = segment::scan_reader(&spec, bytes, bytes.len() as u64, &mut |seq, payload| {
        entries.push((seq, std::mem::take(payload)));
        Ok(())
    })?;
    Ok(match outcome {
        segment::ScanOutcome::Scanned(s) => DecodedSegment {
            base_sequence: s.header.base_sequence,
            entries,
            valid_len: s.valid_len,
            torn_tail: s.torn.map(|t| t.reason),
        },
        segment::ScanOutcome::TornHeader { .. } => DecodedSegment {
            base_sequence: 0,
            entries: Vec::new(),
            valid_len: 0,
            torn_tail: Some("segment header not written completely".to_string()),
        },
    })
}

use recovery::RecoveredSegment;
use writer::Writer;

/// Default [`WalConfig::segment_target_bytes`]: 64 MiB.
pub const DEFAULT_SEGMENT_TARGET_BYTES: u64 = 64 * 1024 * 1024;

/// Configuration of a [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// Appends go to a new segment once the current one has reached this
    /// many bytes. A segment may exceed it by up to one group of entries.
    pub segment_target_bytes: u64,
}

impl WalConfig {
    /// A configuration with default settings for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            segment_target_bytes: DEFAULT_SEGMENT_TARGET_BYTES,
        }
    }
}

/// One entry read back by [`Wal::replay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEntry {
    /// Id of the segment holding the entry.
    pub segment: u64,
    /// Sequence number assigned at append.
    pub sequence: u64,
    /// The payload as appended.
    pub payload: Vec<u8>,
}

/// Counters since open, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Entries appended durably.
    pub appends: u64,
    /// Data fsyncs issued by group commits (one per group, including
    /// failed attempts). Under concurrency this is below `appends`.
    pub fsyncs: u64,
    /// Bytes appended durably (frames, excluding segment headers).
    pub bytes_appended: u64,
    /// Segment rotations (explicit and size-triggered).
    pub rotations: u64,
    /// Entries whose append failed.
    pub failed_appends: u64,
}

/// The write-ahead log. `Send + Sync`; share it as `Arc<Wal>`.
pub struct Wal {
    dir: PathBuf,
    writer: Writer,
    /// Segments that existed at open, minus those removed since.
    recovered: Mutex<Vec<RecoveredSegment>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("current_segment", &self.current_segment())
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (creating the dir if needed), validates every segment,
    /// truncates a torn tail of the last segment, and positions for appends
    /// in a NEW segment (never appends after a recovered tail).
    ///
    /// Fails with [`WalError::Corrupt`] (naming the segment and byte offset)
    /// on damage that is not a torn tail, and with
    /// [`WalError::UnsupportedVersion`] on a segment of a newer format.
    pub fn open(config: WalConfig) -> Result<Wal, WalError> {
        let dir = config.dir;
        create_dir_durably(&dir)?;
        let rec = recovery::recover(&dir)?;
        let writer = Writer::create(
            dir.clone(),
            config.segment_target_bytes,
            rec.next_segment_id,
            rec.next_sequence,
            rec.disk_bytes,
        )?;
        Ok(Wal {
            dir,
            writer,
            recovered: Mutex::new(rec.segments),
        })
    }

    /// Calls `f` for every valid entry in order (segment, then offset).
    /// Call once after open, before appends: it replays the segments found
    /// at open (not entries appended since) and returns how many entries it
    /// delivered. An error from `f` stops the replay and is returned.
    pub fn replay(
        &self,
        mut f: impl FnMut(WalEntry) -> Result<(), WalError>,
    ) -> Result<u64, WalError> {
        let segments = self.recovered.lock().clone();
        replay::replay(&segments, &mut f)
    }

    /// Appends one entry and returns `(segment, sequence)` only after it is
    /// fsynced. Blocking; safe to call from many threads, which then share
    /// fsyncs (group commit). On an I/O error (see
    /// [`WalError::is_disk_full`]) the entry is not in the log and the WAL
    /// remains usable.
    pub fn append(&self, payload: &[u8]) -> Result<(u64, u64), WalError> {
        self.writer.append(payload)
    }

    /// Closes the current segment and starts a new one; returns the id of
    /// the segment closed.
    pub fn rotate(&self) -> Result<u64, WalError> {
        self.writer.rotate()
    }

    /// Deletes closed segments with id <= `segment` (their data has been
    /// persisted elsewhere); never the open one. Segments are deleted in
    /// ascending order and the directory is fsynced. Returns how many files
    /// were deleted.
    pub fn remove_through(&self, segment: u64) -> Result<usize, WalError> {
        let current = self.writer.current_segment();
        let listing = segment::list_dir(&self.dir)?;
        let mut removed = 0usize;
        let mut result = Ok(());
        for id in listing
            .segments
            .into_iter()
            .filter(|&id| id <= segment && id < current)
        {
            let path = segment::segment_path(&self.dir, id);
            let size = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    result = Err(WalError::io(&path, e));
                    break;
                }
            };
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    self.writer.sub_disk_bytes(size);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    result = Err(WalError::io(&path, e));
                    break;
                }
            }
        }
        self.recovered
            .lock()
            .retain(|s| s.id > segment || s.id >= current);
        if removed > 0 {
            segment::sync_dir(&self.dir)?;
            tracing::debug!(through = segment, removed, "removed WAL segments");
        }
        result.map(|()| removed)
    }

    /// Id of the segment appends currently go to.
    pub fn current_segment(&self) -> u64 {
        self.writer.current_segment()
    }

    /// Total bytes of all segment files (for metrics and rotation policy).
    pub fn disk_bytes(&self) -> u64 {
        self.writer.disk_bytes()
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.writer.stats()
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops accepting appends (later calls return [`WalError::Closed`])
    /// after flushing what is pending. Returns the error of a pending group
    /// that failed to flush, if any. Idempotent.
    pub fn close(&self) -> Result<(), WalError> {
        self.writer.close()
    }
}

/// Creates `dir` if missing and makes its directory entry durable.
fn create_dir_durably(dir: &Path) -> Result<(), WalError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        segment::sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
