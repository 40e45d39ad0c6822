//! Group commit: the append path.
//!
//! Appenders checksum their payload, then (under the state mutex) copy it
//! into the *pending batch* and wait. If no flush is in flight, the appender
//! becomes the *leader*: it takes the whole pending batch, releases the
//! mutex, assigns sequence numbers, writes the batch with one `write` and
//! makes it durable with one `fdatasync`, then publishes the outcome for
//! every entry of the batch and wakes the followers. While a flush is in
//! flight new appenders accumulate in the next pending batch, which the
//! next leader (one of them) writes with the next fsync. So under load
//! there is one fsync per group, not per entry.
//!
//! Sequence numbers are assigned by the leader at write time, so a failed
//! group consumes none: sequences stay dense. On a failed write or fsync
//! the segment is truncated back to the last good offset (and fsynced)
//! before anything else is written to it; if even that fails, the segment
//! is marked dirty and the truncation is retried before the next write or
//! rotation, so valid entries never follow garbage.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::WalError;
use crate::format::{self, EntryHeader, ENTRY_HEADER_LEN, HEADER_LEN, MAX_ENTRY_LEN};
use crate::segment;
use crate::WalStats;

/// A pending batch buffer above this capacity is not kept for reuse.
const SPARE_CAPACITY_LIMIT: usize = 16 * 1024 * 1024;

/// Entries waiting for the next flush, already framed except for the
/// sequence and CRC fields, which the leader fills in.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    entries: Vec<PendingEntry>,
}

struct PendingEntry {
    len: u32,
    payload_crc: u32,
}

impl Batch {
    fn push(&mut self, payload: &[u8], payload_crc: u32, len: u32) -> usize {
        self.buf
            .extend_from_slice(&[0u8; ENTRY_HEADER_LEN as usize]);
        self.buf.extend_from_slice(payload);
        self.entries.push(PendingEntry { len, payload_crc });
        self.entries.len() - 1
    }

    /// Writes the frame headers for sequences `first..first + len`.
    fn finalize(&mut self, first: u64) {
        let mut off = 0usize;
        for (i, e) in self.entries.iter().enumerate() {
            let sequence = first + i as u64;
            let header = EntryHeader {
                len: e.len,
                crc: format::entry_crc_from_payload_crc(sequence, e.payload_crc, e.len as usize),
                sequence,
            };
            self.buf[off..off + ENTRY_HEADER_LEN as usize].copy_from_slice(&header.encode());
            off += ENTRY_HEADER_LEN as usize + e.len as usize;
        }
        debug_assert_eq!(off, self.buf.len());
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
    }
}

/// Outcome of a flushed batch, kept until every member has collected it.
struct Done {
    /// `(segment, first sequence)` or the error every member gets.
    result: Result<(u64, u64), WalError>,
    remaining: usize,
}

struct State {
    closed: bool,
    /// A leader is writing a batch.
    flushing: bool,
    pending: Batch,
    /// Id of the pending batch; incremented when a leader takes it.
    pending_id: u64,
    spare: Option<Batch>,
    done: HashMap<u64, Done>,
}

/// The segment appends go to. Only touched with `Writer::seg` locked.
pub(crate) struct SegmentWriter {
    id: u64,
    path: PathBuf,
    file: File,
    /// Length of the durable, valid prefix: where the next write goes.
    len: u64,
    next_sequence: u64,
    entries: u64,
    /// Bytes past `len` may exist (failed write not yet truncated away).
    dirty: bool,
    /// A rotation failed: never write to this segment again, rotate first.
    must_rotate: bool,
}

#[derive(Default)]
struct Counters {
    appends: AtomicU64,
    fsyncs: AtomicU64,
    bytes: AtomicU64,
    rotations: AtomicU64,
    failed_appends: AtomicU64,
}

/// The append side of the WAL.
pub(crate) struct Writer {
    dir: PathBuf,
    segment_target_bytes: u64,
    state: Mutex<State>,
    cond: Condvar,
    seg: Mutex<SegmentWriter>,
    current_segment: AtomicU64,
    disk_bytes: AtomicU64,
    counters: Counters,
    #[cfg(test)]
    pub(crate) faults: faults::Faults,
}

impl Writer {
    /// Creates segment `id` (starting at `next_sequence`) and a writer on it.
    /// `disk_bytes` is the size of the pre-existing segments.
    pub(crate) fn create(
        dir: PathBuf,
        segment_target_bytes: u64,
        id: u64,
        next_sequence: u64,
        disk_bytes: u64,
    ) -> Result<Writer, WalError> {
        let file = segment::create_segment(&dir, id, next_sequence)?;
        let seg = SegmentWriter {
            id,
            path: segment::segment_path(&dir, id),
            file,
            len: HEADER_LEN,
            next_sequence,
            entries: 0,
            dirty: false,
            must_rotate: false,
        };
        Ok(Writer {
            dir,
            segment_target_bytes,
            state: Mutex::new(State {
                closed: false,
                flushing: false,
                pending: Batch::default(),
                pending_id: 0,
                spare: None,
                done: HashMap::new(),
            }),
            cond: Condvar::new(),
            seg: Mutex::new(seg),
            current_segment: AtomicU64::new(id),
            disk_bytes: AtomicU64::new(disk_bytes + HEADER_LEN),
            counters: Counters::default(),
            #[cfg(test)]
            faults: faults::Faults::default(),
        })
    }

    pub(crate) fn current_segment(&self) -> u64 {
        self.current_segment.load(Ordering::Acquire)
    }

    pub(crate) fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn sub_disk_bytes(&self, n: u64) {
        let _ = self
            .disk_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }

    pub(crate) fn stats(&self) -> WalStats {
        let c = &self.counters;
        WalStats {
            appends: c.appends.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            bytes_appended: c.bytes.load(Ordering::Relaxed),
            rotations: c.rotations.load(Ordering::Relaxed),
            failed_appends: c.failed_appends.load(Ordering::Relaxed),
        }
    }

    /// Appends one entry; returns `(segment, sequence)` once it is durable.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<(u64, u64), WalError> {
        let len = payload.len();
        if len as u64 > MAX_ENTRY_LEN {
            return Err(WalError::EntryTooLarge {
                len,
                max: MAX_ENTRY_LEN,
            });
        }
        let len32 = u32::try_from(len).map_err(|_| WalError::EntryTooLarge {
            len,
            max: MAX_ENTRY_LEN,
        })?;
        // Checksum outside the lock; the leader combines it with the
        // sequence once that is known.
        let payload_crc = crc32c::crc32c(payload);

        let mut st = self.state.lock();
        if st.closed {
            return Err(WalError::Closed);
        }
        let batch_id = st.pending_id;
        let index = st.pending.push(payload, payload_crc, len32);
        loop {
            if let Some(result) = collect(&mut st, batch_id, index) {
                return result;
            }
            if !st.flushing {
                // Our entry is still pending (a batch is only taken by a
                // leader, and there is none): lead, then collect.
                // The leader's own error is collected like everyone's.
                let _ = self.lead(&mut st);
                continue;
            }
            self.cond.wait(&mut st);
        }
    }

    /// Stops accepting appends, after flushing what is pending. Idempotent.
    pub(crate) fn close(&self) -> Result<(), WalError> {
        let mut st = self.state.lock();
        st.closed = true;
        let mut result = Ok(());
        loop {
            if st.flushing {
                self.cond.wait(&mut st);
            } else if st.pending.is_empty() {
                return result;
            } else if let Err(e) = self.lead(&mut st) {
                result = Err(e);
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Takes the pending batch, flushes it with the state lock released,
    /// and publishes the outcome. Returns a copy of the batch's result.
    fn lead(&self, st: &mut MutexGuard<'_, State>) -> Result<(), WalError> {
        debug_assert!(!st.flushing);
        st.flushing = true;
        let replacement = st.spare.take().unwrap_or_default();
        let mut batch = std::mem::replace(&mut st.pending, replacement);
        let batch_id = st.pending_id;
        st.pending_id += 1;
        let members = batch.entries.len();

        let outcome = MutexGuard::unlocked(st, || {
            panic::catch_unwind(AssertUnwindSafe(|| self.flush(&mut batch)))
        });
        let (result, panic_payload) = match outcome {
            Ok(result) => (result, None),
            Err(p) => (
                Err(WalError::io(
                    self.dir.clone(),
                    io::Error::other("WAL flush panicked"),
                )),
                Some(p),
            ),
        };
        let ret = match &result {
            Ok(_) => Ok(()),
            Err(e) => Err(e.duplicate()),
        };
        if members > 0 {
            st.done.insert(
                batch_id,
                Done {
                    result,
                    remaining: members,
                },
            );
        }
        batch.clear();
        if batch.buf.capacity() <= SPARE_CAPACITY_LIMIT {
            st.spare = Some(batch);
        }
        st.flushing = false;
        self.cond.notify_all();
        if let Some(p) = panic_payload {
            panic::resume_unwind(p);
        }
        ret
    }

    /// Writes and fsyncs one batch. Called by the leader only.
    fn flush(&self, batch: &mut Batch) -> Result<(u64, u64), WalError> {
        let n = batch.entries.len() as u64;
        let mut seg = self.seg.lock();
        let result = self.flush_locked(&mut seg, batch);
        match &result {
            Ok(_) => {
                self.counters.appends.fetch_add(n, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.failed_appends.fetch_add(n, Ordering::Relaxed);
            }
        }
        result
    }

    fn flush_locked(
        &self,
        seg: &mut SegmentWriter,
        batch: &mut Batch,
    ) -> Result<(u64, u64), WalError> {
        self.repair(seg)?;
        if seg.must_rotate || (seg.entries > 0 && seg.len >= self.segment_target_bytes) {
            self.rotate_locked(seg)?;
        }
        let first = seg.next_sequence;
        let n = batch.entries.len() as u64;
        batch.finalize(first);
        let bytes = batch.buf.len() as u64;

        seg.dirty = true;
        match self.write_and_sync(seg, &batch.buf) {
            Ok(()) => {
                seg.dirty = false;
                seg.len += bytes;
                seg.next_sequence += n;
                seg.entries += n;
                self.disk_bytes.fetch_add(bytes, Ordering::Relaxed);
                self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                Ok((seg.id, first))
            }
            Err(e) => {
                let err = WalError::io(seg.path.clone(), e);
                tracing::warn!(
                    segment = %seg.path.display(),
                    offset = seg.len,
                    entries = n,
                    error = %err,
                    "WAL append failed; truncating segment back to the last good offset"
                );
                if let Err(repair_err) = self.repair(seg) {
                    tracing::error!(
                        segment = %seg.path.display(),
                        offset = seg.len,
                        error = %repair_err,
                        "could not truncate WAL segment after a failed append; \
                         will retry before the next write"
                    );
                }
                Err(err)
            }
        }
    }

    fn write_and_sync(&self, seg: &mut SegmentWriter, buf: &[u8]) -> io::Result<()> {
        seg.file.seek(SeekFrom::Start(seg.len))?;
        #[cfg(test)]
        if faults::take(&self.faults.fail_writes) {
            // Simulate a partial write followed by ENOSPC.
            seg.file.write_all(&buf[..buf.len() / 2])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected: disk full",
            ));
        }
        seg.file.write_all(buf)?;
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        {
            self.faults.before_sync();
            if faults::take(&self.faults.fail_syncs) {
                return Err(io::Error::other("injected: fsync failed"));
            }
        }
        seg.file.sync_data()
    }

    /// If a failed append may have left bytes past the good offset, cut
    /// them off (and fsync) before anything else touches the segment.
    fn repair(&self, seg: &mut SegmentWriter) -> Result<(), WalError> {
        if !seg.dirty {
            return Ok(());
        }
        let r = (|| {
            #[cfg(test)]
            if faults::take(&self.faults.fail_truncates) {
                return Err(io::Error::other("injected: truncate failed"));
            }
            seg.file.set_len(seg.len)?;
            seg.file.sync_all()
        })();
        r.map_err(|e| WalError::io(seg.path.clone(), e))?;
        seg.dirty = false;
        Ok(())
    }

    /// Closes the current segment and starts the next one.
    pub(crate) fn rotate(&self) -> Result<u64, WalError> {
        if self.is_closed() {
            return Err(WalError::Closed);
        }
        let mut seg = self.seg.lock();
        self.rotate_locked(&mut seg)
    }

    fn rotate_locked(&self, seg: &mut SegmentWriter) -> Result<u64, WalError> {
        self.repair(seg)?;
        let old = seg.id;
        let new_id = old
            .checked_add(1)
            .ok_or_else(|| WalError::corrupt(seg.path.clone(), 0, "segment id space exhausted"))?;
        #[cfg(test)]
        if faults::take(&self.faults.fail_creates) {
            seg.must_rotate = true;
            return Err(WalError::io(
                self.dir.clone(),
                io::Error::other("injected: segment creation failed"),
            ));
        }
        // If creation fails half-way a header-only file for `new_id` may be
        // left behind. It names `next_sequence` as its base, so it stays
        // consistent as long as nothing more is written to the old
        // segment: hence `must_rotate`.
        let file = match segment::create_segment(&self.dir, new_id, seg.next_sequence) {
            Ok(file) => file,
            Err(e) => {
                seg.must_rotate = true;
                return Err(e);
            }
        };
        seg.id = new_id;
        seg.path = segment::segment_path(&self.dir, new_id);
        seg.file = file;
        seg.len = HEADER_LEN;
        seg.entries = 0;
        seg.dirty = false;
        seg.must_rotate = false;
        self.current_segment.store(new_id, Ordering::Release);
        self.disk_bytes.fetch_add(HEADER_LEN, Ordering::Relaxed);
        self.counters.rotations.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(closed = old, opened = new_id, "WAL segment rotated");
        Ok(old)
    }

    #[cfg(test)]
    pub(crate) fn pending_entries(&self) -> usize {
        self.state.lock().pending.entries.len()
    }
}

/// Collects the result for entry `index` of batch `batch_id` if published.
fn collect(st: &mut State, batch_id: u64, index: usize) -> Option<Result<(u64, u64), WalError>> {
    let done = st.done.get_mut(&batch_id)?;
    done.remaining -= 1;
    let result = match &done.result {
        Ok((segment, first)) => Ok((*segment, first + index as u64)),
        Err(e) => Err(e.duplicate()),
    };
    if done.remaining == 0 {
        st.done.remove(&batch_id);
    }
    Some(result)
}

#[cfg(test)]
pub(crate) mod faults {
    //! Fault injection for unit tests.
    use std::sync::atomic::{AtomicU32, Ordering};

    type Hook = Box<dyn Fn() + Send + Sync>;

    #[derive(Default)]
    pub(crate) struct Faults {
        /// The next N writes write half the batch, then fail (disk full).
        pub fail_writes: AtomicU32,
        /// The next N data fsyncs fail.
        pub fail_syncs: AtomicU32,
        /// The next N truncations after a failure fail.
        pub fail_truncates: AtomicU32,
        /// The next N segment creations (rotations) fail.
        pub fail_creates: AtomicU32,
        /// Called before every data fsync (e.g. to block a leader).
        pub before_sync: parking_lot::Mutex<Option<Hook>>,
    }

    impl Faults {
        pub(crate) fn before_sync(&self) {
            if let Some(hook) = self.before_sync.lock().as_ref() {
                hook();
            }
        }
    }

    pub(crate) fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}
