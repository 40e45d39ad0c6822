//! Validation of database, table and column names.
//!
//! Names become path segments in the data directory and object store, so they may not contain
//! path separators, control characters or be `.`/`..`. Timestream's stricter API rules are applied
//! by the Timestream API layer on top of these.

use crate::error::{Error, Result};

/// The longest database, table, dimension or measure name (Timestream's limit).
pub const MAX_NAME_BYTES: usize = 256;

/// Checks a database or table name; `what` names it in the error ("database", "table").
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
}
