//! The last rows of a table's memory chunks, merged in blocks that outlive the query, for
//! latest-value queries.
//!
//! A latest-value query gathers the last rows of every memory chunk it reads
//! ([`crate::last_rows`]). Under steady ingest the memory store holds hundreds of chunks (one per
//! write request), each with a row for every series it touched: under the side-by-side
//! concurrency load (1,000 hosts, 10,000-line requests) a one-host latest value filtered about
//! a thousand batches of a thousand rows and concatenated what passed, 8.5 % of the server's CPU
//! (`perf`). Chunks never change, so the last rows of [`BLOCK_CHUNKS`] chunks are merged once into
//! a *block*, which is kept: a query reads one batch per block and the chunks not yet in one.
//!
//! Merging is exact: a series' newest rows over a block are the newest among its chunks' newest
//! rows, ties all kept ([`crate::last_rows::last_rows_of`]), so merging before or after gives the
//! same rows. A block is read only by a query that reads every one of its chunks; the others take
//! its chunks one by one. A chunk that persist, retention or a `DELETE` removed or replaced (a
//! replacement is a new [`Chunk`] with a new `uid`) ends every block holding it, and the block's
//! remaining chunks are blocked again by later queries. Blocks are dropped when the table's
//! schema changes. The rule `latest_value` switched off skips the latest-value path and this with it.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use hourglass_core::{Error, Result};
use parking_lot::Mutex;

use crate::last_rows::last_rows_of;
use crate::schema::conform;
use crate::table_store::Chunk;

/// Chunks merged into one block.
pub const BLOCK_CHUNKS: usize = 32;

/// The merged last rows of some chunks.
#[derive(Debug)]
struct Block {
    uids: Vec<u64>,
    rows: RecordBatch,
}

/// One table's blocks.
#[derive(Debug, Default)]
pub struct ChunkLastRows {
    blocks: Mutex<Blocks>,
}

#[derive(Debug, Default)]
struct Blocks {
    /// The schema the blocks' rows are conformed to.
    schema: Option<SchemaRef>,
    kept: Vec<Arc<Block>>,
}

impl ChunkLastRows {
    /// The last rows of `chunks` (those a query reads), conformed to `schema`, as few batches:
    /// together they hold the same newest rows per series as the chunks' own last rows. `live`
    /// are all of the table's chunks now (a snapshot's).
    pub fn gather(
        &self,
        chunks: &[&Chunk],
        live: &[Arc<Chunk>],
        schema: &SchemaRef,
    ) -> Result<Vec<RecordBatch>> {
        let wanted: HashSet<u64> = chunks.iter().map(|c| c.uid).collect();
        let blocks = {
            // A chunk newer than `live` (uids only grow) was added after this snapshot, not
            // removed: blocks made by queries of newer snapshots are kept.
            let newest = live.iter().map(|c| c.uid).max();
            let live: HashSet<u64> = live.iter().map(|c| c.uid).collect();
            let removed = |uid: &u64| !live.contains(uid) && newest.is_none_or(|n| *uid <= n);
            let mut blocks = self.blocks.lock();
            if blocks.schema.as_ref() != Some(schema) {
                *blocks = Blocks {
                    schema: Some(schema.clone()),
                    kept: Vec::new(),
                };
            }
            blocks.kept.retain(|b| !b.uids.iter().any(removed));
            blocks.kept.clone()
        };

        let mut out = Vec::new();
        let mut read_in_blocks = HashSet::new();
        let mut in_blocks = HashSet::new();
        for b in &blocks {
            in_blocks.extend(b.uids.iter().copied());
            if b.uids.iter().all(|u| wanted.contains(u)) {
                out.push(b.rows.clone());
                read_in_blocks.extend(b.uids.iter().copied());
            }
        }
        let mut unblocked = Vec::new();
        for c in chunks {
            if read_in_blocks.contains(&c.uid) {
                continue;
            }
            let rows = conform(&c.last_rows()?, schema)?;
            if in_blocks.contains(&c.uid) {
                out.push(rows);
            } else {
                unblocked.push((c.uid, rows));
            }
        }

        let whole = unblocked.len() / BLOCK_CHUNKS * BLOCK_CHUNKS;
        let mut made = Vec::new();
        for group in unblocked[..whole].chunks(BLOCK_CHUNKS) {
            let parts: Vec<RecordBatch> = group.iter().map(|(_, rows)| rows.clone()).collect();
            let all = arrow_select::concat::concat_batches(schema, &parts)
                .map_err(|e| Error::internal(format!("merging chunks' last rows: {e}")))?;
            let rows = last_rows_of(&all)?;
            out.push(rows.clone());
            made.push(Arc::new(Block {
                uids: group.iter().map(|(uid, _)| *uid).collect(),
                rows,
            }));
        }
        out.extend(unblocked.drain(whole..).map(|(_, rows)| rows));

        if !made.is_empty() {
            let mut blocks = self.blocks.lock();
            if blocks.schema.as_ref() == Some(schema) {
                // Another query may have blocked the same chunks meanwhile.
                let taken: HashSet<u64> = blocks
                    .kept
                    .iter()
                    .flat_map(|b| b.uids.iter().copied())
                    .collect();
                for b in made {
                    if b.uids.iter().all(|u| !taken.contains(u)) {
                        blocks.kept.push(b);
                    }
                }
            }
        }
        Ok(out)
    }

    #[cfg(test)]
    fn block_count(&self) -> usize {
        self.blocks.lock().kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use arrow_array::{DictionaryArray, Float64Array, StringArray, TimestampNanosecondArray};
    use arrow_cast::display::array_value_to_string;
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::collections::BTreeSet;

    fn schema() -> SchemaRef {
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("host", dictionary, true),
            Field::new("measure_name", DataType::Utf8, false),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("v", DataType::Float64, true),
        ]))
    }

    /// A chunk of `rows` rows: host `h{i % hosts}` at time `start + i`.
    fn chunk(id: u64, start: i64, rows: usize, hosts: usize) -> Arc<Chunk> {
        let names: Vec<String> = (0..rows).map(|i| format!("h{}", i % hosts)).collect();
        let hosts: DictionaryArray<Int32Type> = names.iter().map(String::as_str).collect();
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(hosts),
                Arc::new(StringArray::from(vec!["cpu"; rows])),
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    (0..rows as i64).map(|i| start + i),
                )),
                Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|i| (id * 1000 + i as u64) as f64),
                )),
            ],
        )
        .unwrap();
        Arc::new(Chunk::for_tests(id, batch))
    }

    /// The rows of `batches` as sorted strings, after reducing them to the newest per series.
    fn newest(batches: &[RecordBatch]) -> BTreeSet<String> {
        let all = arrow_select::concat::concat_batches(&schema(), batches).unwrap();
        let last = last_rows_of(&all).unwrap();
        (0..last.num_rows())
            .map(|row| {
                let values: Vec<String> = last
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, row).unwrap())
                    .collect();
                values.join("|")
            })
            .collect()
    }

    fn naive(chunks: &[&Chunk]) -> BTreeSet<String> {
        let parts: Vec<_> = chunks.iter().map(|c| c.last_rows().unwrap()).collect();
        newest(&parts)
    }

    #[test]
    fn blocks_give_the_chunks_newest_rows_and_end_with_a_replaced_chunk() {
        let s = schema();
        let cache = ChunkLastRows::default();
        // 70 chunks; some series only in early chunks, so old rows still matter.
        let mut live: Vec<Arc<Chunk>> = (0..70)
            .map(|i| chunk(i, i as i64 * 100, 50, if i < 10 { 40 } else { 20 }))
            .collect();
        let all: Vec<&Chunk> = live.iter().map(|c| c.as_ref()).collect();
        let first = cache.gather(&all, &live, &s).unwrap();
        assert_eq!(cache.block_count(), 2, "70 chunks make two blocks of 32");
        assert_eq!(first.len(), 2 + 6);
        assert_eq!(newest(&first), naive(&all));
        // Read again: the blocks are used.
        let again = cache.gather(&all, &live, &s).unwrap();
        assert_eq!(again.len(), 8);
        assert_eq!(newest(&again), naive(&all));

        // A narrower read (a dirty day cut some chunks out): blocks it does not read wholly are
        // read chunk by chunk.
        let narrow: Vec<&Chunk> = live.iter().skip(40).map(|c| c.as_ref()).collect();
        let got = cache.gather(&narrow, &live, &s).unwrap();
        assert_eq!(newest(&got), naive(&narrow));
        assert_eq!(cache.block_count(), 2);

        // A persist replaces chunk 3 by what remains of it: its block ends.
        live[3] = chunk(3, 300, 10, 40);
        let all: Vec<&Chunk> = live.iter().map(|c| c.as_ref()).collect();
        let got = cache.gather(&all, &live, &s).unwrap();
        assert_eq!(newest(&got), naive(&all));
        assert_eq!(
            cache.block_count(),
            2,
            "the first block ended and was made again"
        );

        // A query of an older snapshot (taken before the newest chunks came) keeps the blocks
        // made of them.
        let older = live.clone();
        live.extend((70..110).map(|i| chunk(i, i as i64 * 100, 50, 20)));
        let all: Vec<&Chunk> = live.iter().map(|c| c.as_ref()).collect();
        let got = cache.gather(&all, &live, &s).unwrap();
        assert_eq!(newest(&got), naive(&all));
        assert_eq!(cache.block_count(), 3);
        let older_refs: Vec<&Chunk> = older.iter().map(|c| c.as_ref()).collect();
        let got = cache.gather(&older_refs, &older, &s).unwrap();
        assert_eq!(newest(&got), naive(&older_refs));
        assert_eq!(cache.block_count(), 3);

        // Chunks dropped altogether.
        live.drain(0..5);
        let all: Vec<&Chunk> = live.iter().map(|c| c.as_ref()).collect();
        let got = cache.gather(&all, &live, &s).unwrap();
        assert_eq!(newest(&got), naive(&all));
        assert!(got.len() < all.len());
    }
}
