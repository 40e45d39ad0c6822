//! WriteRecords: records to one Arrow write batch per request, committed through the engine.
//!
//! ```text
//! decode (borrowed strings) -> model constraints (ValidationException for the whole request)
//!   -> per record: merge CommonAttributes, parse values, limits, write window (rejected record)
//!   -> columns against the catalog: a measure whose type differs from its column's is rejected
//!   -> versions against the table's record index (index.rs; rejected with ExistingVersion)
//!   -> one batch of the records to write -> catalog grows -> engine.commit (WAL fsync) -> answer
//! ```
//! Valid records of a request are written even when others are rejected; the answer is then
//! `RejectedRecordsException` (419) listing the others, else `RecordsIngested`.

pub mod batch;
pub mod index;
pub mod record;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use hourglass_core::{ColumnRole, ColumnType, TableWrite, WriteBatch};
use hourglass_storage::catalog::NewColumn;
use hourglass_storage::{Engine, TableDef};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use self::index::{Candidate, Decision, Found, Key, RecordIndex};
use self::record::{
    check_model, prepare, Place, Prepared, RecordError, RecordIn, TableRules, WriteRecordsIn,
};
use crate::manage::{database_not_found, meta, table_not_found, table_schema_json};
use crate::protocol::{check_length, constraint_error, decode, required, ApiError};
use crate::Service;

/// Entries all record indexes may hold together (about 80 bytes each).
pub const INDEX_CAPACITY: usize = 1_000_000;
/// The least entries one table's index may hold.
pub const MIN_TABLE_INDEX_CAPACITY: usize = 65_536;
/// Measure columns a table may have (Timestream's unique measure names per table).
pub const MAX_MEASURE_COLUMNS: usize = 8192;

/// The record indexes of the tables written through WriteRecords.
#[derive(Default)]
pub struct WriteState {
    indexes: Mutex<HashMap<(String, String), Arc<RecordIndex>>>,
}

impl WriteState {
    /// The index of a table, created with the table's newest time as floor.
    fn index(&self, engine: &Engine, db: &str, table: &str) -> (Arc<RecordIndex>, usize) {
        let mut indexes = self.indexes.lock();
        let key = (db.to_string(), table.to_string());
        let index = match indexes.get(&key) {
            Some(i) => i.clone(),
            None => {
                let floor = engine
                    .table_snapshot(db, table)
                    .map(|s| {
                        let memory = s.chunks.iter().map(|c| c.max_time).max();
                        memory.max(s.manifest.max_time()).unwrap_or(i64::MIN)
                    })
                    .unwrap_or(i64::MIN);
                let i = Arc::new(RecordIndex::new(floor, version_log_path(engine, db, table)));
                indexes.insert(key, i.clone());
                i
            }
        };
        let capacity = (INDEX_CAPACITY / indexes.len().max(1)).max(MIN_TABLE_INDEX_CAPACITY);
        (index, capacity)
    }

    /// Forgets a dropped (or re-created) table's index and version log.
    pub fn forget_table(&self, engine: &Engine, db: &str, table: &str) {
        let removed = self
            .indexes
            .lock()
            .remove(&(db.to_string(), table.to_string()));
        let result = match removed {
            Some(i) => i.versions.delete(),
            None => index::VersionLog::new(version_log_path(engine, db, table)).delete(),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, db, table, "deleting the version log");
        }
    }

    /// Forgets a dropped database's version logs.
    pub fn forget_database(&self, engine: &Engine, db: &str) {
        self.indexes.lock().retain(|(d, _), _| d != db);
        let dir = versions_dir(engine).join(db);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, dir = %dir.display(), "deleting version logs");
            }
        }
    }
}

fn versions_dir(engine: &Engine) -> PathBuf {
    engine.config.data_dir.join("timestream").join("versions")
}

fn version_log_path(engine: &Engine, db: &str, table: &str) -> PathBuf {
    versions_dir(engine)
        .join(db)
        .join(format!("{table}.versions"))
}

/// The memory store's lower bound after a memory retention increase (`i64::MIN`: none).
pub fn memory_window_floor(def: &TableDef) -> i64 {
    meta(&def.extra)
        .and_then(|m| m.get("memory_window_floor"))
        .and_then(Value::as_i64)
        .unwrap_or(i64::MIN)
}

fn table_rules(def: &TableDef, now: i64) -> TableRules {
    let schema = table_schema_json(def);
    let required_dimensions = schema["CompositePartitionKey"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter(|k| k["Type"] == "DIMENSION" && k["EnforcementInRecord"] == "REQUIRED")
                .filter_map(|k| k["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    TableRules {
        properties: def.properties,
        now,
        memory_floor: memory_window_floor(def),
        required_dimensions,
    }
}

/// A rejected record: index, reason and the existing version for version conflicts.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
    pub existing_version: Option<i64>,
}

/// What a write did: records written to each tier, and the records rejected (by index).
#[derive(Debug, Default)]
pub struct WriteOutcome {
    pub memory: usize,
    pub magnetic: usize,
    pub rejected: Vec<Rejected>,
}

/// Decodes a WriteRecords body and checks its model constraints (a `ValidationException` for
/// the whole request otherwise).
fn decode_request(body: &[u8]) -> Result<WriteRecordsIn<'_>, ApiError> {
    let req: WriteRecordsIn = decode(body)?;
    let db = req
        .database_name
        .as_deref()
        .ok_or_else(|| required("databaseName"))?;
    let table = req
        .table_name
        .as_deref()
        .ok_or_else(|| required("tableName"))?;
    check_length(db, "databaseName", 1, None)?;
    check_length(table, "tableName", 1, None)?;
    let records = req.records.as_deref().ok_or_else(|| required("records"))?;
    if records.is_empty() || records.len() > record::MAX_RECORDS {
        let constraint = if records.is_empty() {
            "Member must have length greater than or equal to 1".to_string()
        } else {
            format!(
                "Member must have length less than or equal to {}",
                record::MAX_RECORDS
            )
        };
        return Err(constraint_error(None, "records", &constraint));
    }
    if let Some(c) = req.common_attributes.as_ref() {
        check_model(c, Place::Common)?;
    }
    for (i, r) in records.iter().enumerate() {
        check_model(r, Place::Record(i))?;
    }
    Ok(req)
}

/// The decoding half of WriteRecords, without a server: the JSON body, its model constraints,
/// each record merged with `CommonAttributes` and checked against `rules`, and the Arrow batch
/// of the accepted records. Returns `(records accepted, records rejected)`. For the fuzzer and
/// tools; never panics.
pub fn decode_records(body: &[u8], rules: &TableRules) -> Result<(usize, usize), ApiError> {
    let req = decode_request(body)?;
    let records = req.records.as_deref().unwrap_or(&[]);
    let common = req.common_attributes.as_ref();
    let mut prepared = Vec::with_capacity(records.len());
    let mut rejected = 0;
    for (i, r) in records.iter().enumerate() {
        match prepare(i, common, r, rules) {
            Ok(p) => prepared.push(p),
            Err(RecordError::Validation(e)) => return Err(e),
            Err(RecordError::Reject(_)) => rejected += 1,
        }
    }
    if !prepared.is_empty() {
        let refs: Vec<&Prepared> = prepared.iter().collect();
        batch::build_batch(&refs).map_err(ApiError::from)?;
    }
    Ok((prepared.len(), rejected))
}

/// The WriteRecords operation: one request of at most 100 records, one commit.
pub async fn write_records(svc: &Service, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req = decode_request(body)?;
    let db = req
        .database_name
        .as_deref()
        .ok_or_else(|| required("databaseName"))?;
    let table = req
        .table_name
        .as_deref()
        .ok_or_else(|| required("tableName"))?;
    let records = req.records.as_deref().ok_or_else(|| required("records"))?;
    let common = req.common_attributes.as_ref();
    let decoded: Vec<(usize, &RecordIn)> = records.iter().enumerate().collect();
    let outcome = write_decoded(svc, db, table, common, &decoded, Vec::new()).await?;
    if !outcome.rejected.is_empty() {
        let list = outcome
            .rejected
            .into_iter()
            .map(|r| {
                let mut v = json!({"RecordIndex": r.index, "Reason": r.reason});
                if let Some(existing) = r.existing_version {
                    v["ExistingVersion"] = json!(existing);
                }
                v
            })
            .collect();
        return Err(ApiError::rejected_records(list));
    }
    serde_json::to_vec(&json!({
        "RecordsIngested": {
            "Total": outcome.memory + outcome.magnetic,
            "MemoryStore": outcome.memory,
            "MagneticStore": outcome.magnetic,
        }
    }))
    .map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

/// Writes WriteRecords `Record` objects into `db.table` as a WriteRecords request would (same
/// checks, versions and durable commit), for writers inside the server that the API's request
/// limits do not bind (scheduled queries): any number of records in one commit, and a record
/// that breaks the model is rejected alone instead of failing the whole request. Rejected
/// records are returned by their index in `records`.
pub async fn write_record_objects(
    svc: &Service,
    db: &str,
    table: &str,
    records: &[Value],
) -> Result<WriteOutcome, ApiError> {
    let mut rejected = Vec::new();
    let mut decoded: Vec<(usize, RecordIn)> = Vec::with_capacity(records.len());
    for (i, value) in records.iter().enumerate() {
        let record = RecordIn::deserialize(value)
            .map_err(|e| ApiError::validation(format!("records.{}.member: {e}", i + 1)))
            .and_then(|r| check_model(&r, Place::Record(i)).map(|()| r));
        match record {
            Ok(r) => decoded.push((i, r)),
            Err(e) => rejected.push(Rejected {
                index: i,
                reason: e.message,
                existing_version: None,
            }),
        }
    }
    let refs: Vec<(usize, &RecordIn)> = decoded.iter().map(|(i, r)| (*i, r)).collect();
    write_decoded(svc, db, table, None, &refs, rejected).await
}

/// The checks, versions and commit of decoded records (`(index, record)`, model constraints
/// already checked); `rejected` holds records the caller rejected before. The outcome's
/// rejected records are sorted by index.
async fn write_decoded<'a>(
    svc: &Service,
    db: &str,
    table: &str,
    common: Option<&'a RecordIn<'a>>,
    records: &[(usize, &'a RecordIn<'a>)],
    mut rejected: Vec<Rejected>,
) -> Result<WriteOutcome, ApiError> {
    let engine = &svc.engine;
    let catalog = engine.catalog.snapshot();
    let def = match catalog.table(db, table) {
        Some(d) => d,
        None if catalog.databases.contains_key(db) => return Err(table_not_found(db, table)),
        None => return Err(database_not_found(db)),
    };
    engine.admit()?;
    let rules = table_rules(def, engine.clock.now_nanos());

    let mut prepared: Vec<Prepared> = Vec::with_capacity(records.len());
    for &(i, r) in records {
        match prepare(i, common, r, &rules) {
            Ok(p) => prepared.push(p),
            Err(RecordError::Validation(e)) => return Err(e),
            Err(RecordError::Reject(reason)) => rejected.push(Rejected {
                index: i,
                reason,
                existing_version: None,
            }),
        }
    }
    let new_columns = check_columns(def, &mut prepared, &mut rejected);

    // Versions.
    let (index, capacity) = svc.writes.index(engine, db, table);
    let candidates: Vec<Candidate> = prepared
        .iter()
        .map(|p| Candidate {
            key: (p.series, p.time),
            fingerprint: p.fingerprint,
            version: p.version,
        })
        .collect();
    let (decisions, reservation) = match index.try_decide(&candidates, capacity) {
        Some(d) => d,
        None => {
            let _guard = index.lock_lookups().await;
            let keys = index.keys_to_look_up(&candidates);
            let found = look_up(svc, db, def, &index, &prepared, &keys).await?;
            index.decide_with(&candidates, capacity, &found)
        }
    };

    let mut to_write: Vec<&Prepared> = Vec::with_capacity(prepared.len());
    let mut versions: Vec<(Key, i64)> = Vec::new();
    let (mut memory, mut magnetic) = (0usize, 0usize);
    for (p, decision) in prepared.iter().zip(decisions) {
        match &decision {
            Decision::Reject {
                reason,
                existing_version,
            } => {
                rejected.push(Rejected {
                    index: p.index,
                    reason: reason.clone(),
                    existing_version: Some(*existing_version),
                });
                continue;
            }
            Decision::Write | Decision::VersionOnly if p.version > 1 => {
                versions.push(((p.series, p.time), p.version));
            }
            _ => {}
        }
        if matches!(decision, Decision::Write) {
            to_write.push(p);
        }
        if p.magnetic {
            magnetic += 1;
        } else {
            memory += 1;
        }
    }

    let result = if to_write.is_empty() && versions.is_empty() {
        Ok(())
    } else {
        let batch = match batch::build_batch(&to_write) {
            Ok(b) => Some(b),
            Err(e) => {
                index.roll_back(reservation);
                return Err(e.into());
            }
        };
        let sources = to_write.iter().map(|p| p.index as u32 + 1).collect();
        let columns: Vec<NewColumn> = new_columns
            .into_iter()
            .filter(|c| to_write.iter().any(|p| uses_column(p, c)))
            .collect();
        let engine = svc.engine.clone();
        let index = index.clone();
        let (db, table) = (db.to_string(), table.to_string());
        let now = rules.now;
        let defaults = def.properties;
        tokio::task::spawn_blocking(move || {
            index.versions.append(&versions)?;
            let Some(batch) = batch.filter(|b| b.num_rows() > 0) else {
                return Ok(());
            };
            if !columns.is_empty() {
                engine
                    .catalog
                    .ensure_columns(&db, &table, defaults, &columns, now)?;
            }
            engine.commit(WriteBatch {
                database: db,
                tables: vec![TableWrite {
                    table,
                    batch,
                    sources,
                }],
            })
        })
        .await
        .map_err(|e| hourglass_core::Error::internal(format!("write task failed: {e}")))
        .and_then(|r| r)
    };
    match result {
        Ok(()) => index.confirm(reservation),
        Err(e) => {
            index.roll_back(reservation);
            return Err(e.into());
        }
    }

    rejected.sort_by_key(|r| r.index);
    Ok(WriteOutcome {
        memory,
        magnetic,
        rejected,
    })
}

fn uses_column(p: &Prepared, c: &NewColumn) -> bool {
    match c.role {
        ColumnRole::Dimension => p.dims.iter().any(|(n, _)| *n == c.name),
        _ => p.measures.iter().any(|(n, _)| *n == c.name),
    }
}

/// Checks every record's columns against the table and the records before it; rejects the
/// records that conflict and returns the new columns of the others, in order of appearance.
fn check_columns(
    def: &TableDef,
    prepared: &mut Vec<Prepared>,
    rejected: &mut Vec<Rejected>,
) -> Vec<NewColumn> {
    let existing: HashMap<&str, (ColumnRole, Option<ColumnType>)> = def
        .columns
        .iter()
        .map(|c| (c.name.as_str(), (c.role, c.measure_type)))
        .collect();
    let mut dimensions = def.dimensions().count();
    let mut measure_columns = def.measures().count();
    let mut added: Vec<NewColumn> = Vec::new();
    let mut added_index: HashMap<String, usize> = HashMap::new();
    let mut keep = vec![true; prepared.len()];
    for (slot, p) in prepared.iter().enumerate() {
        let lookup = |name: &str| -> Option<(ColumnRole, Option<ColumnType>)> {
            existing.get(name).copied().or_else(|| {
                added_index
                    .get(name)
                    .map(|&i| (added[i].role, added[i].measure_type))
            })
        };
        let mut reason = None;
        let mut new_dims = Vec::new();
        let mut new_measures = Vec::new();
        for (name, _) in &p.dims {
            match lookup(name) {
                Some((ColumnRole::Dimension, _)) => {}
                Some((_, ty)) => {
                    reason = Some(format!(
                        "'{name}' is a measure of type {} in table {}; it cannot also be a dimension.",
                        ty.map_or("?", |t| t.name()),
                        def.name
                    ));
                    break;
                }
                None => new_dims.push(*name),
            }
        }
        if reason.is_none() {
            for (name, value) in &p.measures {
                let ty = value.column_type();
                match lookup(name) {
                    Some((ColumnRole::Measure, Some(existing))) if existing == ty => {}
                    Some((ColumnRole::Measure, existing)) => {
                        reason = Some(format!(
                            "The measure '{name}' is of type {}, but column '{name}' of table {} has type {}.",
                            ty.name(),
                            def.name,
                            existing.map_or("?", |t| t.name())
                        ));
                        break;
                    }
                    Some(_) => {
                        reason = Some(format!(
                            "'{name}' is a dimension in table {}; it cannot also be a measure of type {}.",
                            def.name,
                            ty.name()
                        ));
                        break;
                    }
                    None => new_measures.push((*name, ty)),
                }
            }
        }
        if reason.is_none() && dimensions + new_dims.len() > record::MAX_DIMENSIONS {
            reason = Some(format!(
                "The record would give table {} more than {} dimensions.",
                def.name,
                record::MAX_DIMENSIONS
            ));
        }
        if reason.is_none() && measure_columns + new_measures.len() > MAX_MEASURE_COLUMNS {
            reason = Some(format!(
                "The record would give table {} more than {MAX_MEASURE_COLUMNS} measures.",
                def.name
            ));
        }
        if let Some(reason) = reason {
            keep[slot] = false;
            rejected.push(Rejected {
                index: p.index,
                reason,
                existing_version: None,
            });
            continue;
        }
        dimensions += new_dims.len();
        measure_columns += new_measures.len();
        for name in new_dims {
            added_index.insert(name.to_string(), added.len());
            added.push(NewColumn {
                name: name.to_string(),
                role: ColumnRole::Dimension,
                measure_type: None,
            });
        }
        for (name, ty) in new_measures {
            added_index.insert(name.to_string(), added.len());
            added.push(NewColumn {
                name: name.to_string(),
                role: ColumnRole::Measure,
                measure_type: Some(ty),
            });
        }
    }
    let mut slot = 0;
    prepared.retain(|_| {
        slot += 1;
        keep[slot - 1]
    });
    added
}

/// Looks the records of `keys` up in storage (both tiers, as queries see them).
async fn look_up(
    svc: &Service,
    db: &str,
    def: &TableDef,
    index: &Arc<RecordIndex>,
    prepared: &[Prepared<'_>],
    keys: &[Key],
) -> Result<Found, ApiError> {
    if keys.is_empty() {
        return Ok(Found::new());
    }
    let wanted: HashSet<Key> = keys.iter().copied().collect();
    let mut measure_names: Vec<&str> = prepared
        .iter()
        .filter(|p| wanted.contains(&(p.series, p.time)))
        .map(|p| p.measure_name)
        .collect();
    measure_names.sort_unstable();
    measure_names.dedup();
    let dimensions: HashSet<String> = def.dimensions().map(|c| c.name.clone()).collect();
    let names = measure_names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");

    // One query per cluster of times (gaps over an hour start a new one).
    let mut times: Vec<i64> = keys.iter().map(|k| k.1).collect();
    times.sort_unstable();
    times.dedup();
    let mut clusters: Vec<(i64, i64)> = Vec::new();
    for t in times {
        match clusters.last_mut() {
            Some((_, hi)) if t - *hi <= 3_600_000_000_000 => *hi = t,
            _ => clusters.push((t, t)),
        }
    }
    let mut found = Found::new();
    for (lo, hi) in clusters {
        let sql = format!(
            "SELECT * FROM \"{}\".\"{}\" WHERE time >= to_timestamp_nanos({lo}) AND time <= to_timestamp_nanos({hi}) AND measure_name IN ({names})",
            db.replace('"', "\"\""),
            def.name.replace('"', "\"\""),
        );
        let batches = svc.query.collect(db, &sql).await?;
        for b in &batches {
            for (key, fp) in index::row_keys(b, &dimensions)? {
                if wanted.contains(&key) {
                    found.insert(key, (fp, 1));
                }
            }
        }
    }
    if !found.is_empty() {
        let present: Vec<Key> = found.keys().copied().collect();
        let index = index.clone();
        let now = svc.engine.clock.now_nanos();
        let min_time = def.properties.magnetic_cutoff(now);
        let versions =
            tokio::task::spawn_blocking(move || index.versions.versions(&present, min_time))
                .await
                .map_err(|e| ApiError::internal(format!("reading versions failed: {e}")))??;
        for (key, version) in versions {
            if let Some(entry) = found.get_mut(&key) {
                entry.1 = version;
            }
        }
    }
    Ok(found)
}
