//! Memory-store chunks held in buffers of their own size.
//!
//! Arrow's builders double their buffers as rows arrive, and a finished array keeps the whole
//! allocation: a 10,000-line TSBS write request was 1.33 MB of data held in 2.20 MB (220 bytes per
//! row instead of 133; the `Int64` columns of 80,000 bytes each in 131,072). A chunk also keeps
//! the whole of the buffers it was sliced from (a chunk that a persist or `DELETE` cut down).
//! Both count against the memory-store budget, which then holds 40 % fewer rows than it could,
//! and the persist (which starts at a fixed number of bytes) writes smaller files more often.
//! Under the side-by-side benchmark's mixed load the store filled and refused writes.
//!
//! [`exact`] copies any buffer that holds more than an eighth more than its data (and at least
//! [`MIN_SLACK_BYTES`]) into one of the data's size: one `memcpy` of the rows on their way into
//! the memory store, against a line-protocol parse that costs far more per row.

use arrow_array::{make_array, Array, ArrayRef, RecordBatch};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow_data::ArrayData;
use hourglass_core::WriteBatch;

/// Slack below this many bytes is kept (a copy would not be worth it).
pub const MIN_SLACK_BYTES: usize = 4096;

/// `batch` with every column's buffers at most an eighth larger than their data. Returns the batch
/// itself when nothing needs copying.
pub fn exact(batch: RecordBatch) -> RecordBatch {
    let mut copied = false;
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            if has_slack(&data) {
                copied = true;
                make_array(exact_data(data))
            } else {
                c.clone()
            }
        })
        .collect();
    if !copied {
        return batch;
    }
    // Same schema, same lengths: the columns are copies of the ones the batch was built from.
    RecordBatch::try_new(batch.schema(), columns).unwrap_or(batch)
}

/// Every table's batch of `write` through [`exact`]: once per write on its way into the memory
/// store, by [`crate::Engine::commit`] (on the writer's thread) and by WAL replay, whose
/// IPC-decoded columns are slices of their message's body.
pub fn exact_write(mut write: WriteBatch) -> WriteBatch {
    write.tables = std::mem::take(&mut write.tables)
        .into_iter()
        .map(|mut t| {
            t.batch = exact(t.batch);
            t
        })
        .collect();
    write
}

fn slack(buffer: &Buffer) -> bool {
    let extra = buffer.capacity().saturating_sub(buffer.len());
    extra >= MIN_SLACK_BYTES && extra > buffer.len() / 8
}

fn has_slack(data: &ArrayData) -> bool {
    data.buffers().iter().any(slack)
        || data.nulls().is_some_and(|n| slack(n.inner().inner()))
        || data.child_data().iter().any(has_slack)
}

fn copy_if_slack(buffer: &Buffer) -> Buffer {
    if slack(buffer) {
        Buffer::from_slice_ref(buffer.as_slice())
    } else {
        buffer.clone()
    }
}

fn exact_data(data: ArrayData) -> ArrayData {
    let buffers: Vec<Buffer> = data.buffers().iter().map(copy_if_slack).collect();
    let children: Vec<ArrayData> = data.child_data().iter().cloned().map(exact_data).collect();
    let nulls = data.nulls().map(|n| {
        let bits = n.inner();
        NullBuffer::new(BooleanBuffer::new(
            copy_if_slack(bits.inner()),
            bits.offset(),
            bits.len(),
        ))
    });
    let fallback = data.clone();
    data.into_builder()
        .buffers(buffers)
        .child_data(children)
        .nulls(nulls)
        .build()
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{Int64Builder, StringDictionaryBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn built(rows: usize) -> RecordBatch {
        let mut values = Int64Builder::new();
        let mut tags = StringDictionaryBuilder::<Int32Type>::new();
        for i in 0..rows {
            if i % 7 == 0 {
                values.append_null();
            } else {
                values.append_value(i as i64 * 3);
            }
            tags.append_value(format!("host_{}", i % 1000));
        }
        let schema = Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new(
                "host",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(values.finish()), Arc::new(tags.finish())],
        )
        .unwrap()
    }

    #[test]
    fn grown_buffers_are_copied_to_their_size_with_the_same_rows() {
        let batch = built(10_000);
        let before = batch.get_array_memory_size();
        let after = exact(batch.clone());
        assert_eq!(after, batch, "the same rows, nulls and dictionary");
        let size = after.get_array_memory_size();
        // 10,000 values of 8 bytes grown to 131,072 bytes; keys likewise.
        assert!(size * 10 < before * 7, "{before} -> {size} bytes");
        for c in after.columns() {
            assert!(!has_slack(&c.to_data()), "{:?}", c.data_type());
        }
    }

    #[test]
    fn a_slice_stops_holding_the_rest_of_its_buffer() {
        let batch = built(100_000);
        let tail = batch.slice(90_000, 10_000);
        let copied = exact(tail.clone());
        assert_eq!(copied, tail);
        assert!(copied.get_array_memory_size() * 5 < tail.get_array_memory_size());
        let first: &Int64Array = copied.column(0).as_any().downcast_ref().unwrap();
        assert_eq!(first.value(1), 90_001 * 3);
    }

    /// WAL replay decodes Arrow IPC: every column is a slice of its message's body, and each
    /// counted the whole body.
    #[test]
    fn a_batch_decoded_from_ipc_is_held_in_its_own_size() {
        let batch = exact(built(10_000));
        let mut ipc = Vec::new();
        let mut writer =
            arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &batch.schema()).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        let decoded = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let copied = exact(decoded.clone());
        assert_eq!(copied, batch);
        let (before, after) = (
            decoded.get_array_memory_size(),
            copied.get_array_memory_size(),
        );
        assert!(after * 3 / 2 < before, "{before} -> {after} bytes");
        assert!(
            after <= batch.get_array_memory_size() * 9 / 8,
            "{after} bytes"
        );
    }

    #[test]
    fn a_batch_without_slack_is_returned_as_it_is() {
        let batch = exact(built(10_000));
        let again = exact(batch.clone());
        assert!(Arc::ptr_eq(batch.column(0), again.column(0)));
        assert!(Arc::ptr_eq(batch.column(1), again.column(1)));
    }
}
