//! Reading a configuration file: its top-level keys with their lines and values as text, and the
//! sections of data sources deserialised by their owners.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::error::{line_of, ConfigError};

/// A parsed configuration file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    entries: Vec<Entry>,
}

/// One top-level key of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    pub value: EntryValue,
}

/// A top-level value: flag values as the text a command line would carry, or a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryValue {
    /// A scalar (one element) or an array of scalars.
    Values { values: Vec<String>, array: bool },
    /// A table or an array of tables.
    Section,
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            key: None,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        ConfigFile::parse(path, text)
    }

    /// Parses `text`; `path` names the file in errors.
    pub fn parse(path: &Path, text: String) -> Result<ConfigFile, ConfigError> {
        let entries = parse_entries(path, &text)?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            text,
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Deserialises the whole file into `T`, a struct whose fields are the sections it owns
    /// (top-level keys it does not name are ignored: [`crate::flag_arguments`] checks those).
    /// Errors name the line, and serde's message names the field.
    pub fn sections<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(&self.text).map_err(|e| ConfigError {
            path: self.path.clone(),
            line: e.span().map(|s| line_of(&self.text, s.start)).unwrap_or(0),
            key: None,
            message: e.message().trim().to_string(),
        })
    }

    /// An error about element `index` of section `section` (an array of tables such as
    /// `[[mqtt]]`; 0 for a plain table) found by its owner after deserialising: the line is that
    /// of the element, `key` names the key (`mqtt[factory].url`).
    pub fn section_error(
        &self,
        section: &str,
        index: usize,
        key: Option<String>,
        message: String,
    ) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            line: self.element_line(section, index).unwrap_or(0),
            key,
            message,
        }
    }

    fn element_line(&self, section: &str, index: usize) -> Option<usize> {
        let table = DeTable::parse(&self.text).ok()?;
        let (key, value) = table
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == section)?;
        let start = match value.get_ref() {
            DeValue::Array(items) => items.get(index)?.span().start,
            _ => key.span().start,
        };
        Some(line_of(&self.text, start))
    }
}

fn parse_entries(path: &Path, text: &str) -> Result<Vec<Entry>, ConfigError> {
    let table = DeTable::parse(text).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
        key: None,
        message: format!("not valid TOML: {}", e.message().trim()),
    })?;
    let mut entries = Vec::new();
    for (key, value) in table.get_ref().iter() {
        let line = line_of(text, key.span().start);
        let name = key.get_ref().to_string();
        let error = |message: String| ConfigError {
            path: path.to_path_buf(),
            line,
            key: Some(name.clone()),
            message,
        };
        let value = match value.get_ref() {
            DeValue::Table(_) => EntryValue::Section,
            DeValue::Array(items) => {
                if items.iter().any(|i| i.get_ref().is_table()) {
                    EntryValue::Section
                } else {
                    let values = items
                        .iter()
                        .map(|i| scalar_text(i.get_ref()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(error)?;
                    EntryValue::Values {
                        values,
                        array: true,
                    }
                }
            }
            scalar => EntryValue::Values {
                values: vec![scalar_text(scalar).map_err(error)?],
                array: false,
            },
        };
        entries.push(Entry {
            key: name,
            line,
            value,
        });
    }
    entries.sort_by_key(|e| e.line);
    Ok(entries)
}

/// A scalar as a command line would write it.
fn scalar_text(value: &DeValue<'_>) -> Result<String, String> {
    Ok(match value {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map_err(|e| format!("integer out of range: {e}"))?
            .to_string(),
        DeValue::Float(f) => f.as_str().to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => return Err("an array inside an array is not a value here".into()),
        DeValue::Table(_) => return Err("a table inside an array is not a value here".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("hg.toml"), text.to_string())
    }

    #[test]
    fn scalars_arrays_and_sections_with_their_lines() {
        let file = parse(
            "# comment\ndata_dir = \"/var/lib/hg\"\nmemory_budget_mb = 0x10\nflag = true\n\
             list = [\"a\", 2]\n\n[[mqtt]]\nname = \"x\"\n",
        )
        .unwrap();
        let e = file.entries();
        assert_eq!(e.len(), 5);
        assert_eq!((e[0].key.as_str(), e[0].line), ("data_dir", 2));
        assert_eq!(
            e[1].value,
            EntryValue::Values {
                values: vec!["16".into()],
                array: false
            }
        );
        assert_eq!(
            e[2].value,
            EntryValue::Values {
                values: vec!["true".into()],
                array: false
            }
        );
        assert_eq!(
            e[3].value,
            EntryValue::Values {
                values: vec!["a".into(), "2".into()],
                array: true
            }
        );
        assert_eq!((e[4].key.as_str(), e[4].line), ("mqtt", 7));
        assert_eq!(e[4].value, EntryValue::Section);
    }

    #[test]
    fn malformed_toml_names_its_line() {
        let err = parse("a = 1\nb = \n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(
            err.to_string().starts_with("hg.toml:2: not valid TOML"),
            "{err}"
        );
    }

    #[test]
    fn sections_are_deserialised_with_positions() {
        #[derive(serde::Deserialize, Debug)]
        struct Sections {
            #[serde(default)]
            mqtt: Vec<Sub>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Sub {
            #[allow(dead_code)]
            name: String,
        }
        let file = parse("x = 1\n[[mqtt]]\nname = \"a\"\n[[mqtt]]\nnmae = \"b\"\n").unwrap();
        let err = file.sections::<Sections>().unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        assert!(err.message.contains("unknown field `nmae`"), "{err}");
        let err = file.section_error("mqtt", 1, Some("mqtt[b].url".into()), "bad".into());
        assert_eq!(err.to_string(), "hg.toml:4: key `mqtt[b].url`: bad");
        let ok = parse("x = 1\n[[mqtt]]\nname = \"a\"\n").unwrap();
        assert_eq!(ok.sections::<Sections>().unwrap().mqtt.len(), 1);
    }
}
