//! SPIRE's workload and node selectors: `type:value`, e.g. `unix:uid:1000`.
//!
//! The type is everything before the first `:`; the value is the rest and may itself contain `:`.

use std::fmt;
use std::str::FromStr;

use crate::id::error::Shown;

/// Longest selector type accepted, in bytes.
pub const MAX_KIND_LEN: usize = 64;

/// Longest selector value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;

/// Why a selector is invalid. Messages name the offending value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// The text form has no `:` separating type and value.
    #[error("selector {input} has no ':': the form is type:value")]
    MissingSeparator {
        /// The input, quoted and shortened.
        input: Shown,
    },

    /// The type is empty.
    #[error("selector type is empty: the type must not be empty")]
    EmptyKind,

    /// The value is empty.
    #[error("selector value of type {kind} is empty: the value must not be empty")]
    EmptyValue {
        /// The type, quoted and shortened.
        kind: Shown,
    },

    /// The type contains `:`.
    #[error("selector type {kind} contains ':': the type must not contain ':'")]
    ColonInKind {
        /// The type, quoted and shortened.
        kind: Shown,
    },

    /// A control character in the type or value.
    #[error(
        "selector {part} {text} contains a control character: control characters are not allowed"
    )]
    ControlChar {
        /// `type` or `value`.
        part: &'static str,
        /// The offending part, quoted, escaped and shortened.
        text: Shown,
    },

    /// The type or value is only whitespace.
    #[error("selector {part} {text} is only whitespace: it must contain a visible character")]
    OnlyWhitespace {
        /// `type` or `value`.
        part: &'static str,
        /// The offending part, quoted and shortened.
        text: Shown,
    },

    /// The type or value is too long.
    #[error("selector {part} {text} is {len} bytes long: at most {max} bytes are allowed")]
    TooLong {
        /// `type` or `value`.
        part: &'static str,
        /// The offending part, quoted and shortened.
        text: Shown,
        /// Its length in bytes.
        len: usize,
        /// The limit for this part.
        max: usize,
    },
}

/// A validated selector: a non-empty type without `:` and a non-empty value.
///
/// Ordering is by type, then value, so sorted selector sets compare stably.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Selector {
    kind: String,
    value: String,
}

impl Selector {
    /// Builds a selector from its type (e.g. `unix`) and value (e.g. `uid:1000`).
    ///
    /// # Errors
    ///
    /// [`SelectorError`] when the type is empty, contains `:` or is over 64 bytes, the value is
    /// empty or over 1024 bytes, or either has control characters or is whitespace only.
    pub fn new(kind: &str, value: &str) -> Result<Self, SelectorError> {
        if kind.is_empty() {
            return Err(SelectorError::EmptyKind);
        }
        if kind.contains(':') {
            return Err(SelectorError::ColonInKind {
                kind: Shown::new(kind),
            });
        }
        check_part("type", kind, MAX_KIND_LEN)?;

        if value.is_empty() {
            return Err(SelectorError::EmptyValue {
                kind: Shown::new(kind),
            });
        }
        check_part("value", value, MAX_VALUE_LEN)?;

        Ok(Selector {
            kind: kind.to_owned(),
            value: value.to_owned(),
        })
    }

    /// Parses the text form `type:value`, splitting at the first `:`.
    ///
    /// # Errors
    ///
    /// [`SelectorError::MissingSeparator`] without a `:`, otherwise as [`Selector::new`].
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        match s.split_once(':') {
            Some((kind, value)) => Self::new(kind, value),
            None => Err(SelectorError::MissingSeparator {
                input: Shown::new(s),
            }),
        }
    }

    /// The type, e.g. `unix`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The value, e.g. `uid:1000`.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Selector {
    /// Writes `type:value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn check_part(part: &'static str, text: &str, max: usize) -> Result<(), SelectorError> {
    if text.len() > max {
        return Err(SelectorError::TooLong {
            part,
            text: Shown::new(text),
            len: text.len(),
            max,
        });
    }
    if text.chars().any(char::is_control) {
        return Err(SelectorError::ControlChar {
            part,
            text: Shown::new(text),
        });
    }
    if text.chars().all(char::is_whitespace) {
        return Err(SelectorError::OnlyWhitespace {
            part,
            text: Shown::new(text),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_may_contain_colons() {
        let s = Selector::parse("unix:uid:1000").unwrap();
        assert_eq!(s.kind(), "unix");
        assert_eq!(s.value(), "uid:1000");
        assert_eq!(s.to_string(), "unix:uid:1000");
        assert_eq!(
            Selector::new("k8s", "ns:default").unwrap().to_string(),
            "k8s:ns:default"
        );
    }

    #[test]
    fn display_and_parse_round_trip() {
        for text in [
            "unix:user:root",
            "docker:label:a=b c",
            "x:y",
            "spiffe_id:spiffe://td/a",
        ] {
            let s: Selector = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
            assert_eq!(Selector::new(s.kind(), s.value()).unwrap(), s);
        }
    }

    #[test]
    fn rejects_missing_separator_and_empty_parts() {
        assert!(matches!(
            Selector::parse("unix"),
            Err(SelectorError::MissingSeparator { .. })
        ));
        assert_eq!(Selector::parse(":uid:1"), Err(SelectorError::EmptyKind));
        assert!(matches!(
            Selector::parse("unix:"),
            Err(SelectorError::EmptyValue { .. })
        ));
        assert!(matches!(
            Selector::new("a:b", "c"),
            Err(SelectorError::ColonInKind { .. })
        ));
    }

    #[test]
    fn rejects_control_characters_and_whitespace_only_parts() {
        assert!(matches!(
            Selector::new("unix", "uid\n1"),
            Err(SelectorError::ControlChar { part: "value", .. })
        ));
        assert!(matches!(
            Selector::new("un\0ix", "uid"),
            Err(SelectorError::ControlChar { part: "type", .. })
        ));
        assert!(matches!(
            Selector::new("unix", "  \t "),
            Err(SelectorError::ControlChar { .. } | SelectorError::OnlyWhitespace { .. })
        ));
        assert!(matches!(
            Selector::new("unix", "   "),
            Err(SelectorError::OnlyWhitespace { part: "value", .. })
        ));
        assert!(matches!(
            Selector::new(" ", "x"),
            Err(SelectorError::OnlyWhitespace { part: "type", .. })
        ));
    }

    #[test]
    fn caps_type_at_64_and_value_at_1024_bytes() {
        assert!(Selector::new(&"t".repeat(64), &"v".repeat(1024)).is_ok());
        let err = Selector::new(&"t".repeat(65), "v").unwrap_err();
        assert!(matches!(
            err,
            SelectorError::TooLong {
                part: "type",
                len: 65,
                max: 64,
                ..
            }
        ));
        let err = Selector::new("t", &"v".repeat(1025)).unwrap_err();
        assert!(matches!(
            err,
            SelectorError::TooLong {
                part: "value",
                len: 1025,
                ..
            }
        ));
        assert!(err.to_string().contains("at most 1024 bytes"), "{err}");
    }

    #[test]
    fn orders_by_type_then_value() {
        let mut v: Vec<Selector> = ["unix:uid:2", "k8s:ns:a", "unix:gid:5"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let texts: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["k8s:ns:a", "unix:gid:5", "unix:uid:2"]);
    }

    #[test]
    fn serde_uses_the_text_form() {
        let s = Selector::parse("unix:uid:0").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"unix:uid:0\"");
        assert_eq!(serde_json::from_str::<Selector>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Selector>("\"nocolon\"").is_err());
    }
}
