//! SOURCE arguments → the files to load. A SOURCE is a file, a folder (every Parquet, CSV and
//! line protocol file under it, by name), or an `s3://bucket/prefix` (the same, for objects).
//! A folder or prefix holding a Timestream UNLOAD manifest (`*manifest.json`) is an export: the
//! files its manifest lists, with the types of its metadata file and the values of their Hive
//! partition folders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;

use crate::location::{list_local, list_objects, s3_store, Location};
use crate::options::Format;
use crate::unload::{self, Manifest, Metadata};

/// The kind of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Parquet,
    Csv { gzip: bool },
    LineProtocol { gzip: bool },
}

/// An UNLOAD export a file belongs to.
#[derive(Debug)]
pub struct Export {
    /// The manifest's location, for messages.
    pub manifest_name: String,
    pub manifest: Manifest,
    pub metadata: Metadata,
    /// The table its rows go to.
    pub table: String,
}

/// One file to load.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub location: Location,
    pub size: u64,
    pub kind: Kind,
    /// Hive partition values (`None`: NULL).
    pub partitions: Vec<(String, Option<String>)>,
    pub export: Option<Arc<Export>>,
    /// The table (not for line protocol, whose lines name theirs).
    pub table: String,
    /// Rows the manifest promises, when it does.
    pub expected_rows: Option<u64>,
}

/// The kind of a file from its name (`None`: not a data file).
pub fn kind_of(name: &str, forced: Option<Format>) -> Option<Kind> {
    let lower = name.to_ascii_lowercase();
    let (stem, gzip) = match lower.strip_suffix(".gz") {
        Some(s) => (s.to_string(), true),
        None => (lower.clone(), false),
    };
    if let Some(f) = forced {
        return Some(match f {
            Format::Parquet => Kind::Parquet,
            Format::Csv => Kind::Csv { gzip },
            Format::LineProtocol => Kind::LineProtocol { gzip },
        });
    }
    if !gzip && (stem.ends_with(".parquet") || stem.ends_with(".pq")) {
        return Some(Kind::Parquet);
    }
    if stem.ends_with(".csv") || stem.ends_with(".tsv") {
        return Some(Kind::Csv { gzip });
    }
    if stem.ends_with(".lp")
        || stem.ends_with(".txt")
        || stem.ends_with(".line")
        || stem.ends_with(".influx")
    {
        return Some(Kind::LineProtocol { gzip });
    }
    None
}

/// The table a plain file loads into by default: its name up to the first dot.
fn stem_table(name: &str) -> String {
    name.split('.').next().unwrap_or(name).to_string()
}

fn last_segment(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn is_manifest(name: &str) -> bool {
    name.ends_with("manifest.json")
}

/// What a listing found: (name relative to the root, size, location).
struct Listed {
    entries: Vec<(String, u64, Location)>,
}

impl Listed {
    fn find(&self, rel: &str) -> Option<&(String, u64, Location)> {
        self.entries.iter().find(|e| e.0 == rel)
    }
}

async fn read_location(loc: &Location) -> anyhow::Result<Vec<u8>> {
    match loc {
        Location::Local(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display())),
        Location::Object { store, url, path } => Ok(store
            .get(path)
            .await
            .with_context(|| format!("reading {url}"))?
            .bytes()
            .await
            .with_context(|| format!("reading {url}"))?
            .to_vec()),
    }
}

/// Expands the SOURCE arguments.
pub async fn expand(
    sources: &[String],
    table: Option<&str>,
    forced: Option<Format>,
) -> anyhow::Result<Vec<InputFile>> {
    let mut out = Vec::new();
    for source in sources {
        let (listed, root_name, single) = if source.starts_with("s3://") {
            let (store, bucket, prefix) = s3_store(source)?;
            let objects = list_objects(&store, &prefix).await?;
            let single = objects.len() == 1 && objects[0].0.as_ref() == prefix;
            let entries = objects
                .into_iter()
                .map(|(key, size): (ObjectPath, u64)| {
                    let k = key.as_ref().to_string();
                    let rel = if single {
                        last_segment(&k)
                    } else {
                        k.strip_prefix(&prefix)
                            .unwrap_or(&k)
                            .trim_start_matches('/')
                            .to_string()
                    };
                    let url = format!("s3://{bucket}/{k}");
                    (
                        rel,
                        size,
                        Location::Object {
                            store: store.clone(),
                            url,
                            path: key,
                        },
                    )
                })
                .collect::<Vec<_>>();
            if entries.is_empty() {
                bail!("{source}: no objects under this prefix");
            }
            (Listed { entries }, last_segment(&prefix), single)
        } else {
            let path = PathBuf::from(source);
            let meta =
                std::fs::metadata(&path).with_context(|| format!("{source}: cannot read"))?;
            if meta.is_dir() {
                let entries = list_local(&path)?
                    .into_iter()
                    .map(|(p, size)| {
                        let rel = p
                            .strip_prefix(&path)
                            .unwrap_or(&p)
                            .to_string_lossy()
                            .replace('\\', "/");
                        (rel, size, Location::Local(p))
                    })
                    .collect();
                let name = path
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                (Listed { entries }, name, false)
            } else {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let entries = vec![(name.clone(), meta.len(), Location::Local(path.clone()))];
                let folder = path
                    .parent()
                    .and_then(|p| p.canonicalize().ok())
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                (Listed { entries }, folder, true)
            }
        };

        // An UNLOAD export?
        let manifests: Vec<&(String, u64, Location)> = listed
            .entries
            .iter()
            .filter(|e| is_manifest(&last_segment(&e.0)))
            .collect();
        if !manifests.is_empty() {
            if single && source.starts_with("s3://") {
                bail!("{source}: name the export's folder, not its manifest");
            }
            for m in manifests {
                out.extend(expand_export(m, &listed, &root_name, table, source).await?);
            }
            continue;
        }
        let mut found = 0;
        for (rel, size, loc) in &listed.entries {
            let name = last_segment(rel);
            let Some(kind) = kind_of(&name, forced) else {
                if single {
                    bail!(
                        "{source}: cannot tell the format from the name (.parquet, .csv[.gz], .lp[.gz]): name it with --format"
                    );
                }
                continue;
            };
            found += 1;
            let partitions = unload::partition_values(rel)
                .into_iter()
                .collect::<Vec<_>>();
            out.push(InputFile {
                location: loc.clone(),
                size: *size,
                kind,
                partitions,
                export: None,
                table: table.map_or_else(|| stem_table(&name), str::to_string),
                expected_rows: None,
            });
        }
        if found == 0 {
            bail!("{source}: no Parquet, CSV or line protocol files found");
        }
    }
    Ok(out)
}

async fn expand_export(
    manifest: &(String, u64, Location),
    listed: &Listed,
    root_name: &str,
    table: Option<&str>,
    source: &str,
) -> anyhow::Result<Vec<InputFile>> {
    let (rel, _, loc) = manifest;
    let what = loc.display();
    let m = unload::parse_manifest(&read_location(loc).await?, &what)?;
    // Its metadata file: the same name with `metadata`, else the only one in the folder.
    let folder = rel.rsplit_once('/').map_or("", |(f, _)| f);
    let name = last_segment(rel);
    let meta_name = match name.rfind("manifest.json") {
        Some(i) => format!("{}metadata.json", &name[..i]),
        None => "metadata.json".into(),
    };
    let join = |f: &str, n: &str| {
        if f.is_empty() {
            n.to_string()
        } else {
            format!("{f}/{n}")
        }
    };
    let meta_entry = listed.find(&join(folder, &meta_name)).or_else(|| {
        let candidates: Vec<_> = listed
            .entries
            .iter()
            .filter(|e| {
                e.0.rsplit_once('/').map_or("", |(f, _)| f) == folder
                    && e.0.ends_with("metadata.json")
            })
            .collect();
        (candidates.len() == 1).then(|| candidates[0])
    });
    let meta_entry = meta_entry.ok_or_else(|| {
        anyhow!("{what}: no metadata file ({meta_name}) next to the manifest: its column types are needed")
    })?;
    let metadata = unload::parse_metadata(
        &read_location(&meta_entry.2).await?,
        &meta_entry.2.display(),
    )?;
    let table = match table {
        Some(t) => t.to_string(),
        None => {
            let t = if folder.is_empty() {
                root_name.to_string()
            } else {
                last_segment(folder)
            };
            if t.is_empty() {
                bail!("{source}: cannot name the table from the folder: give --table");
            }
            t
        }
    };
    let export = Arc::new(Export {
        manifest_name: what.clone(),
        manifest: m,
        metadata,
        table: table.clone(),
    });
    let by_rel: HashMap<&str, &(String, u64, Location)> =
        listed.entries.iter().map(|e| (e.0.as_str(), e)).collect();
    let mut out = Vec::new();
    for f in &export.manifest.files {
        let rel = unload::relative_result_path(&f.url).ok_or_else(|| {
            anyhow!(
                "{what}: result file {} is not under a results/ folder",
                f.url
            )
        })?;
        let full = join(folder, &rel);
        let (_, size, location) = by_rel.get(full.as_str()).ok_or_else(|| {
            anyhow!(
                "{what}: result file {} is missing (looked for {full} under {source})",
                f.url
            )
        })?;
        let file_name = last_segment(&rel);
        let kind = match kind_of(&file_name, None) {
            Some(k @ (Kind::Parquet | Kind::Csv { .. })) => k,
            _ => match export.manifest.format.as_deref() {
                Some("PARQUET") => Kind::Parquet,
                Some("CSV") => Kind::Csv {
                    gzip: file_name.ends_with(".gz"),
                },
                _ => bail!("{what}: cannot tell the format of {}", f.url),
            },
        };
        out.push(InputFile {
            location: location.clone(),
            size: *size,
            kind,
            partitions: unload::partition_values(&rel),
            export: Some(export.clone()),
            table: table.clone(),
            expected_rows: f.row_count,
        });
    }
    Ok(out)
}

/// A stable id of a file for the state file.
pub fn file_id(f: &InputFile) -> String {
    match &f.location {
        Location::Local(p) => p
            .canonicalize()
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
        Location::Object { url, .. } => url.clone(),
    }
}

/// Whether a path exists (local sources).
pub fn exists(p: &Path) -> bool {
    p.exists()
}
