use super::*;

fn parse_ok(text: &str) -> Vec<Item> {
    match parse(text.as_bytes()) {
        Ok(items) => items,
        Err(ParseError::Syntax(e)) => panic!("syntax: {e}"),
        Err(ParseError::Shape(m)) => panic!("shape: {m}"),
    }
}

fn shape_error(text: &str) -> String {
    match parse(text.as_bytes()) {
        Err(ParseError::Shape(m)) => m,
        Err(ParseError::Syntax(e)) => panic!("syntax error instead of a shape error: {e}"),
        Ok(_) => panic!("{text} was accepted"),
    }
}

#[test]
fn reads_spire_format_and_string_forms() {
    let items = parse_ok(
        r#"{"entries": [
            {"spiffe_id": {"trust_domain": "example.org", "path": "/a"},
             "parent_id": "spiffe://example.org/agent",
             "selectors": [{"type": "unix", "value": "uid:1"}],
             "x509_svid_ttl": 3600, "jwt_svid_ttl": "5m"}
        ]}"#,
    );
    let e = items[0].as_ref().unwrap();
    assert_eq!((e.x509_svid_ttl, e.jwt_svid_ttl), (3600, 300));
    assert_eq!(e.parent_id.as_ref().unwrap().path, "/agent");
}

#[test]
fn reads_protojson_lower_camel_names_and_string_int64s() {
    let items = parse_ok(
        r#"{"entries": [
            {"id": "e1",
             "spiffeId": {"trustDomain": "example.org", "path": "/a"},
             "parentId": {"trustDomain": "example.org", "path": "/agent"},
             "selectors": [{"type": "unix", "value": "uid:1"}],
             "x509SvidTtl": 60, "jwtSvidTtl": 30, "federatesWith": ["other.org"],
             "dnsNames": ["a.example.org"], "revisionNumber": "4", "storeSvid": true,
             "expiresAt": "1900000000", "createdAt": 1700000000, "hint": "h"}
        ]}"#,
    );
    let e = items[0].as_ref().unwrap();
    assert_eq!(e.spiffe_id.as_ref().unwrap().trust_domain, "example.org");
    assert_eq!(e.parent_id.as_ref().unwrap().path, "/agent");
    assert_eq!((e.x509_svid_ttl, e.jwt_svid_ttl), (60, 30));
    assert_eq!(e.federates_with, ["other.org"]);
    assert_eq!(e.dns_names, ["a.example.org"]);
    assert_eq!(
        (e.revision_number, e.expires_at, e.created_at),
        (4, 1_900_000_000, 1_700_000_000)
    );
    assert!(e.store_svid);
}

#[test]
fn refuses_unknown_keys_naming_them() {
    let err = shape_error(
        r#"{"entries": [{"spiffe_id": "spiffe://a/b", "parent_id": "spiffe://a/c", "selectr": []}]}"#,
    );
    assert!(
        err.contains("selectr") && err.contains("entries[0]"),
        "{err}"
    );
    let err = shape_error(r#"{"entries": [], "extra": 1}"#);
    assert!(err.contains("extra"), "{err}");
}

#[test]
fn wrong_shapes_name_json_kinds_not_rust_types() {
    let err = shape_error("[]");
    assert_eq!(
        err,
        "expected an object {\"entries\": [...]}, found an array"
    );
    let err = shape_error(r#"{"entries": {"spiffe_id": "x"}}"#);
    assert_eq!(err, "\"entries\": expected an array, found an object");
    let err = shape_error(r#"{"entries": [7]}"#);
    assert_eq!(err, "entries[0]: expected an object, found a number");
    for err in [shape_error("{}"), shape_error(r#"{"entries": []}"#)] {
        assert!(!err.contains("Batch") && !err.contains("struct"), "{err}");
    }
    assert!(matches!(
        parse(b"{\"entries\": ["),
        Err(ParseError::Syntax(_))
    ));
}

#[test]
fn bad_field_values_fail_only_their_item() {
    let items = parse_ok(
        r#"{"entries": [
            {"spiffe_id": "spiffe://example.org/ok", "parent_id": "spiffe://example.org/a"},
            {"spiffe_id": "spiffe://example.org/b", "parent_id": "spiffe://example.org/a",
             "x509_svid_ttl": 99999999999},
            {"spiffe_id": "http://bad/id", "parent_id": "spiffe://example.org/a"},
            {"spiffe_id": "spiffe://example.org/c", "parent_id": "spiffe://example.org/a"}
        ]}"#,
    );
    assert_eq!(items.len(), 4);
    assert!(items[0].is_ok() && items[3].is_ok());
    let ttl = items[1].as_ref().unwrap_err();
    assert_eq!(ttl.index, 1);
    assert!(
        ttl.message
            .starts_with("x509_svid_ttl 99999999999: out of range"),
        "{ttl}"
    );
    let id = items[2].as_ref().unwrap_err();
    assert!(
        id.message.starts_with("spiffe_id:") && id.message.contains("http://bad/id"),
        "{id}"
    );
}

#[test]
fn reading_stops_at_the_size_limit() {
    let zeros = std::io::repeat(0);
    let err = read_limited(zeros, Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "/dev/zero is larger than the 64 MiB limit for --data"
    );
    let small = read_limited(&b"{}"[..], Path::new("f")).unwrap();
    assert_eq!(small, b"{}");
}
