//! Where UNLOAD writes, and the manifest and metadata files, as Timestream lays them out:
//!
//! ```text
//! <prefix>/results/[col=value/...]<queryid>_<n>.<parquet|csv|csv.gz>   data files
//! <prefix>/<queryid>_manifest.json                                      every data file
//! <prefix>/<queryid>_metadata.json                                      ColumnInfo
//! ```
//!
//! Partition folder values are escaped as Hive does (`FileUtils.escapePathName`): `%XX` for
//! control characters, `"#%'*/:=?\^[]{}` and DEL, and (beyond Hive, so keys stay ASCII) every
//! byte of a non-ASCII character; NULL and the empty string are `__HIVE_DEFAULT_PARTITION__`.

use serde_json::{json, Value};

use crate::options::Format;

/// What Hive names the partition of a NULL (or empty) value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Timestream's `result_version` in the manifest.
pub const RESULT_VERSION: &str = "Amazon Timestream version 1.0.0";

/// One partition folder segment's value, escaped as Hive escapes path names.
pub fn escape_partition_value(value: Option<&str>) -> String {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return HIVE_DEFAULT_PARTITION.to_string();
    };
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let escape = c.is_ascii_control() || !c.is_ascii() || "\"#%'*/:=?\\^[]{}".contains(c);
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `col=value/` segments (no trailing slash) for one row's partition values.
pub fn partition_folder(columns: &[String], values: &[Option<String>]) -> String {
    columns
        .iter()
        .zip(values)
        .map(|(c, v)| {
            format!(
                "{}={}",
                escape_partition_value(Some(c)),
                escape_partition_value(v.as_deref())
            )
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A data file's name.
pub fn data_file_name(query_id: &str, n: usize, format: Format, gzip: bool) -> String {
    let ext = match (format, gzip) {
        (Format::Parquet, _) => "parquet",
        (Format::Csv, false) => "csv",
        (Format::Csv, true) => "csv.gz",
    };
    format!("{query_id}_{n:05}.{ext}")
}

/// A data file as the manifest lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    pub url: String,
    pub bytes: u64,
    pub rows: u64,
}

/// The manifest: `result_files[]`, `query_metadata`, `author`.
pub fn manifest(files: &[DataFile], format: Format) -> Value {
    let result_files: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "url": f.url,
                "file_metadata": {
                    "content_length_in_bytes": f.bytes,
                    "row_count": f.rows,
                }
            })
        })
        .collect();
    json!({
        "result_files": result_files,
        "query_metadata": {
            "total_content_length_in_bytes": files.iter().map(|f| f.bytes).sum::<u64>(),
            "total_row_count": files.iter().map(|f| f.rows).sum::<u64>(),
            "result_format": format.name(),
            "result_version": RESULT_VERSION,
        },
        "author": {
            "name": "Hourglass",
            "manifest_file_version": "1.0",
        },
    })
}

/// The metadata file: the query's `ColumnInfo` as the Query API answers it.
pub fn metadata(column_info: Vec<Value>) -> Value {
    json!({
        "ColumnInfo": column_info,
        "Author": {
            "Name": "Hourglass",
            "MetadataFileVersion": "1.0",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_escaped_as_hive_does() {
        assert_eq!(escape_partition_value(Some("us-east-1")), "us-east-1");
        assert_eq!(escape_partition_value(Some("a/b=c")), "a%2Fb%3Dc");
        assert_eq!(
            escape_partition_value(Some("2024-01-01 00:00:00")),
            "2024-01-01 00%3A00%3A00"
        );
        assert_eq!(escape_partition_value(Some("100%")), "100%25");
        assert_eq!(escape_partition_value(Some("é")), "%C3%A9");
        assert_eq!(escape_partition_value(Some("tab\there")), "tab%09here");
        assert_eq!(escape_partition_value(Some("..")), "..");
        assert_eq!(escape_partition_value(None), HIVE_DEFAULT_PARTITION);
        assert_eq!(escape_partition_value(Some("")), HIVE_DEFAULT_PARTITION);
        assert_eq!(
            partition_folder(
                &["region".into(), "az".into()],
                &[Some("eu/west".into()), None]
            ),
            "region=eu%2Fwest/az=__HIVE_DEFAULT_PARTITION__"
        );
    }

    #[test]
    fn manifest_and_metadata_shape() {
        let files = vec![
            DataFile {
                url: "s3://b/p/results/q_00000.parquet".into(),
                bytes: 100,
                rows: 3,
            },
            DataFile {
                url: "s3://b/p/results/q_00001.parquet".into(),
                bytes: 50,
                rows: 2,
            },
        ];
        let m = manifest(&files, Format::Parquet);
        assert_eq!(
            m["result_files"][1]["url"],
            "s3://b/p/results/q_00001.parquet"
        );
        assert_eq!(
            m["result_files"][0]["file_metadata"],
            json!({"content_length_in_bytes": 100, "row_count": 3})
        );
        assert_eq!(
            m["query_metadata"],
            json!({
                "total_content_length_in_bytes": 150,
                "total_row_count": 5,
                "result_format": "PARQUET",
                "result_version": RESULT_VERSION,
            })
        );
        assert_eq!(m["author"]["manifest_file_version"], "1.0");
        let md = metadata(vec![json!({"Name": "a", "Type": {"ScalarType": "BIGINT"}})]);
        assert_eq!(md["ColumnInfo"][0]["Type"]["ScalarType"], "BIGINT");
        assert_eq!(data_file_name("Q", 3, Format::Csv, true), "Q_00003.csv.gz");
        assert_eq!(
            data_file_name("Q", 0, Format::Parquet, true),
            "Q_00000.parquet"
        );
    }
}
