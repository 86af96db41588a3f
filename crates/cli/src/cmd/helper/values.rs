//! The helper keys whose values are more than a string: octal file modes and the `jwt_svids`
//! list of objects.

use crate::config::ConfigError;
use crate::config::hcl::{Entry, Value};
use crate::config::{Key, Scope};

/// One element of `jwt_svids`: a JWT-SVID for an audience, kept fresh in a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JwtSvidFile {
    /// The audience the token is for and validated against (`jwt_audience`).
    pub(crate) audience: String,
    /// More audiences the token also carries (`jwt_extra_audiences`).
    pub(crate) extra_audiences: Vec<String>,
    /// The file under `cert_dir` (`jwt_svid_file_name`).
    pub(crate) file_name: String,
}

impl JwtSvidFile {
    /// Every audience to ask the Workload API for: the main one first.
    pub(crate) fn audiences(&self) -> Vec<String> {
        std::iter::once(self.audience.clone())
            .chain(self.extra_audiences.iter().cloned())
            .collect()
    }
}

/// The keys of one `jwt_svids` element, as spiffe-helper has them.
const JWT_SVID_KEYS: &[(&str, Key)] = &[
    ("jwt_audience", Key::Mapped),
    ("jwt_extra_audiences", Key::Mapped),
    ("jwt_svid_file_name", Key::Mapped),
];

/// A file name inside `cert_dir`: not empty, no directory part.
pub(crate) fn file_name(entry: &Entry) -> Result<String, ConfigError> {
    let s = entry.str()?;
    if s.is_empty() || s.contains('/') || s == "." || s == ".." {
        return Err(entry.invalid("a file name, without '/', inside cert_dir"));
    }
    Ok(s.to_owned())
}

/// A file mode such as `0644`, read as octal digits the way spiffe-helper documents it.
///
/// HCL 2 has no octal literals, so `0644` arrives as the whole number 644: its decimal digits
/// are taken as the octal ones. A quoted `"0644"` is accepted too. Modes above `0777`
/// (setuid, sticky) and modes the owner cannot read are refused: the helper's readers must be
/// able to open what it writes.
pub(crate) fn file_mode(entry: &Entry) -> Result<u32, ConfigError> {
    let digits = match &entry.value {
        Value::Int(n) if *n >= 0 => n.to_string(),
        Value::String(s) => s.strip_prefix("0o").unwrap_or(s).to_owned(),
        _ => {
            return Err(
                entry.invalid("an octal file mode such as 0644 or \"0600\", between 0400 and 0777")
            );
        }
    };
    let mode = u32::from_str_radix(&digits, 8)
        .ok()
        .filter(|m| !digits.is_empty() && *m <= 0o777)
        .ok_or_else(|| {
            entry.invalid("an octal file mode such as 0644: digits 0-7, at most 0777")
        })?;
    if mode & 0o400 == 0 {
        return Err(
            entry.invalid("the owner must be able to read the file: give a mode of at least 0400")
        );
    }
    Ok(mode)
}

/// `jwt_svids = [{jwt_audience = "..", jwt_extra_audiences = [..], jwt_svid_file_name = ".."}]`.
pub(crate) fn jwt_svids(entry: &Entry) -> Result<Vec<JwtSvidFile>, ConfigError> {
    let Value::List(items) = &entry.value else {
        return Err(ConfigError::WrongType {
            key: entry.key.clone(),
            line: entry.line,
            expected: "a list of objects such as [{jwt_audience = \"db\", \
                       jwt_svid_file_name = \"db.token\"}]",
            found: entry.value.type_name(),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| jwt_svid(entry, i, item))
        .collect()
}

fn jwt_svid(entry: &Entry, index: usize, item: &Value) -> Result<JwtSvidFile, ConfigError> {
    let name = format!("jwt_svids[{index}]");
    let Value::Object(members) = item else {
        return Err(ConfigError::WrongType {
            key: name,
            line: entry.line,
            expected: "an object with jwt_audience and jwt_svid_file_name",
            found: item.type_name(),
        });
    };
    let prefix = format!("{name}.");
    let scope = Scope {
        block: &name,
        kind: "spiffe-helper",
        prefix: &prefix,
        keys: JWT_SVID_KEYS,
    };
    let mut audience = None;
    let mut extra_audiences = Vec::new();
    let mut file = None;
    crate::config::walk(members, &scope, |member| {
        match member.key.as_str() {
            "jwt_audience" => {
                let s = member.str()?;
                if s.is_empty() {
                    return Err(member.invalid("an audience is not empty"));
                }
                audience = Some(s.to_owned());
            }
            "jwt_extra_audiences" => extra_audiences = strings(member)?,
            "jwt_svid_file_name" => file = Some(file_name(member)?),
            _ => {}
        }
        Ok(())
    })?;
    let missing = |key: &str| ConfigError::InvalidValue {
        key: name.clone(),
        value: "{..}".to_owned(),
        line: entry.line,
        rule: format!("{key} is required in every element of jwt_svids"),
    };
    Ok(JwtSvidFile {
        audience: audience.ok_or_else(|| missing("jwt_audience"))?,
        extra_audiences,
        file_name: file.ok_or_else(|| missing("jwt_svid_file_name"))?,
    })
}

/// A list of non-empty strings.
fn strings(entry: &Entry) -> Result<Vec<String>, ConfigError> {
    let Value::List(items) = &entry.value else {
        return Err(ConfigError::WrongType {
            key: entry.key.clone(),
            line: entry.line,
            expected: "a list of strings",
            found: entry.value.type_name(),
        });
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(entry.invalid("every audience is a non-empty string")),
            other => Err(ConfigError::WrongType {
                key: entry.key.clone(),
                line: entry.line,
                expected: "a list of strings",
                found: other.type_name(),
            }),
        })
        .collect()
}
