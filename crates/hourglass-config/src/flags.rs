//! Configuration keys as command-line flags: each top-level key is checked against the flag of
//! the same clap id with that flag's own value parser, and turned into `--flag=value` arguments
//! unless the command line or the flag's environment variable already set it.

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use crate::error::ConfigError;
use crate::file::{ConfigFile, EntryValue};

/// Clap ids that are never configuration keys.
const NOT_KEYS: &[&str] = &["help", "version", "config"];

/// The arguments to append to the command line so that `matches` (of `command`) takes the
/// file's values for every flag still at its default. `sections` are the top-level tables the
/// caller reads itself ([`ConfigFile::sections`]). Errors name the file, line and key.
pub fn flag_arguments(
    file: &ConfigFile,
    command: &Command,
    matches: &ArgMatches,
    sections: &[&str],
) -> Result<Vec<OsString>, ConfigError> {
    let mut args = Vec::new();
    for entry in file.entries() {
        let error = |message: String| ConfigError {
            path: file.path().to_path_buf(),
            line: entry.line,
            key: Some(entry.key.clone()),
            message,
        };
        if sections.contains(&entry.key.as_str()) {
            if entry.value != EntryValue::Section {
                return Err(error(format!(
                    "is a section: write it as [{0}] or [[{0}]] tables",
                    entry.key
                )));
            }
            continue;
        }
        let Some(arg) = flag(command, &entry.key) else {
            return Err(error(unknown_key_message(command, &entry.key, sections)));
        };
        let (values, array) = match &entry.value {
            EntryValue::Values { values, array } => (values, *array),
            EntryValue::Section => {
                return Err(error("expects a value, not a table".to_string()));
            }
        };
        if array && !takes_several(arg) {
            return Err(error("takes one value, not an array".to_string()));
        }
        for value in values {
            check_value(command, arg, value).map_err(&error)?;
        }
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue; // the flag or its HOURGLASS_* variable overrides the file
        }
        let long = arg.get_long().unwrap_or_default();
        for value in values {
            if arg.get_action().takes_values() {
                args.push(OsString::from(format!("--{long}={value}")));
            } else if value == "true" {
                args.push(OsString::from(format!("--{long}")));
            } else if value != "false" {
                return Err(error(format!("expects true or false, not `{value}`")));
            }
        }
    }
    Ok(args)
}

/// The flag whose clap id is `key`, if it is one a file may set.
pub(crate) fn flag<'a>(command: &'a Command, key: &str) -> Option<&'a Arg> {
    configurable(command).find(|a| a.get_id().as_str() == key)
}

/// Every flag a configuration file may set: those with a long name, except help, version and
/// `--config` itself.
pub(crate) fn configurable(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|a| a.get_long().is_some() && !NOT_KEYS.contains(&a.get_id().as_str()))
}

fn takes_several(arg: &Arg) -> bool {
    matches!(arg.get_action(), clap::ArgAction::Append)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// Runs the flag's own value parser on `value` (by parsing `--flag=value` alone with the whole
/// command, whose other flags keep their defaults); its message names the flag. Errors that
/// concern other flags (a flag this one requires) are left to the final parse.
fn check_value(command: &Command, arg: &Arg, value: &str) -> Result<(), String> {
    if !arg.get_action().takes_values() {
        return match value {
            "true" | "false" => Ok(()),
            other => Err(format!("expects true or false, not `{other}`")),
        };
    }
    let long = arg.get_long().unwrap_or_default();
    let argv = [
        OsString::from(command.get_name()),
        OsString::from(format!("--{long}={value}")),
    ];
    match command.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::MissingRequiredArgument | ErrorKind::ArgumentConflict
            ) =>
        {
            Ok(())
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            Err(first.trim_start_matches("error: ").trim().to_string())
        }
    }
}

fn unknown_key_message(command: &Command, key: &str, sections: &[&str]) -> String {
    let snake = key.replace('-', "_").to_ascii_lowercase();
    if snake != key && (flag(command, &snake).is_some() || sections.contains(&snake.as_str())) {
        return format!("unknown key; did you mean `{snake}`?");
    }
    "unknown key (`hourglass config example` prints every key)".to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::{ArgAction, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[arg(long, env = "HGCFG_TEST_BUDGET", default_value_t = 1024)]
        memory_budget_mb: usize,
        #[arg(long, default_value = "127.0.0.1:8086")]
        http_addr: std::net::SocketAddr,
        #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        require_auth: bool,
        #[arg(long)]
        verbose: bool,
        #[arg(long)]
        url: Vec<String>,
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("hg.toml"), text.to_string()).unwrap()
    }

    fn resolve(text: &str, argv: &[&str]) -> Result<Args, ConfigError> {
        let command = <Args as clap::CommandFactory>::command();
        let matches = command.clone().try_get_matches_from(argv).unwrap();
        let extra = flag_arguments(&file(text), &command, &matches, &["mqtt"])?;
        let all: Vec<OsString> = argv.iter().map(OsString::from).chain(extra).collect();
        let matches = command.try_get_matches_from(all).unwrap();
        Ok(<Args as clap::FromArgMatches>::from_arg_matches(&matches).unwrap())
    }

    #[test]
    fn file_values_apply_and_the_command_line_overrides_them() {
        let text = "memory_budget_mb = 64\nhttp_addr = \"127.0.0.1:9000\"\nrequire_auth = true\n\
                    verbose = true\nurl = [\"a\", \"b\"]\n[[mqtt]]\nname = \"m\"\n";
        let args = resolve(text, &["t"]).unwrap();
        assert_eq!(args.memory_budget_mb, 64);
        assert_eq!(args.http_addr.port(), 9000);
        assert!(args.require_auth && args.verbose);
        assert_eq!(args.url, vec!["a", "b"]);
        let args = resolve(
            text,
            &["t", "--memory-budget-mb", "128", "--require-auth=false"],
        )
        .unwrap();
        assert_eq!(args.memory_budget_mb, 128);
        assert!(!args.require_auth);
        assert_eq!(args.http_addr.port(), 9000);
    }

    #[test]
    fn bad_values_and_unknown_keys_name_line_and_key() {
        let err = resolve("\nmemory_budget_mb = \"lots\"\n", &["t"]).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (2, Some("memory_budget_mb"))
        );
        assert!(err.message.contains("invalid value 'lots'"), "{err}");
        assert!(err.message.contains("--memory-budget-mb"), "{err}");

        let err = resolve("memory-budget-mb = 5\n", &["t"]).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(
            err.message.contains("did you mean `memory_budget_mb`"),
            "{err}"
        );

        let err = resolve("a = 1\nhttp_adr = \"x\"\n", &["t"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hg.toml:1: key `a`: unknown key (`hourglass config example` prints every key)"
        );

        let err = resolve("http_addr = \"nowhere\"\n", &["t"]).unwrap_err();
        assert!(err.message.contains("invalid value 'nowhere'"), "{err}");

        let err = resolve("http_addr = [\"127.0.0.1:1\"]\n", &["t"]).unwrap_err();
        assert!(err.message.contains("not an array"), "{err}");

        let err = resolve("verbose = \"yes\"\n", &["t"]).unwrap_err();
        assert!(err.message.contains("true or false"), "{err}");

        let err = resolve("mqtt = 3\n", &["t"]).unwrap_err();
        assert!(err.message.contains("is a section"), "{err}");

        let err = resolve("config = \"other.toml\"\n", &["t"]).unwrap_err();
        assert!(err.message.contains("unknown key"), "{err}");
    }
}
