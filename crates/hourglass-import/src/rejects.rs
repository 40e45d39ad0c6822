//! The rejects file: one CSV row per rejected row, `file,row,reason` (`row` is the line of a CSV
//! or line protocol file, the 1-based row of a Parquet file). Created only when a row is
//! rejected, appended to by a resumed run.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes rejects as they come.
pub struct Rejects {
    path: PathBuf,
    append: bool,
    out: Option<BufWriter<File>>,
    pub count: u64,
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Rejects {
    /// `append`: keep the rows of an earlier (resumed) run.
    pub fn new(path: &Path, append: bool) -> Self {
        Rejects {
            path: path.to_path_buf(),
            append,
            out: None,
            count: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn add(&mut self, file: &str, row: u64, reason: &str) -> anyhow::Result<()> {
        if self.out.is_none() {
            let exists = self.append && self.path.exists();
            let f = OpenOptions::new()
                .create(true)
                .write(true)
                .append(self.append)
                .truncate(!self.append)
                .open(&self.path)
                .with_context(|| format!("creating the rejects file {}", self.path.display()))?;
            let mut w = BufWriter::new(f);
            if !exists {
                writeln!(w, "file,row,reason")?;
            }
            self.out = Some(w);
        }
        if let Some(w) = self.out.as_mut() {
            writeln!(w, "{},{row},{}", quote(file), quote(reason))?;
        }
        self.count += 1;
        Ok(())
    }

    /// Flushes to disk (before a checkpoint is recorded).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(w) = self.out.as_mut() {
            w.flush()?;
            w.get_ref().sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_only_on_the_first_reject_and_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut r = Rejects::new(&path, false);
        r.flush().unwrap();
        assert!(!path.exists());
        r.add("a.csv", 3, "column 'v': cannot read 'x,y' as DOUBLE")
            .unwrap();
        r.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "file,row,reason\na.csv,3,\"column 'v': cannot read 'x,y' as DOUBLE\"\n"
        );
    }
}
