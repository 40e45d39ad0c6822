//! Templates of labels and annotations: the subset of Prometheus' (Go `text/template`) syntax
//! that alert rules commonly use.
//!
//! Supported inside `{{ }}`: `$labels`, `$labels.name` (also `.Labels`, `.Labels.name`),
//! `$value` (also `.Value`), string and number literals, the functions `humanize`,
//! `humanize1024`, `humanizePercentage`, `humanizeDuration`, `toUpper`, `toLower` and
//! `printf` (verbs `%s %v %d %f %g %e %%` with an optional precision), calls (`humanize $value`)
//! and pipes (`$value | humanize`), trim markers (`{{-`, `-}}`) and comments (`{{/* */}}`).
//! Anything else is a parse error, reported when the rule is created. A missing label renders as
//! the empty string (Prometheus' `missingkey=zero`).

use std::fmt::Write as _;

use crate::Labels;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Command>),
}

/// One stage of a pipeline: a lone operand or a function call. Later stages receive the
/// previous stage's result as their last argument.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Operand(Operand),
    Call(Func, Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Labels,
    Label(String),
    Value,
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Humanize,
    Humanize1024,
    HumanizePercentage,
    HumanizeDuration,
    ToUpper,
    ToLower,
    Printf,
}

impl Func {
    fn named(name: &str) -> Option<Func> {
        Some(match name {
            "humanize" => Func::Humanize,
            "humanize1024" => Func::Humanize1024,
            "humanizePercentage" => Func::HumanizePercentage,
            "humanizeDuration" => Func::HumanizeDuration,
            "toUpper" => Func::ToUpper,
            "toLower" => Func::ToLower,
            "printf" => Func::Printf,
            _ => return None,
        })
    }
}

/// The data a template sees: the instance's labels and value.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    pub labels: &'a Labels,
    pub value: Option<f64>,
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Num(f64),
    Map(Labels),
    Missing,
}

impl Template {
    /// Parses a template; errors say what is wrong and at which byte offset.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut nodes = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        let mut trim_next = false;
        while let Some(start) = rest.find("{{") {
            let mut literal = &rest[..start];
            if trim_next {
                literal = literal.trim_start();
            }
            let after_open = &rest[start + 2..];
            let trim_before = after_open.starts_with("- ")
                || after_open.starts_with("-\t")
                || after_open.starts_with("-\n");
            if trim_before {
                literal = literal.trim_end();
            }
            if !literal.is_empty() {
                nodes.push(Node::Text(literal.to_string()));
            }
            let at = offset + start;
            let end = find_close(after_open)
                .ok_or_else(|| format!("unclosed action `{{{{` at offset {at}"))?;
            let mut inner = &after_open[..end];
            if trim_before {
                inner = &inner[1..];
            }
            trim_next = inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-");
            if trim_next {
                inner = &inner[..inner.len() - 1];
            }
            let inner = inner.trim();
            if !(inner.starts_with("/*") && inner.ends_with("*/")) {
                let pipeline = parse_pipeline(inner).map_err(|e| format!("{e} at offset {at}"))?;
                nodes.push(Node::Action(pipeline));
            }
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        let literal = if trim_next { rest.trim_start() } else { rest };
        if let Some(at) = literal.find("}}") {
            return Err(format!("`}}}}` without `{{{{` at offset {}", offset + at));
        }
        if !literal.is_empty() {
            nodes.push(Node::Text(literal.to_string()));
        }
        Ok(Template { nodes })
    }

    /// Expands the template. An error (e.g. `humanize` of a label that is not a number) renders
    /// as Prometheus renders it: `<error expanding template: ...>`.
    pub fn expand(&self, data: TemplateData<'_>) -> String {
        self.try_expand(data)
            .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
    }

    /// Expands the template, or says why it cannot be.
    pub fn try_expand(&self, data: TemplateData<'_>) -> Result<String, String> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(pipeline) => {
                    let mut piped: Option<Val> = None;
                    for command in pipeline {
                        piped = Some(run_command(command, piped, data)?);
                    }
                    out.push_str(&render(&piped.unwrap_or(Val::Missing)));
                }
            }
        }
        Ok(out)
    }
}

/// The end of an action (`}}` outside string literals), relative to `s`.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'}' if !in_str && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn tokenize(s: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            tokens.push("|".into());
            i += 1;
        } else if c == '"' {
            let mut lit = String::from("\"");
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string literal".into()),
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => lit.push('\n'),
                            Some('t') => lit.push('\t'),
                            Some(&e @ ('"' | '\\')) => lit.push(e),
                            other => {
                                return Err(format!(
                                    "unknown escape `\\{}`",
                                    other.copied().unwrap_or(' ')
                                ))
                            }
                        }
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        lit.push(ch);
                        i += 1;
                    }
                }
            }
            tokens.push(lit);
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' && chars[i] != '"'
            {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        }
    }
    Ok(tokens)
}

fn parse_operand(token: &str) -> Result<Operand, String> {
    if let Some(lit) = token.strip_prefix('"') {
        return Ok(Operand::Str(lit.to_string()));
    }
    match token {
        "$labels" | ".Labels" => return Ok(Operand::Labels),
        "$value" | ".Value" => return Ok(Operand::Value),
        _ => {}
    }
    if let Some(name) = token
        .strip_prefix("$labels.")
        .or_else(|| token.strip_prefix(".Labels."))
    {
        if crate::is_label_name(name) {
            return Ok(Operand::Label(name.to_string()));
        }
        return Err(format!("`{token}`: `{name}` is not a label name"));
    }
    if token.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        if let Ok(n) = token.parse::<f64>() {
            return Ok(Operand::Num(n));
        }
    }
    if token.starts_with('$') {
        return Err(format!(
            "unknown variable `{token}` (known: $labels, $value)"
        ));
    }
    Err(format!("unsupported operand `{token}`"))
}

fn parse_pipeline(inner: &str) -> Result<Vec<Command>, String> {
    if inner.is_empty() {
        return Err("empty action `{{ }}`".into());
    }
    let tokens = tokenize(inner)?;
    let mut stages: Vec<Vec<String>> = vec![Vec::new()];
    for t in tokens {
        if t == "|" {
            stages.push(Vec::new());
        } else if let Some(last) = stages.last_mut() {
            last.push(t);
        }
    }
    let mut commands = Vec::new();
    for (n, stage) in stages.iter().enumerate() {
        let Some(first) = stage.first() else {
            return Err("empty pipeline stage around `|`".into());
        };
        let command = if let Some(func) = Func::named(first) {
            let args = stage[1..]
                .iter()
                .map(|t| parse_operand(t))
                .collect::<Result<Vec<_>, _>>()?;
            let given = args.len() + usize::from(n > 0);
            match func {
                Func::Printf => {
                    let Some(Operand::Str(format)) = args.first() else {
                        return Err("printf needs a format string as its first argument".into());
                    };
                    let verbs = check_printf(format)?;
                    if verbs != given - 1 {
                        return Err(format!(
                            "printf format `{format}` has {verbs} verbs for {} arguments",
                            given - 1
                        ));
                    }
                }
                _ if given != 1 => {
                    return Err(format!("`{first}` takes one argument, got {given}"));
                }
                _ => {}
            }
            Command::Call(func, args)
        } else {
            if n > 0 {
                return Err(format!("`{first}` after `|` is not a function"));
            }
            if stage.len() > 1 {
                return Err(format!(
                    "`{first}` is not a function (unknown: `{}`)",
                    stage.join(" ")
                ));
            }
            Command::Operand(parse_operand(first).map_err(|e| {
                if first.chars().all(|c| c.is_ascii_alphanumeric()) {
                    format!("unknown function `{first}`")
                } else {
                    e
                }
            })?)
        };
        commands.push(command);
    }
    Ok(commands)
}

/// One printf directive: verb and optional precision.
#[derive(Debug, Clone, Copy)]
struct Verb {
    verb: char,
    precision: Option<usize>,
}

/// Splits a printf format into literal text and verbs; `Err` names unsupported directives.
fn printf_parts(format: &str) -> Result<Vec<Result<String, Verb>>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            precision = Some(digits.parse::<usize>().unwrap_or(0));
        }
        match chars.next() {
            Some('%') if precision.is_none() => literal.push('%'),
            Some(verb @ ('s' | 'v' | 'd' | 'f' | 'g' | 'e')) => {
                parts.push(Ok(std::mem::take(&mut literal)));
                parts.push(Err(Verb { verb, precision }));
            }
            other => {
                return Err(format!(
                "printf directive `%{}` is not supported (use %s %v %d %f %g %e, optionally %.Nf)",
                other.map(String::from).unwrap_or_default()
            ))
            }
        }
    }
    parts.push(Ok(literal));
    Ok(parts)
}

fn check_printf(format: &str) -> Result<usize, String> {
    Ok(printf_parts(format)?.iter().filter(|p| p.is_err()).count())
}

fn operand_value(op: &Operand, data: TemplateData<'_>) -> Val {
    match op {
        Operand::Labels => Val::Map(data.labels.clone()),
        Operand::Label(name) => Val::Str(data.labels.get(name).cloned().unwrap_or_default()),
        Operand::Value => data.value.map_or(Val::Missing, Val::Num),
        Operand::Str(s) => Val::Str(s.clone()),
        Operand::Num(n) => Val::Num(*n),
    }
}

fn run_command(
    command: &Command,
    piped: Option<Val>,
    data: TemplateData<'_>,
) -> Result<Val, String> {
    match command {
        Command::Operand(op) => Ok(operand_value(op, data)),
        Command::Call(func, args) => {
            let mut vals: Vec<Val> = args.iter().map(|a| operand_value(a, data)).collect();
            vals.extend(piped);
            call(*func, &vals)
        }
    }
}

fn as_number(v: &Val, func: &str) -> Result<f64, String> {
    match v {
        Val::Num(n) => Ok(*n),
        Val::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{func}: `{s}` is not a number")),
        Val::Missing => Err(format!("{func}: no value")),
        Val::Map(_) => Err(format!("{func}: a label set is not a number")),
    }
}

fn call(func: Func, vals: &[Val]) -> Result<Val, String> {
    let first = vals.first().cloned().unwrap_or(Val::Missing);
    Ok(Val::Str(match func {
        Func::Humanize => humanize(as_number(&first, "humanize")?),
        Func::Humanize1024 => humanize1024(as_number(&first, "humanize1024")?),
        Func::HumanizePercentage => {
            format!(
                "{}%",
                fmt_g(as_number(&first, "humanizePercentage")? * 100.0, 4)
            )
        }
        Func::HumanizeDuration => humanize_duration(as_number(&first, "humanizeDuration")?),
        Func::ToUpper => render(&first).to_uppercase(),
        Func::ToLower => render(&first).to_lowercase(),
        Func::Printf => {
            let Val::Str(format) = &first else {
                return Err("printf: format is not a string".into());
            };
            printf(format, &vals[1..])?
        }
    }))
}

fn printf(format: &str, args: &[Val]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    for part in printf_parts(format)? {
        match part {
            Ok(text) => out.push_str(&text),
            Err(Verb { verb, precision }) => {
                let arg = args.next().cloned().unwrap_or(Val::Missing);
                match verb {
                    's' | 'v' => out.push_str(&render(&arg)),
                    'd' => {
                        let _ = write!(out, "{}", as_number(&arg, "printf %d")?.trunc() as i64);
                    }
                    'f' => {
                        let _ = write!(
                            out,
                            "{:.*}",
                            precision.unwrap_or(6),
                            as_number(&arg, "printf %f")?
                        );
                    }
                    'e' => out.push_str(&go_exponent(&format!(
                        "{:.*e}",
                        precision.unwrap_or(6),
                        as_number(&arg, "printf %e")?
                    ))),
                    _ => {
                        let n = as_number(&arg, "printf %g")?;
                        out.push_str(&match precision {
                            Some(p) => fmt_g(n, p.max(1)),
                            None => go_float(n),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn render(v: &Val) -> String {
    match v {
        Val::Str(s) => s.clone(),
        Val::Num(n) => go_float(*n),
        Val::Missing => String::new(),
        Val::Map(m) => {
            let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// Rust's `1.5e3` / `1.5e-7` as Go writes exponents: `1.5e+03`, `1.5e-07`.
fn go_exponent(s: &str) -> String {
    let Some((mantissa, exp)) = s.split_once('e') else {
        return s.to_string();
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Go's `%v` of a float64: shortest representation, exponent form outside [1e-4, 1e21).
pub fn go_float(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let abs = v.abs();
    if abs == 0.0 || (1e-4..1e21).contains(&abs) {
        format!("{v}")
    } else {
        go_exponent(&format!("{v:e}"))
    }
}

/// Go's `%.<precision>g`.
pub fn fmt_g(v: f64, precision: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", precision - 1, v);
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let (mantissa, e) = sci.split_once('e').unwrap_or((&sci, "0"));
        let mantissa = trim_zeros(mantissa);
        go_exponent(&format!("{mantissa}e{e}"))
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return fmt_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", fmt_g(v, 4))
}

/// Prometheus' `humanize1024`: binary prefixes, 4 significant digits.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return fmt_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", fmt_g(v, 4))
}

/// Prometheus' `humanizeDuration` of a number of seconds.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return fmt_g(v, 4);
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let total = v as i64;
        let (days, hours, minutes, seconds) = (
            total / 86400,
            (total / 3600) % 24,
            (total / 60) % 60,
            total % 60,
        );
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", fmt_g(v, 4))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", fmt_g(v, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str, labels: &[(&str, &str)], value: Option<f64>) -> String {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let t = Template::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        t.expand(TemplateData {
            labels: &labels,
            value,
        })
    }

    #[test]
    fn labels_and_value() {
        let l = [("symbol", "AAPL"), ("host", "h1")];
        assert_eq!(
            expand("{{ $labels.symbol }} is {{ $value }}", &l, Some(3.5)),
            "AAPL is 3.5"
        );
        assert_eq!(expand("{{.Labels.host}}/{{.Value}}", &l, Some(2.0)), "h1/2");
        assert_eq!(
            expand("{{ $labels }}", &l, None),
            "map[host:h1 symbol:AAPL]"
        );
        assert_eq!(expand("[{{ $labels.nope }}]", &l, None), "[]");
        assert_eq!(expand("[{{ $value }}]", &l, None), "[]");
        assert_eq!(expand("plain text", &l, None), "plain text");
        assert_eq!(expand("{{ $value }}", &l, Some(1e21)), "1e+21");
    }

    #[test]
    fn functions_and_pipes() {
        assert_eq!(
            expand("{{ humanize $value }}", &[], Some(1234567.0)),
            "1.235M"
        );
        assert_eq!(expand("{{ $value | humanize }}", &[], Some(0.0012)), "1.2m");
        assert_eq!(
            expand("{{ $value | humanize1024 }}", &[], Some(2048.0)),
            "2ki"
        );
        assert_eq!(
            expand("{{ humanizePercentage $value }}", &[], Some(0.1234)),
            "12.34%"
        );
        assert_eq!(
            expand("{{ humanizeDuration $value }}", &[], Some(3725.0)),
            "1h 2m 5s"
        );
        assert_eq!(
            expand("{{ humanizeDuration $value }}", &[], Some(0.05)),
            "50ms"
        );
        assert_eq!(
            expand("{{ humanizeDuration $value }}", &[], Some(90061.0)),
            "1d 1h 1m 1s"
        );
        assert_eq!(
            expand("{{ $labels.x | toUpper }}", &[("x", "ab")], None),
            "AB"
        );
        assert_eq!(
            expand(r#"{{ printf "%.2f%%" $value }}"#, &[], Some(12.3456)),
            "12.35%"
        );
        assert_eq!(
            expand(r#"{{ $value | printf "v=%v" }}"#, &[], Some(7.0)),
            "v=7"
        );
        assert_eq!(
            expand("{{ humanize $labels.n }}", &[("n", "2500")], None),
            "2.5k"
        );
        assert_eq!(
            expand("{{ humanize $labels.n }}", &[("n", "abc")], None),
            "<error expanding template: humanize: `abc` is not a number>"
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(expand("a  {{- $value -}}  b", &[], Some(1.0)), "a1b");
        assert_eq!(expand("a{{/* note */}}b", &[], None), "ab");
    }

    #[test]
    fn go_number_formats() {
        assert_eq!(fmt_g(1234.5678, 4), "1235");
        assert_eq!(fmt_g(12345.0, 4), "1.234e+04");
        assert_eq!(fmt_g(0.00001234, 4), "1.234e-05");
        assert_eq!(fmt_g(0.5, 4), "0.5");
        assert_eq!(go_float(0.1), "0.1");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
        assert_eq!(humanize(f64::NAN), "NaN");
        assert_eq!(humanize(-1500.0), "-1.5k");
    }

    #[test]
    fn unknown_syntax_is_an_error() {
        for (text, needle) in [
            ("{{ $nope }}", "unknown variable"),
            ("{{ frobnicate $value }}", "not a function"),
            ("{{ $value | frob }}", "not a function"),
            ("{{ $value ", "unclosed"),
            ("a }} b", "without"),
            ("{{ }}", "empty action"),
            ("{{ humanize }}", "one argument"),
            ("{{ humanize $value $value }}", "one argument"),
            (r#"{{ printf "%x" $value }}"#, "not supported"),
            (r#"{{ printf "%s %s" $value }}"#, "2 verbs for 1"),
            ("{{ if $value }}x{{ end }}", "not a function"),
            ("{{ range $labels }}", "not a function"),
            ("{{ $labels.a-b }}", "not a label name"),
            (r#"{{ "abc }}"#, "unclosed"),
            ("{{ .Foo }}", "unsupported operand"),
        ] {
            match Template::parse(text) {
                Ok(t) => panic!("{text:?} parsed as {t:?}"),
                Err(e) => assert!(e.contains(needle), "{text:?}: {e}"),
            }
        }
    }
}
