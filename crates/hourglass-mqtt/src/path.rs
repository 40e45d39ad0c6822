//! JSON paths of the mapping: `a.b.c`, `readings[0].value`, `$.device` (`$.` = the message root,
//! never a reading of `records_path`). Keys are split on `.`; `[N]` indexes an array.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    /// Written with `$.`: looked up in the message root only.
    pub rooted: bool,
    pub steps: Vec<Step>,
    /// As written, for error messages.
    pub text: String,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let (rooted, rest) = match text.strip_prefix('$') {
            Some(r) => (true, r.strip_prefix('.').unwrap_or(r)),
            None => (false, text),
        };
        if rest.is_empty() {
            return Err(format!("path '{text}' names nothing"));
        }
        let mut steps = Vec::new();
        for part in rest.split('.') {
            let (key, mut indexes) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && indexes.is_empty() {
                return Err(format!("path '{text}' has an empty key"));
            }
            if !key.is_empty() {
                steps.push(Step::Key(key.to_string()));
            }
            while !indexes.is_empty() {
                let close = indexes
                    .find(']')
                    .ok_or_else(|| format!("path '{text}': '[' without ']'"))?;
                let n: usize = indexes[1..close].parse().map_err(|_| {
                    format!(
                        "path '{text}': '{}' is not an array index",
                        &indexes[1..close]
                    )
                })?;
                steps.push(Step::Index(n));
                indexes = &indexes[close + 1..];
                if !indexes.is_empty() && !indexes.starts_with('[') {
                    return Err(format!("path '{text}': expected '.' or '[' after ']'"));
                }
            }
        }
        Ok(JsonPath {
            rooted,
            steps,
            text: text.to_string(),
        })
    }

    /// The value at this path under `value`, if any (JSON `null` counts as absent).
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        let mut v = value;
        for step in &self.steps {
            v = match step {
                Step::Key(k) => v.as_object()?.get(k)?,
                Step::Index(i) => v.as_array()?.get(*i)?,
            };
        }
        (!v.is_null()).then_some(v)
    }

    /// Looked up in `record` first (unless rooted), then in `root`.
    pub fn lookup<'a>(&self, record: &'a Value, root: &'a Value) -> Option<&'a Value> {
        if self.rooted {
            return self.get(root);
        }
        self.get(record).or_else(|| {
            if std::ptr::eq(record, root) {
                None
            } else {
                self.get(root)
            }
        })
    }

    /// The top-level key of the path (what auto-measures skip), if it starts with a key.
    pub fn first_key(&self) -> Option<&str> {
        match self.steps.first() {
            Some(Step::Key(k)) => Some(k),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_keys_indexes_and_root() {
        let p = JsonPath::parse("a.b[2].c").unwrap();
        assert!(!p.rooted);
        assert_eq!(
            p.steps,
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(2),
                Step::Key("c".into())
            ]
        );
        assert!(JsonPath::parse("$.device").unwrap().rooted);
        assert_eq!(JsonPath::parse("x[0][1]").unwrap().steps.len(), 3);
        for bad in ["", "$", "a..b", "a[", "a[x]", "a[0]b", ".a"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn looks_in_the_record_then_the_envelope() {
        let root = json!({"device": "d1", "r": [{"v": 1, "device": "d2"}, {"v": 2}]});
        let r0 = &root["r"][0];
        let r1 = &root["r"][1];
        let dev = JsonPath::parse("device").unwrap();
        assert_eq!(dev.lookup(r0, &root), Some(&json!("d2")));
        assert_eq!(dev.lookup(r1, &root), Some(&json!("d1")));
        let rooted = JsonPath::parse("$.device").unwrap();
        assert_eq!(rooted.lookup(r0, &root), Some(&json!("d1")));
        assert_eq!(
            JsonPath::parse("r[1].v").unwrap().get(&root),
            Some(&json!(2))
        );
        assert_eq!(JsonPath::parse("nope").unwrap().lookup(r0, &root), None);
        assert_eq!(JsonPath::parse("a").unwrap().get(&json!({"a": null})), None);
    }
}
