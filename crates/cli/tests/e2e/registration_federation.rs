//! `server federation create|show|list|update|delete` through the binary against a real
//! server. Only storage: no foreign endpoint is contacted.

use serde_json::Value;

use crate::common::*;
use crate::registration_common::*;

/// The trust domains of a `federation list --output json` answer, sorted.
fn listed(v: &Value) -> Vec<String> {
    let mut tds: Vec<String> = v["federation_relationships"]
        .as_array()
        .unwrap_or_else(|| panic!("no federation_relationships array: {v}"))
        .iter()
        .map(|r| r["trust_domain"].as_str().unwrap().to_owned())
        .collect();
    tds.sort();
    tds
}

#[test]
fn federation_commands_create_show_list_update_delete() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let doc = own_bundle_file(&l, &server, "third.json", "spiffe");

    let web = admin_json(
        &l,
        &server,
        &[
            "federation",
            "create",
            "--trust-domain",
            "other.org",
            "--bundle-endpoint-url",
            "https://other.org:8443/bundle",
            "--bundle-endpoint-profile",
            "https_web",
        ],
    );
    let created = &web["results"][0]["federation_relationship"];
    assert_eq!(created["trust_domain"], "other.org");
    assert_eq!(created["https_web"], serde_json::json!({}));
    // SPIRE's flag spellings, with a starting bundle for the https_spiffe profile.
    admin_ok(
        &l,
        &server,
        &[
            "federation",
            "create",
            "--trustDomain",
            "third.org",
            "--bundleEndpointURL",
            "https://third.org/bundle",
            "--bundleEndpointProfile",
            "https_spiffe",
            "--endpointSpiffeID",
            "spiffe://third.org/spire/server",
            "--trustDomainBundlePath",
            &doc,
            "--trustDomainBundleFormat",
            "spiffe",
        ],
    );

    let shown = admin_json(
        &l,
        &server,
        &["federation", "show", "--trust-domain", "third.org"],
    );
    assert_eq!(shown["bundle_endpoint_url"], "https://third.org/bundle");
    assert_eq!(
        shown["https_spiffe"]["endpoint_spiffe_id"],
        "spiffe://third.org/spire/server"
    );
    assert!(shown.get("https_web").is_none(), "{shown}");
    // The starting bundle was stored as the trust domain's bundle.
    let bundle = admin_json(&l, &server, &["bundle", "list", "--id", "third.org"]);
    assert!(
        !bundle["x509_authorities"].as_array().unwrap().is_empty(),
        "{bundle}"
    );

    assert_eq!(
        listed(&admin_json(&l, &server, &["federation", "list"])),
        ["other.org", "third.org"]
    );
    let text = admin_ok(&l, &server, &["federation", "list"]);
    assert!(
        text.starts_with("Found 2 federation relationships"),
        "{text}"
    );
    assert!(
        text.contains("Endpoint SPIFFE ID        : spiffe://third.org/spire/server"),
        "{text}"
    );

    let updated = admin_json(
        &l,
        &server,
        &[
            "federation",
            "update",
            "--trust-domain",
            "other.org",
            "--bundle-endpoint-url",
            "https://bundles.other.org/v2",
        ],
    );
    let after = &updated["results"][0]["federation_relationship"];
    assert_eq!(after["bundle_endpoint_url"], "https://bundles.other.org/v2");
    assert_eq!(
        after["https_web"],
        serde_json::json!({}),
        "the profile stays: {after}"
    );
    let switched = admin_json(
        &l,
        &server,
        &[
            "federation",
            "update",
            "--trust-domain",
            "other.org",
            "--bundle-endpoint-profile",
            "https_spiffe",
            "--endpoint-spiffe-id",
            "spiffe://other.org/server",
        ],
    );
    assert_eq!(
        switched["results"][0]["federation_relationship"]["https_spiffe"]["endpoint_spiffe_id"],
        "spiffe://other.org/server"
    );

    let deleted = admin_json(&l, &server, &["federation", "delete", "--id", "other.org"]);
    assert_eq!(deleted["results"][0]["trust_domain"], "other.org");
    assert_eq!(
        listed(&admin_json(&l, &server, &["federation", "list"])),
        ["third.org"]
    );
    admin_refused(
        &l,
        &server,
        &["federation", "show", "--trust-domain", "other.org"],
        &["other.org"],
    );
}

#[test]
fn federation_commands_refuse_bad_input_naming_it() {
    let l = lanyard();
    let server = l.start_server(Default::default());
    let create = ["federation", "create", "--trust-domain", "other.org"];
    let url = ["--bundle-endpoint-url", "https://other.org/b"];

    admin_refused(
        &l,
        &server,
        &[
            &create[..],
            &url,
            &["--bundle-endpoint-profile", "https-web"],
        ]
        .concat(),
        &["https-web", "https_web"],
    );
    admin_refused(
        &l,
        &server,
        &[
            &create[..],
            &[
                "--bundle-endpoint-url",
                "http://other.org/b",
                "--bundle-endpoint-profile",
                "https_web",
            ],
        ]
        .concat(),
        &["http://other.org/b"],
    );
    admin_refused(
        &l,
        &server,
        &[
            &create[..],
            &url,
            &["--bundle-endpoint-profile", "https_spiffe"],
        ]
        .concat(),
        &["--endpoint-spiffe-id"],
    );
    admin_refused(
        &l,
        &server,
        &[
            &create[..],
            &url,
            &[
                "--bundle-endpoint-profile",
                "https_spiffe",
                "--endpoint-spiffe-id",
                "other.org/server",
            ],
        ]
        .concat(),
        &["other.org/server"],
    );
    admin_refused(
        &l,
        &server,
        &[
            "federation",
            "create",
            "--trust-domain",
            "bad%td",
            "--bundle-endpoint-url",
            "https://x/b",
            "--bundle-endpoint-profile",
            "https_web",
        ],
        &["bad%td"],
    );
    admin_refused(
        &l,
        &server,
        &[&create[..], &url].concat(),
        &["--bundle-endpoint-profile"],
    );

    admin_ok(
        &l,
        &server,
        &[
            &create[..],
            &url,
            &["--bundle-endpoint-profile", "https_web"],
        ]
        .concat(),
    );
    admin_refused(
        &l,
        &server,
        &[
            &create[..],
            &url,
            &["--bundle-endpoint-profile", "https_web"],
        ]
        .concat(),
        &["other.org"],
    );
    admin_refused(
        &l,
        &server,
        &["federation", "update", "--trust-domain", "other.org"],
        &["nothing to update"],
    );
    admin_refused(
        &l,
        &server,
        &[
            "federation",
            "update",
            "--trust-domain",
            "none.org",
            "--bundle-endpoint-url",
            "https://none.org/b",
        ],
        &["none.org"],
    );
    admin_refused(
        &l,
        &server,
        &["federation", "delete", "--trust-domain", "none.org"],
        &["none.org"],
    );
    assert_eq!(
        admin_json(&l, &server, &["federation", "list"])["federation_relationships"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
