//! Unit tests that need crate internals: fault injection on the append path
//! (disk full, failed fsync, failed truncation, failed rotation) and a
//! deterministic check that group commit shares one fsync per group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use parking_lot::{Condvar, Mutex};

use crate::format::HEADER_LEN;
use crate::{segment, Wal, WalConfig, WalError};

fn open(dir: &std::path::Path) -> Wal {
    Wal::open(WalConfig::new(dir)).expect("open wal")
}

fn replay_all(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    wal.replay(|e| {
        out.push((e.sequence, e.payload));
        Ok(())
    })
    .expect("replay");
    out
}

fn seg_len(wal: &Wal) -> u64 {
    std::fs::metadata(segment::segment_path(wal.dir(), wal.current_segment()))
        .expect("segment metadata")
        .len()
}

/// Blocks the first data fsync it is armed for until released.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    state: Mutex<(bool, bool)>, // (entered, released)
    cv: Condvar,
}

impl Gate {
    fn install(wal: &Wal) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        gate.armed.store(true, Ordering::SeqCst);
        let g = Arc::clone(&gate);
        *wal.writer.faults.before_sync.lock() = Some(Box::new(move || g.hook()));
        gate
    }

    fn hook(&self) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut st = self.state.lock();
        st.0 = true;
        self.cv.notify_all();
        while !st.1 {
            self.cv.wait(&mut st);
        }
    }

    fn wait_entered(&self) {
        let mut st = self.state.lock();
        while !st.0 {
            self.cv.wait(&mut st);
        }
    }

    fn release(&self) {
        self.state.lock().1 = true;
        self.cv.notify_all();
    }
}

/// Waits (without sleeping) until `n` entries are queued behind the leader.
fn wait_pending(wal: &Wal, n: usize) {
    while wal.writer.pending_entries() < n {
        thread::yield_now();
    }
}

#[test]
fn group_commit_shares_one_fsync_per_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Arc::new(open(dir.path()));
    let gate = Gate::install(&wal);

    // The first appender becomes leader and blocks inside its fsync.
    let first = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.append(&[0u8; 100_000]))
    };
    gate.wait_entered();

    // Seven more arrive while that fsync is in flight: they accumulate.
    let followers: Vec<_> = (1..8u8)
        .map(|i| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || wal.append(&[i; 100_000]))
        })
        .collect();
    wait_pending(&wal, 7);
    gate.release();

    let (seg, seq) = first.join().expect("join").expect("append");
    assert_eq!(seq, 1);
    let mut seqs: Vec<u64> = followers
        .into_iter()
        .map(|h| {
            let (s, q) = h.join().expect("join").expect("append");
            assert_eq!(s, seg);
            q
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=8).collect::<Vec<_>>());

    // One fsync for the first entry, one for the group of seven.
    let stats = wal.stats();
    assert_eq!(stats.appends, 8);
    assert_eq!(stats.fsyncs, 2);
}

#[test]
fn single_large_append_costs_one_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    let payload = vec![7u8; 1 << 20];
    assert_eq!(wal.append(&payload).expect("append"), (1, 1));
    assert_eq!(wal.stats().fsyncs, 1);
    assert_eq!(seg_len(&wal), HEADER_LEN + 16 + (1 << 20));
}

#[test]
fn disk_full_truncates_fails_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    wal.append(b"one").expect("append");
    let good = seg_len(&wal);

    wal.writer.faults.fail_writes.store(1, Ordering::SeqCst);
    let err = wal.append(&[9u8; 4096]).expect_err("injected failure");
    assert!(err.is_disk_full(), "{err}");
    // The half-written batch was cut off again.
    assert_eq!(seg_len(&wal), good);

    // Service resumes; the failed entry consumed no sequence number.
    assert_eq!(wal.append(b"two").expect("append").1, 2);
    assert_eq!(wal.stats().failed_appends, 1);
    drop(wal);

    let wal = open(dir.path());
    assert_eq!(
        replay_all(&wal),
        vec![(1, b"one".to_vec()), (2, b"two".to_vec())]
    );
}

#[test]
fn failed_fsync_fails_the_entry_and_truncates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    wal.append(b"one").expect("append");
    let good = seg_len(&wal);

    wal.writer.faults.fail_syncs.store(1, Ordering::SeqCst);
    let err = wal.append(b"lost").expect_err("injected failure");
    assert!(matches!(err, WalError::Io { .. }), "{err}");
    assert!(!err.is_disk_full());
    assert_eq!(seg_len(&wal), good);

    assert_eq!(wal.append(b"two").expect("append").1, 2);
    drop(wal);
    let wal = open(dir.path());
    assert_eq!(
        replay_all(&wal),
        vec![(1, b"one".to_vec()), (2, b"two".to_vec())]
    );
}

#[test]
fn failed_truncation_is_retried_before_the_next_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    wal.append(b"one").expect("append");
    let good = seg_len(&wal);

    wal.writer.faults.fail_writes.store(1, Ordering::SeqCst);
    wal.writer.faults.fail_truncates.store(1, Ordering::SeqCst);
    wal.append(&[5u8; 1000]).expect_err("injected failure");
    // Garbage is still there: truncation failed.
    assert!(seg_len(&wal) > good);

    // The next append first cuts the garbage off, then writes.
    assert_eq!(wal.append(b"two").expect("append").1, 2);
    assert_eq!(seg_len(&wal), good + 16 + 3);
    drop(wal);
    let wal = open(dir.path());
    assert_eq!(replay_all(&wal).len(), 2);
}

#[test]
fn failure_fails_every_entry_of_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Arc::new(open(dir.path()));
    let gate = Gate::install(&wal);

    let first = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.append(b"first"))
    };
    gate.wait_entered();
    let group: Vec<_> = (0..5)
        .map(|_| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || wal.append(b"doomed"))
        })
        .collect();
    wait_pending(&wal, 5);
    // The group of five is written by the next leader: make it fail.
    wal.writer.faults.fail_writes.store(1, Ordering::SeqCst);
    gate.release();

    assert_eq!(first.join().expect("join").expect("append").1, 1);
    for h in group {
        let err = h.join().expect("join").expect_err("group must fail");
        assert!(err.is_disk_full(), "{err}");
    }
    assert_eq!(wal.stats().failed_appends, 5);
    assert_eq!(wal.append(b"after").expect("append").1, 2);

    drop(Arc::try_unwrap(wal).expect("sole owner"));
    let wal = open(dir.path());
    assert_eq!(
        replay_all(&wal),
        vec![(1, b"first".to_vec()), (2, b"after".to_vec())]
    );
}

#[test]
fn failed_rotation_is_retried_and_sequences_stay_contiguous() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    wal.append(b"a").expect("append");
    wal.writer.faults.fail_creates.store(1, Ordering::SeqCst);
    wal.rotate().expect_err("injected failure");
    assert_eq!(wal.current_segment(), 1);
    // The next append rotates first, so the old segment gets nothing more.
    assert_eq!(wal.append(b"b").expect("append"), (2, 2));
    drop(wal);
    let wal = open(dir.path());
    assert_eq!(replay_all(&wal).len(), 2);
}

#[test]
fn close_flushes_pending_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Arc::new(open(dir.path()));
    let gate = Gate::install(&wal);
    let first = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.append(b"first"))
    };
    gate.wait_entered();
    let second = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.append(b"second"))
    };
    wait_pending(&wal, 1);
    let closer = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.close())
    };
    // Once close has marked the WAL closed, new appends are refused...
    while !wal.writer.is_closed() {
        thread::yield_now();
    }
    assert!(matches!(wal.append(b"late"), Err(WalError::Closed)));
    assert!(matches!(wal.rotate(), Err(WalError::Closed)));
    gate.release();
    // ...but what was pending is flushed.
    closer.join().expect("join").expect("close");
    assert_eq!(first.join().expect("join").expect("append").1, 1);
    assert_eq!(second.join().expect("join").expect("append").1, 2);

    drop(Arc::try_unwrap(wal).expect("sole owner"));
    let wal = open(dir.path());
    assert_eq!(replay_all(&wal).len(), 2);
}

#[test]
fn entry_too_large_is_rejected_without_io() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    let big = vec![0u8; (crate::format::MAX_ENTRY_LEN + 1) as usize];
    assert!(matches!(
        wal.append(&big),
        Err(WalError::EntryTooLarge { .. })
    ));
    assert_eq!(wal.stats().fsyncs, 0);
    assert_eq!(wal.append(b"ok").expect("append").1, 1);
}

#[test]
fn wal_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
}

/// `decode_segment` reads a segment's bytes as recovery reads the last segment: whole entries,
/// a torn tail reported, damage an error, and never a panic on arbitrary bytes.
#[test]
fn decode_segment_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    wal.append(b"first").expect("append");
    wal.append(b"second").expect("append");
    let id = wal.current_segment();
    let bytes = std::fs::read(segment::segment_path(wal.dir(), id)).expect("read segment");
    let decoded = crate::decode_segment(&bytes, id).expect("decode");
    assert_eq!(
        decoded.entries,
        vec![(1, b"first".to_vec()), (2, b"second".to_vec())]
    );
    assert_eq!(decoded.valid_len, bytes.len() as u64);
    assert!(decoded.torn_tail.is_none());

    // A torn last entry: the whole ones are kept and the tail is reported.
    let torn = crate::decode_segment(&bytes[..bytes.len() - 3], id).expect("torn");
    assert_eq!(torn.entries.len(), 1);
    assert!(torn.torn_tail.is_some());
    // A segment being created: empty.
    assert!(crate::decode_segment(&bytes[..10], id)
        .expect("short")
        .entries
        .is_empty());
    // The wrong id, a flipped payload byte followed by data, garbage: errors.
    assert!(crate::decode_segment(&bytes, id + 1).is_err());
    let mut damaged = bytes.clone();
    damaged[HEADER_LEN as usize + 16] ^= 0xff;
    assert!(matches!(
        crate::decode_segment(&damaged, id),
        Err(WalError::Corrupt { .. })
    ));
    for len in 0..bytes.len() {
        let _ = crate::decode_segment(&bytes[..len], id);
        let mut flipped = bytes.clone();
        flipped[len] = flipped[len].wrapping_add(1);
        let _ = crate::decode_segment(&flipped, id);
    }
}
