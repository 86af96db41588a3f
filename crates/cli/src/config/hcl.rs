//! HCL text to a small tree of [`Entry`]s that remember their line, and the typed readers the
//! `server {}`, `agent {}` and plugin walkers use.
//!
//! SPIRE parses HCL 1, where `plugin_data { .. }` and `plugin_data = { .. }` mean the same; the
//! parser here (hcl-edit, HCL 2) keeps them apart, so both become an [`Entry`] whose value is
//! [`Value::Object`]. Expressions beyond literals (variables, function calls, interpolation)
//! are refused: a SPIRE file has none.

use std::path::PathBuf;
use std::time::Duration;

use hcl::edit::Span;
use hcl::edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl::edit::structure::{Body, Structure};
use hcl::edit::template::{Element, Template};

use super::error::ConfigError;

/// An attribute (`key = value`) or a block (`key "label" { .. }`) with its 1-based line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    /// The attribute key or block identifier.
    pub(crate) key: String,
    /// Block labels; empty for attributes.
    pub(crate) labels: Vec<String>,
    /// Line of the key.
    pub(crate) line: usize,
    /// The value; a block's body is an [`Value::Object`].
    pub(crate) value: Value,
}

/// A literal HCL value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// A string without interpolation.
    String(String),
    /// `[ .. ]`.
    List(Vec<Value>),
    /// `{ .. }` or a block body.
    Object(Vec<Entry>),
}

impl Value {
    /// The type's name for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a whole number",
            Value::Float(_) => "a fractional number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Object(_) => "a block or object",
        }
    }
}

/// Parses HCL text into its top-level entries.
///
/// # Errors
///
/// [`ConfigError::Syntax`] with the line and column, or [`ConfigError::InvalidValue`] for an
/// expression that is not a literal.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, ConfigError> {
    let body = hcl::edit::parser::parse_body(text).map_err(|e| {
        let line = e.location().line();
        let one_line_nested = text
            .lines()
            .nth(line.saturating_sub(1))
            .is_some_and(block_inside_one_line_block);
        ConfigError::Syntax {
            line,
            column: e.location().column(),
            message: if one_line_nested {
                "a block inside a one-line block is HCL1 syntax: put the inner block on its own \
                 line"
                    .to_owned()
            } else {
                e.message().to_owned()
            },
        }
    })?;
    let lines = LineIndex::new(text);
    body_entries(&body, &lines)
}

/// Whether `line` opens a block and, on the same line, another one inside it (`A "a" { b {} }`):
/// HCL1, which SPIRE reads, allows it; HCL2 wants a one-line block to hold one attribute at most.
fn block_inside_one_line_block(line: &str) -> bool {
    let Some((_, inner)) = line.split_once('{') else {
        return false;
    };
    let inner = inner.trim_start();
    let ident_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(inner.len());
    if ident_len == 0 {
        return false;
    }
    let mut rest = inner[ident_len..].trim_start();
    // Labels: `"name"` as many times as written.
    while let Some(after_quote) = rest.strip_prefix('"') {
        let Some(end) = after_quote.find('"') else {
            return false;
        };
        rest = after_quote[end + 1..].trim_start();
    }
    rest.starts_with('{')
}

/// Byte offsets where lines start, to turn spans into line numbers.
pub(crate) struct LineIndex(Vec<usize>);

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self(starts)
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }

    fn of(&self, span: Option<std::ops::Range<usize>>, fallback: usize) -> usize {
        span.map_or(fallback, |s| self.line(s.start))
    }
}

fn body_entries(body: &Body, lines: &LineIndex) -> Result<Vec<Entry>, ConfigError> {
    body.iter()
        .map(|structure| match structure {
            Structure::Attribute(attr) => {
                let line = lines.of(attr.key.span(), lines.of(attr.span(), 0));
                let key = attr.key.as_str().to_owned();
                let value = expression(&attr.value, &key, line, lines)?;
                Ok(Entry {
                    key,
                    labels: Vec::new(),
                    line,
                    value,
                })
            }
            Structure::Block(block) => Ok(Entry {
                key: block.ident.as_str().to_owned(),
                labels: block.labels.iter().map(|l| l.as_str().to_owned()).collect(),
                line: lines.of(block.ident.span(), lines.of(block.span(), 0)),
                value: Value::Object(body_entries(&block.body, lines)?),
            }),
        })
        .collect()
}

fn expression(
    expr: &Expression,
    key: &str,
    line: usize,
    lines: &LineIndex,
) -> Result<Value, ConfigError> {
    let not_literal = |what: &str| ConfigError::InvalidValue {
        key: key.to_owned(),
        value: what.to_owned(),
        line,
        rule: "only literal values are accepted (strings, numbers, booleans, lists, objects)"
            .to_owned(),
    };
    Ok(match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => number(n.value(), false).ok_or_else(|| not_literal("a number"))?,
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::StringTemplate(t) => Value::String(template(t, key, line)?),
        Expression::HeredocTemplate(h) => Value::String(template(&h.template, key, line)?),
        Expression::Array(items) => Value::List(
            items
                .iter()
                .map(|item| expression(item, key, line, lines))
                .collect::<Result<_, _>>()?,
        ),
        Expression::Object(object) => Value::Object(
            object
                .iter()
                .map(|(k, v)| {
                    let (name, span) = match k {
                        ObjectKey::Ident(ident) => (ident.as_str().to_owned(), ident.span()),
                        ObjectKey::Expression(e) => match e {
                            Expression::String(s) => (s.value().clone(), s.span()),
                            _ => return Err(not_literal("a computed object key")),
                        },
                    };
                    let line = lines.of(span, line);
                    Ok(Entry {
                        value: expression(v.expr(), &name, line, lines)?,
                        key: name,
                        labels: Vec::new(),
                        line,
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Expression::UnaryOp(op) if *op.operator.value() == UnaryOperator::Neg => match &op.expr {
            Expression::Number(n) => {
                number(n.value(), true).ok_or_else(|| not_literal("a number"))?
            }
            _ => return Err(not_literal("an expression")),
        },
        Expression::Parenthesis(_)
        | Expression::Variable(_)
        | Expression::Conditional(_)
        | Expression::FuncCall(_)
        | Expression::Traversal(_)
        | Expression::UnaryOp(_)
        | Expression::BinaryOp(_)
        | Expression::ForExpr(_) => return Err(not_literal("an expression")),
    })
}

fn number(n: &hcl::Number, negate: bool) -> Option<Value> {
    match (n.as_i64(), negate) {
        (Some(i), false) => Some(Value::Int(i)),
        (Some(i), true) => i.checked_neg().map(Value::Int),
        (None, false) => n.as_f64().map(Value::Float),
        (None, true) => n.as_f64().map(|f| Value::Float(-f)),
    }
}

/// A quoted string or heredoc; interpolation (`${..}`) is refused with a pointer to
/// `--expand-env`, which is how SPIRE files reference the environment.
fn template(t: &Template, key: &str, line: usize) -> Result<String, ConfigError> {
    let mut out = String::new();
    for element in t.iter() {
        match element {
            Element::Literal(s) => out.push_str(s.value()),
            Element::Interpolation(_) | Element::Directive(_) => {
                return Err(ConfigError::InvalidValue {
                    key: key.to_owned(),
                    value: "\"${..}\"".to_owned(),
                    line,
                    rule: "HCL interpolation is not supported: to use environment variables \
                           pass --expand-env, which replaces $NAME and ${NAME} before parsing"
                        .to_owned(),
                });
            }
        }
    }
    Ok(out)
}

impl Entry {
    fn wrong(&self, expected: &'static str) -> ConfigError {
        ConfigError::WrongType {
            key: self.key.clone(),
            line: self.line,
            expected,
            found: self.value.type_name(),
        }
    }

    /// The value written back for messages (strings quoted).
    pub(crate) fn shown(&self) -> String {
        match &self.value {
            Value::String(s) => super::clip(s),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            other => other.type_name().to_owned(),
        }
    }

    /// An [`ConfigError::InvalidValue`] for this entry.
    pub(crate) fn invalid(&self, rule: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: self.key.clone(),
            value: self.shown(),
            line: self.line,
            rule: rule.into(),
        }
    }

    /// A string value.
    pub(crate) fn str(&self) -> Result<&str, ConfigError> {
        match &self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong("a string")),
        }
    }

    /// A non-empty string value as a path.
    pub(crate) fn path(&self) -> Result<PathBuf, ConfigError> {
        let s = self.str()?;
        if s.is_empty() {
            return Err(self.invalid("the path is empty"));
        }
        Ok(PathBuf::from(s))
    }

    /// A boolean.
    pub(crate) fn bool(&self) -> Result<bool, ConfigError> {
        match &self.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong("true or false")),
        }
    }

    /// A port: a whole number or, as SPIRE's own samples write it, a string of digits.
    pub(crate) fn port(&self) -> Result<u16, ConfigError> {
        let n = match &self.value {
            Value::Int(i) => *i,
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| self.invalid("a port is a number from 0 to 65535"))?,
            _ => return Err(self.wrong("a port number")),
        };
        u16::try_from(n).map_err(|_| self.invalid("a port is a number from 0 to 65535"))
    }

    /// The port of a server to connect to: as [`Self::port`], but port 0 (which means "any
    /// free port" only to a listener) is refused with the same range as every other value.
    pub(crate) fn server_port(&self) -> Result<u16, ConfigError> {
        const RULE: &str = "the port of a server is a number from 1 to 65535";
        match self.port() {
            Ok(0) => Err(self.invalid(RULE)),
            Ok(port) => Ok(port),
            Err(ConfigError::InvalidValue { .. }) => Err(self.invalid(RULE)),
            Err(other) => Err(other),
        }
    }

    /// A duration: whole seconds (`3600`, SPIRE's form) or a string with a unit (`"1h30m"`).
    pub(crate) fn duration(&self) -> Result<Duration, ConfigError> {
        match &self.value {
            Value::Int(i) => u64::try_from(*i)
                .map(Duration::from_secs)
                .map_err(|_| self.invalid("a duration cannot be negative")),
            Value::String(s) => {
                crate::duration::parse_typed(s).map_err(|problem| ConfigError::Duration {
                    key: self.key.clone(),
                    value: super::clip(s),
                    line: self.line,
                    problem,
                })
            }
            // A whole number beyond i64 reaches here as a float.
            Value::Float(f) if f.fract() == 0.0 && *f > 0.0 => Err(ConfigError::Duration {
                key: self.key.clone(),
                value: f.to_string(),
                line: self.line,
                problem: crate::duration::DurationError::TooLarge,
            }),
            _ => Err(self.wrong("a duration (seconds, or a string such as \"1h\")")),
        }
    }

    /// The entries of a block or object (`plugin_data {}` and `plugin_data = {}` alike).
    pub(crate) fn object(&self) -> Result<&[Entry], ConfigError> {
        match &self.value {
            Value::Object(entries) => Ok(entries),
            _ => Err(self.wrong("a block")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_of_keys_blocks_and_object_members() {
        let entries = parse(
            "# comment\nserver {\n  trust_domain = \"example.org\"\n\n  ca_subject = {\n    \
             country = [\"US\"]\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(entries[0].key, "server");
        assert_eq!(entries[0].line, 2);
        let server = entries[0].object().unwrap();
        assert_eq!(server[0].line, 3);
        assert_eq!(server[1].line, 5);
        let subject = server[1].object().unwrap();
        assert_eq!(subject[0].key, "country");
        assert_eq!(subject[0].line, 6);
    }

    #[test]
    fn block_and_object_forms_read_alike() {
        let a = parse("plugin_data {\n x = 1\n}\n").unwrap();
        let b = parse("plugin_data = {\n x = 1\n}\n").unwrap();
        assert_eq!(a[0].object().unwrap(), b[0].object().unwrap());
    }

    #[test]
    fn ports_accept_numbers_and_digit_strings() {
        let e = parse("a = 8081\nb = \"8081\"\nc = 70000\n").unwrap();
        assert_eq!(e[0].port().unwrap(), 8081);
        assert_eq!(e[1].port().unwrap(), 8081);
        assert!(e[2].port().unwrap_err().to_string().contains("70000"));
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        let e = parse("a = 3600\nb = \"1h30m\"\nc = \"soon\"\nd = -1\n").unwrap();
        assert_eq!(e[0].duration().unwrap(), Duration::from_secs(3600));
        assert_eq!(e[1].duration().unwrap(), Duration::from_secs(5400));
        let err = e[2].duration().unwrap_err().to_string();
        assert!(
            err.starts_with("c \"soon\" (line 3) is not a duration: use whole seconds"),
            "{err}"
        );
        assert!(e[3].duration().is_err());
    }

    #[test]
    fn durations_say_what_is_wrong() {
        let e = parse("ca_ttl = \"1x\"\nb = 18446744073709551616\nc = \" 1h\"\n").unwrap();
        assert_eq!(
            e[0].duration().unwrap_err().to_string(),
            "ca_ttl \"1x\" (line 1) is not a duration: use whole seconds (3600) or numbers with \
             units: ns, us (or µs), ms, s, m, h, d (1h30m, 500ms)"
        );
        assert_eq!(
            e[1].duration().unwrap_err().to_string(),
            "b 18446744073709552000 (line 2) is too large for a duration"
        );
        assert_eq!(
            e[2].duration().unwrap_err().to_string(),
            "c \" 1h\" (line 3) is not a duration: write it without spaces, such as 1h30m"
        );
    }

    #[test]
    fn names_a_block_inside_a_one_line_block_as_hcl1() {
        let err = parse("plugins {\n  NodeAttestor \"join_token\" { plugin_data {} }\n}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HCL syntax error at line 2, column ")
                && err.ends_with(
                    ": a block inside a one-line block is HCL1 syntax: put the inner block on \
                     its own line"
                ),
            "{err}"
        );
        assert!(parse("a { b = 1 }\n").is_ok());
    }

    #[test]
    fn clips_long_values_in_messages() {
        let text = format!("trust_domain = \"{}\"\n", "x".repeat(10_000));
        let err = parse(&text).unwrap()[0].invalid("bad").to_string();
        assert!(err.len() < 120, "{err}");
        assert!(err.contains("…"), "{err}");
    }

    #[test]
    fn refuses_interpolation_pointing_at_expand_env() {
        let err = parse("a = \"${HOME}/x\"\n").unwrap_err().to_string();
        assert!(err.contains("--expand-env"), "{err}");
    }

    #[test]
    fn refuses_expressions() {
        let err = parse("a = b\n").unwrap_err().to_string();
        assert!(err.contains("only literal values"), "{err}");
    }
}
