//! A SPIFFE bundle document laid out as SPIRE's `bundle show -format spiffe` prints it, so the
//! two outputs compare byte for byte: Go writes struct fields in declaration order (the JWK
//! members in go-jose's order, `keys` before `spiffe_sequence` before `spiffe_refresh_hint`)
//! and SPIRE indents the result by four spaces.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::Value;

/// Member names in the order Go writes them; names not listed follow, alphabetically.
const ORDER: &[&str] = &[
    "keys",
    "spiffe_sequence",
    "spiffe_refresh_hint",
    "use",
    "kty",
    "kid",
    "crv",
    "alg",
    "k",
    "x",
    "y",
    "n",
    "e",
    "x5c",
    "x5u",
    "x5t",
    "x5t#S256",
];

/// `doc` (a bundle document's JSON) re-laid out in Go's member order with a four-space indent.
///
/// # Errors
///
/// `doc` is not JSON.
pub(crate) fn indent(doc: &str) -> serde_json::Result<String> {
    let value: Value = serde_json::from_str(doc)?;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    Ordered(&value).serialize(&mut ser)?;
    // serde_json writes only valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A JSON value whose objects serialize their members in [`ORDER`].
struct Ordered<'a>(&'a Value);

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by_key(|(name, _)| {
                    let rank = ORDER.iter().position(|o| o == name);
                    (rank.unwrap_or(ORDER.len()), name.as_str())
                });
                let mut m = serializer.serialize_map(Some(members.len()))?;
                for (name, value) in members {
                    m.serialize_entry(name, &Ordered(value))?;
                }
                m.end()
            }
            Value::Array(items) => {
                let mut s = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    s.serialize_element(&Ordered(item))?;
                }
                s.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_follow_go_order_with_four_space_indent() {
        let doc = r#"{"spiffe_sequence":2,"keys":[{"y":"Y","x5c":["C"],"x":"X","use":"x509-svid","kty":"EC","crv":"P-256"},{"e":"AQAB","n":"N","kid":"k","kty":"RSA","use":"jwt-svid"}],"spiffe_refresh_hint":60}"#;
        let want = r#"{
    "keys": [
        {
            "use": "x509-svid",
            "kty": "EC",
            "crv": "P-256",
            "x": "X",
            "y": "Y",
            "x5c": [
                "C"
            ]
        },
        {
            "use": "jwt-svid",
            "kty": "RSA",
            "kid": "k",
            "n": "N",
            "e": "AQAB"
        }
    ],
    "spiffe_sequence": 2,
    "spiffe_refresh_hint": 60
}"#;
        assert_eq!(indent(doc).unwrap(), want);
    }

    #[test]
    fn empty_key_list_stays_on_one_line_as_go_writes_it() {
        assert_eq!(indent(r#"{"keys":[]}"#).unwrap(), "{\n    \"keys\": []\n}");
    }
}
