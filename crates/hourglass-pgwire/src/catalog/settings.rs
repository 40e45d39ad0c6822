//! `pg_settings`: the connection's settings (those `SHOW` and `current_setting` answer) with
//! PostgreSQL's columns. `boot_val` is PostgreSQL's built-in default; `source` says where a
//! value differing from it comes from (`client` for what the client's startup packet set,
//! `database` for the search path of the database connected to, `override` for what Hourglass
//! fixes), so psql's `\dconfig` lists the settings that are not PostgreSQL's defaults.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use super::{rep, Cols};

/// What `pg_settings` says of a setting besides its value.
struct Meta {
    boot_val: &'static str,
    context: &'static str,
    vartype: &'static str,
    category: &'static str,
    /// The source of a value differing from `boot_val`.
    source: &'static str,
}

/// PostgreSQL 16's description of the settings Hourglass has; `None` for Hourglass's own
/// (whose built-in default is the value).
fn meta(name: &str) -> Option<Meta> {
    let m = |boot_val, context, vartype, category, source| Meta {
        boot_val,
        context,
        vartype,
        category,
        source,
    };
    const PRESET: &str = "Preset Options";
    const LOCALE: &str = "Client Connection Defaults / Locale and Formatting";
    const STATEMENT: &str = "Client Connection Defaults / Statement Behavior";
    Some(match name {
        "server_version"
        | "server_version_num"
        | "integer_datetimes"
        | "max_identifier_length"
        | "max_index_keys" => m("", "internal", "string", PRESET, "default"),
        "server_encoding" => m("SQL_ASCII", "internal", "string", PRESET, "override"),
        "lc_collate" | "lc_ctype" => m("C", "internal", "string", PRESET, "override"),
        "client_encoding" => m("SQL_ASCII", "user", "string", LOCALE, "client"),
        "datestyle" => m("ISO, MDY", "user", "string", LOCALE, "client"),
        "intervalstyle" => m("postgres", "user", "enum", LOCALE, "client"),
        "timezone" => m("GMT", "user", "string", LOCALE, "override"),
        "extra_float_digits" => m("1", "user", "integer", LOCALE, "override"),
        "search_path" => m("\"$user\", public", "user", "string", STATEMENT, "database"),
        "application_name" => m(
            "",
            "user",
            "string",
            "Reporting and Logging / What to Log",
            "client",
        ),
        "session_authorization" => m(
            "",
            "superuser",
            "string",
            "Connections and Authentication",
            "client",
        ),
        "is_superuser" => m("off", "internal", "bool", PRESET, "override"),
        "standard_conforming_strings" => m(
            "on",
            "user",
            "bool",
            "Version and Platform Compatibility",
            "default",
        ),
        "transaction_isolation" | "default_transaction_isolation" => {
            m("read committed", "user", "enum", STATEMENT, "override")
        }
        "transaction_read_only" | "default_transaction_read_only" => {
            m("off", "user", "bool", STATEMENT, "override")
        }
        "statement_timeout" => m("0", "user", "integer", STATEMENT, "override"),
        "bytea_output" => m("hex", "user", "enum", STATEMENT, "override"),
        "default_table_access_method" => m("heap", "user", "string", STATEMENT, "override"),
        "max_connections" => m(
            "100",
            "postmaster",
            "integer",
            "Connections and Authentication",
            "configuration file",
        ),
        _ => return None,
    })
}

/// `pg_settings` of `settings`, sorted by name.
pub fn table(settings: &[(String, String)]) -> DfResult<Arc<dyn TableProvider>> {
    let sorted: BTreeMap<&str, &str> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let n = sorted.len();
    let (mut boot, mut context, mut vartype, mut category, mut source) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (name, value) in &sorted {
        let meta = meta(name);
        // Internal settings PostgreSQL computes (its version, ...) boot to their value.
        let boot_val = match &meta {
            Some(m) if !(m.boot_val.is_empty() && m.context == "internal") => m.boot_val,
            _ => value,
        };
        boot.push(Some(boot_val.to_string()));
        source.push(Some(
            match &meta {
                Some(m) if boot_val != *value => m.source,
                _ => "default",
            }
            .to_string(),
        ));
        context.push(Some(
            meta.as_ref().map_or("user", |m| m.context).to_string(),
        ));
        vartype.push(Some(
            meta.as_ref().map_or("string", |m| m.vartype).to_string(),
        ));
        category.push(Some(
            meta.as_ref()
                .map_or("Customized Options", |m| m.category)
                .to_string(),
        ));
    }
    let values: Vec<Option<String>> = sorted.values().map(|v| Some(v.to_string())).collect();
    Cols::default()
        .text("name", sorted.keys().map(|k| Some(k.to_string())).collect())
        .text("setting", values.clone())
        .text("unit", rep(None, n))
        .text("category", category)
        .text("short_desc", rep(Some(String::new()), n))
        .text("extra_desc", rep(None, n))
        .text("context", context)
        .text("vartype", vartype)
        .text("source", source)
        .text("min_val", rep(None, n))
        .text("max_val", rep(None, n))
        .null_text_list("enumvals", n)
        .text("boot_val", boot)
        .text("reset_val", values)
        .text("sourcefile", rep(None, n))
        .opt_i32("sourceline", rep(None, n))
        .bool("pending_restart", rep(false, n))
        .table()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn settings_differing_from_postgresql_defaults_have_a_source() {
        let settings: Vec<(String, String)> = [
            ("application_name", "psql"),
            ("datestyle", "ISO, MDY"),
            ("timezone", "UTC"),
            ("server_version", "16.6"),
            ("search_path", "clients"),
            ("hourglass.x", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ctx = SessionContext::new();
        ctx.register_table("pg_settings", table(&settings).unwrap())
            .unwrap();
        let batches = ctx
            .sql(
                "SELECT name, source FROM pg_settings \
                 WHERE source <> 'default' AND setting IS DISTINCT FROM boot_val ORDER BY 1",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut got = Vec::new();
        for b in &batches {
            for i in 0..b.num_rows() {
                got.push((
                    b.column(0).as_string::<i32>().value(i).to_string(),
                    b.column(1).as_string::<i32>().value(i).to_string(),
                ));
            }
        }
        let want: Vec<(String, String)> = [
            ("application_name", "client"),
            ("search_path", "database"),
            ("timezone", "override"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }
}
