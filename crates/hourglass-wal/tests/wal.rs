//! Integration tests of the WAL through its public API and by damaging
//! segment files on disk.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use hourglass_wal::format::{segment_file_name, HEADER_LEN, MAX_ENTRY_LEN};
use hourglass_wal::{Wal, WalConfig, WalEntry, WalError};

fn open(dir: &Path) -> Wal {
    Wal::open(WalConfig::new(dir)).expect("open wal")
}

fn open_small(dir: &Path, target: u64) -> Wal {
    let mut config = WalConfig::new(dir);
    config.segment_target_bytes = target;
    Wal::open(config).expect("open wal")
}

fn replay_all(wal: &Wal) -> Vec<WalEntry> {
    let mut out = Vec::new();
    let n = wal
        .replay(|e| {
            out.push(e);
            Ok(())
        })
        .expect("replay");
    assert_eq!(n, out.len() as u64);
    out
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_file_name(id))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("metadata").len()
}

fn segment_ids(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .filter_map(|n| hourglass_wal::format::parse_segment_file_name(&n))
        .collect();
    ids.sort_unstable();
    ids
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn payload(i: usize) -> Vec<u8> {
    // Varied sizes (including empty) and content.
    let len = (i * 37) % 300;
    (0..len).map(|j| (i * 31 + j * 7 + 1) as u8).collect()
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).expect("open");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(bytes).expect("write");
}

fn expect_corrupt(dir: &Path, segment: &Path, offset: u64) {
    match Wal::open(WalConfig::new(dir)) {
        Err(WalError::Corrupt {
            segment: s,
            offset: o,
            reason,
        }) => {
            assert_eq!(s, segment, "reason: {reason}");
            assert_eq!(o, offset, "reason: {reason}");
        }
        Err(other) => panic!("expected Corrupt at {offset}, got {other}"),
        Ok(_) => panic!("expected Corrupt at {offset}, open succeeded"),
    }
}

#[test]
fn roundtrip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let payloads: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        Vec::new(),
        vec![0u8; 1000],
        (0..1_000_000u32).map(|i| i as u8).collect(),
        b"last".to_vec(),
    ];
    let wal = open(dir.path());
    assert_eq!(wal.current_segment(), 1);
    let mut acks = Vec::new();
    for p in &payloads {
        acks.push(wal.append(p).expect("append"));
    }
    assert_eq!(acks, (1..=5).map(|s| (1, s)).collect::<Vec<_>>());
    // Nothing recovered at the first open.
    assert!(replay_all(&wal).is_empty());
    let frames: u64 = payloads.iter().map(|p| 16 + p.len() as u64).sum();
    assert_eq!(wal.disk_bytes(), HEADER_LEN + frames);
    assert_eq!(file_len(&seg_path(dir.path(), 1)), HEADER_LEN + frames);
    wal.close().expect("close");
    assert!(matches!(wal.append(b"x"), Err(WalError::Closed)));
    drop(wal);

    let wal = open(dir.path());
    assert_eq!(wal.current_segment(), 2);
    let entries = replay_all(&wal);
    assert_eq!(entries.len(), payloads.len());
    for (i, (e, p)) in entries.iter().zip(&payloads).enumerate() {
        assert_eq!(e.segment, 1);
        assert_eq!(e.sequence, i as u64 + 1);
        assert_eq!(&e.payload, p);
    }
    // Appends continue in a new segment with the next sequence.
    assert_eq!(wal.append(b"more").expect("append"), (2, 6));
    // Replay is repeatable and only covers what existed at open.
    assert_eq!(replay_all(&wal).len(), 5);
}

#[test]
fn replay_after_reopen_across_rotated_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: Vec<(u64, u64, Vec<u8>)> = Vec::new();
    let mut i = 0;
    for round in 0..3 {
        // Small target: size-triggered rotation every few entries.
        let wal = open_small(dir.path(), 600);
        assert_eq!(replay_all(&wal).len(), acked.len());
        for _ in 0..20 {
            let p = payload(i);
            let (seg, seq) = wal.append(&p).expect("append");
            acked.push((seg, seq, p));
            i += 1;
        }
        if round == 1 {
            let closed = wal.rotate().expect("rotate");
            assert_eq!(closed + 1, wal.current_segment());
        }
    }
    let segments: HashSet<u64> = acked.iter().map(|a| a.0).collect();
    assert!(segments.len() >= 6, "only {} segments", segments.len());

    let wal = open(dir.path());
    let entries = replay_all(&wal);
    assert_eq!(entries.len(), acked.len());
    let mut last_segment = 0;
    for (e, (seg, seq, p)) in entries.iter().zip(&acked) {
        assert_eq!((e.segment, e.sequence, &e.payload), (*seg, *seq, p));
        assert!(e.segment >= last_segment);
        last_segment = e.segment;
    }
    let seqs: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=acked.len() as u64).collect::<Vec<_>>());
    let total: u64 = segment_ids(dir.path())
        .into_iter()
        .map(|id| file_len(&seg_path(dir.path(), id)))
        .sum();
    assert_eq!(wal.disk_bytes(), total);
}

#[test]
fn concurrent_appends_are_replayed_exactly_once_with_shared_fsyncs() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Arc::new(open_small(dir.path(), 256 * 1024));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        let mut p = format!("t{t}-i{i}-").into_bytes();
                        p.resize(1000 + (i % 7) * 100, t as u8);
                        let (seg, seq) = wal.append(&p).expect("append");
                        (seg, seq, p)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<(u64, u64, Vec<u8>)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    let total = THREADS * PER_THREAD;
    let stats = wal.stats();
    assert_eq!(stats.appends, total as u64);
    assert!(
        stats.fsyncs < total as u64,
        "group commit did not share fsyncs: {} fsyncs for {total} appends",
        stats.fsyncs
    );
    drop(Arc::try_unwrap(wal).expect("sole owner"));

    acked.sort_by_key(|a| a.1);
    let seqs: Vec<u64> = acked.iter().map(|a| a.1).collect();
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());

    let wal = open(dir.path());
    let entries = replay_all(&wal);
    assert_eq!(entries.len(), total);
    for (e, (seg, seq, p)) in entries.iter().zip(&acked) {
        assert_eq!((e.segment, e.sequence, &e.payload), (*seg, *seq, p));
    }
}

/// Crash at every byte offset of the last three entries: only the
/// acknowledged prefix survives, and the WAL keeps working afterwards.
#[test]
fn torn_write_at_every_offset_keeps_the_acknowledged_prefix() {
    const N: usize = 10;
    let src = tempfile::tempdir().expect("tempdir");
    let mut payloads = Vec::new();
    let mut ends = Vec::new(); // end offset of each entry in the last segment
    let last_segment;
    {
        let wal = open(src.path());
        // A closed segment before the one we tear.
        for i in 0..3 {
            payloads.push(payload(100 + i));
            wal.append(&payloads[i]).expect("append");
        }
        wal.rotate().expect("rotate");
        last_segment = wal.current_segment();
        for i in 0..N {
            let p = payload(i + 3);
            let (seg, seq) = wal.append(&p).expect("append");
            assert_eq!((seg, seq), (last_segment, payloads.len() as u64 + 1));
            payloads.push(p);
            ends.push(file_len(&seg_path(src.path(), last_segment)));
        }
    }
    let closed_entries = 3;
    let start = ends[N - 4];
    let eof = ends[N - 1];
    assert!(eof - start > 3 * 16);

    for cut in start..=eof {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(src.path(), dir.path());
        let path = seg_path(dir.path(), last_segment);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(cut)
            .expect("truncate");

        let survivors = closed_entries + ends.iter().filter(|&&e| e <= cut).count();
        let valid_len = ends
            .iter()
            .copied()
            .filter(|&e| e <= cut)
            .max()
            .unwrap_or(HEADER_LEN);
        {
            let wal = open(dir.path());
            let entries = replay_all(&wal);
            let got: Vec<(u64, &[u8])> = entries
                .iter()
                .map(|e| (e.sequence, e.payload.as_slice()))
                .collect();
            let want: Vec<(u64, &[u8])> = payloads[..survivors]
                .iter()
                .enumerate()
                .map(|(i, p)| (i as u64 + 1, p.as_slice()))
                .collect();
            assert_eq!(got, want, "cut at {cut}");
            assert_eq!(
                file_len(&path),
                valid_len,
                "torn tail not truncated, cut {cut}"
            );
            let (seg, seq) = wal.append(b"after crash").expect("append");
            assert_eq!(seg, last_segment + 1);
            assert_eq!(seq, survivors as u64 + 1, "cut at {cut}");
        }
        let wal = open(dir.path());
        let entries = replay_all(&wal);
        assert_eq!(entries.len(), survivors + 1, "cut at {cut}");
        let last = entries.last().expect("entry");
        assert_eq!(
            (last.sequence, last.payload.as_slice()),
            (survivors as u64 + 1, b"after crash".as_slice())
        );
    }
}

/// Layout helper: writes entries into segment 1, rotates, writes more into
/// segment 2, and returns the start offset of every entry per segment.
fn two_segments(dir: &Path) -> (Vec<u64>, Vec<u64>) {
    let wal = open(dir);
    let mut starts1 = Vec::new();
    let mut starts2 = Vec::new();
    for i in 0..5 {
        starts1.push(file_len(&seg_path(dir, 1)));
        wal.append(&[i as u8 + 1; 200]).expect("append");
    }
    wal.rotate().expect("rotate");
    for i in 0..5 {
        starts2.push(file_len(&seg_path(dir, 2)));
        wal.append(&[i as u8 + 10; 200]).expect("append");
    }
    (starts1, starts2)
}

#[test]
fn flipped_byte_in_an_earlier_entry_is_corruption() {
    // In the last segment, with valid entries after it.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, starts2) = two_segments(dir.path());
    let path = seg_path(dir.path(), 2);
    write_at(&path, starts2[1] + 16 + 100, &[0xFF]);
    expect_corrupt(dir.path(), &path, starts2[1]);
    // Nothing was truncated or deleted by the failed open.
    assert_eq!(file_len(&path), starts2[4] + 216);

    // In a closed segment.
    let dir = tempfile::tempdir().expect("tempdir");
    let (starts1, _) = two_segments(dir.path());
    let path = seg_path(dir.path(), 1);
    write_at(&path, starts1[2] + 16 + 50, &[0x00]);
    expect_corrupt(dir.path(), &path, starts1[2]);

    // In the sequence field (covered by the CRC).
    let dir = tempfile::tempdir().expect("tempdir");
    let (starts1, _) = two_segments(dir.path());
    let path = seg_path(dir.path(), 1);
    write_at(&path, starts1[3] + 9, &[0x42]);
    expect_corrupt(dir.path(), &path, starts1[3]);
}

#[test]
fn zero_filled_tail_is_torn() {
    // Zeros appended after the last entry (size extended, data never written).
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, starts2) = two_segments(dir.path());
    let path = seg_path(dir.path(), 2);
    let len = file_len(&path);
    write_at(&path, len, &[0u8; 4096]);
    let wal = open(dir.path());
    assert_eq!(replay_all(&wal).len(), 10);
    assert_eq!(file_len(&path), len);
    drop(wal);

    // The last entry itself zeroed (its pages never reached the disk).
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, starts2b) = two_segments(dir.path());
    assert_eq!(starts2, starts2b);
    let path = seg_path(dir.path(), 2);
    write_at(&path, starts2[4], &[0u8; 216]);
    write_at(&path, starts2[4] + 216, &[0u8; 7]);
    let wal = open(dir.path());
    assert_eq!(replay_all(&wal).len(), 9);
    assert_eq!(file_len(&path), starts2[4]);
    assert_eq!(wal.append(b"x").expect("append").1, 10);
    drop(wal);

    // A few zero bytes: an incomplete entry header.
    let dir = tempfile::tempdir().expect("tempdir");
    two_segments(dir.path());
    let path = seg_path(dir.path(), 2);
    let len = file_len(&path);
    write_at(&path, len, &[0u8; 7]);
    let wal = open(dir.path());
    assert_eq!(replay_all(&wal).len(), 10);
    assert_eq!(file_len(&path), len);
}

#[test]
fn damage_that_is_not_a_torn_tail_fails_open() {
    // Zeroed entry followed by valid data: not a tail.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, starts2) = two_segments(dir.path());
    let path = seg_path(dir.path(), 2);
    write_at(&path, starts2[2], &[0u8; 216]);
    expect_corrupt(dir.path(), &path, starts2[2]);

    // A closed segment cut mid-entry.
    let dir = tempfile::tempdir().expect("tempdir");
    let (starts1, _) = two_segments(dir.path());
    let path = seg_path(dir.path(), 1);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(starts1[4] + 100)
        .expect("truncate");
    expect_corrupt(dir.path(), &path, starts1[4]);

    // A garbage length (beyond the maximum), even in the last segment.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, starts2) = two_segments(dir.path());
    let path = seg_path(dir.path(), 2);
    write_at(&path, starts2[3], &(MAX_ENTRY_LEN as u32 + 1).to_le_bytes());
    expect_corrupt(dir.path(), &path, starts2[3]);

    // A valid frame repeated: the sequence does not increase.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, starts2) = two_segments(dir.path());
    let path = seg_path(dir.path(), 2);
    let bytes = fs::read(&path).expect("read");
    let last_frame = bytes[starts2[4] as usize..].to_vec();
    write_at(&path, bytes.len() as u64, &last_frame);
    expect_corrupt(dir.path(), &path, bytes.len() as u64);

    // A damaged header in a closed segment.
    let dir = tempfile::tempdir().expect("tempdir");
    two_segments(dir.path());
    let path = seg_path(dir.path(), 1);
    write_at(&path, 20, &[0xAB]);
    expect_corrupt(dir.path(), &path, 0);

    // A missing middle segment breaks the sequence chain.
    let dir = tempfile::tempdir().expect("tempdir");
    two_segments(dir.path());
    drop(open(dir.path())); // creates segment 3
    fs::remove_file(seg_path(dir.path(), 2)).expect("remove");
    expect_corrupt(dir.path(), &seg_path(dir.path(), 3), 24);
}

#[test]
fn newer_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_segments(dir.path());
    let path = seg_path(dir.path(), 1);
    let mut header = fs::read(&path).expect("read")[..HEADER_LEN as usize].to_vec();
    header[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32c_of(&header[..32]);
    header[32..36].copy_from_slice(&crc.to_le_bytes());
    write_at(&path, 0, &header);
    match Wal::open(WalConfig::new(dir.path())) {
        Err(WalError::UnsupportedVersion { segment, version }) => {
            assert_eq!(segment, path);
            assert_eq!(version, 2);
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

/// Bitwise CRC32C (Castagnoli), independent of the crate's implementation.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn header_matches_documented_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    wal.append(b"abc").expect("append");
    let bytes = fs::read(seg_path(dir.path(), 1)).expect("read");
    assert_eq!(&bytes[0..8], b"HGWALSEG");
    assert_eq!(&bytes[8..12], &1u32.to_le_bytes()); // version
    assert_eq!(&bytes[12..16], &0u32.to_le_bytes()); // flags
    assert_eq!(&bytes[16..24], &1u64.to_le_bytes()); // segment id
    assert_eq!(&bytes[24..32], &1u64.to_le_bytes()); // base sequence
    assert_eq!(&bytes[32..36], &crc32c_of(&bytes[0..32]).to_le_bytes());
    // Entry: len, crc(sequence ++ payload), sequence, payload.
    let e = &bytes[36..];
    assert_eq!(e.len(), 16 + 3);
    assert_eq!(&e[0..4], &3u32.to_le_bytes());
    let mut covered = 1u64.to_le_bytes().to_vec();
    covered.extend_from_slice(b"abc");
    assert_eq!(&e[4..8], &crc32c_of(&covered).to_le_bytes());
    assert_eq!(&e[8..16], &1u64.to_le_bytes());
    assert_eq!(&e[16..], b"abc");
}

#[test]
fn torn_header_of_last_segment_is_removed() {
    for cut in [0u64, 1, 20, HEADER_LEN - 1] {
        let dir = tempfile::tempdir().expect("tempdir");
        two_segments(dir.path());
        // Simulate a crash while creating segment 3.
        let path = seg_path(dir.path(), 3);
        let header = {
            drop(open(dir.path()));
            fs::read(&path).expect("read")
        };
        assert_eq!(header.len() as u64, HEADER_LEN);
        fs::write(&path, &header[..cut as usize]).expect("write");
        let wal = open(dir.path());
        assert!(!path.exists(), "torn segment kept, cut {cut}");
        assert_eq!(replay_all(&wal).len(), 10);
        assert_eq!(wal.append(b"x").expect("append").1, 11);
    }
    // A header that is all zeros (size persisted, data not).
    let dir = tempfile::tempdir().expect("tempdir");
    two_segments(dir.path());
    let path = seg_path(dir.path(), 3);
    fs::write(&path, [0u8; 100]).expect("write");
    let wal = open(dir.path());
    assert!(!path.exists());
    assert_eq!(replay_all(&wal).len(), 10);
    // A leftover temporary file from an interrupted creation is removed.
    drop(wal);
    let tmp = dir.path().join(format!("{}.tmp", segment_file_name(9)));
    fs::write(&tmp, b"HGWAL").expect("write");
    let foreign = dir.path().join("README");
    fs::write(&foreign, b"not a segment").expect("write");
    drop(open(dir.path()));
    assert!(!tmp.exists());
    assert!(foreign.exists());
}

#[test]
fn remove_through_deletes_only_closed_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = open(dir.path());
    for s in 1..=4u64 {
        for _ in 0..3 {
            assert_eq!(wal.append(&[s as u8; 100]).expect("append").0, s);
        }
        assert_eq!(wal.rotate().expect("rotate"), s);
    }
    assert_eq!(wal.current_segment(), 5);
    wal.append(b"open").expect("append");
    assert_eq!(segment_ids(dir.path()), vec![1, 2, 3, 4, 5]);
    let before = wal.disk_bytes();

    assert_eq!(wal.remove_through(2).expect("remove"), 2);
    assert_eq!(segment_ids(dir.path()), vec![3, 4, 5]);
    assert_eq!(wal.disk_bytes(), before - 2 * (HEADER_LEN + 3 * 116));
    assert_eq!(wal.remove_through(2).expect("remove"), 0);

    // Never the open segment, whatever the argument.
    assert_eq!(wal.remove_through(u64::MAX).expect("remove"), 2);
    assert_eq!(segment_ids(dir.path()), vec![5]);
    assert_eq!(wal.disk_bytes(), file_len(&seg_path(dir.path(), 5)));
    assert_eq!(wal.append(b"still open").expect("append"), (5, 14));
    drop(wal);

    // Sequences continue after the removed prefix.
    let wal = open(dir.path());
    let entries = replay_all(&wal);
    let seqs: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, vec![13, 14]);
    assert_eq!(wal.append(b"next").expect("append"), (6, 15));
    // Segment 5 is now closed and can go; replay no longer includes it.
    assert_eq!(wal.remove_through(5).expect("remove"), 1);
    assert!(replay_all(&wal).is_empty());
    drop(wal);
    let wal = open(dir.path());
    assert_eq!(wal.append(b"after").expect("append"), (7, 16));
}

#[test]
fn replay_stops_at_callback_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_segments(dir.path());
    let wal = open(dir.path());
    let mut seen = 0;
    let err = wal
        .replay(|_| {
            seen += 1;
            if seen == 3 {
                Err(WalError::Replay("memtable full".into()))
            } else {
                Ok(())
            }
        })
        .expect_err("callback error");
    assert!(matches!(err, WalError::Replay(_)));
    assert_eq!(seen, 3);
}
