//! `hourglass config example`: a commented configuration file with every key, its help text,
//! its flag and environment variable, and its default — generated from the clap command, so it
//! cannot drift from the flags.

use std::fmt::Write;

use clap::Command;

use crate::flags::configurable;

/// Width of the help text's comment lines.
const WIDTH: usize = 98;

/// The example file of `command`'s flags, then the `sections` text (already commented TOML
/// examples of the data sources' sections). Every key is commented out: the file changes
/// nothing until a line is uncommented.
pub fn example(command: &Command, header: &str, sections: &[&str]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
    for arg in configurable(command) {
        out.push('\n');
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in wrap(&help, WIDTH - 2) {
            let _ = writeln!(out, "# {line}");
        }
        let long = arg.get_long().unwrap_or_default();
        match arg.get_env() {
            Some(env) => {
                let _ = writeln!(out, "# (--{long}, {})", env.to_string_lossy());
            }
            None => {
                let _ = writeln!(out, "# (--{long})");
            }
        }
        let key = arg.get_id().as_str();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        match defaults.as_slice() {
            [] if !arg.get_action().takes_values() => {
                let _ = writeln!(out, "# {key} = false");
            }
            [] => {
                let _ = writeln!(out, "# {key} = (not set)");
            }
            [one] => {
                let _ = writeln!(out, "# {key} = {}", toml_literal(one));
            }
            many => {
                let items: Vec<String> = many.iter().map(|v| toml_literal(v)).collect();
                let _ = writeln!(out, "# {key} = [{}]", items.join(", "));
            }
        }
    }
    for section in sections {
        out.push('\n');
        out.push_str(section.trim_end());
        out.push('\n');
    }
    out
}

/// A default value as TOML: numbers and booleans bare, everything else a quoted string.
fn toml_literal(value: &str) -> String {
    if value == "true" || value == "false" || value.parse::<i64>().is_ok() {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::{flag_arguments, ConfigFile};

    #[derive(Debug, Parser)]
    struct Args {
        /// Where the data lives.
        #[arg(long, env = "HGCFG_EX_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
        /// Budget.
        #[arg(long, default_value_t = 1024)]
        memory_budget_mb: usize,
        /// Optional store.
        #[arg(long)]
        object_store: Option<String>,
        /// A switch.
        #[arg(long)]
        verbose: bool,
    }

    #[test]
    fn every_key_is_listed_and_the_uncommented_example_loads() {
        let command = <Args as clap::CommandFactory>::command();
        let text = example(
            &command,
            "Hourglass\n\nmore",
            &["# [[mqtt]]\n# name = \"x\""],
        );
        assert!(text.contains("# Where the data lives\n# (--data-dir, HGCFG_EX_DATA_DIR)\n# data_dir = \"./data\"\n"), "{text}");
        assert!(text.contains("# memory_budget_mb = 1024\n"), "{text}");
        assert!(text.contains("# object_store = (not set)\n"), "{text}");
        assert!(text.contains("# verbose = false\n"), "{text}");
        assert!(text.ends_with("# [[mqtt]]\n# name = \"x\"\n"), "{text}");
        // Uncommenting every key with a default gives a file that loads and changes nothing.
        let uncommented: String = text
            .lines()
            .filter(|l| {
                l.starts_with("# ")
                    && l.contains(" = ")
                    && !l.contains("(not set)")
                    && !l.contains("name =")
            })
            .map(|l| format!("{}\n", &l[2..]))
            .collect();
        let file = ConfigFile::parse(Path::new("ex.toml"), uncommented).unwrap();
        assert_eq!(file.entries().len(), 3);
        let matches = command.clone().try_get_matches_from(["t"]).unwrap();
        let extra = flag_arguments(&file, &command, &matches, &[]).unwrap();
        let all = std::iter::once(std::ffi::OsString::from("t")).chain(extra);
        let args = <Args as clap::FromArgMatches>::from_arg_matches(
            &command.try_get_matches_from(all).unwrap(),
        )
        .unwrap();
        assert_eq!(args.memory_budget_mb, 1024);
        assert_eq!(args.data_dir, std::path::PathBuf::from("./data"));
        assert!(!args.verbose);
    }
}
