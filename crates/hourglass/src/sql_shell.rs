//! `hourglass sql`: a small SQL client for a running server. Runs `-e QUERY` once, or reads
//! statements from stdin (ended by `;`, or by a blank line or end of input when piped) and prints
//! each result as a table.

use std::io::{BufRead, Write};

use clap::Args;

/// `hourglass sql` flags.
#[derive(Debug, Args, Clone)]
pub struct SqlArgs {
    /// The server's HTTP address.
    #[arg(long, env = "HOURGLASS_HOST", default_value = "http://127.0.0.1:8086")]
    pub host: String,
    /// The default database of unqualified table names.
    #[arg(long, short = 'd', env = "HOURGLASS_DATABASE", default_value = "")]
    pub db: String,
    /// Output format: pretty, json, jsonl, csv.
    #[arg(long, default_value = "pretty")]
    pub format: String,
    /// Run this statement and exit.
    #[arg(long, short = 'e')]
    pub execute: Option<String>,
    /// An InfluxDB token of a user (servers with --require-auth).
    #[arg(long, env = "HOURGLASS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub async fn run(args: SqlArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    if let Some(sql) = &args.execute {
        return run_one(&client, &args, sql).await;
    }
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let mut pending = String::new();
    let stdin = std::io::stdin();
    let prompt = |pending: &str| {
        if interactive {
            print!(
                "{}",
                if pending.is_empty() {
                    "hourglass> "
                } else {
                    "        -> "
                }
            );
            let _ = std::io::stdout().flush();
        }
    };
    prompt(&pending);
    for line in stdin.lock().lines() {
        let line = line?;
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed == "quit" || trimmed == "exit" || trimmed == "\\q") {
            break;
        }
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        let complete = trimmed.ends_with(';') || (!interactive && trimmed.is_empty());
        if complete {
            let sql = pending.trim().trim_end_matches(';').to_string();
            pending.clear();
            if !sql.is_empty() {
                if let Err(e) = run_one(&client, &args, &sql).await {
                    eprintln!("error: {e:#}");
                }
            }
        }
        prompt(&pending);
    }
    let rest = pending.trim().trim_end_matches(';');
    if !rest.is_empty() {
        run_one(&client, &args, rest).await?;
    }
    Ok(())
}

async fn run_one(client: &reqwest::Client, args: &SqlArgs, sql: &str) -> anyhow::Result<()> {
    let url = format!("{}/api/v3/query_sql", args.host.trim_end_matches('/'));
    let mut request = client
        .post(url)
        .json(&serde_json::json!({ "db": args.db, "q": sql, "format": args.format }));
    if let Some(token) = &args.token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(body);
        anyhow::bail!("{status}: {message}");
    }
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    Ok(())
}
