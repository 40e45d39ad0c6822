//! Timestream UNLOAD exports: the manifest (`result_files[].url`, `row_count`), the metadata file
//! (`ColumnInfo`), and Hive partition folders (`col=value/`) turned back into values.
//! Layout: `docs/format/unload.md`.

use anyhow::{anyhow, Context};
use serde_json::Value;

/// One data file the manifest lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultFile {
    pub url: String,
    pub row_count: Option<u64>,
}

/// A parsed `*_manifest.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub files: Vec<ResultFile>,
    pub total_row_count: Option<u64>,
    /// `CSV` or `PARQUET`.
    pub format: Option<String>,
}

pub fn parse_manifest(bytes: &[u8], what: &str) -> anyhow::Result<Manifest> {
    let v: Value = serde_json::from_slice(bytes).with_context(|| format!("{what}: not JSON"))?;
    let files = v
        .get("result_files")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{what}: no result_files array"))?
        .iter()
        .map(|f| {
            let url = f
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{what}: a result file without url"))?;
            Ok(ResultFile {
                url: url.to_string(),
                row_count: f
                    .pointer("/file_metadata/row_count")
                    .and_then(Value::as_u64),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Manifest {
        files,
        total_row_count: v
            .pointer("/query_metadata/total_row_count")
            .and_then(Value::as_u64),
        format: v
            .pointer("/query_metadata/result_format")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// A column of the metadata file's `ColumnInfo`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    /// The scalar type (`VARCHAR`, `BIGINT`, …) or the kind of a non-scalar type.
    pub scalar_type: String,
}

/// A parsed `*_metadata.json`: the columns, and whether Hourglass wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub columns: Vec<ColumnInfo>,
    pub by_hourglass: bool,
}

pub fn parse_metadata(bytes: &[u8], what: &str) -> anyhow::Result<Metadata> {
    let v: Value = serde_json::from_slice(bytes).with_context(|| format!("{what}: not JSON"))?;
    let columns = v
        .get("ColumnInfo")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{what}: no ColumnInfo array"))?
        .iter()
        .map(|c| {
            let name = c
                .get("Name")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{what}: a column without Name"))?;
            let ty = c.get("Type").cloned().unwrap_or(Value::Null);
            let scalar_type = match ty.get("ScalarType").and_then(Value::as_str) {
                Some(s) => s.to_ascii_uppercase(),
                None => ty
                    .as_object()
                    .and_then(|o| o.keys().next().cloned())
                    .unwrap_or_else(|| "UNKNOWN".into()),
            };
            Ok(ColumnInfo {
                name: name.to_string(),
                scalar_type,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let by_hourglass = v
        .pointer("/Author/Name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case("hourglass"));
    Ok(Metadata {
        columns,
        by_hourglass,
    })
}

/// The path of a result file relative to the export folder (`results/col=v/…/file`), from its
/// URL: the last `results` segment followed only by `col=value` folders and the file name.
pub fn relative_result_path(url: &str) -> Option<String> {
    let key = url
        .strip_prefix("s3://")
        .map_or(url, |rest| rest.split_once('/').map_or("", |(_, k)| k));
    let segments: Vec<&str> = key.split('/').collect();
    if segments.len() < 2 {
        return None;
    }
    let mut i = segments.len() - 1; // the file name
    while i > 0 && segments[i - 1].contains('=') {
        i -= 1;
    }
    if i == 0 || segments[i - 1] != "results" {
        return None;
    }
    Some(segments[i - 1..].join("/"))
}

/// The Hive partition values of a relative path: `(column, value)`, `None` for NULL
/// (`__HIVE_DEFAULT_PARTITION__`), values unescaped (`%XX`).
pub fn partition_values(relative: &str) -> Vec<(String, Option<String>)> {
    let segments: Vec<&str> = relative.split('/').collect();
    let folders = &segments[..segments.len().saturating_sub(1)];
    folders
        .iter()
        .filter_map(|s| s.split_once('='))
        .map(|(k, v)| {
            let value = if v == "__HIVE_DEFAULT_PARTITION__" {
                None
            } else {
                Some(unescape(v))
            };
            (unescape(k), value)
        })
        .collect()
}

/// Hive's `%XX` escapes back to bytes (then UTF-8, lossily).
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_and_metadata_as_hourglass_writes_them() {
        let m = br#"{"result_files":[{"url":"s3://b/p/results/region=eu%2Fwest/Q_00000.csv.gz",
            "file_metadata":{"content_length_in_bytes":12,"row_count":30}}],
            "query_metadata":{"total_content_length_in_bytes":12,"total_row_count":30,
            "result_format":"CSV","result_version":"Amazon Timestream version 1.0.0"},
            "author":{"name":"Hourglass","manifest_file_version":"1.0"}}"#;
        let m = parse_manifest(m, "m").unwrap();
        assert_eq!(m.files[0].row_count, Some(30));
        assert_eq!(m.total_row_count, Some(30));
        assert_eq!(m.format.as_deref(), Some("CSV"));
        let md = br#"{"ColumnInfo":[{"Name":"host","Type":{"ScalarType":"VARCHAR"}},
            {"Name":"a","Type":{"ArrayColumnInfo":{"Type":{"ScalarType":"BIGINT"}}}}],
            "Author":{"Name":"Hourglass","MetadataFileVersion":"1.0"}}"#;
        let md = parse_metadata(md, "md").unwrap();
        assert!(md.by_hourglass);
        assert_eq!(md.columns[0].scalar_type, "VARCHAR");
        assert_eq!(md.columns[1].scalar_type, "ArrayColumnInfo");
    }

    #[test]
    fn result_paths_and_partitions() {
        let rel = relative_result_path(
            "s3://b/a/results/x/results/region=eu%2Fwest/d=__HIVE_DEFAULT_PARTITION__/Q_1.parquet",
        )
        .unwrap();
        assert_eq!(
            rel,
            "results/region=eu%2Fwest/d=__HIVE_DEFAULT_PARTITION__/Q_1.parquet"
        );
        assert_eq!(
            partition_values(&rel),
            [
                ("region".to_string(), Some("eu/west".to_string())),
                ("d".to_string(), None)
            ]
        );
        assert_eq!(relative_result_path("s3://b/p/other/Q.csv"), None);
        assert_eq!(unescape("caf%C3%A9 %3A%"), "café :%");
    }
}
