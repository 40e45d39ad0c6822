//! Progress: an indicatif bar (bytes of the sources, rows, rate, ETA) on stderr when it is a
//! terminal, nothing while running otherwise; and the one summary line printed at the end.

use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters and the bar.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    pub rows: u64,
    pub rejected: u64,
    pub bytes: u64,
    pub total_bytes: u64,
    last_message: Instant,
}

impl Progress {
    pub fn new(show_bar: bool, total_bytes: u64) -> Self {
        let bar = show_bar.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total_bytes),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({binary_bytes_per_sec}) {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            rows: 0,
            rejected: 0,
            bytes: 0,
            total_bytes,
            last_message: Instant::now() - Duration::from_secs(1),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed().as_secs_f64().max(1e-9)
    }

    /// Adds rows, rejects and source bytes done.
    pub fn advance(&mut self, rows: u64, rejected: u64, bytes: u64) {
        self.rows += rows;
        self.rejected += rejected;
        self.bytes += bytes;
        if let Some(bar) = &self.bar {
            bar.set_position(self.bytes.min(self.total_bytes));
            if self.last_message.elapsed() >= Duration::from_millis(100) {
                self.last_message = Instant::now();
                bar.set_message(format!(
                    "{} rows, {} rows/s, {} rejected",
                    HumanCount(self.rows),
                    HumanCount(self.rate() as u64),
                    HumanCount(self.rejected)
                ));
            }
        }
    }

    /// Shows a line above the bar (or on stderr).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// `imported 10000000 rows (0 rejected) from 1 file, 1.2 GB read in 8.1 s: 1234567 rows/s`.
    pub fn summary(&self, files: usize) -> String {
        let secs = self.elapsed().as_secs_f64();
        format!(
            "imported {} rows ({} rejected) from {files} file{}, {} bytes read in {secs:.2} s: {:.0} rows/s",
            self.rows,
            self.rejected,
            if files == 1 { "" } else { "s" },
            self.bytes,
            self.rows as f64 / secs.max(1e-9)
        )
    }
}
