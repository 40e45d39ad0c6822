//! `hourglass user add|list|remove|rotate|grant|revoke`: the users file of a data directory
//! (`hourglass-auth`'s `users`). A running server picks changes up without a restart. Each
//! change is recorded in the audit log (interface `cli`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use hourglass_auth::users::{self, Credentials};
use hourglass_auth::{AuditEvent, AuditLog};

#[derive(Debug, Args)]
pub struct UserArgs {
    /// The data directory of the server.
    #[arg(
        long,
        env = "HOURGLASS_DATA_DIR",
        default_value = "./hourglass-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user and prints its new credentials (shown once).
    Add(GrantArgs),
    /// Lists users and their grants (no secrets).
    List,
    /// Removes a user.
    Remove { name: String },
    /// Replaces every credential of a user and prints the new ones.
    Rotate { name: String },
    /// Adds grants to an existing user.
    Grant(GrantArgs),
    /// Removes grants from a user (exactly those named; a running server applies it within a
    /// second, to open Timestream query cursors too).
    Revoke(GrantArgs),
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    pub name: String,
    /// A database, or '*' for all; repeat for several.
    #[arg(long = "database", required = true)]
    pub databases: Vec<String>,
    /// read, write or admin: one for all --database, or one per --database, in order.
    #[arg(long = "permission", required = true)]
    pub permissions: Vec<String>,
}

fn os_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

fn print_credentials(c: &Credentials, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(c)?);
        return Ok(());
    }
    let grants: Vec<String> = c
        .grants
        .iter()
        .map(|g| format!("{} on {}", g.permission.as_str(), g.database))
        .collect();
    println!("user: {}", c.user);
    println!("grants: {}", grants.join(", "));
    println!("aws_access_key_id: {}", c.access_key_id);
    println!("aws_secret_access_key: {}", c.secret_access_key);
    println!("influxdb_token: {}", c.token);
    println!("postgres_password: {}", c.password);
    eprintln!("(the secrets are shown once; they are stored hashed or sealed)");
    Ok(())
}

pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir)?;
    crate::file_modes::protect_data_dir(dir);
    let audit = AuditLog::open(dir)?;
    let record = |action: &str, target: &str, result: &Result<(), String>| {
        let (outcome, detail) = match result {
            Ok(()) => ("ok", String::new()),
            Err(e) => ("error", e.clone()),
        };
        audit.record(AuditEvent::now(
            &os_user(),
            "local",
            "cli",
            action,
            target,
            outcome,
            &detail,
        ));
    };
    match args.command {
        UserCommand::Add(g) => {
            let result = users::grants_from(&g.databases, &g.permissions)
                .and_then(|grants| users::add(dir, &g.name, grants));
            record(
                "user add",
                &g.name,
                &result.as_ref().map(|_| ()).map_err(|e| e.message.clone()),
            );
            print_credentials(&result?, args.json)
        }
        UserCommand::Rotate { name } => {
            let result = users::rotate(dir, &name);
            record(
                "user rotate",
                &name,
                &result.as_ref().map(|_| ()).map_err(|e| e.message.clone()),
            );
            print_credentials(&result?, args.json)
        }
        UserCommand::Remove { name } => {
            let result = users::remove(dir, &name);
            record(
                "user remove",
                &name,
                &result.as_ref().map(|_| ()).map_err(|e| e.message.clone()),
            );
            result?;
            println!("removed user {name}");
            Ok(())
        }
        UserCommand::Grant(g) => {
            let result = users::grants_from(&g.databases, &g.permissions)
                .and_then(|grants| users::grant(dir, &g.name, grants));
            record(
                "user grant",
                &g.name,
                &result.as_ref().map(|_| ()).map_err(|e| e.message.clone()),
            );
            let grants = result?;
            println!("{}", serde_json::to_string(&grants)?);
            Ok(())
        }
        UserCommand::Revoke(g) => {
            let result = users::grants_from(&g.databases, &g.permissions)
                .and_then(|grants| users::revoke(dir, &g.name, grants));
            record(
                "user revoke",
                &g.name,
                &result.as_ref().map(|_| ()).map_err(|e| e.message.clone()),
            );
            let grants = result?;
            println!("{}", serde_json::to_string(&grants)?);
            Ok(())
        }
        UserCommand::List => {
            let file = users::load(dir)?;
            if args.json {
                let list: Vec<serde_json::Value> = file
                    .users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "name": u.name,
                            "grants": u.grants,
                            "access_key_id": u.sigv4.access_key_id,
                            "token_prefix": u.token.prefix,
                            "created": u.created,
                            "rotated": u.rotated,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for u in &file.users {
                    let grants: Vec<String> = u
                        .grants
                        .iter()
                        .map(|g| format!("{}:{}", g.database, g.permission.as_str()))
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.name,
                        grants.join(","),
                        u.sigv4.access_key_id,
                        u.token.prefix
                    );
                }
            }
            Ok(())
        }
    }
}
