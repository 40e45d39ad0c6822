//! Topic templates (`factory/{site}/{device}/telemetry`): which topic levels become dimensions,
//! and table names that use them (`"{kind}"`).

/// One level of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    /// Must equal the topic's level.
    Literal(String),
    /// `{name}`: any one level, kept under `name`.
    Var(String),
    /// `+`: any one level, not kept.
    Any,
    /// `#` (last): any number of levels, zero included.
    Rest,
}

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    levels: Vec<Level>,
}

impl TopicTemplate {
    pub fn parse(text: &str) -> Result<TopicTemplate, String> {
        if text.is_empty() {
            return Err("the topic template is empty".into());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let level = if *part == "#" {
                if i + 1 != parts.len() {
                    return Err(format!("'{text}': '#' must be the last level"));
                }
                Level::Rest
            } else if *part == "+" {
                Level::Any
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err(format!("'{text}': level '{part}' is not a {{name}}"));
                }
                if names.contains(&name) {
                    return Err(format!("'{text}': {{{name}}} appears twice"));
                }
                names.push(name);
                Level::Var(name.to_string())
            } else if part.contains(['{', '}', '+', '#']) {
                return Err(format!(
                    "'{text}': level '{part}' mixes text with a placeholder; a {{name}}, + or # \
                     must be a whole level"
                ));
            } else {
                Level::Literal(part.to_string())
            };
            levels.push(level);
        }
        Ok(TopicTemplate { levels })
    }

    /// The variable names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.levels.iter().filter_map(|l| match l {
            Level::Var(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// The `(name, level)` pairs of a matching topic, or why it does not match.
    pub fn capture<'t>(&self, topic: &'t str) -> Result<Vec<(&str, &'t str)>, String> {
        let mut out = Vec::new();
        let mut parts = topic.split('/');
        for level in &self.levels {
            if *level == Level::Rest {
                return Ok(out);
            }
            let Some(part) = parts.next() else {
                return Err(format!(
                    "topic '{topic}' has fewer levels than the topic template"
                ));
            };
            match level {
                Level::Literal(l) if l != part => {
                    return Err(format!(
                        "topic '{topic}' does not match the topic template (level '{part}' is not '{l}')"
                    ))
                }
                Level::Var(name) => {
                    if part.is_empty() {
                        return Err(format!("topic '{topic}': level {{{name}}} is empty"));
                    }
                    out.push((name.as_str(), part));
                }
                _ => {}
            }
        }
        if parts.next().is_some() {
            return Err(format!(
                "topic '{topic}' has more levels than the topic template"
            ));
        }
        Ok(out)
    }
}

/// A table name, literal or with `{name}` placeholders filled from the topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// Literal text and variable names, alternating as written.
    parts: Vec<(bool, String)>,
}

impl TableName {
    pub fn parse(text: &str, topic: Option<&TopicTemplate>) -> Result<TableName, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(|| format!("'{text}': '{{' without '}}'"))?;
            if open > 0 {
                parts.push((false, rest[..open].to_string()));
            }
            let name = &rest[open + 1..close];
            let known = topic.is_some_and(|t| t.names().any(|n| n == name));
            if !known {
                return Err(format!(
                    "'{text}': {{{name}}} is not a variable of topic_template"
                ));
            }
            parts.push((true, name.to_string()));
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("'{text}': '}}' without '{{'"));
        }
        if !rest.is_empty() {
            parts.push((false, rest.to_string()));
        }
        if parts.is_empty() {
            return Err("the table name is empty".into());
        }
        if parts.iter().all(|(var, _)| !var) {
            hourglass_core::names::validate_object_name("table", text).map_err(|e| e.message)?;
        }
        Ok(TableName { parts })
    }

    /// Whether the name uses the variable `name` (such variables are not also dimensions).
    pub fn uses(&self, name: &str) -> bool {
        self.parts.iter().any(|(var, n)| *var && n == name)
    }

    /// The name for a topic's captured variables.
    pub fn render(&self, vars: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (var, text) in &self.parts {
            if *var {
                if let Some((_, v)) = vars.iter().find(|(n, _)| n == text) {
                    out.push_str(v);
                }
            } else {
                out.push_str(text);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_named_levels() {
        let t = TopicTemplate::parse("factory/{site}/{device}/telemetry").unwrap();
        assert_eq!(
            t.capture("factory/berlin/press-7/telemetry").unwrap(),
            vec![("site", "berlin"), ("device", "press-7")]
        );
        assert!(t.capture("factory/berlin/press-7/status").is_err());
        assert!(t.capture("factory/berlin/telemetry").is_err());
        assert!(t.capture("factory/berlin/press-7/telemetry/x").is_err());
        assert!(t.capture("factory//press-7/telemetry").is_err());
    }

    #[test]
    fn plus_and_hash() {
        let t = TopicTemplate::parse("+/{device}/#").unwrap();
        assert_eq!(t.capture("a/d1").unwrap(), vec![("device", "d1")]);
        assert_eq!(t.capture("a/d1/x/y").unwrap(), vec![("device", "d1")]);
        assert!(t.capture("a").is_err());
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in ["", "a/#/b", "a/x{y}", "a/{}", "{a}/{a}", "a/b+"] {
            assert!(
                TopicTemplate::parse(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn table_names_from_topic_levels() {
        let t = TopicTemplate::parse("plant/{kind}/{device}").unwrap();
        let name = TableName::parse("m_{kind}", Some(&t)).unwrap();
        assert!(name.uses("kind") && !name.uses("device"));
        let vars = t.capture("plant/temp/d1").unwrap();
        assert_eq!(name.render(&vars), "m_temp");
        assert!(TableName::parse("{nope}", Some(&t)).is_err());
        assert!(TableName::parse("{kind}", None).is_err());
        assert!(TableName::parse("a{kind", Some(&t)).is_err());
        assert!(TableName::parse("_reserved", None).is_err());
        assert_eq!(
            TableName::parse("plain", None).unwrap().render(&[]),
            "plain"
        );
    }
}
