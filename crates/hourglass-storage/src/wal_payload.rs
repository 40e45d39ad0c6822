//! The payload of a WAL entry: a group of write batches committed together, or a row deletion.
//!
//! The WAL itself frames opaque bytes (see `hourglass-wal`); this module defines what the engine
//! puts in them: the write batches of one group commit, each table's rows as an Arrow IPC stream;
//! or the keys of the records one `DELETE` removed ([`crate::delete`]). Replay decodes them and
//! applies them through the same paths as live writes and deletes.
//! Format: `docs/format/wal.md` (payload section).

use std::io::Cursor;

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use hourglass_core::{Error, Result, TableWrite, WriteBatch};

const KIND_WRITE_GROUP: u8 = 1;
const KIND_DELETE: u8 = 2;

/// What one WAL entry holds.
#[derive(Debug)]
pub enum WalRecord {
    /// The write batches of one group commit, in commit order.
    Writes(Vec<WriteBatch>),
    /// Records of one table deleted: `keys` holds their key columns (series columns and `time`).
    Delete {
        database: String,
        table: String,
        keys: Vec<arrow_array::RecordBatch>,
    },
}

/// Encodes a deletion: the keys of the records removed from `database.table`.
pub fn encode_delete(
    database: &str,
    table: &str,
    keys: &arrow_array::RecordBatch,
) -> Result<Vec<u8>> {
    let ipc = encode_table(&TableWrite {
        table: table.to_string(),
        batch: keys.clone(),
        sources: Vec::new(),
    })?;
    let mut out = Vec::with_capacity(1 + 8 + database.len() + table.len() + 8 + ipc.len());
    out.push(KIND_DELETE);
    put_str(&mut out, database);
    put_str(&mut out, table);
    out.extend_from_slice(&(ipc.len() as u64).to_le_bytes());
    out.extend_from_slice(&ipc);
    Ok(out)
}

/// Decodes any WAL payload: a write group or a deletion.
pub fn decode_record(payload: &[u8]) -> Result<WalRecord> {
    if payload.first() != Some(&KIND_DELETE) {
        return decode_group(payload).map(WalRecord::Writes);
    }
    let mut r = Reader {
        buf: payload,
        pos: 1,
    };
    let database = r.string()?;
    let table = r.string()?;
    let len = r.u64()?;
    let ipc = r.bytes(usize::try_from(len).map_err(|_| bad("keys length"))?)?;
    let keys = decode_ipc(ipc, &table)?;
    if r.pos != payload.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(WalRecord::Delete {
        database,
        table,
        keys,
    })
}

/// Encodes one table's rows as an Arrow IPC stream.
pub fn encode_table(write: &TableWrite) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(write.batch.get_array_memory_size() / 2 + 256);
    let mut writer =
        StreamWriter::try_new(&mut out, &write.batch.schema()).map_err(|e| internal(&e))?;
    writer.write(&write.batch).map_err(|e| internal(&e))?;
    writer.finish().map_err(|e| internal(&e))?;
    drop(writer);
    Ok(out)
}

/// A write batch whose tables are already IPC-encoded (done by the writer's own thread so the
/// committer only concatenates).
pub struct EncodedBatch {
    pub database: String,
    pub tables: Vec<(String, Vec<u8>)>,
}

impl EncodedBatch {
    pub fn new(batch: &WriteBatch) -> Result<EncodedBatch> {
        Ok(EncodedBatch {
            database: batch.database.clone(),
            tables: batch
                .tables
                .iter()
                .map(|t| Ok((t.table.clone(), encode_table(t)?)))
                .collect::<Result<_>>()?,
        })
    }
    pub fn encoded_len(&self) -> usize {
        8 + self.database.len()
            + self
                .tables
                .iter()
                .map(|(n, b)| 12 + n.len() + b.len())
                .sum::<usize>()
    }
}

/// Concatenates a group of encoded batches into one WAL payload.
pub fn encode_group(group: &[&EncodedBatch]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + group.iter().map(|b| b.encoded_len()).sum::<usize>());
    out.push(KIND_WRITE_GROUP);
    out.extend_from_slice(&(group.len() as u32).to_le_bytes());
    for batch in group {
        put_str(&mut out, &batch.database);
        out.extend_from_slice(&(batch.tables.len() as u32).to_le_bytes());
        for (name, ipc) in &batch.tables {
            put_str(&mut out, name);
            out.extend_from_slice(&(ipc.len() as u64).to_le_bytes());
            out.extend_from_slice(ipc);
        }
    }
    out
}

/// Decodes one table's Arrow IPC stream. The arrow-ipc reader panics on some malformed streams
/// (found by the `wal_segment` fuzz target: an `unwrap` in its schema conversion); a panic is
/// turned into a corruption error here, so a damaged entry that passed its CRC refuses the
/// replay with a message instead of aborting the process.
fn decode_ipc(ipc: &[u8], table: &str) -> Result<Vec<arrow_array::RecordBatch>> {
    let corrupt = |e: &dyn std::fmt::Display| {
        Error::corruption(format!("WAL payload for table '{table}': {e}"))
    };
    check_ipc_framing(ipc).map_err(|e| corrupt(&e))?;
    let decoded = std::panic::catch_unwind(|| {
        StreamReader::try_new(Cursor::new(ipc), None)?.collect::<std::result::Result<Vec<_>, _>>()
    });
    match decoded {
        Ok(Ok(batches)) => Ok(batches),
        Ok(Err(e)) => Err(corrupt(&e)),
        Err(_) => Err(corrupt(&"the Arrow IPC stream is malformed")),
    }
}

/// Checks the framing of an Arrow IPC stream before arrow-ipc reads it: every message's
/// metadata must parse and its declared body must fit in the bytes that follow. arrow-ipc
/// allocates the declared body length up front (found by the `wal_segment` fuzz target: a
/// 256 TiB allocation, which aborts the process).
fn check_ipc_framing(ipc: &[u8]) -> std::result::Result<(), String> {
    let read_i32 = |at: usize| -> std::result::Result<i32, String> {
        ipc.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_le_bytes)
            .ok_or_else(|| format!("IPC message header cut off at byte {at}"))
    };
    let mut pos = 0usize;
    while pos < ipc.len() {
        let mut len = read_i32(pos)?;
        pos += 4;
        if len == -1 {
            len = read_i32(pos)?;
            pos += 4;
        }
        if len == 0 {
            return Ok(()); // end of stream
        }
        let len =
            usize::try_from(len).map_err(|_| format!("negative IPC metadata length {len}"))?;
        let metadata = ipc
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| format!("IPC metadata of {len} bytes at byte {pos} is cut off"))?;
        let message = arrow_ipc::root_as_message(metadata)
            .map_err(|e| format!("IPC message at byte {pos} is malformed: {e}"))?;
        pos += len;
        let body = usize::try_from(message.bodyLength())
            .map_err(|_| format!("negative IPC body length at byte {pos}"))?;
        if body > ipc.len() - pos {
            return Err(format!(
                "IPC message body of {body} bytes at byte {pos} extends past the {} bytes of the stream",
                ipc.len()
            ));
        }
        pos += body;
    }
    Ok(())
}

/// Decodes a WAL payload back into write batches.
pub fn decode_group(payload: &[u8]) -> Result<Vec<WriteBatch>> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let kind = r.u8()?;
    if kind != KIND_WRITE_GROUP {
        return Err(Error::corruption(format!(
            "unknown WAL payload kind {kind}"
        )));
    }
    let count = r.u32()?;
    let mut batches = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let database = r.string()?;
        let tables = r.u32()?;
        let mut batch = WriteBatch {
            database,
            tables: Vec::with_capacity(tables.min(4096) as usize),
        };
        for _ in 0..tables {
            let table = r.string()?;
            let len = r.u64()?;
            let ipc = r.bytes(usize::try_from(len).map_err(|_| bad("table length"))?)?;
            for rb in decode_ipc(ipc, &table)? {
                batch.tables.push(TableWrite {
                    table: table.clone(),
                    sources: Vec::new(),
                    batch: rb,
                });
            }
        }
        batches.push(batch);
    }
    if r.pos != payload.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(batches)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| bad("length"))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| bad("truncated"))?;
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| bad("name is not UTF-8"))
    }
}

fn bad(what: &str) -> Error {
    Error::corruption(format!("malformed WAL payload: {what}"))
}

fn internal(e: &arrow_schema::ArrowError) -> Error {
    Error::internal(format!("encoding WAL payload: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `wal_segment` fuzz target: an Arrow IPC stream on which arrow-ipc's reader
    /// panics. Decoding it is a corruption error, not a crash of the replay.
    #[test]
    fn malformed_ipc_stream_is_a_corruption_error() {
        let payload = include_bytes!("testdata/wal_payload_ipc_panic.bin");
        let e = decode_group(payload).expect_err("malformed payload decoded");
        assert_eq!(e.kind, hourglass_core::ErrorKind::Corruption, "{e}");
        assert!(e.message.contains("WAL payload for table"), "{e}");
    }

    /// Found by the `wal_segment` fuzz target: an IPC message declaring a 256 TiB body, which
    /// arrow-ipc would allocate (aborting the process).
    #[test]
    fn ipc_body_longer_than_the_stream_is_a_corruption_error() {
        let payload = include_bytes!("testdata/wal_payload_ipc_huge_body.bin");
        let e = decode_group(payload).expect_err("malformed payload decoded");
        assert_eq!(e.kind, hourglass_core::ErrorKind::Corruption, "{e}");
    }

    #[test]
    fn real_payloads_still_decode() {
        use arrow_array::{Int64Array, RecordBatch};
        let batch = RecordBatch::try_from_iter([(
            "v",
            std::sync::Arc::new(Int64Array::from(vec![1, 2, 3])) as arrow_array::ArrayRef,
        )])
        .unwrap();
        let write = WriteBatch {
            database: "db".into(),
            tables: vec![TableWrite {
                table: "t".into(),
                sources: vec![1, 2, 3],
                batch: batch.clone(),
            }],
        };
        let encoded = EncodedBatch::new(&write).unwrap();
        let decoded = decode_group(&encode_group(&[&encoded])).unwrap();
        assert_eq!(decoded[0].tables[0].batch, batch);
    }

    #[test]
    fn deletions_round_trip_and_truncations_are_errors() {
        use arrow_array::{ArrayRef, StringArray, TimestampNanosecondArray};
        let keys = arrow_array::RecordBatch::try_from_iter(vec![
            (
                "host",
                std::sync::Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            (
                "time",
                std::sync::Arc::new(TimestampNanosecondArray::from(vec![1, 2])) as ArrayRef,
            ),
        ])
        .unwrap();
        let payload = encode_delete("db", "t", &keys).unwrap();
        match decode_record(&payload).unwrap() {
            WalRecord::Delete {
                database,
                table,
                keys: decoded,
            } => {
                assert_eq!((database.as_str(), table.as_str()), ("db", "t"));
                assert_eq!(decoded, vec![keys]);
            }
            other => panic!("decoded as {other:?}"),
        }
        for len in 1..payload.len() {
            assert!(decode_record(&payload[..len]).is_err(), "cut at {len}");
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert!(decode_record(&longer).is_err());
    }

    #[test]
    fn truncated_payloads_are_errors() {
        let payload = include_bytes!("testdata/wal_payload_ipc_panic.bin");
        for len in [0, 1, 5, 9, 17, 100, payload.len() - 1] {
            assert!(
                decode_group(&payload[..len]).is_err(),
                "{len} bytes decoded"
            );
        }
    }
}
