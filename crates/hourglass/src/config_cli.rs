//! The configuration file on the command line: `hourglass serve --config FILE` (the file's keys
//! fill the flags that the command line and the `HOURGLASS_*` variables left at their defaults,
//! and its sections configure the data sources), `hourglass config example` and
//! `hourglass config check FILE`. The file format is in `hourglass-config`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgMatches, Args, Command, Subcommand};
use hourglass_config::{ConfigError, ConfigFile};
use serde::Deserialize;

/// The exit code of a refused configuration (clap's code for a usage error).
const CONFIG_ERROR_EXIT: u8 = 2;

/// Top-level tables of the file owned by data sources rather than flags.
pub const SECTIONS: &[&str] = &["mqtt"];

/// The data sources configured in the file's sections.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Sources {
    /// `[[mqtt]]`: MQTT subscriptions (`hourglass-mqtt`).
    #[serde(default)]
    pub mqtt: Vec<hourglass_mqtt::SubscriptionConfig>,
}

/// `hourglass config …`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration file with every key of `hourglass serve` and its default.
    Example,
    /// Check a configuration file as `hourglass serve --config FILE` would, without starting.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// A command line resolved with its configuration file.
pub struct Resolved {
    pub matches: ArgMatches,
    /// The file and its data sources, for `serve --config`.
    pub sources: Sources,
}

/// Parses the command line (exiting on a usage error as clap does); for `serve --config FILE`
/// re-parses it with the file's keys added, or exits with the file, line and key of the error.
pub fn parse(command: Command) -> Resolved {
    let matches = command.clone().get_matches();
    let Some(("serve", serve)) = matches.subcommand() else {
        return Resolved {
            matches,
            sources: Sources::default(),
        };
    };
    let Some(path) = serve.get_one::<PathBuf>("config").cloned() else {
        return Resolved {
            matches,
            sources: Sources::default(),
        };
    };
    match resolve_serve(&command, serve, &path, std::env::args_os().collect()) {
        Ok(resolved) => resolved,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(CONFIG_ERROR_EXIT.into());
        }
    }
}

fn resolve_serve(
    command: &Command,
    serve: &ArgMatches,
    path: &Path,
    argv: Vec<OsString>,
) -> Result<Resolved, String> {
    let file = ConfigFile::load(path).map_err(|e| e.to_string())?;
    let serve_command = serve_command(command)?;
    let extra = hourglass_config::flag_arguments(&file, serve_command, serve, SECTIONS)
        .map_err(|e| e.to_string())?;
    let sources = sources(&file).map_err(|e| e.to_string())?;
    let matches = command
        .clone()
        .try_get_matches_from(argv.into_iter().chain(extra))
        .map_err(|e| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            format!(
                "with the configuration file {}: {}",
                path.display(),
                first.trim_start_matches("error: ")
            )
        })?;
    Ok(Resolved { matches, sources })
}

fn serve_command(command: &Command) -> Result<&Command, String> {
    command
        .find_subcommand("serve")
        .ok_or_else(|| "no serve command".to_string())
}

/// The data sources of the file's sections, each checked.
fn sources(file: &ConfigFile) -> Result<Sources, ConfigError> {
    let sources = file.sections::<Sources>()?;
    let mut names = std::collections::HashSet::new();
    for (i, sub) in sources.mqtt.iter().enumerate() {
        if let Err(message) = sub.validate() {
            // `mqtt[NAME].key: what` names the key; the line is the subscription's.
            let (key, what) = match message.split_once(": ") {
                Some((key, what)) if !key.contains(' ') => {
                    (Some(key.to_string()), what.to_string())
                }
                _ => (None, message),
            };
            return Err(file.section_error("mqtt", i, key, what));
        }
        if !names.insert(sub.name.clone()) {
            return Err(file.section_error(
                "mqtt",
                i,
                Some(format!("mqtt[{}].name", sub.name)),
                "another subscription has this name".to_string(),
            ));
        }
    }
    Ok(sources)
}

/// Runs `hourglass config …`.
pub fn run(args: ConfigArgs, command: Command) -> ExitCode {
    let Ok(serve) = serve_command(&command) else {
        return ExitCode::FAILURE;
    };
    match args.command {
        ConfigCommand::Example => {
            print!("{}", example(serve));
            ExitCode::SUCCESS
        }
        ConfigCommand::Check { file } => {
            let argv = vec![
                OsString::from("hourglass"),
                OsString::from("serve"),
                OsString::from("--config"),
                file.clone().into_os_string(),
            ];
            let checked = command
                .clone()
                .try_get_matches_from(&argv)
                .map_err(|e| e.to_string())
                .and_then(|m| match m.subcommand() {
                    Some(("serve", serve_matches)) => {
                        resolve_serve(&command, serve_matches, &file, argv.clone())
                    }
                    _ => Err("no serve command".to_string()),
                });
            match checked {
                Ok(_) => {
                    println!("{}: ok", file.display());
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::from(CONFIG_ERROR_EXIT)
                }
            }
        }
    }
}

fn example(serve: &Command) -> String {
    let header = "Hourglass configuration file: `hourglass serve --config FILE`.\n\
                  \n\
                  Every key is a flag of `hourglass serve` (`data_dir` is `--data-dir`); a flag given on\n\
                  the command line or its HOURGLASS_* environment variable overrides the file. Unknown\n\
                  keys and bad values stop the start with the file, line and key named. Every key is\n\
                  commented out below with its default: uncomment what you change. The data sources'\n\
                  sections at the end are commented out with a bare `#`: remove it from their lines to use one.";
    // The sections are commented out too: `hourglass config example > FILE` subscribes to
    // nothing until the user uncomments a section.
    let mqtt = comment_out(hourglass_mqtt::EXAMPLE_TOML);
    hourglass_config::example(serve, header, &[mqtt.as_str()])
}

/// `#` (no space) before every line that is not a comment already, so the section's settings
/// (`#name = "factory"`) stand apart from its explanations and optional keys (`# …`).
fn comment_out(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with('#') || l.trim().is_empty() {
                format!("{l}\n")
            } else {
                format!("#{l}\n")
            }
        })
        .collect()
}
