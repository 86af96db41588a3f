//! JSON claims as a `google.protobuf.Struct`, the form `ValidateJWTSVID` returns them in.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Value as Json};

/// The claims object as a `Struct`. Numbers become doubles, as the `Struct` type allows
/// nothing else (integers above 2^53 lose precision; `exp` and `iat` are far below).
pub(crate) fn to_struct(claims: &Map<String, Json>) -> Struct {
    Struct {
        fields: claims
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect(),
    }
}

/// A `Struct` as a JSON object; numbers that are whole and fit an `i64` become integers.
pub(crate) fn to_json(s: &Struct) -> Map<String, Json> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), from_value(v)))
        .collect()
}

fn from_value(value: &Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => whole(*n).map_or_else(|| Json::from(*n), Json::from),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(from_value).collect()),
        Some(Kind::StructValue(s)) => Json::Object(to_json(s)),
    }
}

/// `n` as an integer when it is one within ±2^53, where doubles are exact.
fn whole(n: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        format!("{n:.0}").parse().ok()
    } else {
        None
    }
}

fn to_value(json: &Json) -> Value {
    let kind = match json {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(to_struct(map)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_every_json_kind() {
        let json: Json = serde_json::json!({
            "sub": "spiffe://example.org/w",
            "aud": ["a"],
            "exp": 1_900_000_000,
            "nested": {"ok": true, "none": null},
        });
        let Json::Object(map) = json else { panic!() };
        let s = to_struct(&map);
        assert_eq!(
            s.fields["sub"].kind,
            Some(Kind::StringValue("spiffe://example.org/w".into()))
        );
        assert_eq!(s.fields["exp"].kind, Some(Kind::NumberValue(1.9e9)));
        let Some(Kind::ListValue(aud)) = &s.fields["aud"].kind else {
            panic!()
        };
        assert_eq!(aud.values[0].kind, Some(Kind::StringValue("a".into())));
        let Some(Kind::StructValue(nested)) = &s.fields["nested"].kind else {
            panic!()
        };
        assert_eq!(nested.fields["ok"].kind, Some(Kind::BoolValue(true)));
        assert_eq!(nested.fields["none"].kind, Some(Kind::NullValue(0)));
        assert_eq!(Json::Object(to_json(&s)), Json::Object(map));
    }
}
