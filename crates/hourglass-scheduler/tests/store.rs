//! The durable store of scheduled queries (`store.rs`): one file per query, rewritten only when
//! that query changes, removed when it is deleted; migration from the format-1 single file;
//! leftover temporary files and corrupt files (`docs/format/scheduled-queries.md`).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hourglass_scheduler::definition::{Coverage, CoveredRange, Definition, RunState, State};
use hourglass_scheduler::store::{file_name, Entry, Store, StoreFailure, DIR_NAME, FILE_NAME};
use serde_json::json;

fn arn(i: usize) -> String {
    format!("arn:aws:timestream:us-east-1:000000000000:scheduled-query/q{i}-{i:032x}")
}

fn entry(arn: &str, coverage: usize) -> Entry {
    Entry {
        definition: Definition {
            arn: arn.to_string(),
            name: arn.rsplit('/').next().unwrap().to_string(),
            query_string: "SELECT 1".into(),
            schedule_expression: "rate(1 minute)".into(),
            creation_time: 1_700_000_000_000_000_000,
            state: State::Enabled,
            schedule_configuration: json!({"ScheduleExpression": "rate(1 minute)"}),
            notification_configuration: json!({"SnsConfiguration": {"TopicArn": "arn:t"}}),
            target_configuration: None,
            error_report_configuration: json!({}),
            execution_role_arn: "arn:role".into(),
            kms_key_id: None,
            tags: vec![("k".into(), "v".into())],
            client_token: None,
            owner: "admin".into(),
        },
        runs: RunState {
            next_invocation: Some(1_700_000_060_000_000_000),
            coverage: (0..coverage as i64)
                .map(|i| Coverage {
                    invocation_time: i * 60_000_000_000,
                    trigger_time: i * 60_000_000_000 + 1,
                    ranges: vec![CoveredRange {
                        database: "db".into(),
                        table: "cpu".into(),
                        min: (i - 1) * 60_000_000_000,
                        max: i * 60_000_000_000,
                    }],
                    stale_since: None,
                })
                .collect(),
            ..Default::default()
        },
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(DIR_NAME))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn path_of(dir: &Path, arn: &str) -> PathBuf {
    dir.join(DIR_NAME).join(file_name(arn))
}

/// A store of `n` queries with `coverage` entries each.
fn filled(dir: &Path, n: usize, coverage: usize) -> Store {
    let store = Store::open(dir).unwrap();
    store
        .update::<_, StoreFailure>(|c| {
            for i in 0..n {
                c.queries.insert(arn(i), Arc::new(entry(&arn(i), coverage)));
            }
            Ok(())
        })
        .unwrap();
    store
}

#[test]
fn an_update_rewrites_only_the_changed_query_and_a_delete_removes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), 3, 10);
    let mut expected: Vec<String> = (0..3).map(|i| file_name(&arn(i))).collect();
    expected.sort();
    assert_eq!(files(dir.path()), expected);
    let text = std::fs::read_to_string(path_of(dir.path(), &arn(0))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format_version"], 2);
    assert_eq!(v["arn"], arn(0));
    assert_eq!(v["definition"]["arn"], arn(0));
    assert_eq!(v["runs"]["coverage"].as_array().unwrap().len(), 10);
    assert!(!text.contains('\n'), "compact JSON");

    // Change one query: only its file is replaced (a new inode), the others are untouched.
    let inode = |i: usize| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path_of(dir.path(), &arn(i)))
            .unwrap()
            .ino()
    };
    let before: Vec<(u64, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                inode(i),
                std::fs::read(path_of(dir.path(), &arn(i))).unwrap(),
            )
        })
        .collect();
    store
        .update::<_, StoreFailure>(|c| {
            let e = Arc::make_mut(c.queries.get_mut(&arn(1)).unwrap());
            e.runs.coverage[3].stale_since = Some(42);
            Ok(())
        })
        .unwrap();
    for i in [0, 2] {
        assert_eq!(inode(i), before[i].0, "query {i} was rewritten");
        assert_eq!(
            std::fs::read(path_of(dir.path(), &arn(i))).unwrap(),
            before[i].1
        );
    }
    assert_ne!(inode(1), before[1].0);
    assert_ne!(
        std::fs::read(path_of(dir.path(), &arn(1))).unwrap(),
        before[1].1
    );

    // A change that changes nothing writes nothing.
    store
        .update::<_, StoreFailure>(|c| {
            let e = Arc::make_mut(c.queries.get_mut(&arn(2)).unwrap());
            e.runs.coverage[0].stale_since = None;
            Ok(())
        })
        .unwrap();
    assert_eq!(inode(2), before[2].0);

    // Delete.
    store
        .update::<_, StoreFailure>(|c| {
            c.queries.remove(&arn(0));
            Ok(())
        })
        .unwrap();
    assert!(!path_of(dir.path(), &arn(0)).exists());
    assert_eq!(files(dir.path()).len(), 2);

    // Reopen: the same contents.
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(*again.snapshot(), *store.snapshot());
    assert_eq!(
        again.get(&arn(1)).unwrap().runs.coverage[3].stale_since,
        Some(42)
    );
}

#[test]
fn a_format_one_file_is_migrated_to_one_file_per_query() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (arn(1), arn(2));
    let old = json!({
        "format_version": 1,
        "queries": {
            a.clone(): serde_json::to_value(entry(&a, 5)).unwrap(),
            b.clone(): serde_json::to_value(entry(&b, 0)).unwrap(),
        }
    });
    std::fs::write(
        dir.path().join(FILE_NAME),
        serde_json::to_vec_pretty(&old).unwrap(),
    )
    .unwrap();
    // A file a newer server left before a downgrade: the old file is authoritative.
    std::fs::create_dir(dir.path().join(DIR_NAME)).unwrap();
    std::fs::write(path_of(dir.path(), &arn(3)), b"{}").unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert!(!dir.path().join(FILE_NAME).exists());
    let mut expected = vec![file_name(&a), file_name(&b)];
    expected.sort();
    assert_eq!(files(dir.path()), expected);
    assert_eq!(store.get(&a).unwrap(), entry(&a, 5));
    assert_eq!(store.get(&b).unwrap(), entry(&b, 0));
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(*again.snapshot(), *store.snapshot());
}

#[test]
fn a_leftover_temporary_file_is_removed_and_a_corrupt_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), 2, 3));
    let tmp = path_of(dir.path(), &arn(0)).with_extension("tmp");
    std::fs::write(&tmp, b"{\"format_version\": 2, \"arn\"").unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(!tmp.exists());
    assert_eq!(store.snapshot().queries.len(), 2);

    let bad = path_of(dir.path(), &arn(1));
    std::fs::write(&bad, b"{\"format_version\": 2, \"arn\": ").unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.contains(&bad.display().to_string()), "{err}");

    let newer = json!({"format_version": 3, "arn": arn(1)});
    std::fs::write(&bad, newer.to_string()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("newer"),
        "{err}"
    );
}

#[test]
fn file_names_are_the_id_with_unsafe_bytes_escaped() {
    assert_eq!(
        file_name("arn:aws:timestream:r:1:scheduled-query/my_q-0a1b"),
        "my_q-0a1b.json"
    );
    assert_eq!(
        file_name("arn:aws:timestream:r:1:scheduled-query/a.b|c%-0a"),
        "a%2eb%7cc%25-0a.json"
    );
}
