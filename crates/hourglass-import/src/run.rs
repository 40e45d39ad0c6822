//! The import loop: files one after another; in each, a reader thread cuts the file into pieces
//! (Arrow batches or line protocol chunks) and a few pieces are converted and written at once,
//! finished in file order, so the checkpoint recorded after a piece covers only durable rows.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::convert::{convert, Window};
use crate::csv::CsvReader;
use crate::line_protocol::{Chunk, Chunker, CHUNK_BYTES};
use crate::options::{CsvOptions, ImportOptions, TargetSpec};
use crate::parquet::ParquetFile;
use crate::plan::{self, Declared, PlanInputs, Role, SourceColumn, TablePlan};
use crate::progress::Progress;
use crate::rejects::Rejects;
use crate::sources::{self, InputFile, Kind};
use crate::state::{FileState, StateFile};
use crate::target::{self, Target};

/// What an import did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub rows: u64,
    pub rejected: u64,
    pub files: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// The rejects file, when a row was rejected.
    pub rejects_file: Option<std::path::PathBuf>,
    /// The one-line summary.
    pub line: String,
}

/// Runs an import.
pub async fn run(opts: ImportOptions) -> anyhow::Result<Summary> {
    hourglass_core::names::validate_database_name(&opts.database)
        .map_err(|e| anyhow!("--db: {}", e.message))?;
    let files = sources::expand(&opts.sources, opts.table.as_deref(), opts.format).await?;
    let target = Target::open(&opts.target).await?;
    let result = run_files(&opts, &files, &target).await;
    let finished = target.finish().await;
    let mut summary = result?;
    finished?;
    summary.seconds = summary.seconds.max(0.0);
    Ok(summary)
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A text file (gzip or not) as lines, and the count of its raw bytes read.
fn open_text(path: &Path, gzip: bool) -> anyhow::Result<(Box<dyn BufRead + Send>, Arc<AtomicU64>)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let count = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: file,
        count: count.clone(),
    };
    let reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, counting)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, counting))
    };
    Ok((reader, count))
}

/// How the rows of a piece are numbered in messages.
enum Numbering {
    /// Row `i` of the piece is row `base + i` of the file (1-based).
    Offset(u64),
    /// Row `i` starts at line `lines[i]`.
    Lines(Vec<u64>),
}

impl Numbering {
    fn of(&self, i: u64) -> u64 {
        match self {
            Numbering::Offset(base) => base + i,
            Numbering::Lines(lines) => lines.get(i as usize).copied().unwrap_or(0),
        }
    }
}

/// A piece of a file, as the reader thread hands it over.
enum Piece {
    Rows {
        batch: RecordBatch,
        numbering: Numbering,
        /// Rows the reader could not split (CSV field counts): (line, reason).
        bad: Vec<(u64, String)>,
        checkpoint: u64,
        bytes: u64,
        source_bytes: u64,
    },
    Lines {
        chunk: Chunk,
        checkpoint: u64,
        bytes: u64,
        source_bytes: u64,
    },
}

/// A written piece.
struct Written {
    loaded: u64,
    rejects: Vec<(u64, String)>,
    checkpoint: u64,
    bytes: u64,
    source_bytes: u64,
}

struct Context_<'a> {
    opts: &'a ImportOptions,
    target: &'a Target,
    state: StateFile,
    rejects: Rejects,
    progress: Progress,
    data_model: Option<plan::DataModel>,
    scratch: tempfile::TempDir,
}

async fn run_files(
    opts: &ImportOptions,
    files: &[InputFile],
    target: &Target,
) -> anyhow::Result<Summary> {
    let state = StateFile::open(
        &opts.state_path(),
        opts.resume,
        &opts.database,
        &Target::describe(&opts.target),
    )?;
    let data_model = match &opts.data_model {
        Some(p) => Some(plan::parse_data_model(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            &p.display().to_string(),
        )?),
        None => None,
    };
    let total: u64 = files.iter().map(|f| f.size).sum();
    let show_bar = opts
        .progress
        .unwrap_or_else(|| std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let mut cx = Context_ {
        opts,
        target,
        state,
        rejects: Rejects::new(&opts.rejects_path(), opts.resume),
        progress: Progress::new(show_bar, total),
        data_model,
        scratch: tempfile::tempdir().context("creating a scratch directory")?,
    };
    for file in files {
        let id = sources::file_id(file);
        let fs = cx.state.file(&id, file.size);
        if fs.done {
            cx.progress.advance(0, 0, file.size);
            continue;
        }
        let result = import_file(&mut cx, file, &id, fs).await;
        if let Err(e) = result {
            cx.progress.finish();
            let _ = cx.rejects.flush();
            return Err(e.context(format!("importing {}", file.location.display())));
        }
    }
    cx.rejects.flush()?;
    cx.progress.finish();
    let summary = cx.progress.summary(files.len());
    Ok(Summary {
        rows: cx.progress.rows,
        rejected: cx.progress.rejected,
        files: files.len(),
        bytes: cx.progress.bytes,
        seconds: cx.progress.elapsed().as_secs_f64(),
        rejects_file: (cx.rejects.count > 0).then(|| cx.rejects.path().to_path_buf()),
        line: summary,
    })
}

/// The columns a file's plan is made from: its own, then its partition columns.
fn source_columns(
    schema: &arrow::datatypes::Schema,
    file: &InputFile,
    csv_inferred: Option<&[Declared]>,
) -> Vec<SourceColumn> {
    let declared_of = |name: &str| -> Option<Declared> {
        let export = file.export.as_ref()?;
        export
            .metadata
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| plan::declared_from_column_info(&c.scalar_type))
    };
    let mut out: Vec<SourceColumn> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| SourceColumn {
            name: f.name().clone(),
            data_type: f.data_type().clone(),
            declared: declared_of(f.name())
                .or_else(|| csv_inferred.and_then(|d| d.get(i).cloned())),
        })
        .collect();
    for (name, _) in &file.partitions {
        if out.iter().any(|c| &c.name == name) {
            continue;
        }
        out.push(SourceColumn {
            name: name.clone(),
            data_type: hourglass_core::types::dimension_arrow_type(),
            declared: Some(declared_of(name).unwrap_or(Declared::String)),
        });
    }
    out
}

fn plan_inputs(cx: &Context_<'_>, file: &InputFile) -> PlanInputs {
    let o = cx.opts;
    PlanInputs {
        table: file.table.clone(),
        time_column: o.time_column.clone(),
        time_unit: o.time_unit,
        dimensions: o.dimensions.clone(),
        measures: o.measures.as_ref().map(|m| {
            m.iter()
                .filter_map(|s| plan::parse_measure_spec(s).ok())
                .collect()
        }),
        measure_name_column: o.measure_name_column.clone(),
        measure_name: o.measure_name.clone(),
        data_model: cx.data_model.clone(),
        existing: cx.target.existing_table(&o.database, &file.table),
        dictionary_marks_dimensions: file.kind == Kind::Parquet
            && file
                .export
                .as_ref()
                .is_some_and(|e| e.metadata.by_hourglass),
    }
}

/// Infers CSV column types from a first batch: all integers → BIGINT, numbers → DOUBLE,
/// true/false → BOOLEAN, else strings.
fn infer_csv(batch: &RecordBatch) -> Vec<Declared> {
    batch
        .columns()
        .iter()
        .map(|c| {
            let s = c.as_string::<i32>();
            let values: Vec<&str> = s.iter().flatten().map(str::trim).collect();
            if values.is_empty() {
                return Declared::String;
            }
            if values.iter().all(|v| v.parse::<i64>().is_ok()) {
                Declared::Type(hourglass_core::ColumnType::Bigint)
            } else if values.iter().all(|v| v.parse::<f64>().is_ok()) {
                Declared::Type(hourglass_core::ColumnType::Double)
            } else if values
                .iter()
                .all(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"))
            {
                Declared::Type(hourglass_core::ColumnType::Boolean)
            } else {
                Declared::String
            }
        })
        .collect()
}

async fn import_file(
    cx: &mut Context_<'_>,
    file: &InputFile,
    id: &str,
    mut fs: FileState,
) -> anyhow::Result<()> {
    let what = file.location.display();
    let path = file.location.materialize(cx.scratch.path()).await?;
    let batch_rows = cx.opts.batch_rows.max(1);
    let (tx, mut rx) = mpsc::channel::<anyhow::Result<Piece>>(4);
    let mut plan: Option<Arc<TablePlan>> = None;
    let resume_from = fs.rows;
    // Bytes of the source counted so far for this file (resumed files count the skipped part).
    let mut counted: u64 = 0;

    let reader: std::thread::JoinHandle<()> = match file.kind {
        Kind::Parquet => {
            let pf = ParquetFile::open(&path, &what)?;
            let total_rows = pf.rows.max(1);
            let columns = source_columns(&pf.schema(), file, None);
            let p = plan::build(&columns, &plan_inputs(cx, file))
                .with_context(|| format!("{what}: planning the table '{}'", file.table))?;
            let dims: Vec<String> = p
                .columns
                .iter()
                .filter(|c| matches!(c.role, Role::Dimension | Role::MeasureName))
                .map(|c| c.source.clone())
                .collect();
            plan = Some(Arc::new(p));
            let reader = pf.reader(batch_rows, resume_from, &dims, &what)?;
            let size = file.size;
            let mut row = resume_from;
            std::thread::spawn(move || {
                for batch in reader {
                    let piece = batch.map_err(|e| anyhow!("{e}")).map(|batch| {
                        let first = row + 1;
                        row += batch.num_rows() as u64;
                        Piece::Rows {
                            batch,
                            numbering: Numbering::Offset(first),
                            bad: Vec::new(),
                            checkpoint: row,
                            bytes: 0,
                            source_bytes: (size as u128 * row as u128 / total_rows as u128) as u64,
                        }
                    });
                    let stop = piece.is_err();
                    if tx.blocking_send(piece).is_err() || stop {
                        return;
                    }
                }
            })
        }
        Kind::Csv { gzip } => {
            let (input, count) = open_text(&path, gzip)?;
            let mut options: CsvOptions = cx.opts.csv.clone();
            let export_names: Option<Vec<String>> = file.export.as_ref().map(|e| {
                if options.escape.is_none() {
                    options.escape = Some(b'\\');
                }
                e.metadata
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .filter(|n| !file.partitions.iter().any(|(p, _)| p == n))
                    .collect()
            });
            let mut reader = CsvReader::new(input, options.clone());
            // Column names: the export's, or the header.
            let names: Vec<String> = match export_names {
                Some(names) => names,
                None => {
                    if !options.header {
                        bail!("{what}: CSV files need a header line naming the columns");
                    }
                    match reader.next_record()? {
                        Some(_) => reader.record(),
                        None => bail!("{what}: empty file"),
                    }
                }
            };
            // An export's header line (include_header = 'true') is skipped.
            let header_lines = reader.line;
            let names_for_thread = names.clone();
            let skip_to = resume_from.max(header_lines);
            // First batch here, to plan the columns.
            while reader.line < skip_to {
                if reader.next_record()?.is_none() {
                    break;
                }
            }
            let is_export = file.export.is_some();
            let mut first = reader.read_batch(&names, batch_rows)?;
            if is_export && reader_started_with_header(&first, &names) {
                first = drop_first_row(first);
            }
            let inferred = first.as_ref().map(|b| infer_csv(&b.batch));
            let schema = arrow::datatypes::Schema::new(
                names
                    .iter()
                    .map(|n| arrow::datatypes::Field::new(n, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            );
            let columns = source_columns(&schema, file, inferred.as_deref());
            plan = Some(Arc::new(
                plan::build(&columns, &plan_inputs(cx, file))
                    .with_context(|| format!("{what}: planning the table '{}'", file.table))?,
            ));
            std::thread::spawn(move || {
                let mut next = first;
                loop {
                    let Some(b) = next.take() else { return };
                    let piece = Piece::Rows {
                        batch: b.batch,
                        numbering: Numbering::Lines(b.lines),
                        bad: b.bad,
                        checkpoint: reader.line,
                        bytes: reader.bytes,
                        source_bytes: count.load(Ordering::Relaxed),
                    };
                    if tx.blocking_send(Ok(piece)).is_err() {
                        return;
                    }
                    match reader.read_batch(&names_for_thread, batch_rows) {
                        Ok(b) => next = b,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(anyhow!("line {}: {e}", reader.line + 1)));
                            return;
                        }
                    }
                }
            })
        }
        Kind::LineProtocol { gzip } => {
            let (input, count) = open_text(&path, gzip)?;
            let mut chunker = Chunker::new(input, CHUNK_BYTES);
            chunker.skip_lines(resume_from)?;
            std::thread::spawn(move || loop {
                match chunker.next_chunk() {
                    Ok(Some(chunk)) => {
                        let piece = Piece::Lines {
                            chunk,
                            checkpoint: chunker.line,
                            bytes: chunker.bytes,
                            source_bytes: count.load(Ordering::Relaxed),
                        };
                        if tx.blocking_send(Ok(piece)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(anyhow!("line {}: {e}", chunker.line + 1)));
                        return;
                    }
                }
            })
        }
    };

    let in_flight = match &cx.opts.target {
        TargetSpec::DataDir { .. } => 2,
        TargetSpec::Server { concurrency, .. } => (*concurrency).max(1),
    };
    let db = cx.opts.database.clone();
    let window: Option<Window> = cx.target.window(&db, &file.table);
    let partitions = Arc::new(file.partitions.clone());
    let precision = cx.opts.precision;
    let mut pending: VecDeque<JoinHandle<anyhow::Result<Written>>> = VecDeque::new();
    let mut last_save = Instant::now();
    let mut failure: Option<anyhow::Error> = None;

    loop {
        let next = if pending.len() >= in_flight {
            None
        } else {
            match rx.recv().await {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None => {
                    if pending.is_empty() {
                        break;
                    }
                    None
                }
            }
        };
        if let Some(piece) = next {
            let target = cx.target.clone();
            let db = db.clone();
            let plan = plan.clone();
            let partitions = partitions.clone();
            let file_name = what.clone();
            pending.push_back(tokio::spawn(async move {
                write_piece(
                    piece,
                    &target,
                    &db,
                    plan.as_deref(),
                    &partitions,
                    window,
                    precision,
                    &file_name,
                )
                .await
            }));
            continue;
        }
        let Some(front) = pending.pop_front() else {
            continue;
        };
        let written = match front.await {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(e) => {
                failure = Some(anyhow!("write task failed: {e}"));
                break;
            }
        };
        for (row, reason) in &written.rejects {
            cx.rejects.add(&what, *row, reason)?;
        }
        let rejected = written.rejects.len() as u64;
        let delta = written.source_bytes.saturating_sub(counted);
        counted = counted.max(written.source_bytes);
        cx.progress.advance(written.loaded, rejected, delta);
        fs.rows = written.checkpoint;
        fs.bytes = written.bytes;
        fs.loaded += written.loaded;
        fs.rejected += rejected;
        if last_save.elapsed() >= Duration::from_secs(1) {
            cx.rejects.flush()?;
            cx.state.record(id, fs.clone())?;
            last_save = Instant::now();
        }
    }
    drop(rx);
    // Pieces in flight after a failure: wait for them (their rows may be durable) but record
    // nothing past the failure.
    for p in pending {
        let _ = p.await;
    }
    let _ = reader.join();
    if let Some(e) = failure {
        cx.rejects.flush()?;
        cx.state.record(id, fs)?;
        return Err(e);
    }
    cx.progress.advance(0, 0, file.size.saturating_sub(counted));
    if let (Some(expected), true) = (file.expected_rows, resume_from == 0) {
        let seen = fs.loaded + fs.rejected;
        if seen != expected {
            cx.progress.println(&format!(
                "warning: {what}: the manifest lists {expected} rows, the file held {seen}"
            ));
        }
    }
    fs.done = true;
    cx.rejects.flush()?;
    cx.state.record(id, fs)?;
    Ok(())
}

fn reader_started_with_header(first: &Option<crate::csv::CsvBatch>, names: &[String]) -> bool {
    let Some(b) = first else { return false };
    if b.batch.num_rows() == 0 || b.lines.first() != Some(&1) {
        return false;
    }
    b.batch
        .columns()
        .iter()
        .zip(names)
        .all(|(c, n)| c.as_string::<i32>().is_valid(0) && c.as_string::<i32>().value(0) == n)
}

fn drop_first_row(first: Option<crate::csv::CsvBatch>) -> Option<crate::csv::CsvBatch> {
    first.map(|mut b| {
        b.batch = b.batch.slice(1, b.batch.num_rows() - 1);
        b.lines.remove(0);
        b
    })
}

#[allow(clippy::too_many_arguments)]
async fn write_piece(
    piece: Piece,
    target: &Target,
    db: &str,
    plan: Option<&TablePlan>,
    partitions: &[(String, Option<String>)],
    window: Option<Window>,
    precision: hourglass_core::time::Precision,
    file_name: &str,
) -> anyhow::Result<Written> {
    match piece {
        Piece::Rows {
            batch,
            numbering,
            bad,
            checkpoint,
            bytes,
            source_bytes,
        } => {
            let plan = plan.ok_or_else(|| anyhow!("no plan"))?;
            let plan_owned = plan.clone();
            let parts = partitions.to_vec();
            let converted = tokio::task::spawn_blocking(move || {
                convert(&plan_owned, &batch, &parts, window, 0)
            })
            .await
            .map_err(|e| anyhow!("convert task failed: {e}"))?
            .with_context(|| format!("{file_name}: converting rows"))?;
            let mut rejects: Vec<(u64, String)> = bad;
            rejects.extend(
                converted
                    .rejects
                    .into_iter()
                    .map(|r| (numbering.of(r.row as u64), r.reason)),
            );
            let mut loaded = 0;
            if let Some(w) = converted.write {
                let rows = w.batch.num_rows() as u64;
                let refused = target::write_table(target, db, w).await?;
                loaded = rows - refused.len() as u64;
                rejects.extend(refused.into_iter().map(|(i, r)| (numbering.of(i), r)));
            }
            rejects.sort_by_key(|r| r.0);
            Ok(Written {
                loaded,
                rejects,
                checkpoint,
                bytes,
                source_bytes,
            })
        }
        Piece::Lines {
            chunk,
            checkpoint,
            bytes,
            source_bytes,
        } => {
            let first_line = chunk.first_line;
            // Blank and comment lines are neither rows nor rejects.
            let rows = chunk
                .body
                .split(|&b| b == b'\n')
                .filter(|l| {
                    let l = l.trim_ascii_start();
                    !l.is_empty() && l[0] != b'#'
                })
                .count() as u64;
            let refused = target::write_lines(target, db, chunk.body, precision).await?;
            let rejects: Vec<(u64, String)> = refused
                .into_iter()
                .map(|(l, r)| (first_line + l.saturating_sub(1), r))
                .collect();
            Ok(Written {
                loaded: rows.saturating_sub(rejects.len() as u64),
                rejects,
                checkpoint,
                bytes,
                source_bytes,
            })
        }
    }
}
