//! Group commit: writers hand their encoded batches to one committer thread, which writes every
//! batch waiting at that moment as one WAL entry (one fsync), applies them to the memory store in
//! WAL order, and only then answers each writer. Applying in WAL order makes the memory store after
//! a replay identical to the one before the crash.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use hourglass_core::{Error, Result, WriteBatch};
use hourglass_wal::Wal;

use crate::wal_payload::{encode_group, EncodedBatch};

/// The most bytes one group commit gathers before it writes.
const MAX_GROUP_BYTES: usize = 64 << 20;

pub struct CommitRequest {
    pub encoded: EncodedBatch,
    pub batch: WriteBatch,
    pub reply: SyncSender<Result<()>>,
}

/// Applies a committed batch; called on the committer thread in WAL order.
pub type ApplyFn = dyn Fn(WriteBatch, u64, u64) + Send + Sync;

pub struct Committer {
    sender: parking_lot::Mutex<Option<Sender<CommitRequest>>>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    pub fn start(wal: Arc<Wal>, apply: Arc<ApplyFn>) -> Committer {
        let (tx, rx) = mpsc::channel::<CommitRequest>();
        let thread = std::thread::Builder::new()
            .name("hourglass-commit".into())
            .spawn(move || run(wal, apply, rx))
            .ok();
        Committer {
            sender: parking_lot::Mutex::new(Some(tx)),
            thread: parking_lot::Mutex::new(thread),
        }
    }

    /// Commits a batch durably; returns once it is in the WAL (fsynced) and the memory store.
    pub fn commit(&self, batch: WriteBatch) -> Result<()> {
        let encoded = EncodedBatch::new(&batch)?;
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let sender = self.sender.lock();
            let sender = sender
                .as_ref()
                .ok_or_else(|| Error::unavailable("the server is shutting down"))?;
            sender
                .send(CommitRequest {
                    encoded,
                    batch,
                    reply,
                })
                .map_err(|_| Error::unavailable("the write path has stopped"))?;
        }
        answer
            .recv()
            .map_err(|_| Error::unavailable("the write path has stopped"))?
    }

    /// Stops taking writes and waits until every write already handed over is committed.
    pub fn shutdown(&self) {
        self.sender.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn run(wal: Arc<Wal>, apply: Arc<ApplyFn>, rx: Receiver<CommitRequest>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        let mut bytes = group[0].encoded.encoded_len();
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += next.encoded.encoded_len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let payload = encode_group(&group.iter().map(|r| &r.encoded).collect::<Vec<_>>());
        match wal.append(&payload) {
            Ok((segment, sequence)) => {
                for request in group {
                    apply(request.batch, sequence, segment);
                    let _ = request.reply.send(Ok(()));
                }
            }
            Err(e) => {
                let error = if e.is_disk_full() {
                    Error::unavailable(format!("write-ahead log: disk full: {e}"))
                } else {
                    Error::internal(format!("write-ahead log: {e}"))
                };
                tracing::error!(%error, "WAL append failed; the group's writes are refused");
                for request in group {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
        }
    }
}
