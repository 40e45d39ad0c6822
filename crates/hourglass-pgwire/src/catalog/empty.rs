//! The `pg_catalog` tables of objects Hourglass does not have (sequences, policies, triggers,
//! views, publications, extended statistics, ...): empty, with the columns psql, SQLAlchemy,
//! pgcli and DBeaver read, so their queries plan and answer no rows because there are none.
//! `pg_collation` lists PostgreSQL's three built-in collations, `pg_language` its three
//! built-in languages (`internal`, `c`, `sql`; no procedural language is installed, so psql's
//! `\dL` lists none), `pg_tablespace` its two tablespaces. Conversions, operators, event
//! triggers, foreign servers, data wrappers and user mappings, text search objects, per-role
//! settings, subscriptions, large objects, operator families, default and parameter
//! privileges: none. The tables psql reads `tableoid` of (`\dd`, `\dL`) have it, last: the
//! catalog table's PostgreSQL OID (a system column there).

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use super::{Cols, OWNER_OID, PG_CATALOG_OID};

/// `pg_language`'s own OID (its rows' `tableoid`).
const PG_LANGUAGE_OID: i64 = 2612;

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
    "pg_opfamily",
    "pg_conversion",
    "pg_operator",
    "pg_event_trigger",
    "pg_foreign_server",
    "pg_foreign_data_wrapper",
    "pg_user_mapping",
    "pg_user_mappings",
    "pg_parameter_acl",
    "pg_language",
    "pg_ts_config",
    "pg_ts_dict",
    "pg_ts_parser",
    "pg_ts_template",
    "pg_db_role_setting",
    "pg_subscription",
    "pg_largeobject_metadata",
    "pg_default_acl",
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
                )
                .text("colliculocale", vec![None; 3])
                .text("collicurules", vec![None; 3])
                .text("collversion", vec![None; 3]),
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
                .null_text_list("stxkind", 0),
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
                .i64("tgconstraint", vec![])
                .i64("tableoid", vec![]),
            "pg_rewrite" => c
                .i64("oid", vec![])
                .text("rulename", vec![])
                .i64("ev_class", vec![])
                .text("ev_type", vec![])
                .text("ev_enabled", vec![])
                .bool("is_instead", vec![])
                .i64("tableoid", vec![]),
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
                .null_text_list("spcacl", 2)
                .null_text_list("spcoptions", 2),
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
                .i64("opcintype", vec![])
                .i64("tableoid", vec![]),
            "pg_shdescription" => c
                .i64("objoid", vec![])
                .i64("classoid", vec![])
                .text("description", vec![]),
            "pg_opfamily" => c
                .i64("oid", vec![])
                .i64("opfmethod", vec![])
                .text("opfname", vec![])
                .i64("opfnamespace", vec![])
                .i64("opfowner", vec![])
                .i64("tableoid", vec![]),
            "pg_conversion" => c
                .i64("oid", vec![])
                .text("conname", vec![])
                .i64("connamespace", vec![])
                .i64("conowner", vec![])
                .i32("conforencoding", vec![])
                .i32("contoencoding", vec![])
                .i64("conproc", vec![])
                .bool("condefault", vec![]),
            "pg_operator" => c
                .i64("oid", vec![])
                .text("oprname", vec![])
                .i64("oprnamespace", vec![])
                .i64("oprowner", vec![])
                .text("oprkind", vec![])
                .bool("oprcanmerge", vec![])
                .bool("oprcanhash", vec![])
                .i64("oprleft", vec![])
                .i64("oprright", vec![])
                .i64("oprresult", vec![])
                .i64("oprcom", vec![])
                .i64("oprnegate", vec![])
                .i64("oprcode", vec![])
                .i64("oprrest", vec![])
                .i64("oprjoin", vec![]),
            "pg_event_trigger" => c
                .i64("oid", vec![])
                .text("evtname", vec![])
                .text("evtevent", vec![])
                .i64("evtowner", vec![])
                .i64("evtfoid", vec![])
                .text("evtenabled", vec![])
                .null_text_list("evttags", 0),
            "pg_foreign_server" => c
                .i64("oid", vec![])
                .text("srvname", vec![])
                .i64("srvowner", vec![])
                .i64("srvfdw", vec![])
                .text("srvtype", vec![])
                .text("srvversion", vec![])
                .null_text_list("srvacl", 0)
                .null_text_list("srvoptions", 0),
            "pg_foreign_data_wrapper" => c
                .i64("oid", vec![])
                .text("fdwname", vec![])
                .i64("fdwowner", vec![])
                .i64("fdwhandler", vec![])
                .i64("fdwvalidator", vec![])
                .null_text_list("fdwacl", 0)
                .null_text_list("fdwoptions", 0),
            "pg_user_mapping" => c
                .i64("oid", vec![])
                .i64("umuser", vec![])
                .i64("umserver", vec![])
                .null_text_list("umoptions", 0),
            "pg_user_mappings" => c
                .i64("umid", vec![])
                .i64("srvid", vec![])
                .text("srvname", vec![])
                .i64("umuser", vec![])
                .text("usename", vec![])
                .null_text_list("umoptions", 0),
            "pg_parameter_acl" => c
                .i64("oid", vec![])
                .text("parname", vec![])
                .null_text_list("paracl", 0),
            "pg_language" => c
                .i64("oid", vec![12, 13, 14])
                .str("lanname", vec!["internal", "c", "sql"])
                .i64("lanowner", vec![OWNER_OID; 3])
                .bool("lanispl", vec![false; 3])
                .bool("lanpltrusted", vec![false, false, true])
                .i64("lanplcallfoid", vec![0; 3])
                .i64("laninline", vec![0; 3])
                .i64("lanvalidator", vec![2246, 2247, 2248])
                .null_text_list("lanacl", 3)
                .i64("tableoid", vec![PG_LANGUAGE_OID; 3]),
            "pg_ts_config" => c
                .i64("oid", vec![])
                .text("cfgname", vec![])
                .i64("cfgnamespace", vec![])
                .i64("cfgowner", vec![])
                .i64("cfgparser", vec![]),
            "pg_ts_dict" => c
                .i64("oid", vec![])
                .text("dictname", vec![])
                .i64("dictnamespace", vec![])
                .i64("dictowner", vec![])
                .i64("dicttemplate", vec![])
                .text("dictinitoption", vec![]),
            "pg_ts_parser" => c
                .i64("oid", vec![])
                .text("prsname", vec![])
                .i64("prsnamespace", vec![])
                .i64("prsstart", vec![])
                .i64("prstoken", vec![])
                .i64("prsend", vec![])
                .i64("prsheadline", vec![])
                .i64("prslextype", vec![]),
            "pg_ts_template" => c
                .i64("oid", vec![])
                .text("tmplname", vec![])
                .i64("tmplnamespace", vec![])
                .i64("tmplinit", vec![])
                .i64("tmpllexize", vec![]),
            "pg_db_role_setting" => c
                .i64("setdatabase", vec![])
                .i64("setrole", vec![])
                .null_text_list("setconfig", 0),
            "pg_subscription" => c
                .i64("oid", vec![])
                .i64("subdbid", vec![])
                .text("subname", vec![])
                .i64("subowner", vec![])
                .bool("subenabled", vec![])
                .bool("subbinary", vec![])
                .text("substream", vec![])
                .text("subtwophasestate", vec![])
                .bool("subdisableonerr", vec![])
                .bool("subpasswordrequired", vec![])
                .bool("subrunasowner", vec![])
                .text("subconninfo", vec![])
                .text("subslotname", vec![])
                .text("subsynccommit", vec![])
                .null_text_list("subpublications", 0)
                .text("suborigin", vec![]),
            "pg_largeobject_metadata" => c
                .i64("oid", vec![])
                .i64("lomowner", vec![])
                .null_text_list("lomacl", 0),
            "pg_default_acl" => c
                .i64("oid", vec![])
                .i64("defaclrole", vec![])
                .i64("defaclnamespace", vec![])
                .text("defaclobjtype", vec![])
                .null_text_list("defaclacl", 0),
            _ => return None,
        }
        .table(),
    )
}
