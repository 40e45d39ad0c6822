//! The durable store of batch load tasks: one file per task, `<data-dir>/batch_load/<TaskId>.json`,
//! replaced atomically at every change (write `<TaskId>.json.tmp`, fsync, rename, fsync the
//! directory). Format: `docs/format/batch-load.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::task::Task;

/// The directory of the task files, in the data directory.
pub const DIR_NAME: &str = "batch_load";
/// The version of the files' layout.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct FileOut<'a> {
    format_version: u32,
    #[serde(flatten)]
    task: &'a Task,
}

#[derive(Deserialize)]
struct FileIn {
    format_version: u32,
    #[serde(flatten)]
    task: Task,
}

/// Every task, in memory and on disk.
pub struct Store {
    /// `None`: in memory only (tests).
    dir: Option<PathBuf>,
    tasks: Mutex<BTreeMap<String, Task>>,
}

impl Store {
    /// Opens (creating) `<data_dir>/batch_load` and reads every task file.
    pub fn open(data_dir: &Path) -> Result<Store, String> {
        let dir = data_dir.join(DIR_NAME);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut tasks = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".json.tmp") {
                // An update stopped before its rename: the file it was replacing is whole.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let file: FileIn = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a batch load task file: {e}", path.display()))?;
            if file.format_version > FORMAT_VERSION {
                return Err(format!(
                    "{}: format version {} is newer than this server's {FORMAT_VERSION}",
                    path.display(),
                    file.format_version
                ));
            }
            tasks.insert(file.task.task_id.clone(), file.task);
        }
        Ok(Store {
            dir: Some(dir),
            tasks: Mutex::new(tasks),
        })
    }

    /// A store that keeps nothing on disk.
    pub fn in_memory() -> Store {
        Store {
            dir: None,
            tasks: Mutex::new(BTreeMap::new()),
        }
    }

    /// A copy of one task.
    pub fn get(&self, id: &str) -> Option<Task> {
        self.tasks.lock().get(id).cloned()
    }

    /// Copies of every task, by id.
    pub fn all(&self) -> Vec<Task> {
        self.tasks.lock().values().cloned().collect()
    }

    /// Stores `task` (durably before it returns `Ok`).
    pub fn put(&self, task: Task) -> Result<(), String> {
        self.write(&task)?;
        self.tasks.lock().insert(task.task_id.clone(), task);
        Ok(())
    }

    /// Changes one task with `f` under the store's lock and writes it; `f`'s answer is returned
    /// (`None`: no such task).
    pub fn update<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Task) -> Result<R, String>,
    ) -> Result<Option<R>, String> {
        let mut tasks = self.tasks.lock();
        let Some(task) = tasks.get(id) else {
            return Ok(None);
        };
        let mut changed = task.clone();
        let out = f(&mut changed)?;
        self.write(&changed)?;
        tasks.insert(id.to_string(), changed);
        Ok(Some(out))
    }

    fn write(&self, task: &Task) -> Result<(), String> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(&FileOut {
            format_version: FORMAT_VERSION,
            task,
        })
        .map_err(|e| e.to_string())?;
        let path = dir.join(format!("{}.json", task.task_id));
        let tmp = dir.join(format!("{}.json.tmp", task.task_id));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Checkpoint, Status};
    use serde_json::json;

    pub(crate) fn task(id: &str) -> Task {
        Task {
            task_id: id.into(),
            owner: "-".into(),
            client_token: None,
            database: "db".into(),
            table: "t".into(),
            record_version: None,
            data_source_configuration: json!({"DataFormat": "CSV"}),
            data_model_configuration: None,
            report_configuration: json!({}),
            data_model: json!({}),
            status: Status::Created,
            progress: Default::default(),
            creation_time: 1,
            last_updated_time: 1,
            resumable_until: None,
            error_message: None,
            files: None,
            checkpoint: Checkpoint::default(),
            errors: Default::default(),
            report_key: None,
        }
    }

    #[test]
    fn tasks_survive_reopening_and_leftover_temporaries_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put(task("AAA1")).unwrap();
        store
            .update("AAA1", |t| {
                t.status = Status::InProgress;
                t.checkpoint = Checkpoint {
                    file: 1,
                    offset: 40,
                    line: 3,
                };
                Ok(())
            })
            .unwrap()
            .unwrap();
        assert!(store.update("NOPE", |_| Ok(())).unwrap().is_none());
        std::fs::write(dir.path().join(DIR_NAME).join("BBB2.json.tmp"), b"{").unwrap();
        let again = Store::open(dir.path()).unwrap();
        let t = again.get("AAA1").unwrap();
        assert_eq!(t.status, Status::InProgress);
        assert_eq!(
            t.checkpoint,
            Checkpoint {
                file: 1,
                offset: 40,
                line: 3
            }
        );
        assert_eq!(again.all().len(), 1);
        assert!(!dir.path().join(DIR_NAME).join("BBB2.json.tmp").exists());
        let text = std::fs::read_to_string(dir.path().join(DIR_NAME).join("AAA1.json")).unwrap();
        assert!(text.contains("\"format_version\": 1"), "{text}");
    }

    #[test]
    fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put(task("AAA1")).unwrap();
        let path = dir.path().join(DIR_NAME).join("AAA1.json");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"format_version\": 1", "\"format_version\": 9");
        std::fs::write(&path, text).unwrap();
        assert!(Store::open(dir.path()).err().unwrap().contains("newer"));
    }
}
