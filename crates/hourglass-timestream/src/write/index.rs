//! Version checks of WriteRecords: which records already exist, with which value and version.
//!
//! A record is identified by its series (measure name and dimensions) and time; its key is
//! `(series hash, time)` and its value is summarised by a fingerprint (a hash of its measure
//! names, types and values). Both hashes are defined here (stable across builds: they are
//! persisted in the version log) and are order-independent sums of per-pair hashes, so the same
//! record read back from storage gets the same key and fingerprint.
//!
//! Each table written through WriteRecords has a [`RecordIndex`], created at the table's first
//! WriteRecords since start:
//!
//! * `entries`: key -> (version, fingerprint, in-flight writers) of records written since, and of
//!   records looked up; bounded (oldest times evicted first, everything below `evicted_below`).
//! * `floor`: the newest time the table held when the index was created. Nothing newer existed
//!   then, so a record newer than the floor and not evicted exists only if it is in `entries`.
//! * `series_max`: per series, the newest time written through the index (or the floor): a record
//!   newer than its series' maximum is new, whatever was evicted (out-of-order series
//!   elsewhere do not slow down in-order ones).
//!
//! So a record's key is answered from memory (known, or certainly absent) except for old
//! records: those (time at or below the floor or evicted, and not newer than their series) take
//! the slow path: one point query per request over both tiers (`SELECT * ... WHERE time BETWEEN
//! ...`, deduplicated as queries see it), serialised per table so that nothing else can decide
//! about those keys meanwhile. Versions above 1 are appended (and fsynced) to a per-table version
//! log (`DATA_DIR/timestream/versions/<db>/<table>.versions`) before the rows are committed; the
//! slow path reads it (a record without an entry has version 1).
//!
//! Checking reserves: a record about to be written is inserted with an in-flight count, so a
//! concurrent request for the same record sees it before it is committed; a failed commit rolls
//! the reservations back. Line protocol writes bypass the index (they are last-write-wins):
//! a WriteRecords record is not version-checked against a line protocol row written after the
//! index was created.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float64Type, Int64Type, TimeUnit, TimestampNanosecondType, UInt64Type,
};
use hourglass_core::{column_role, ColumnRole, Error, Result};
use parking_lot::Mutex;

use super::record::MeasureVal;

/// `(series hash, time in ns)`.
pub type Key = (u64, i64);

const SEED: u64 = 0x2545_f491_4f6c_dd1d;
const K: u64 = 0x9e37_79b9_7f4a_7c15;

fn fmix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A stable 64-bit hash of bytes, chained from `seed`.
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = fmix(h ^ u64::from_le_bytes(w)).wrapping_add(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fmix(h ^ u64::from_le_bytes(w) ^ 0xff).wrapping_add(K);
    }
    fmix(h)
}

fn pair_hash(name: &str, value: &[u8]) -> u64 {
    fmix(hash_bytes(hash_bytes(SEED, name.as_bytes()), value))
}

/// The series of a record: its measure name and dimensions, in any order.
pub fn series_key(measure_name: &str, dims: &[(&str, &str)]) -> u64 {
    dims.iter().fold(
        pair_hash(hourglass_core::MEASURE_NAME_COLUMN, measure_name.as_bytes()),
        |acc, (n, v)| acc.wrapping_add(pair_hash(n, v.as_bytes())),
    )
}

/// One measure of a record's fingerprint.
pub fn measure_hash(name: &str, v: &MeasureVal) -> u64 {
    let (tag, bytes): (u8, [u8; 8]) = match v {
        MeasureVal::Double(f) => (1, f.to_bits().to_le_bytes()),
        MeasureVal::Bigint(i) => (2, i.to_le_bytes()),
        MeasureVal::Boolean(b) => (4, (*b as u64).to_le_bytes()),
        MeasureVal::Timestamp(t) => (5, t.to_le_bytes()),
        MeasureVal::Varchar(s) => {
            return pair_hash(name, &[3]).wrapping_add(fmix(hash_bytes(SEED ^ 3, s.as_bytes())));
        }
    };
    let mut buf = [0u8; 9];
    buf[0] = tag;
    buf[1..].copy_from_slice(&bytes);
    pair_hash(name, &buf)
}

/// The value of a record: its measures, in any order.
pub fn fingerprint(measures: &[(&str, MeasureVal)]) -> u64 {
    measures
        .iter()
        .fold(0u64, |acc, (n, v)| acc.wrapping_add(measure_hash(n, v)))
}

/// What an index knows about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub version: i64,
    pub fingerprint: u64,
    /// Requests writing this record that have not committed yet.
    pub pending: u32,
}

/// A record to check.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub key: Key,
    pub fingerprint: u64,
    pub version: i64,
}

/// What to do with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// New, or a higher version with another value: write its row.
    Write,
    /// The same value is stored already (at this or a higher version): nothing to write.
    Skip,
    /// The same value at a higher version: only the version changes (logged, not written).
    VersionOnly,
    /// Another value at an equal or higher version.
    Reject {
        reason: String,
        existing_version: i64,
    },
}

/// Changes made by one request's checks, to confirm after its commit or roll back.
#[derive(Debug, Default)]
pub struct Reservation {
    undo: Vec<(Key, Option<Entry>)>,
    pending: Vec<Key>,
}

enum Class {
    Known(Entry),
    Absent,
    Lookup,
}

#[derive(Debug)]
struct Inner {
    floor: i64,
    evicted_below: i64,
    entries: HashMap<Key, Entry>,
    /// Times and series of `entries`, oldest first, for eviction (may hold stale keys).
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    series_max: HashMap<u64, i64>,
    /// What an unknown series may hold: the floor, raised when `series_max` is cleared.
    series_floor: i64,
}

/// The most series an index tracks before it forgets them all (raising `series_floor`).
const MAX_SERIES: usize = 2_000_000;

impl Inner {
    fn classify(&self, key: Key) -> Class {
        if let Some(e) = self.entries.get(&key) {
            return Class::Known(*e);
        }
        let (series, time) = key;
        let series_max = self
            .series_max
            .get(&series)
            .copied()
            .unwrap_or(self.series_floor);
        if time > series_max || (time > self.floor && time >= self.evicted_below) {
            Class::Absent
        } else {
            Class::Lookup
        }
    }

    fn insert(&mut self, key: Key, entry: Entry) -> Option<Entry> {
        let previous = self.entries.insert(key, entry);
        if previous.is_none() {
            self.heap.push(Reverse((key.1, key.0)));
        }
        previous
    }

    fn note_series(&mut self, (series, time): Key) {
        let floor = self.series_floor;
        let max = self.series_max.entry(series).or_insert(floor);
        if time > *max {
            *max = time;
        }
    }

    fn decide(
        &mut self,
        c: &Candidate,
        existing: Option<Entry>,
        res: &mut Reservation,
    ) -> Decision {
        match existing {
            None => {
                let previous = self.insert(
                    c.key,
                    Entry {
                        version: c.version,
                        fingerprint: c.fingerprint,
                        pending: 1,
                    },
                );
                self.note_series(c.key);
                res.undo.push((c.key, previous));
                res.pending.push(c.key);
                Decision::Write
            }
            Some(e) if e.fingerprint == c.fingerprint => {
                if c.version > e.version {
                    self.insert(
                        c.key,
                        Entry {
                            version: c.version,
                            ..e
                        },
                    );
                    res.undo.push((c.key, Some(e)));
                    Decision::VersionOnly
                } else if e.pending > 0 {
                    // The same record is being written by a request not committed yet: write it
                    // too, so that it is durable when this request is answered.
                    self.insert(
                        c.key,
                        Entry {
                            pending: e.pending + 1,
                            ..e
                        },
                    );
                    res.undo.push((c.key, Some(e)));
                    res.pending.push(c.key);
                    Decision::Write
                } else {
                    Decision::Skip
                }
            }
            Some(e) => {
                if c.version > e.version {
                    self.insert(
                        c.key,
                        Entry {
                            version: c.version,
                            fingerprint: c.fingerprint,
                            pending: e.pending + 1,
                        },
                    );
                    self.note_series(c.key);
                    res.undo.push((c.key, Some(e)));
                    res.pending.push(c.key);
                    Decision::Write
                } else if c.version == e.version {
                    Decision::Reject {
                        reason: "A record already exists with the same time, dimensions, measure name, and record version. A higher record version must be specified in order to update the measure value. Specifying record version is supported by the latest SDKs.".to_string(),
                        existing_version: e.version,
                    }
                } else {
                    Decision::Reject {
                        reason: format!(
                            "The record version {} is lower than the existing version {}. A higher version is required to update the measure value.",
                            c.version, e.version
                        ),
                        existing_version: e.version,
                    }
                }
            }
        }
    }

    fn evict(&mut self, capacity: usize) {
        if self.entries.len() <= capacity {
            return;
        }
        let target = capacity - capacity / 10;
        while self.entries.len() > target {
            let Some(Reverse((time, series))) = self.heap.pop() else {
                break;
            };
            self.evicted_below = self.evicted_below.max(time.saturating_add(1));
            if let Some(e) = self.entries.get(&(series, time)) {
                if e.pending == 0 {
                    self.entries.remove(&(series, time));
                }
                // In flight: removed at confirm (its time is now below `evicted_below`).
            }
        }
        if self.series_max.len() > MAX_SERIES {
            let highest = self
                .series_max
                .values()
                .copied()
                .max()
                .unwrap_or(self.series_floor);
            self.series_floor = self.series_floor.max(highest);
            self.series_max.clear();
        }
    }
}

/// Looked-up records: key -> (fingerprint, version).
pub type Found = HashMap<Key, (u64, i64)>;

/// The record index of one table (see the module docs).
#[derive(Debug)]
pub struct RecordIndex {
    inner: Mutex<Inner>,
    /// Held by requests that look records up in storage.
    slow: tokio::sync::Mutex<()>,
    pub versions: VersionLog,
}

impl RecordIndex {
    /// `floor`: the newest time the table holds now (`i64::MIN` when empty).
    pub fn new(floor: i64, version_log: PathBuf) -> RecordIndex {
        RecordIndex {
            inner: Mutex::new(Inner {
                floor,
                evicted_below: i64::MIN,
                entries: HashMap::new(),
                heap: BinaryHeap::new(),
                series_max: HashMap::new(),
                series_floor: floor,
            }),
            slow: tokio::sync::Mutex::new(()),
            versions: VersionLog::new(version_log),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides every candidate if the index alone can: `None` when some must be looked up.
    pub fn try_decide(
        &self,
        candidates: &[Candidate],
        capacity: usize,
    ) -> Option<(Vec<Decision>, Reservation)> {
        let mut inner = self.inner.lock();
        if candidates
            .iter()
            .any(|c| matches!(inner.classify(c.key), Class::Lookup))
        {
            return None;
        }
        Some(Self::decide_all(
            &mut inner,
            candidates,
            capacity,
            &Found::new(),
        ))
    }

    /// Serialises the requests that look records up (hold the guard until decided).
    pub async fn lock_lookups(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.slow.lock().await
    }

    /// The keys the index cannot answer (call with the lookup guard held).
    pub fn keys_to_look_up(&self, candidates: &[Candidate]) -> Vec<Key> {
        let inner = self.inner.lock();
        let mut keys: Vec<Key> = candidates
            .iter()
            .filter(|c| matches!(inner.classify(c.key), Class::Lookup))
            .map(|c| c.key)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Decides every candidate, `found` answering the keys the index cannot (call with the
    /// lookup guard held).
    pub fn decide_with(
        &self,
        candidates: &[Candidate],
        capacity: usize,
        found: &Found,
    ) -> (Vec<Decision>, Reservation) {
        let mut inner = self.inner.lock();
        Self::decide_all(&mut inner, candidates, capacity, found)
    }

    fn decide_all(
        inner: &mut Inner,
        candidates: &[Candidate],
        capacity: usize,
        found: &Found,
    ) -> (Vec<Decision>, Reservation) {
        let mut res = Reservation::default();
        let decisions = candidates
            .iter()
            .map(|c| {
                let existing = match inner.classify(c.key) {
                    Class::Known(e) => Some(e),
                    Class::Absent => None,
                    Class::Lookup => found.get(&c.key).map(|&(fingerprint, version)| {
                        let e = Entry {
                            version,
                            fingerprint,
                            pending: 0,
                        };
                        inner.insert(c.key, e);
                        e
                    }),
                };
                inner.decide(c, existing, &mut res)
            })
            .collect();
        inner.evict(capacity);
        (decisions, res)
    }

    /// The request's rows are committed.
    pub fn confirm(&self, res: Reservation) {
        let mut inner = self.inner.lock();
        for key in res.pending {
            let evicted_below = inner.evicted_below;
            if let Some(e) = inner.entries.get_mut(&key) {
                e.pending = e.pending.saturating_sub(1);
                if e.pending == 0 && key.1 < evicted_below {
                    inner.entries.remove(&key);
                }
            }
        }
    }

    /// The request failed: undo its changes.
    pub fn roll_back(&self, res: Reservation) {
        let mut inner = self.inner.lock();
        for (key, previous) in res.undo.into_iter().rev() {
            match previous {
                Some(e) => {
                    inner.entries.insert(key, e);
                }
                None => {
                    inner.entries.remove(&key);
                }
            }
        }
    }
}

/// The keys and fingerprints of stored rows (a batch in a table's schema; `dimensions` names the
/// table's dimension columns).
pub fn row_keys(batch: &RecordBatch, dimensions: &HashSet<String>) -> Result<Vec<(Key, u64)>> {
    let n = batch.num_rows();
    let mut series = vec![0u64; n];
    let mut fps = vec![0u64; n];
    let mut times: Option<Vec<i64>> = None;
    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name().as_str();
        let role = if dimensions.contains(name) {
            ColumnRole::Dimension
        } else {
            column_role(field)
        };
        match role {
            ColumnRole::Time => {
                let t =
                    arrow::compute::cast(column, &DataType::Timestamp(TimeUnit::Nanosecond, None))
                        .map_err(|e| Error::internal(format!("reading times: {e}")))?;
                let t = t.as_primitive::<TimestampNanosecondType>();
                times = Some(t.values().to_vec());
            }
            ColumnRole::Dimension | ColumnRole::MeasureName => {
                let s = arrow::compute::cast(column, &DataType::Utf8)
                    .map_err(|e| Error::internal(format!("reading column '{name}': {e}")))?;
                let s = s.as_string::<i32>();
                for (row, slot) in series.iter_mut().enumerate() {
                    if s.is_valid(row) {
                        *slot = slot.wrapping_add(pair_hash(name, s.value(row).as_bytes()));
                    }
                }
            }
            ColumnRole::Measure => {
                for (row, slot) in fps.iter_mut().enumerate() {
                    if column.is_null(row) {
                        continue;
                    }
                    let v = match column.data_type() {
                        DataType::Float64 => {
                            MeasureVal::Double(column.as_primitive::<Float64Type>().value(row))
                        }
                        DataType::Int64 => {
                            MeasureVal::Bigint(column.as_primitive::<Int64Type>().value(row))
                        }
                        DataType::UInt64 => {
                            // Line protocol's unsigned integers: never equal to a WriteRecords value.
                            let u = column.as_primitive::<UInt64Type>().value(row);
                            *slot =
                                slot.wrapping_add(pair_hash(name, &u.to_le_bytes()).rotate_left(7));
                            continue;
                        }
                        DataType::Boolean => MeasureVal::Boolean(column.as_boolean().value(row)),
                        DataType::Timestamp(TimeUnit::Nanosecond, _) => MeasureVal::Timestamp(
                            column.as_primitive::<TimestampNanosecondType>().value(row),
                        ),
                        DataType::Utf8 => {
                            let s = column.as_string::<i32>().value(row);
                            *slot = slot.wrapping_add(measure_hash(name, &MeasureVal::Varchar(s)));
                            continue;
                        }
                        _ => {
                            let s = arrow::compute::cast(&column.slice(row, 1), &DataType::Utf8)
                                .map_err(|e| {
                                    Error::internal(format!("reading column '{name}': {e}"))
                                })?;
                            let text = s.as_string::<i32>().value(0).to_string();
                            *slot =
                                slot.wrapping_add(measure_hash(name, &MeasureVal::Varchar(&text)));
                            continue;
                        }
                    };
                    *slot = slot.wrapping_add(measure_hash(name, &v));
                }
            }
        }
    }
    let times = times.ok_or_else(|| Error::internal("query result without a time column"))?;
    Ok(times
        .into_iter()
        .zip(series)
        .zip(fps)
        .map(|((t, s), fp)| ((s, t), fp))
        .collect())
}

/// The per-table log of record versions above 1: 24-byte little-endian entries (series hash,
/// time, version), appended and fsynced before the rows they version are committed. Read only
/// by the slow path (loaded on first use); a torn last entry is ignored.
#[derive(Debug)]
pub struct VersionLog {
    pub path: PathBuf,
    inner: Mutex<VersionLogInner>,
    /// Bytes appended (since open) known to be on disk; held while syncing, so concurrent
    /// appenders share one fsync (group commit).
    synced: Mutex<u64>,
}

#[derive(Debug, Default)]
struct VersionLogInner {
    file: Option<Arc<File>>,
    loaded: Option<HashMap<Key, i64>>,
    /// Bytes appended since open (a counter, not a file offset).
    written: u64,
}

const ENTRY_BYTES: usize = 24;

impl VersionLog {
    pub fn new(path: PathBuf) -> VersionLog {
        VersionLog {
            path,
            inner: Mutex::new(VersionLogInner::default()),
            synced: Mutex::new(0),
        }
    }

    /// Appends versions durably. Blocking.
    pub fn append(&self, versions: &[(Key, i64)]) -> Result<()> {
        if versions.is_empty() {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        if inner.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), &e))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| Error::io(self.path.display(), &e))?;
            // A torn last entry (a crash mid-append) is cut off before appending after it.
            let len = file
                .metadata()
                .map_err(|e| Error::io(self.path.display(), &e))?
                .len();
            let torn = len % ENTRY_BYTES as u64;
            if torn != 0 {
                file.set_len(len - torn)
                    .map_err(|e| Error::io(self.path.display(), &e))?;
            }
            inner.file = Some(Arc::new(file));
        }
        let mut buf = Vec::with_capacity(versions.len() * ENTRY_BYTES);
        for ((series, time), version) in versions {
            buf.extend_from_slice(&series.to_le_bytes());
            buf.extend_from_slice(&time.to_le_bytes());
            buf.extend_from_slice(&version.to_le_bytes());
        }
        let Some(file) = inner.file.clone() else {
            return Err(Error::internal("version log not open"));
        };
        (&*file)
            .write_all(&buf)
            .map_err(|e| Error::io(self.path.display(), &e))?;
        inner.written += buf.len() as u64;
        let mine = inner.written;
        if let Some(map) = inner.loaded.as_mut() {
            for &(key, version) in versions {
                let v = map.entry(key).or_insert(version);
                *v = (*v).max(version);
            }
        }
        drop(inner);
        // Everything written before this point is covered by a sync started after it.
        let upto = self.inner.lock().written;
        let mut synced = self.synced.lock();
        if *synced >= mine {
            return Ok(()); // another appender's fsync covered these bytes
        }
        file.sync_data()
            .map_err(|e| Error::io(self.path.display(), &e))?;
        *synced = (*synced).max(upto);
        Ok(())
    }

    /// The logged versions of `keys` (absent: version 1). Blocking. The first call loads the
    /// log, dropping entries older than `min_time` (past retention: such records cannot be
    /// written again); when that or duplicates leave less than half of it, the log is rewritten.
    pub fn versions(&self, keys: &[Key], min_time: i64) -> Result<HashMap<Key, i64>> {
        let mut inner = self.inner.lock();
        if inner.loaded.is_none() {
            let mut map = HashMap::new();
            let mut entries = 0usize;
            match File::open(&self.path) {
                Ok(mut f) => {
                    let mut bytes = Vec::new();
                    f.read_to_end(&mut bytes)
                        .map_err(|e| Error::io(self.path.display(), &e))?;
                    for e in bytes.chunks_exact(ENTRY_BYTES) {
                        entries += 1;
                        let word = |i: usize| {
                            let mut w = [0u8; 8];
                            w.copy_from_slice(&e[i * 8..i * 8 + 8]);
                            w
                        };
                        let key = (u64::from_le_bytes(word(0)), i64::from_le_bytes(word(1)));
                        if key.1 < min_time {
                            continue;
                        }
                        let version = i64::from_le_bytes(word(2));
                        let v = map.entry(key).or_insert(version);
                        *v = (*v).max(version);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(self.path.display(), &e)),
            }
            if entries > 1024 && map.len() < entries / 2 {
                // Appends after the rewrite go to the new file; bytes appended so far are in it
                // (fsynced by the rewrite).
                inner.file = None;
                self.rewrite(&map)?;
                let written = inner.written;
                let mut synced = self.synced.lock();
                *synced = (*synced).max(written);
            }
            inner.loaded = Some(map);
        }
        let map = inner.loaded.as_ref().map_or_else(HashMap::new, |m| {
            keys.iter()
                .filter_map(|k| m.get(k).map(|v| (*k, *v)))
                .collect()
        });
        Ok(map)
    }

    /// Replaces the log with `map`'s entries (temporary file, fsync, rename).
    fn rewrite(&self, map: &HashMap<Key, i64>) -> Result<()> {
        let tmp = self.path.with_extension("versions.tmp");
        let mut buf = Vec::with_capacity(map.len() * ENTRY_BYTES);
        for ((series, time), version) in map {
            buf.extend_from_slice(&series.to_le_bytes());
            buf.extend_from_slice(&time.to_le_bytes());
            buf.extend_from_slice(&version.to_le_bytes());
        }
        let mut f = File::create(&tmp).map_err(|e| Error::io(tmp.display(), &e))?;
        f.write_all(&buf)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(tmp.display(), &e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(self.path.display(), &e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(dir.display(), &e))?;
        }
        Ok(())
    }

    /// Deletes the log (the table was dropped). Blocking.
    pub fn delete(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.file = None;
        inner.loaded = Some(HashMap::new());
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(self.path.display(), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(series: u64, time: i64, fp: u64, version: i64) -> Candidate {
        Candidate {
            key: (series, time),
            fingerprint: fp,
            version,
        }
    }

    fn index(floor: i64) -> (tempfile::TempDir, RecordIndex) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.versions");
        (dir, RecordIndex::new(floor, path))
    }

    #[test]
    fn hashes_are_order_independent_and_stable() {
        let a = series_key("cpu", &[("host", "h1"), ("region", "eu")]);
        let b = series_key("cpu", &[("region", "eu"), ("host", "h1")]);
        assert_eq!(a, b);
        assert_ne!(a, series_key("cpu", &[("host", "h1"), ("region", "us")]));
        assert_ne!(
            series_key("cpu", &[("a", "bc")]),
            series_key("cpu", &[("ab", "c")])
        );
        let m = [
            ("a", MeasureVal::Double(1.0)),
            ("b", MeasureVal::Varchar("x")),
        ];
        let r = [
            ("b", MeasureVal::Varchar("x")),
            ("a", MeasureVal::Double(1.0)),
        ];
        assert_eq!(fingerprint(&m), fingerprint(&r));
        assert_ne!(
            fingerprint(&[("a", MeasureVal::Double(1.0))]),
            fingerprint(&[("a", MeasureVal::Bigint(1))])
        );
        // Persisted in version logs: must not change between builds.
        assert_eq!(hash_bytes(SEED, b"hourglass"), 0x1fed155367e5f345);
    }

    #[test]
    fn versioned_upserts_follow_timestream() {
        let (_d, idx) = index(i64::MIN);
        let (d, r) = idx.try_decide(&[cand(1, 10, 100, 1)], 1000).unwrap();
        assert_eq!(d, vec![Decision::Write]);
        idx.confirm(r);
        // Identical: idempotent. Different value, same version: rejected.
        let (d, _) = idx
            .try_decide(&[cand(1, 10, 100, 1), cand(1, 10, 200, 1)], 1000)
            .unwrap();
        assert_eq!(d[0], Decision::Skip);
        assert!(
            matches!(&d[1], Decision::Reject { existing_version: 1, reason } if reason.starts_with("A record already exists"))
        );
        // Higher version replaces; then a lower one is rejected naming both versions.
        let (d, r) = idx.try_decide(&[cand(1, 10, 200, 5)], 1000).unwrap();
        assert_eq!(d, vec![Decision::Write]);
        idx.confirm(r);
        let (d, _) = idx.try_decide(&[cand(1, 10, 300, 2)], 1000).unwrap();
        assert_eq!(
            d,
            vec![Decision::Reject {
                reason: "The record version 2 is lower than the existing version 5. A higher version is required to update the measure value.".into(),
                existing_version: 5
            }]
        );
        // Same value, higher version: only the version changes.
        let (d, _) = idx.try_decide(&[cand(1, 10, 200, 7)], 1000).unwrap();
        assert_eq!(d, vec![Decision::VersionOnly]);
    }

    #[test]
    fn old_keys_need_a_lookup_and_rollback_undoes_reservations() {
        let (_d, idx) = index(50);
        // At or below the floor: unknown.
        assert!(idx.try_decide(&[cand(1, 50, 1, 1)], 1000).is_none());
        assert_eq!(
            idx.keys_to_look_up(&[cand(1, 50, 1, 1), cand(1, 51, 1, 1)]),
            vec![(1, 50)]
        );
        let mut found = Found::new();
        found.insert((1, 50), (9, 3));
        let (d, r) = idx.decide_with(&[cand(1, 50, 1, 1), cand(2, 40, 1, 1)], 1000, &found);
        assert!(matches!(
            d[0],
            Decision::Reject {
                existing_version: 3,
                ..
            }
        ));
        assert_eq!(d[1], Decision::Write);
        idx.roll_back(r);
        // The looked-up record stays known; the rolled-back one needs a lookup again.
        assert!(idx.try_decide(&[cand(1, 50, 9, 1)], 1000).is_some());
        assert!(idx.try_decide(&[cand(2, 40, 1, 1)], 1000).is_none());
        // In-order series above the floor never need lookups, even below another's time.
        let (d, r) = idx.try_decide(&[cand(3, 100, 1, 1)], 1000).unwrap();
        assert_eq!(d, vec![Decision::Write]);
        idx.confirm(r);
        assert!(idx.try_decide(&[cand(3, 90, 1, 1)], 1000).is_some());
    }

    #[test]
    fn in_flight_records_are_seen_and_eviction_keeps_answers_correct() {
        let (_d, idx) = index(i64::MIN);
        let (_, r1) = idx.try_decide(&[cand(1, 10, 5, 1)], 1000).unwrap();
        // A concurrent identical record is written too; a different one is rejected.
        let (d, r2) = idx
            .try_decide(&[cand(1, 10, 5, 1), cand(1, 10, 6, 1)], 1000)
            .unwrap();
        assert_eq!(d[0], Decision::Write);
        assert!(matches!(d[1], Decision::Reject { .. }));
        idx.confirm(r1);
        idx.confirm(r2);
        for t in 0..100 {
            let (_, r) = idx.try_decide(&[cand(7, 1000 + t, 1, 1)], 50).unwrap();
            idx.confirm(r);
        }
        assert!(idx.len() <= 50);
        // Evicted times are no longer answered from memory; recent ones still are.
        assert!(idx.try_decide(&[cand(7, 1000, 1, 1)], 50).is_none());
        // A series never written is absent whatever was evicted (the table was empty).
        assert!(idx.try_decide(&[cand(8, 1000, 1, 1)], 50).is_some());
        assert!(idx.try_decide(&[cand(7, 1099, 1, 1)], 50).is_some());
    }

    #[test]
    fn version_log_survives_reopen_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db").join("t.versions");
        let log = VersionLog::new(path.clone());
        log.append(&[((1, 2), 5), ((3, 4), 7)]).unwrap();
        log.append(&[((1, 2), 9)]).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let reopened = VersionLog::new(path);
        let v = reopened
            .versions(&[(1, 2), (3, 4), (5, 6)], i64::MIN)
            .unwrap();
        assert_eq!(v.get(&(1, 2)), Some(&9));
        assert_eq!(v.get(&(3, 4)), Some(&7));
        assert_eq!(v.get(&(5, 6)), None);
        // Loading drops entries past retention and compacts a log of mostly dead entries.
        let many: Vec<(Key, i64)> = (0..2000).map(|t| ((9, t), 2)).collect();
        reopened.append(&many).unwrap();
        let again = VersionLog::new(reopened.path.clone());
        let v = again.versions(&[(9, 1999), (9, 5)], 1990).unwrap();
        assert_eq!((v.get(&(9, 1999)), v.get(&(9, 5))), (Some(&2), None));
        assert!(std::fs::metadata(&again.path).unwrap().len() < 100 * ENTRY_BYTES as u64);
        again.append(&[((9, 2000), 3)]).unwrap();
        let third = VersionLog::new(again.path.clone());
        assert_eq!(
            third.versions(&[(9, 2000)], 0).unwrap().get(&(9, 2000)),
            Some(&3)
        );
        reopened.delete().unwrap();
        assert!(reopened.versions(&[(1, 2)], i64::MIN).unwrap().is_empty());
    }
}
