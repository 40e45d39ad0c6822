//! The roles of `pg_catalog` (`pg_roles`, `pg_authid`, `pg_user`, `pg_auth_members`), which
//! psql's `\du`/`\dg`, `\drds` and drivers read.
//!
//! `hourglass` (OID 10, PostgreSQL's bootstrap superuser) owns every object. With
//! authentication off it is the only role (every connection runs unrestricted, whatever user
//! name it gives). With `--require-auth` the users of `hourglass user` are roles too, read
//! from the users file when the table is built: a user with `admin` on every database (an
//! operator) is a superuser, one with `write` on every database may create databases; every
//! user can log in. `hourglass` itself then cannot (no one logs in as it). Roles are members of
//! no other roles, and no password is shown (`********` in `pg_roles`, as PostgreSQL does).

use std::sync::Arc;

use datafusion::catalog::CatalogProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use hourglass_auth::permission::ALL_DATABASES;
use hourglass_auth::Permission;
use hourglass_query::catalog::DatabasesCatalog;

use super::{oid_of, rep, Cols, OWNER_OID};

/// The tables answered here.
pub const TABLES: &[&str] = &["pg_roles", "pg_authid", "pg_user", "pg_auth_members"];

/// The owner of every object.
pub const OWNER_NAME: &str = "hourglass";

/// One role and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub oid: i64,
    pub name: String,
    pub superuser: bool,
    pub create_role: bool,
    pub create_db: bool,
    pub can_login: bool,
    pub bypass_rls: bool,
}

/// The roles as the catalog `inner` (a [`DatabasesCatalog`], or a test's) sees them.
pub fn roles(inner: &dyn CatalogProvider) -> Vec<Role> {
    let owner = Role {
        oid: OWNER_OID,
        name: OWNER_NAME.to_string(),
        superuser: true,
        create_role: true,
        create_db: true,
        can_login: true,
        bypass_rls: true,
    };
    let Some(databases) = inner.downcast_ref::<DatabasesCatalog>() else {
        return vec![owner];
    };
    if !databases.principal.authenticated {
        return vec![owner];
    }
    let users = match hourglass_auth::users::load(&databases.engine.config.data_dir) {
        Ok(file) => file.users,
        Err(e) => {
            tracing::warn!(error = %e, "pg_roles: the users file is unreadable; listing no users");
            Vec::new()
        }
    };
    let users: Vec<(String, hourglass_auth::Principal)> = users
        .into_iter()
        .map(|u| {
            let p = hourglass_auth::Principal::user(u.name.clone(), u.grants);
            (u.name, p)
        })
        .collect();
    users_as_roles(owner, &users)
}

/// `owner` (unable to log in) and a role per user, sorted by name.
fn users_as_roles(owner: Role, users: &[(String, hourglass_auth::Principal)]) -> Vec<Role> {
    let mut out: Vec<Role> = Vec::with_capacity(users.len() + 1);
    if !users.iter().any(|(name, _)| name == OWNER_NAME) {
        out.push(Role {
            can_login: false,
            ..owner
        });
    }
    for (name, p) in users {
        let superuser = p.is_operator();
        out.push(Role {
            oid: if name == OWNER_NAME {
                OWNER_OID
            } else {
                oid_of(&["role", name])
            },
            name: name.clone(),
            superuser,
            create_role: false,
            create_db: p.allows(Permission::Write, ALL_DATABASES),
            can_login: true,
            bypass_rls: superuser,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The table `name`, if it is one of [`TABLES`].
pub fn table(name: &str, inner: &dyn CatalogProvider) -> Option<DfResult<Arc<dyn TableProvider>>> {
    if !TABLES.contains(&name) {
        return None;
    }
    if name == "pg_auth_members" {
        // No role is a member of another.
        return Some(
            Cols::default()
                .i64("oid", vec![])
                .i64("roleid", vec![])
                .i64("member", vec![])
                .i64("grantor", vec![])
                .bool("admin_option", vec![])
                .bool("inherit_option", vec![])
                .bool("set_option", vec![])
                .table(),
        );
    }
    let mut roles = roles(inner);
    if name == "pg_user" {
        roles.retain(|r| r.can_login);
    }
    let n = roles.len();
    let col = |f: fn(&Role) -> bool| roles.iter().map(f).collect::<Vec<bool>>();
    let names = roles.iter().map(|r| Some(r.name.clone())).collect();
    let oids: Vec<i64> = roles.iter().map(|r| r.oid).collect();
    let c = Cols::default();
    Some(
        match name {
            "pg_user" => c
                .text("usename", names)
                .i64("usesysid", oids)
                .bool("usecreatedb", col(|r| r.create_db))
                .bool("usesuper", col(|r| r.superuser))
                .bool("userepl", rep(false, n))
                .bool("usebypassrls", col(|r| r.bypass_rls))
                .str("passwd", rep("********", n))
                .null_timestamptz("valuntil", n)
                .null_text_list("useconfig", n),
            "pg_authid" => c
                .i64("oid", oids)
                .text("rolname", names)
                .bool("rolsuper", col(|r| r.superuser))
                .bool("rolinherit", rep(true, n))
                .bool("rolcreaterole", col(|r| r.create_role))
                .bool("rolcreatedb", col(|r| r.create_db))
                .bool("rolcanlogin", col(|r| r.can_login))
                .bool("rolreplication", rep(false, n))
                .bool("rolbypassrls", col(|r| r.bypass_rls))
                .i32("rolconnlimit", rep(-1, n))
                // SCRAM secrets are not shown.
                .text("rolpassword", rep(None, n))
                .null_timestamptz("rolvaliduntil", n),
            _ => c
                .text("rolname", names)
                .bool("rolsuper", col(|r| r.superuser))
                .bool("rolinherit", rep(true, n))
                .bool("rolcreaterole", col(|r| r.create_role))
                .bool("rolcreatedb", col(|r| r.create_db))
                .bool("rolcanlogin", col(|r| r.can_login))
                .bool("rolreplication", rep(false, n))
                .i32("rolconnlimit", rep(-1, n))
                .str("rolpassword", rep("********", n))
                .null_timestamptz("rolvaliduntil", n)
                .bool("rolbypassrls", col(|r| r.bypass_rls))
                .null_text_list("rolconfig", n)
                .i64("oid", oids),
        }
        .table(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hourglass_auth::{Grant, Principal};

    fn grant(db: &str, permission: Permission) -> Grant {
        Grant {
            database: db.into(),
            permission,
        }
    }

    #[test]
    fn without_authentication_the_owner_is_the_only_role() {
        let inner = datafusion::catalog::MemoryCatalogProvider::new();
        let roles = roles(&inner);
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].name, "hourglass");
        assert_eq!(roles[0].oid, OWNER_OID);
        assert!(roles[0].superuser && roles[0].can_login);
    }

    #[test]
    fn users_are_roles_with_their_grants_as_attributes() {
        let owner = roles(&datafusion::catalog::MemoryCatalogProvider::new()).remove(0);
        let users = vec![
            (
                "reader".to_string(),
                Principal::user("reader", vec![grant("clients", Permission::Read)]),
            ),
            (
                "ops".to_string(),
                Principal::user("ops", vec![grant("*", Permission::Admin)]),
            ),
            (
                "loader".to_string(),
                Principal::user("loader", vec![grant("*", Permission::Write)]),
            ),
        ];
        let roles = users_as_roles(owner, &users);
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hourglass", "loader", "ops", "reader"]);
        let hourglass = &roles[0];
        assert!(hourglass.superuser && !hourglass.can_login);
        let (loader, ops, reader) = (&roles[1], &roles[2], &roles[3]);
        assert!(ops.superuser && ops.create_db && ops.can_login && ops.bypass_rls);
        assert!(!loader.superuser && loader.create_db && loader.can_login);
        assert!(!reader.superuser && !reader.create_db && reader.can_login);
        assert!(!reader.create_role && !ops.create_role);
        assert_ne!(reader.oid, OWNER_OID);
        assert_eq!(reader.oid, oid_of(&["role", "reader"]));
    }

    #[test]
    fn a_user_named_hourglass_is_the_owner() {
        let owner = roles(&datafusion::catalog::MemoryCatalogProvider::new()).remove(0);
        let users = vec![(
            "hourglass".to_string(),
            Principal::user("hourglass", vec![grant("a", Permission::Read)]),
        )];
        let roles = users_as_roles(owner, &users);
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].oid, OWNER_OID);
        assert!(roles[0].can_login && !roles[0].superuser);
    }
}
