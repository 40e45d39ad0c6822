//! Recovery at open: list the segments, validate every one of them, repair
//! a torn tail (or torn header) of the last one, and work out where appends
//! continue (next segment id and next sequence number).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::format::FIRST_SEQUENCE;
use crate::segment::{self, Mode, ScanOutcome, ScanSpec};

/// A segment that survived recovery; it is closed (never appended to again).
#[derive(Debug, Clone)]
pub(crate) struct RecoveredSegment {
    pub id: u64,
    pub path: PathBuf,
    /// Length of the valid data (the file is exactly this long after repair).
    pub len: u64,
    pub base_sequence: u64,
    pub entries: u64,
}

/// State of the WAL directory after recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Closed segments, ascending by id.
    pub segments: Vec<RecoveredSegment>,
    /// Sequence number of the next entry.
    pub next_sequence: u64,
    /// Id for the new segment appends go to.
    pub next_segment_id: u64,
    /// Total bytes of the surviving segment files.
    pub disk_bytes: u64,
}

/// Validates and repairs the WAL in `dir` (which must exist).
pub(crate) fn recover(dir: &Path) -> Result<Recovered, WalError> {
    let listing = segment::list_dir(dir)?;
    let mut dir_changed = false;

    for tmp in &listing.tmp_files {
        tracing::warn!(file = %tmp.display(), "removing unfinished WAL segment file");
        fs::remove_file(tmp).map_err(|e| WalError::io(tmp, e))?;
        dir_changed = true;
    }

    let max_id = listing.segments.last().copied();
    let mut segments = Vec::with_capacity(listing.segments.len());
    let mut expected_base: Option<u64> = None;
    let last_index = listing.segments.len().checked_sub(1);

    for (i, &id) in listing.segments.iter().enumerate() {
        let path = segment::segment_path(dir, id);
        let is_last = Some(i) == last_index;
        let spec = ScanSpec {
            path: &path,
            id,
            mode: if is_last {
                Mode::AllowTorn
            } else {
                Mode::Strict
            },
            expected_base,
            limit: None,
        };
        match segment::scan(&spec, &mut |_, _| Ok(()))? {
            ScanOutcome::TornHeader { file_len } => {
                tracing::warn!(
                    segment = %path.display(),
                    offset = 0u64,
                    file_len,
                    "removing last WAL segment with a torn header (crash during creation)"
                );
                fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
                dir_changed = true;
            }
            ScanOutcome::Scanned(s) => {
                if let Some(torn) = &s.torn {
                    tracing::warn!(
                        segment = %path.display(),
                        offset = torn.offset,
                        discarded_bytes = s.file_len - torn.offset,
                        reason = %torn.reason,
                        "truncating torn tail of last WAL segment"
                    );
                    segment::truncate_file(&path, s.valid_len)?;
                }
                expected_base = Some(s.next_sequence);
                segments.push(RecoveredSegment {
                    id,
                    path,
                    len: s.valid_len,
                    base_sequence: s.header.base_sequence,
                    entries: s.entries,
                });
            }
        }
    }
    if dir_changed {
        segment::sync_dir(dir)?;
    }

    let next_segment_id = match max_id {
        None => 1,
        Some(id) => id.checked_add(1).ok_or_else(|| {
            WalError::corrupt(
                segment::segment_path(dir, id),
                0,
                "segment id space exhausted",
            )
        })?,
    };
    let disk_bytes = segments.iter().map(|s| s.len).sum();
    let entries: u64 = segments.iter().map(|s| s.entries).sum();
    let next_sequence = expected_base.unwrap_or(FIRST_SEQUENCE);
    tracing::info!(
        dir = %dir.display(),
        segments = segments.len(),
        entries,
        next_sequence,
        next_segment_id,
        "WAL recovered"
    );
    Ok(Recovered {
        segments,
        next_sequence,
        next_segment_id,
        disk_bytes,
    })
}
