//! `entry create --data` and `entry update --data`: SPIRE's JSON form of a batch of entries.
//!
//! `{"entries": [{"spiffe_id": {"trust_domain": "example.org", "path": "/web"}, "parent_id":
//! ..., "selectors": [{"type": "unix", "value": "uid:1000"}], "x509_svid_ttl": 3600}]}`.
//! SPIRE reads this file with protobuf JSON, so the lowerCamel names (`spiffeId`,
//! `x509SvidTtl`, `trustDomain`, ...) are accepted as well, and 64-bit integers may be strings
//! (`"expiresAt": "1900000000"`), as `entry show -output json` of SPIRE writes them. IDs may
//! also be written as `spiffe://` strings and TTLs with a unit (`"1h"`).
//!
//! Two kinds of fault: malformed JSON, a wrong shape and unknown keys (a misspelt field must
//! never be silently dropped) refuse the whole file; a bad value in a known field (an invalid
//! ID, an out-of-range TTL) refuses only that item, which is reported with the others' results.

use std::io::Read;
use std::path::{Path, PathBuf};

use lanyard_proto::spire::api::types;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The most a `--data` file may hold; far beyond any real batch, it stops `/dev/zero` or a
/// wrong file from exhausting memory.
pub(crate) const MAX_DATA_BYTES: u64 = 64 * 1024 * 1024;

/// One entry of a `--data` file: the wire entry, or why it could not be built.
pub(crate) type Item = Result<types::Entry, ItemError>;

/// An entry of a `--data` file refused before sending; the rest of the file is still sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entries[{index}]: {message}")]
pub(crate) struct ItemError {
    /// Position in the file's `entries`.
    pub(crate) index: usize,
    /// The field and the rule its value breaks.
    pub(crate) message: String,
}

/// A `--data` file that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DataError {
    /// The file (or stdin) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file named by `--data`.
        path: PathBuf,
        /// The read failure.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_DATA_BYTES`].
    #[error("{path} is larger than the {} MiB limit for --data", MAX_DATA_BYTES >> 20)]
    TooLarge {
        /// The file named by `--data`.
        path: PathBuf,
    },
    /// Not JSON at all.
    #[error("{path} is not valid JSON: {source}")]
    Syntax {
        /// The file named by `--data`.
        path: PathBuf,
        /// Where the syntax broke.
        source: serde_json::Error,
    },
    /// JSON, but not `{"entries": [...]}`, or an entry with an unknown key or a wrong type.
    #[error("invalid entry data in {path}: {message}")]
    Shape {
        /// The file named by `--data`.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
}

/// Reads and converts the entries of `path` (`-` is stdin), one [`Item`] per entry in order.
///
/// # Errors
///
/// [`DataError`] when the file cannot be read, is over [`MAX_DATA_BYTES`], is not JSON, or
/// does not have SPIRE's shape.
pub(crate) fn read_entries(path: &Path) -> Result<Vec<Item>, DataError> {
    let bytes = read_bytes(path)?;
    parse(&bytes).map_err(|e| match e {
        ParseError::Syntax(source) => DataError::Syntax {
            path: path.to_path_buf(),
            source,
        },
        ParseError::Shape(message) => DataError::Shape {
            path: path.to_path_buf(),
            message,
        },
    })
}

/// The bytes of `path` (`-` is stdin), at most [`MAX_DATA_BYTES`].
///
/// # Errors
///
/// [`DataError::Read`] or [`DataError::TooLarge`].
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    if path == Path::new("-") {
        return read_limited(std::io::stdin().lock(), path);
    }
    let file = std::fs::File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    read_limited(file, path)
}

/// Reads at most [`MAX_DATA_BYTES`] from `r`.
fn read_limited(r: impl Read, path: &Path) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    r.take(MAX_DATA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_DATA_BYTES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

enum ParseError {
    Syntax(serde_json::Error),
    Shape(String),
}

fn parse(bytes: &[u8]) -> Result<Vec<Item>, ParseError> {
    let top: Value = serde_json::from_slice(bytes).map_err(ParseError::Syntax)?;
    let Value::Object(mut top) = top else {
        return Err(ParseError::Shape(format!(
            "expected an object {{\"entries\": [...]}}, found {}",
            kind(&top)
        )));
    };
    if let Some(key) = top.keys().find(|k| *k != "entries") {
        return Err(ParseError::Shape(format!(
            "unknown key {key:?}: only \"entries\" is allowed at the top level"
        )));
    }
    let entries = match top.remove("entries") {
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(ParseError::Shape(format!(
                "\"entries\": expected an array, found {}",
                kind(&other)
            )));
        }
        None => return Err(ParseError::Shape("\"entries\" is missing".into())),
    };
    if entries.is_empty() {
        return Err(ParseError::Shape(
            "\"entries\" is empty: nothing to do".into(),
        ));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            if !v.is_object() {
                return Err(ParseError::Shape(format!(
                    "entries[{index}]: expected an object, found {}",
                    kind(&v)
                )));
            }
            let e: DataEntry = serde_json::from_value(v)
                .map_err(|e| ParseError::Shape(format!("entries[{index}]: {e}")))?;
            Ok(convert(e).map_err(|message| ItemError { index, message }))
        })
        .collect()
}

/// How an unexpected JSON value is named in messages, without Rust type names.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataEntry {
    #[serde(default)]
    id: String,
    #[serde(alias = "spiffeId", default)]
    spiffe_id: Value,
    #[serde(alias = "parentId", default)]
    parent_id: Value,
    #[serde(default)]
    selectors: Vec<DataSelector>,
    #[serde(alias = "x509SvidTtl", default)]
    x509_svid_ttl: Option<Value>,
    #[serde(alias = "jwtSvidTtl", default)]
    jwt_svid_ttl: Option<Value>,
    #[serde(alias = "federatesWith", default)]
    federates_with: Vec<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    downstream: bool,
    #[serde(alias = "expiresAt", default, deserialize_with = "int64")]
    expires_at: i64,
    #[serde(alias = "dnsNames", default)]
    dns_names: Vec<String>,
    #[serde(alias = "revisionNumber", default, deserialize_with = "int64")]
    revision_number: i64,
    #[serde(alias = "storeSvid", default)]
    store_svid: bool,
    #[serde(default)]
    hint: String,
    #[serde(alias = "createdAt", default, deserialize_with = "int64")]
    created_at: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSelector {
    r#type: String,
    value: String,
}

/// An `int64` as protobuf JSON allows it: a number or a decimal string.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Number(i64),
        Text(String),
    }
    match Int64::deserialize(d) {
        Ok(Int64::Number(n)) => Ok(n),
        Ok(Int64::Text(s)) => s.parse().map_err(|_| {
            serde::de::Error::custom(format!("{s:?} is not a whole number of seconds"))
        }),
        Err(_) => Err(serde::de::Error::custom(
            "expected a whole number or a decimal string",
        )),
    }
}

fn convert(e: DataEntry) -> Result<types::Entry, String> {
    Ok(types::Entry {
        id: e.id,
        spiffe_id: Some(id("spiffe_id", &e.spiffe_id)?),
        parent_id: Some(id("parent_id", &e.parent_id)?),
        selectors: e
            .selectors
            .into_iter()
            .map(|s| types::Selector {
                r#type: s.r#type,
                value: s.value,
            })
            .collect(),
        x509_svid_ttl: ttl("x509_svid_ttl", e.x509_svid_ttl.as_ref())?,
        jwt_svid_ttl: ttl("jwt_svid_ttl", e.jwt_svid_ttl.as_ref())?,
        federates_with: e.federates_with,
        admin: e.admin,
        downstream: e.downstream,
        expires_at: e.expires_at,
        dns_names: e.dns_names,
        revision_number: e.revision_number,
        store_svid: e.store_svid,
        hint: e.hint,
        created_at: e.created_at,
    })
}

fn id(field: &str, v: &Value) -> Result<types::Spiffeid, String> {
    match v {
        Value::String(s) => {
            let parsed = crate::output::parse_spiffe_id(s).map_err(|e| format!("{field}: {e}"))?;
            Ok(crate::output::wire_id(&parsed))
        }
        Value::Object(map) => {
            if let Some(k) = map
                .keys()
                .find(|k| !["trust_domain", "trustDomain", "path"].contains(&k.as_str()))
            {
                return Err(format!(
                    "{field}: unknown key {k:?}: only \"trust_domain\" and \"path\" are allowed"
                ));
            }
            let text = |keys: &[&str]| -> Result<String, String> {
                match keys.iter().find_map(|k| map.get(*k)) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(format!(
                        "{field}.{}: expected a string, found {}",
                        keys[0],
                        kind(other)
                    )),
                }
            };
            Ok(types::Spiffeid {
                trust_domain: text(&["trust_domain", "trustDomain"])?,
                path: text(&["path"])?,
            })
        }
        Value::Null => Err(format!("{field}: missing")),
        other => Err(format!(
            "{field}: expected \"spiffe://...\" or {{\"trust_domain\": ..., \"path\": ...}}, \
             found {}",
            kind(other)
        )),
    }
}

fn ttl(field: &str, v: Option<&Value>) -> Result<i32, String> {
    let seconds = match v {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{field} {n}: must be whole seconds"))?,
        Some(Value::String(s)) => {
            let d = crate::duration::parse(s).map_err(|e| format!("{field}: {e}"))?;
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
        }
        Some(other) => {
            return Err(format!(
                "{field}: expected seconds or a duration string, found {}",
                kind(other)
            ));
        }
    };
    i32::try_from(seconds).map_err(|_| {
        format!(
            "{field} {seconds}: out of range: at most {} seconds",
            i32::MAX
        )
    })
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
