//! HCL text to a small tree of [`Entry`]s that remember their line, and the typed readers the
//! `server {}`, `agent {}` and plugin walkers use.
//!
//! SPIRE parses HCL 1 ([`super::hcl1`] here), where `plugin_data { .. }` and
//! `plugin_data = { .. }` mean the same: both become an [`Entry`] whose value is
//! [`Value::Object`].

use std::path::PathBuf;
use std::time::Duration;

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
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a whole number",
            Value::Float(_) => "a fractional number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Object(_) => "a block or object",
        }
    }
}

/// Parses a SPIRE config file into its top-level entries, as written (labels kept; see
/// [`super::hcl_shape`] for the meaning SPIRE gives them). `0644` is octal, as in SPIRE.
///
/// # Errors
///
/// [`ConfigError::Syntax`] with the line and column, or [`ConfigError::InvalidValue`] for a
/// string with `${ .. }`.
pub(crate) fn parse_spire(text: &str) -> Result<Vec<Entry>, ConfigError> {
    super::hcl1::parse(text, super::hcl1::Zeros::Octal)
}

/// As [`parse_spire`], but `0644` is the whole number 644: the spiffe-helper reader takes file
/// modes from the digits as written.
///
/// # Errors
///
/// As [`parse_spire`].
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, ConfigError> {
    super::hcl1::parse(text, super::hcl1::Zeros::Decimal)
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
    fn reads_a_block_inside_a_one_line_block_as_hcl1_does() {
        let one_line =
            parse("plugins {\n  NodeAttestor \"join_token\" { plugin_data { a = 1 } }\n}\n")
                .unwrap();
        let lines =
            parse("plugins {\n  NodeAttestor \"join_token\" {\n plugin_data {\n a = 1\n}\n}\n}\n")
                .unwrap();
        let inner = |e: &[Entry]| e[0].object().unwrap()[0].object().unwrap().to_vec();
        assert_eq!(inner(&one_line)[0].key, "plugin_data");
        assert_eq!(
            inner(&one_line)[0].object().unwrap()[0].value,
            Value::Int(1)
        );
        assert_eq!(inner(&lines)[0].object().unwrap()[0].value, Value::Int(1));
    }

    #[test]
    fn spire_files_read_leading_zeros_as_octal_and_helper_files_as_digits() {
        assert_eq!(
            parse_spire("a = 017621\n").unwrap()[0].port().unwrap(),
            8081
        );
        assert_eq!(parse("a = 0644\n").unwrap()[0].value, Value::Int(644));
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
        assert_eq!(
            err,
            "HCL syntax error at line 1, column 5: a = `b`: a value is a string, a number, \
             true, false, a list [..] or an object {..}"
        );
    }
}
