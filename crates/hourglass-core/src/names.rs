//! Validation of database, table and column names.
//!
//! Names become path segments in the data directory and object store, so they may not contain
//! path separators, control characters or be `.`/`..`. Timestream's stricter API rules are applied
//! by the Timestream API layer on top of these.

use crate::error::{Error, Result};

/// The longest database, table, dimension or measure name (Timestream's limit).
pub const MAX_NAME_BYTES: usize = 256;

/// Database names the server keeps for itself: the SQL schemas of the audit log and the
/// catalogs. No interface creates, writes or grants on a database with one of these names (in
/// any letter case), so `system.audit_log` can never be shadowed.
pub const RESERVED_DATABASE_NAMES: [&str; 3] = ["system", "information_schema", "pg_catalog"];

/// Whether `name` is one of [`RESERVED_DATABASE_NAMES`] (letter case ignored).
pub fn is_reserved_database_name(name: &str) -> bool {
    RESERVED_DATABASE_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
}

/// Checks a database name: [`validate_object_name`]'s rules, and not a reserved name.
pub fn validate_database_name(name: &str) -> Result<()> {
    validate_object_name("database", name)?;
    if is_reserved_database_name(name) {
        return Err(Error::invalid(format!(
            "database name '{name}' is reserved for the server's own tables (reserved: {})",
            RESERVED_DATABASE_NAMES.join(", ")
        )));
    }
    Ok(())
}

/// Checks a database or table name; `what` names it in the error ("database", "table").
/// Database names are checked with [`validate_database_name`], which adds the reserved names.
pub fn validate_object_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("{what} name must not be empty")));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "{what} name '{}...' is {} bytes long; the limit is {MAX_NAME_BYTES}",
            truncate(name, 32),
            name.len()
        )));
    }
    if name == "." || name == ".." || name.starts_with('_') {
        return Err(Error::invalid(format!(
            "{what} name '{name}' is reserved (names may not be '.', '..' or start with '_')"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || *c == '/' || *c == '\\')
    {
        return Err(Error::invalid(format!(
            "{what} name '{}' contains the character {c:?}, which is not allowed",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Checks a dimension or measure column name.
pub fn validate_column_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("column name must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "column name '{}...' is {} bytes long; the limit is {MAX_NAME_BYTES}",
            truncate(name, 32),
            name.len()
        )));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_path_like_and_reserved_names() {
        assert!(validate_object_name("table", "cpu").is_ok());
        assert!(validate_object_name("table", "a/b").is_err());
        assert!(validate_object_name("table", "..").is_err());
        assert!(validate_object_name("table", "_manifest").is_err());
        assert!(validate_object_name("table", &"x".repeat(257)).is_err());
        assert!(validate_column_name("").is_err());
    }

    #[test]
    fn reserved_database_names_are_refused_in_any_case() {
        for name in [
            "system",
            "SYSTEM",
            "System",
            "information_schema",
            "pg_catalog",
        ] {
            let e = validate_database_name(name).unwrap_err();
            assert!(e.message.contains("reserved"), "{name}: {}", e.message);
        }
        assert!(validate_database_name("systems").is_ok());
        assert!(validate_database_name("sales").is_ok());
        // Tables may use these names: they live inside a database.
        assert!(validate_object_name("table", "system").is_ok());
    }
}
