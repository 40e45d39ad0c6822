//! The permission model: a user holds grants, each a [`Permission`] on one database or on `*`
//! (every database, present and future). `admin` implies `write` and `read`; `write` does NOT
//! imply `read` (an ingest-only key cannot read back what it wrote). A request runs as a
//! [`Principal`]; with authentication off it is [`Principal::unrestricted`].

use serde::{Deserialize, Serialize};

/// The database name of a grant on every database.
pub const ALL_DATABASES: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Queries (SQL, Timestream Query, PostgreSQL wire).
    Read,
    /// Ingest (line protocol, WriteRecords).
    Write,
    /// Management (create, update, delete databases and tables); implies read and write.
    Admin,
}

impl Permission {
    pub fn parse(text: &str) -> Option<Permission> {
        match text.trim().to_ascii_lowercase().as_str() {
            "read" => Some(Permission::Read),
            "write" => Some(Permission::Write),
            "admin" => Some(Permission::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Admin => "admin",
        }
    }

    /// Whether holding `self` allows what `needed` allows.
    pub fn implies(self, needed: Permission) -> bool {
        self == Permission::Admin || self == needed
    }
}

/// One grant: `permission` on `database` (or on `*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub database: String,
    pub permission: Permission,
}

/// Who a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub grants: Vec<Grant>,
    /// False for [`Principal::unrestricted`] (authentication off).
    pub authenticated: bool,
}

impl Principal {
    /// Authentication off: everything is allowed, as before security existed.
    pub fn unrestricted() -> Principal {
        Principal {
            name: "anonymous".into(),
            grants: vec![Grant {
                database: ALL_DATABASES.into(),
                permission: Permission::Admin,
            }],
            authenticated: false,
        }
    }

    pub fn user(name: impl Into<String>, grants: Vec<Grant>) -> Principal {
        Principal {
            name: name.into(),
            grants,
            authenticated: true,
        }
    }

    /// Whether the request runs without authentication (everything allowed).
    pub fn is_unrestricted(&self) -> bool {
        !self.authenticated
    }

    /// Whether `needed` is allowed on `database`.
    pub fn allows(&self, needed: Permission, database: &str) -> bool {
        self.grants.iter().any(|g| {
            (g.database == ALL_DATABASES || g.database == database) && g.permission.implies(needed)
        })
    }

    pub fn can_read(&self, database: &str) -> bool {
        self.allows(Permission::Read, database)
    }

    pub fn can_write(&self, database: &str) -> bool {
        self.allows(Permission::Write, database)
    }

    pub fn can_admin(&self, database: &str) -> bool {
        self.allows(Permission::Admin, database)
    }

    /// Whether the database is visible to management listings (any grant on it).
    pub fn can_see(&self, database: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.database == ALL_DATABASES || g.database == database)
    }

    /// An operator: `admin` on `*` (server-wide actions, the audit log).
    pub fn is_operator(&self) -> bool {
        self.grants
            .iter()
            .any(|g| g.database == ALL_DATABASES && g.permission == Permission::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(db: &str, p: Permission) -> Grant {
        Grant {
            database: db.into(),
            permission: p,
        }
    }

    #[test]
    fn admin_implies_read_and_write_but_write_not_read() {
        let p = Principal::user(
            "u",
            vec![grant("a", Permission::Admin), grant("w", Permission::Write)],
        );
        assert!(p.can_read("a") && p.can_write("a") && p.can_admin("a"));
        assert!(p.can_write("w") && !p.can_read("w") && !p.can_admin("w"));
        assert!(p.can_see("w") && !p.can_see("other"));
        assert!(!p.is_operator());
    }

    #[test]
    fn star_grants_cover_every_database() {
        let p = Principal::user("op", vec![grant("*", Permission::Admin)]);
        assert!(p.can_read("x") && p.can_admin("y") && p.is_operator());
        let r = Principal::user("r", vec![grant("*", Permission::Read)]);
        assert!(r.can_read("x") && !r.can_write("x") && !r.is_operator());
        assert!(Principal::unrestricted().is_operator());
    }
}
