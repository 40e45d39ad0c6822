//! The `pg_catalog` tables of objects Hourglass does not have (sequences, policies, triggers,
//! views, publications, extended statistics, ...): empty, with the columns psql, SQLAlchemy,
//! pgcli and DBeaver read, so their queries plan and answer no rows because there are none.
//! `pg_collation` lists PostgreSQL's three built-in collations.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use super::{Cols, OWNER_OID, PG_CATALOG_OID};

/// The tables answered here.
pub const TABLES: &[&str] = &[
    "pg_sequence",
    "pg_collation",
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_trigger",
    "pg_rewrite",
    "pg_views",
    "pg_matviews",
    "pg_indexes",
    "pg_sequences",
    "pg_tablespace",
    "pg_enum",
    "pg_foreign_table",
    "pg_partitioned_table",
    "pg_depend",
    "pg_shdescription",
    "pg_opclass",
];

/// The table `name`, if it is one of [`TABLES`].
pub fn table(name: &str) -> Option<DfResult<Arc<dyn TableProvider>>> {
    let c = Cols::default();
    Some(
        match name {
            "pg_sequence" => c
                .i64("seqrelid", vec![])
                .i64("seqtypid", vec![])
                .i64("seqstart", vec![])
                .i64("seqincrement", vec![])
                .i64("seqmax", vec![])
                .i64("seqmin", vec![])
                .i64("seqcache", vec![])
                .bool("seqcycle", vec![]),
            "pg_sequences" => c
                .text("schemaname", vec![])
                .text("sequencename", vec![])
                .text("sequenceowner", vec![])
                .i64("start_value", vec![])
                .i64("increment_by", vec![])
                .i64("last_value", vec![]),
            "pg_collation" => c
                .i64("oid", vec![100, 950, 951])
                .str("collname", vec!["default", "C", "POSIX"])
                .i64("collnamespace", vec![PG_CATALOG_OID; 3])
                .i64("collowner", vec![OWNER_OID; 3])
                .str("collprovider", vec!["d", "c", "c"])
                .bool("collisdeterministic", vec![true; 3])
                .i32("collencoding", vec![-1; 3])
                .text(
                    "collcollate",
                    vec![None, Some("C".to_string()), Some("POSIX".to_string())],
                )
                .text(
                    "collctype",
                    vec![None, Some("C".to_string()), Some("POSIX".to_string())],
                ),
            "pg_policy" => c
                .i64("oid", vec![])
                .text("polname", vec![])
                .i64("polrelid", vec![])
                .text("polcmd", vec![])
                .bool("polpermissive", vec![])
                .text("polroles", vec![])
                .text("polqual", vec![])
                .text("polwithcheck", vec![]),
            "pg_statistic_ext" => c
                .i64("oid", vec![])
                .i64("stxrelid", vec![])
                .text("stxname", vec![])
                .i64("stxnamespace", vec![])
                .i64("stxowner", vec![])
                .i32("stxstattarget", vec![])
                .text("stxkeys", vec![])
                .text("stxkind", vec![]),
            "pg_publication" => c
                .i64("oid", vec![])
                .text("pubname", vec![])
                .i64("pubowner", vec![])
                .bool("puballtables", vec![])
                .bool("pubinsert", vec![])
                .bool("pubupdate", vec![])
                .bool("pubdelete", vec![])
                .bool("pubtruncate", vec![])
                .bool("pubviaroot", vec![]),
            "pg_publication_rel" => c
                .i64("oid", vec![])
                .i64("prpubid", vec![])
                .i64("prrelid", vec![])
                .text("prqual", vec![])
                .text("prattrs", vec![]),
            "pg_publication_namespace" => c
                .i64("oid", vec![])
                .i64("pnpubid", vec![])
                .i64("pnnspid", vec![]),
            "pg_trigger" => c
                .i64("oid", vec![])
                .i64("tgrelid", vec![])
                .i64("tgparentid", vec![])
                .text("tgname", vec![])
                .i64("tgfoid", vec![])
                .i16("tgtype", vec![])
                .text("tgenabled", vec![])
                .bool("tgisinternal", vec![])
                .i64("tgconstrrelid", vec![])
                .i64("tgconstrindid", vec![])
                .i64("tgconstraint", vec![]),
            "pg_rewrite" => c
                .i64("oid", vec![])
                .text("rulename", vec![])
                .i64("ev_class", vec![])
                .text("ev_type", vec![])
                .text("ev_enabled", vec![])
                .bool("is_instead", vec![]),
            "pg_views" => c
                .text("schemaname", vec![])
                .text("viewname", vec![])
                .text("viewowner", vec![])
                .text("definition", vec![]),
            "pg_matviews" => c
                .text("schemaname", vec![])
                .text("matviewname", vec![])
                .text("matviewowner", vec![])
                .text("tablespace", vec![])
                .bool("hasindexes", vec![])
                .bool("ispopulated", vec![])
                .text("definition", vec![]),
            "pg_indexes" => c
                .text("schemaname", vec![])
                .text("tablename", vec![])
                .text("indexname", vec![])
                .text("tablespace", vec![])
                .text("indexdef", vec![]),
            "pg_tablespace" => c
                .i64("oid", vec![1663, 1664])
                .str("spcname", vec!["pg_default", "pg_global"])
                .i64("spcowner", vec![OWNER_OID; 2])
                .text("spcacl", vec![None, None])
                .text("spcoptions", vec![None, None]),
            "pg_enum" => c
                .i64("oid", vec![])
                .i64("enumtypid", vec![])
                .f32("enumsortorder", vec![])
                .text("enumlabel", vec![]),
            "pg_foreign_table" => c
                .i64("ftrelid", vec![])
                .i64("ftserver", vec![])
                .text("ftoptions", vec![]),
            "pg_partitioned_table" => c
                .i64("partrelid", vec![])
                .text("partstrat", vec![])
                .i16("partnatts", vec![])
                .i64("partdefid", vec![]),
            "pg_depend" => c
                .i64("classid", vec![])
                .i64("objid", vec![])
                .i32("objsubid", vec![])
                .i64("refclassid", vec![])
                .i64("refobjid", vec![])
                .i32("refobjsubid", vec![])
                .text("deptype", vec![]),
            "pg_opclass" => c
                .i64("oid", vec![])
                .i64("opcmethod", vec![])
                .text("opcname", vec![])
                .i64("opcnamespace", vec![])
                .bool("opcdefault", vec![])
                .i64("opcintype", vec![]),
            "pg_shdescription" => c
                .i64("objoid", vec![])
                .i64("classoid", vec![])
                .text("description", vec![]),
            _ => return None,
        }
        .table(),
    )
}
