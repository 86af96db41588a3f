//! `entry create --data` and `entry update --data`: SPIRE's JSON form of a batch of entries.
//!
//! `{"entries": [{"spiffe_id": {"trust_domain": "example.org", "path": "/web"}, "parent_id":
//! ..., "selectors": [{"type": "unix", "value": "uid:1000"}], "x509_svid_ttl": 3600}]}`.
//! IDs may also be written as `spiffe://` strings and TTLs with a unit (`"1h"`). Unknown
//! keys are refused so a misspelt field is never silently dropped.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use lanyard_proto::spire::api::types;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    entries: Vec<DataEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataEntry {
    #[serde(default)]
    id: String,
    spiffe_id: Value,
    parent_id: Value,
    #[serde(default)]
    selectors: Vec<DataSelector>,
    #[serde(default)]
    x509_svid_ttl: Option<Value>,
    #[serde(default)]
    jwt_svid_ttl: Option<Value>,
    #[serde(default)]
    federates_with: Vec<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    downstream: bool,
    #[serde(default)]
    expires_at: i64,
    #[serde(default)]
    dns_names: Vec<String>,
    #[serde(default)]
    store_svid: bool,
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSelector {
    r#type: String,
    value: String,
}

/// Reads and converts the entries of `path` (`-` is stdin).
pub(crate) fn read_entries(path: &Path) -> anyhow::Result<Vec<types::Entry>> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read entries from stdin")?;
        s
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read entries from {}", path.display()))?
    };
    parse(&text).with_context(|| format!("invalid entry data in {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<Vec<types::Entry>> {
    let batch: Batch = serde_json::from_str(text)?;
    if batch.entries.is_empty() {
        anyhow::bail!("\"entries\" is empty: nothing to do");
    }
    batch
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| convert(e).with_context(|| format!("entries[{i}]")))
        .collect()
}

fn convert(e: DataEntry) -> anyhow::Result<types::Entry> {
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
        store_svid: e.store_svid,
        hint: e.hint,
        ..Default::default()
    })
}

fn id(field: &str, v: &Value) -> anyhow::Result<types::Spiffeid> {
    match v {
        Value::String(s) => {
            let parsed =
                crate::output::parse_spiffe_id(s).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            Ok(crate::output::wire_id(&parsed))
        }
        Value::Object(map) => {
            let text = |k: &str| {
                map.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            if map.keys().any(|k| k != "trust_domain" && k != "path") {
                anyhow::bail!("{field}: only \"trust_domain\" and \"path\" are allowed");
            }
            Ok(types::Spiffeid {
                trust_domain: text("trust_domain"),
                path: text("path"),
            })
        }
        _ => anyhow::bail!(
            "{field}: expected \"spiffe://...\" or {{\"trust_domain\": ..., \"path\": ...}}"
        ),
    }
}

fn ttl(field: &str, v: Option<&Value>) -> anyhow::Result<i32> {
    let seconds = match v {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{field} {n}: must be whole seconds"))?,
        Some(Value::String(s)) => i64::try_from(
            crate::duration::parse(s)
                .map_err(|e| anyhow::anyhow!("{field}: {e}"))?
                .as_secs(),
        )?,
        Some(other) => anyhow::bail!("{field} {other}: must be seconds or a duration string"),
    };
    i32::try_from(seconds).map_err(|_| anyhow::anyhow!("{field} {seconds}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_spire_format_and_string_forms() {
        let entries = parse(
            r#"{"entries": [
                {"spiffe_id": {"trust_domain": "example.org", "path": "/a"},
                 "parent_id": "spiffe://example.org/agent",
                 "selectors": [{"type": "unix", "value": "uid:1"}],
                 "x509_svid_ttl": 3600, "jwt_svid_ttl": "5m"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(entries[0].x509_svid_ttl, 3600);
        assert_eq!(entries[0].jwt_svid_ttl, 300);
        assert_eq!(entries[0].parent_id.as_ref().unwrap().path, "/agent");
    }

    #[test]
    fn refuses_unknown_keys_naming_them() {
        let err = parse(r#"{"entries": [{"spiffe_id": "spiffe://a/b", "parent_id": "spiffe://a/c", "selectr": []}]}"#)
            .unwrap_err();
        assert!(format!("{err:#}").contains("selectr"), "{err:#}");
    }
}
