//! Every Workload API message against bytes written by hand from the spec's field table
//! (SPIFFE Workload API §5, workloadapi.proto): each tag byte is `field_number << 3 | wire_type`
//! from the table, lengths and contents are literals. A renumbered field, a changed type or a
//! map that is not `repeated Entry { key = 1; value = 2; }` changes the bytes and fails here,
//! before any client sees it.

use std::collections::BTreeMap;
use std::fmt::Debug;

use lanyard_proto::workload::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse,
    ValidateJwtsvidRequest, ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse,
    X509svid, X509svidRequest, X509svidResponse,
};
use prost::Message;
use prost_types::value::Kind;
use prost_types::{Struct, Value};

/// Wire type 0: varint (bool, enum).
const VARINT: u8 = 0;
/// Wire type 1: eight little-endian bytes (double).
const I64: u8 = 1;
/// Wire type 2: a length, then that many bytes (string, bytes, message, map entry).
const LEN: u8 = 2;

/// A Workload API ID, 17 bytes on the wire.
const ID_W: &str = "spiffe://a.test/w";
/// Another one, also 17 bytes.
const ID_X: &str = "spiffe://a.test/x";
/// Trust domain IDs, the keys of the bundle maps, 15 bytes each.
const TD_A: &str = "spiffe://a.test";
const TD_B: &str = "spiffe://b.test";

/// The `map<string, bytes>` entry the protobuf spec defines a map field as: key 1, value 2.
#[derive(Clone, PartialEq, Message)]
struct BytesMapEntry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[test]
fn empty_requests_encode_to_no_bytes() {
    // X509SVIDRequest, X509BundlesRequest and JWTBundlesRequest have no fields (§5).
    assert_wire(&X509svidRequest {}, &[]);
    assert_wire(&X509BundlesRequest {}, &[]);
    assert_wire(&JwtBundlesRequest {}, &[]);
}

#[test]
fn x509_svid_fields_are_numbered_one_to_five() {
    assert_wire(&x509_svid_w(), &x509_svid_w_bytes());
}

#[test]
fn x509_svid_response_holds_svids_crls_and_federated_bundles() {
    let value = X509svidResponse {
        svids: vec![x509_svid_w(), x509_svid_x()],
        crl: vec![vec![0xCA], vec![0xCB, 0xCC]],
        federated_bundles: BTreeMap::from([(TD_B.into(), vec![0xF1, 0xF2])]),
    };
    let expected = [
        &[tag(1, LEN), 36][..], // 1: svids, repeated X509SVID
        &x509_svid_w_bytes(),
        &[tag(1, LEN), 28],
        &x509_svid_x_bytes(),
        &[tag(2, LEN), 1, 0xCA], // 2: crl, repeated bytes (never packed)
        &[tag(2, LEN), 2, 0xCB, 0xCC],
        &[tag(3, LEN), 21], // 3: federated_bundles, map<string, bytes>
        &map_entry_b_bytes(),
    ]
    .concat();
    assert_wire(&value, &expected);
}

#[test]
fn map_fields_are_repeated_key_value_entries() {
    let entry = BytesMapEntry {
        key: TD_B.into(),
        value: vec![0xF1, 0xF2],
    };
    assert_wire(&entry, &map_entry_b_bytes());

    // Two entries: written in key order (the generated maps are ordered), read in any order.
    let entry_a = [
        &[tag(1, LEN), 15][..],
        TD_A.as_bytes(),
        &[tag(2, LEN), 1, 0xB1],
    ]
    .concat();
    let value = X509svidResponse {
        federated_bundles: BTreeMap::from([
            (TD_A.into(), vec![0xB1]),
            (TD_B.into(), vec![0xF1, 0xF2]),
        ]),
        ..X509svidResponse::default()
    };
    let a_then_b = [
        &[tag(3, LEN), 20][..],
        &entry_a,
        &[tag(3, LEN), 21],
        &map_entry_b_bytes(),
    ]
    .concat();
    assert_wire(&value, &a_then_b);
    let b_then_a = [
        &[tag(3, LEN), 21][..],
        &map_entry_b_bytes(),
        &[tag(3, LEN), 20],
        &entry_a,
    ]
    .concat();
    assert_eq!(X509svidResponse::decode(&*b_then_a).unwrap(), value);
}

#[test]
fn x509_bundles_response_holds_crls_then_bundles() {
    let value = X509BundlesResponse {
        crl: vec![vec![0xCA]],
        bundles: BTreeMap::from([(TD_A.into(), vec![0xB1])]),
    };
    let expected = [
        &[tag(1, LEN), 1, 0xCA][..], // 1: crl, repeated bytes
        &[tag(2, LEN), 20],          // 2: bundles, map<string, bytes>
        &[tag(1, LEN), 15],          //    key
        TD_A.as_bytes(),
        &[tag(2, LEN), 1, 0xB1], //    value
    ]
    .concat();
    assert_wire(&value, &expected);
}

#[test]
fn jwt_svid_request_holds_audiences_then_an_id() {
    let value = JwtsvidRequest {
        audience: vec!["aud1".into(), "aud2".into()],
        spiffe_id: ID_W.into(),
    };
    let expected = [
        &[tag(1, LEN), 4][..], // 1: audience, repeated string
        b"aud1",
        &[tag(1, LEN), 4],
        b"aud2",
        &[tag(2, LEN), 17], // 2: spiffe_id, string
        ID_W.as_bytes(),
    ]
    .concat();
    assert_wire(&value, &expected);
}

#[test]
fn jwt_svid_fields_are_numbered_one_to_three() {
    assert_wire(&jwt_svid_w(), &jwt_svid_w_bytes());
}

#[test]
fn jwt_svid_response_holds_svids() {
    let second = Jwtsvid {
        spiffe_id: ID_X.into(),
        svid: "t.u.v".into(),
        hint: String::new(),
    };
    let second_bytes = [
        &[tag(1, LEN), 17][..], // 1: spiffe_id
        ID_X.as_bytes(),
        &[tag(2, LEN), 5], // 2: svid; 3: hint is empty, so absent (proto3 default)
        b"t.u.v",
    ]
    .concat();
    let value = JwtsvidResponse {
        svids: vec![jwt_svid_w(), second],
    };
    let expected = [
        &[tag(1, LEN), 31][..], // 1: svids, repeated JWTSVID
        &jwt_svid_w_bytes(),
        &[tag(1, LEN), 26],
        &second_bytes,
    ]
    .concat();
    assert_wire(&value, &expected);
}

#[test]
fn jwt_bundles_response_maps_trust_domains_to_jwks_bytes() {
    let jwks = br#"{"keys":[]}"#;
    let value = JwtBundlesResponse {
        bundles: BTreeMap::from([(TD_A.into(), jwks.to_vec())]),
    };
    let expected = [
        &[tag(1, LEN), 30][..], // 1: bundles, map<string, bytes>
        &[tag(1, LEN), 15],     //    key
        TD_A.as_bytes(),
        &[tag(2, LEN), 11], //    value
        jwks,
    ]
    .concat();
    assert_wire(&value, &expected);
}

#[test]
fn validate_request_holds_one_audience_string_then_the_token() {
    let value = ValidateJwtsvidRequest {
        audience: "aud1".into(),
        svid: "h.p.s".into(),
    };
    let expected = [
        &[tag(1, LEN), 4][..], // 1: audience, a single string (not repeated)
        b"aud1",
        &[tag(2, LEN), 5], // 2: svid, string
        b"h.p.s",
    ]
    .concat();
    assert_wire(&value, &expected);
}

#[test]
fn validate_response_carries_claims_as_a_struct() {
    let value = ValidateJwtsvidResponse {
        spiffe_id: ID_W.into(),
        claims: Some(Struct {
            fields: [("sub".to_string(), string_value(ID_W))].into(),
        }),
    };
    // google.protobuf.Struct is `map<string, Value> fields = 1`; Value's `string_value` is 3.
    let value_bytes = [&[tag(3, LEN), 17][..], ID_W.as_bytes()].concat();
    let entry = [
        &[tag(1, LEN), 3][..], // key
        b"sub",
        &[tag(2, LEN), 19], // value, a Value message
        &value_bytes,
    ]
    .concat();
    let expected = [
        &[tag(1, LEN), 17][..], // 1: spiffe_id, string
        ID_W.as_bytes(),
        &[tag(2, LEN), 28], // 2: claims, google.protobuf.Struct
        &[tag(1, LEN), 26], //    Struct.fields, one entry
        &entry,
    ]
    .concat();
    assert_wire(&value, &expected);
}

#[test]
fn struct_values_use_their_own_wire_types() {
    // Value is a oneof: null_value 1 (enum), number_value 2 (double), bool_value 4. A set oneof
    // member is written even when it holds its default, so null is two bytes, not none.
    let number = Value {
        kind: Some(Kind::NumberValue(1.0)),
    };
    let double_one = [0, 0, 0, 0, 0, 0, 0xF0, 0x3F]; // 1.0, IEEE 754, little-endian
    assert_wire(&number, &[&[tag(2, I64)][..], &double_one].concat());
    let yes = Value {
        kind: Some(Kind::BoolValue(true)),
    };
    assert_wire(&yes, &[tag(4, VARINT), 1]);
    let null = Value {
        kind: Some(Kind::NullValue(0)),
    };
    assert_wire(&null, &[tag(1, VARINT), 0]);
}

/// The one-byte tag of a field numbered 1 to 15 (protobuf encoding: `field << 3 | wire_type`).
fn tag(field: u8, wire_type: u8) -> u8 {
    assert!(
        (1..=15).contains(&field) && wire_type <= 5,
        "field {field} wire type {wire_type}: one-byte tags hold fields 1-15, wire types 0-5"
    );
    field << 3 | wire_type
}

/// `value` encodes to exactly `expected`, and `expected` decodes back to `value`.
fn assert_wire<M: Message + Default + PartialEq + Debug>(value: &M, expected: &[u8]) {
    assert_eq!(
        value.encode_to_vec(),
        expected,
        "prost's encoding of {value:?} differs from the hand-written bytes"
    );
    let decoded = M::decode(expected).unwrap();
    assert_eq!(
        &decoded, value,
        "the hand-written bytes decode to another value"
    );
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn x509_svid_w() -> X509svid {
    X509svid {
        spiffe_id: ID_W.into(),
        x509_svid: vec![0xC1, 0xC2],
        x509_svid_key: vec![0x4B],
        bundle: vec![0xB1, 0xB2, 0xB3],
        hint: "int".into(),
    }
}

/// 36 bytes.
fn x509_svid_w_bytes() -> Vec<u8> {
    [
        &[tag(1, LEN), 17][..], // 1: spiffe_id, string
        ID_W.as_bytes(),
        &[tag(2, LEN), 2, 0xC1, 0xC2],       // 2: x509_svid, bytes
        &[tag(3, LEN), 1, 0x4B],             // 3: x509_svid_key, bytes
        &[tag(4, LEN), 3, 0xB1, 0xB2, 0xB3], // 4: bundle, bytes
        &[tag(5, LEN), 3],                   // 5: hint, string
        b"int",
    ]
    .concat()
}

fn x509_svid_x() -> X509svid {
    X509svid {
        spiffe_id: ID_X.into(),
        x509_svid: vec![0xC3],
        x509_svid_key: vec![0x4C],
        bundle: vec![0xB4],
        hint: String::new(),
    }
}

/// 28 bytes; no hint, so no field 5.
fn x509_svid_x_bytes() -> Vec<u8> {
    [
        &[tag(1, LEN), 17][..],
        ID_X.as_bytes(),
        &[tag(2, LEN), 1, 0xC3],
        &[tag(3, LEN), 1, 0x4C],
        &[tag(4, LEN), 1, 0xB4],
    ]
    .concat()
}

/// `spiffe://b.test` → F1 F2 as a map entry, 21 bytes.
fn map_entry_b_bytes() -> Vec<u8> {
    [
        &[tag(1, LEN), 15][..], // 1: key
        TD_B.as_bytes(),
        &[tag(2, LEN), 2, 0xF1, 0xF2], // 2: value
    ]
    .concat()
}

fn jwt_svid_w() -> Jwtsvid {
    Jwtsvid {
        spiffe_id: ID_W.into(),
        svid: "h.p.s".into(),
        hint: "int".into(),
    }
}

/// 31 bytes.
fn jwt_svid_w_bytes() -> Vec<u8> {
    [
        &[tag(1, LEN), 17][..], // 1: spiffe_id, string
        ID_W.as_bytes(),
        &[tag(2, LEN), 5], // 2: svid, string
        b"h.p.s",
        &[tag(3, LEN), 3], // 3: hint, string
        b"int",
    ]
    .concat()
}
