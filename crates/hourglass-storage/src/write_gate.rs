//! Pausing the writes of one table while a `DELETE` decides and removes what it deletes.
//!
//! Every commit passes the gate for each table it writes: it waits while the table is paused and
//! is counted as in flight until it is durable and applied. A pause waits for the table's commits
//! in flight to finish, so what the `DELETE` reads is every write acknowledged before it, and no
//! write lands between its read and its WAL entry. Writes to other tables never wait.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

type TableKey = (String, String);

/// The gate the engine's commits pass (cloning shares it).
#[derive(Debug, Default, Clone)]
pub struct WriteGate {
    inner: Arc<GateInner>,
}

#[derive(Debug, Default)]
struct GateInner {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    paused: Vec<TableKey>,
    in_flight: HashMap<TableKey, usize>,
}

impl WriteGate {
    /// Waits until none of `tables` of `database` is paused, then counts a commit to them in
    /// flight until the returned pass is dropped. Blocking.
    pub fn enter<'a>(&'a self, database: &str, tables: &[&str]) -> CommitPass<'a> {
        let keys: Vec<TableKey> = tables
            .iter()
            .map(|t| (database.to_string(), t.to_string()))
            .collect();
        let mut state = self.inner.state.lock();
        while keys.iter().any(|k| state.paused.contains(k)) {
            self.inner.changed.wait(&mut state);
        }
        for k in &keys {
            *state.in_flight.entry(k.clone()).or_insert(0) += 1;
        }
        CommitPass { gate: self, keys }
    }

    /// Pauses writes to `database.table` once no other pause holds it and its commits in flight
    /// are done; writes resume when the returned pause is dropped. Blocking.
    pub fn pause(&self, database: &str, table: &str) -> TablePause {
        let key = (database.to_string(), table.to_string());
        let mut state = self.inner.state.lock();
        while state.paused.contains(&key) {
            self.inner.changed.wait(&mut state);
        }
        state.paused.push(key.clone());
        while state.in_flight.get(&key).copied().unwrap_or(0) > 0 {
            self.inner.changed.wait(&mut state);
        }
        TablePause {
            inner: self.inner.clone(),
            key,
        }
    }

    /// Whether `database.table` is paused now (tests).
    pub fn is_paused(&self, database: &str, table: &str) -> bool {
        let key = (database.to_string(), table.to_string());
        self.inner.state.lock().paused.contains(&key)
    }
}

/// A commit in flight (see [`WriteGate::enter`]).
pub struct CommitPass<'a> {
    gate: &'a WriteGate,
    keys: Vec<TableKey>,
}

impl Drop for CommitPass<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.inner.state.lock();
        for k in &self.keys {
            if let Some(n) = state.in_flight.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    state.in_flight.remove(k);
                }
            }
        }
        drop(state);
        self.gate.inner.changed.notify_all();
    }
}

/// Writes to one table paused (see [`WriteGate::pause`]).
pub struct TablePause {
    inner: Arc<GateInner>,
    key: TableKey,
}

impl TablePause {
    pub fn database(&self) -> &str {
        &self.key.0
    }
    pub fn table(&self) -> &str {
        &self.key.1
    }
}

impl Drop for TablePause {
    fn drop(&mut self) {
        let mut state = self.inner.state.lock();
        state.paused.retain(|k| k != &self.key);
        drop(state);
        self.inner.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_pause_waits_for_commits_in_flight_and_holds_later_ones_of_its_table_only() {
        let gate = WriteGate::default();
        let pass = gate.enter("db", &["t"]);
        let paused = Arc::new(AtomicBool::new(false));
        let pauser = {
            let (gate, paused) = (gate.clone(), paused.clone());
            std::thread::spawn(move || {
                let pause = gate.pause("db", "t");
                paused.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                drop(pause);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !paused.load(Ordering::SeqCst),
            "paused with a commit in flight"
        );
        drop(pass);
        while !paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Another table's writes pass at once; this table's wait for the pause to end.
        drop(gate.enter("db", &["other"]));
        let pass = gate.enter("db", &["t"]);
        assert!(!gate.is_paused("db", "t"), "a commit passed a paused table");
        drop(pass);
        pauser.join().unwrap();
    }
}
