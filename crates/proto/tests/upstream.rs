//! Proves that our hand-written `.proto` files match the upstream definitions on the wire:
//! every message, field, enum value, service and method we declare exists upstream with the
//! same name, number, type and streaming mode. Upstream = the `.proto` trees shipped inside
//! the `spire-api` crate (SPIRE's server API) and the `spiffe` crate (the Workload API).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

const OUR_SPIRE_FILES: &[&str] = &[
    "spire/api/types/agent.proto",
    "spire/api/types/attestation.proto",
    "spire/api/types/bundle.proto",
    "spire/api/types/entry.proto",
    "spire/api/types/federateswith.proto",
    "spire/api/types/federationrelationship.proto",
    "spire/api/types/jwtsvid.proto",
    "spire/api/types/jointoken.proto",
    "spire/api/types/selector.proto",
    "spire/api/types/spiffeid.proto",
    "spire/api/types/status.proto",
    "spire/api/types/x509svid.proto",
    "spire/api/server/agent/v1/agent.proto",
    "spire/api/server/bundle/v1/bundle.proto",
    "spire/api/server/entry/v1/entry.proto",
    "spire/api/server/svid/v1/svid.proto",
    "spire/api/server/trustdomain/v1/trustdomain.proto",
    "spire/api/server/localauthority/v1/localauthority.proto",
];

#[test]
fn spire_server_api_matches_spire_api_crate() {
    let ours = protox::compile(OUR_SPIRE_FILES, [our_proto_dir()]).unwrap();
    let upstream_dir = package_dir("spire-api").join("spire-api-sdk/proto");
    let theirs = protox::compile(OUR_SPIRE_FILES, [upstream_dir]).unwrap();
    let checked = compare(&ours, &theirs);
    assert!(
        checked > 100,
        "only {checked} items compared; is the test looking at anything?"
    );
}

#[test]
fn workload_api_matches_spiffe_crate() {
    let ours = protox::compile(["workload.proto"], [our_proto_dir()]).unwrap();
    let upstream_dir = package_dir("spiffe").join("src/proto");
    let theirs = protox::compile(["workload.proto"], [upstream_dir]).unwrap();
    let ours_file = ours
        .file
        .iter()
        .find(|f| f.name() == "workload.proto")
        .unwrap();
    // No package: the wire path must be `/SpiffeWorkloadAPI/<Method>`.
    assert_eq!(ours_file.package(), "");
    compare(&ours, &theirs);
}

#[test]
fn shared_types_round_trip_through_spire_api_pb() {
    use lanyard_proto::spire::api::types;
    use prost::Message;

    let ours = types::Selector {
        r#type: "unix".into(),
        value: "uid:1000".into(),
    };
    let theirs =
        spire_api::pb::spire::api::types::Selector::decode(ours.encode_to_vec().as_slice())
            .unwrap();
    assert_eq!(
        (theirs.r#type.as_str(), theirs.value.as_str()),
        ("unix", "uid:1000")
    );

    let id = spire_api::pb::spire::api::types::Spiffeid {
        trust_domain: "example.org".into(),
        path: "/web".into(),
    };
    let back = types::Spiffeid::decode(id.encode_to_vec().as_slice()).unwrap();
    assert_eq!(
        (back.trust_domain.as_str(), back.path.as_str()),
        ("example.org", "/web")
    );

    let svid = types::X509svid {
        cert_chain: vec![vec![1, 2, 3], vec![4]],
        id: Some(types::Spiffeid {
            trust_domain: "example.org".into(),
            path: "/w".into(),
        }),
        expires_at: 1_900_000_000,
        hint: "internal".into(),
    };
    let theirs =
        spire_api::pb::spire::api::types::X509svid::decode(svid.encode_to_vec().as_slice())
            .unwrap();
    assert_eq!(theirs.encode_to_vec(), svid.encode_to_vec());
}

/// spire-api ships no Rust code for the server services (their field numbers are checked by
/// `spire_server_api_matches_spire_api_crate`); the JWT-SVID type they return is compared here.
#[test]
fn jwt_svid_round_trips_through_spire_api_pb() {
    use lanyard_proto::spire::api::types;
    use prost::Message;

    let svid = types::Jwtsvid {
        token: "h.c.s".into(),
        id: Some(types::Spiffeid {
            trust_domain: "example.org".into(),
            path: "/w".into(),
        }),
        expires_at: 1_900_000_300,
        issued_at: 1_900_000_000,
        hint: "internal".into(),
    };
    let theirs =
        spire_api::pb::spire::api::types::Jwtsvid::decode(svid.encode_to_vec().as_slice()).unwrap();
    assert_eq!(
        (theirs.token.as_str(), theirs.expires_at, theirs.issued_at),
        ("h.c.s", 1_900_000_300, 1_900_000_000)
    );
    assert_eq!(theirs.encode_to_vec(), svid.encode_to_vec());
}

/// Files Lanyard declares in full: every upstream message, field, enum value and method must
/// exist in ours too. Together with `spire_server_api_matches_spire_api_crate`, which checks
/// the other direction and the types, these files match upstream exactly.
const COMPLETE_SPIRE_FILES: &[&str] = &[
    "spire/api/types/agent.proto",
    "spire/api/types/bundle.proto",
    "spire/api/types/entry.proto",
    "spire/api/types/federateswith.proto",
    "spire/api/types/federationrelationship.proto",
    "spire/api/types/selector.proto",
    "spire/api/types/spiffeid.proto",
    "spire/api/types/status.proto",
    "spire/api/server/agent/v1/agent.proto",
    "spire/api/server/bundle/v1/bundle.proto",
    "spire/api/server/entry/v1/entry.proto",
    "spire/api/server/trustdomain/v1/trustdomain.proto",
    "spire/api/server/localauthority/v1/localauthority.proto",
];

#[test]
fn complete_files_declare_everything_upstream_does() {
    let ours = protox::compile(COMPLETE_SPIRE_FILES, [our_proto_dir()]).unwrap();
    let upstream_dir = package_dir("spire-api").join("spire-api-sdk/proto");
    let theirs = protox::compile(COMPLETE_SPIRE_FILES, [upstream_dir]).unwrap();
    let ours = items(&ours, COMPLETE_SPIRE_FILES);
    let theirs = items(&theirs, COMPLETE_SPIRE_FILES);
    let missing: Vec<&String> = theirs.iter().filter(|i| !ours.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "declared upstream but not by us: {missing:#?}"
    );
    assert!(
        theirs.len() > 300,
        "only {} upstream items listed; is the test looking at anything?",
        theirs.len()
    );
}

/// Spot checks that the listing above sees the services this crate was extended with.
#[test]
fn admin_services_declare_the_cli_rpcs() {
    let files = [
        "spire/api/server/agent/v1/agent.proto",
        "spire/api/server/bundle/v1/bundle.proto",
        "spire/api/server/entry/v1/entry.proto",
        "spire/api/server/trustdomain/v1/trustdomain.proto",
        "spire/api/server/localauthority/v1/localauthority.proto",
    ];
    let ours = protox::compile(files, [our_proto_dir()]).unwrap();
    let listed = items(&ours, &files);
    for method in [
        "service .spire.api.server.entry.v1.Entry/CountEntries",
        "service .spire.api.server.entry.v1.Entry/BatchUpdateEntry",
        "service .spire.api.server.entry.v1.Entry/SyncAuthorizedEntries",
        "service .spire.api.server.agent.v1.Agent/ListAgents",
        "service .spire.api.server.agent.v1.Agent/BanAgent",
        "service .spire.api.server.agent.v1.Agent/PostStatus",
        "service .spire.api.server.bundle.v1.Bundle/BatchSetFederatedBundle",
        "service .spire.api.server.bundle.v1.Bundle/BatchDeleteFederatedBundle",
        "service .spire.api.server.trustdomain.v1.TrustDomain/RefreshBundle",
    ] {
        assert!(listed.contains(&method.to_string()), "{method} missing");
    }
    let local_authority = listed
        .iter()
        .filter(|i| i.starts_with("service .spire.api.server.localauthority.v1."))
        .count();
    assert_eq!(local_authority, 12);
}

/// Agents get workload JWT-SVIDs with `NewJWTSVID`; the generic comparison checks its fields
/// only if we declare it, so its presence (with both request fields) is asserted here.
#[test]
fn svid_service_declares_new_jwt_svid_like_upstream() {
    let file = "spire/api/server/svid/v1/svid.proto";
    let ours = protox::compile([file], [our_proto_dir()]).unwrap();
    let ours_file = ours.file.iter().find(|f| f.name() == file).unwrap();
    let method = ours_file.service[0]
        .method
        .iter()
        .find(|m| m.name() == "NewJWTSVID")
        .expect("NewJWTSVID is declared");
    assert_eq!(
        method.input_type(),
        ".spire.api.server.svid.v1.NewJWTSVIDRequest"
    );
    assert_eq!(
        method.output_type(),
        ".spire.api.server.svid.v1.NewJWTSVIDResponse"
    );
    let request = ours_file
        .message_type
        .iter()
        .find(|m| m.name() == "NewJWTSVIDRequest")
        .unwrap();
    let fields: Vec<(&str, i32)> = request
        .field
        .iter()
        .map(|f| (f.name(), f.number()))
        .collect();
    assert_eq!(fields, [("entry_id", 1), ("audience", 2)]);
}

/// Compares every item of `ours` with `theirs`; returns how many items were compared.
fn compare(ours: &FileDescriptorSet, theirs: &FileDescriptorSet) -> usize {
    let mut their_messages = HashMap::new();
    let mut their_enums = HashMap::new();
    let mut their_services = HashMap::new();
    for file in &theirs.file {
        let prefix = package_prefix(file.package());
        collect(
            &prefix,
            &file.message_type,
            &file.enum_type,
            &mut their_messages,
            &mut their_enums,
        );
        for s in &file.service {
            their_services.insert(format!("{prefix}{}", s.name()), s.clone());
        }
    }

    let mut checked = 0;
    let our_names: Vec<&str> = OUR_SPIRE_FILES
        .iter()
        .copied()
        .chain(["workload.proto"])
        .collect();
    for file in ours.file.iter().filter(|f| our_names.contains(&f.name())) {
        let prefix = package_prefix(file.package());
        let mut messages = HashMap::new();
        let mut enums = HashMap::new();
        collect(
            &prefix,
            &file.message_type,
            &file.enum_type,
            &mut messages,
            &mut enums,
        );

        for (name, ours) in &messages {
            let theirs = their_messages
                .get(name)
                .unwrap_or_else(|| panic!("message {name} does not exist upstream"));
            for field in &ours.field {
                let other = theirs
                    .field
                    .iter()
                    .find(|f| f.number() == field.number())
                    .unwrap_or_else(|| {
                        panic!(
                            "{name}.{} (#{}) does not exist upstream",
                            field.name(),
                            field.number()
                        )
                    });
                assert_eq!(
                    field.name(),
                    other.name(),
                    "{name} field #{} name",
                    field.number()
                );
                assert_eq!(
                    field.r#type(),
                    other.r#type(),
                    "{name}.{} type",
                    field.name()
                );
                assert_eq!(
                    field.label(),
                    other.label(),
                    "{name}.{} label",
                    field.name()
                );
                assert_eq!(
                    field.type_name(),
                    other.type_name(),
                    "{name}.{} message type",
                    field.name()
                );
                assert_eq!(
                    field.oneof_index.is_some(),
                    other.oneof_index.is_some(),
                    "{name}.{} oneof",
                    field.name()
                );
                checked += 1;
            }
            checked += 1;
        }
        for (name, ours) in &enums {
            let theirs = their_enums
                .get(name)
                .unwrap_or_else(|| panic!("enum {name} does not exist upstream"));
            for value in &ours.value {
                let other = theirs
                    .value
                    .iter()
                    .find(|v| v.name() == value.name())
                    .unwrap_or_else(|| panic!("{name}.{} does not exist upstream", value.name()));
                assert_eq!(
                    value.number(),
                    other.number(),
                    "{name}.{} number",
                    value.name()
                );
                checked += 1;
            }
        }
        for service in &file.service {
            let name = format!("{prefix}{}", service.name());
            let theirs = their_services
                .get(&name)
                .unwrap_or_else(|| panic!("service {name} does not exist upstream"));
            for method in &service.method {
                let other = theirs
                    .method
                    .iter()
                    .find(|m| m.name() == method.name())
                    .unwrap_or_else(|| panic!("{name}/{} does not exist upstream", method.name()));
                assert_eq!(
                    method.input_type(),
                    other.input_type(),
                    "{name}/{} input",
                    method.name()
                );
                assert_eq!(
                    method.output_type(),
                    other.output_type(),
                    "{name}/{} output",
                    method.name()
                );
                assert_eq!(
                    method.client_streaming(),
                    other.client_streaming(),
                    "{name}/{} client streaming",
                    method.name()
                );
                assert_eq!(
                    method.server_streaming(),
                    other.server_streaming(),
                    "{name}/{} server streaming",
                    method.name()
                );
                checked += 1;
            }
        }
    }
    checked
}

/// Every message, field (with number), enum value (with number) and method (with its input,
/// output and streaming mode) declared in `files`, as comparable strings.
fn items(set: &FileDescriptorSet, files: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| files.contains(&f.name())) {
        let prefix = package_prefix(file.package());
        let mut messages = HashMap::new();
        let mut enums = HashMap::new();
        collect(
            &prefix,
            &file.message_type,
            &file.enum_type,
            &mut messages,
            &mut enums,
        );
        for (name, message) in &messages {
            out.push(format!("message {name}"));
            for f in &message.field {
                out.push(format!("field {name}.{} = {}", f.name(), f.number()));
            }
        }
        for (name, e) in &enums {
            for v in &e.value {
                out.push(format!("enum {name}.{} = {}", v.name(), v.number()));
            }
        }
        for service in &file.service {
            for m in &service.method {
                out.push(format!("service {prefix}{}/{}", service.name(), m.name()));
                out.push(format!(
                    "method {prefix}{}/{}({}{}) -> {}{}",
                    service.name(),
                    m.name(),
                    if m.client_streaming() { "stream " } else { "" },
                    m.input_type(),
                    if m.server_streaming() { "stream " } else { "" },
                    m.output_type(),
                ));
            }
        }
    }
    out
}

fn package_prefix(package: &str) -> String {
    if package.is_empty() {
        ".".to_string()
    } else {
        format!(".{package}.")
    }
}

fn collect(
    prefix: &str,
    messages: &[DescriptorProto],
    enums: &[EnumDescriptorProto],
    out_messages: &mut HashMap<String, DescriptorProto>,
    out_enums: &mut HashMap<String, EnumDescriptorProto>,
) {
    for e in enums {
        out_enums.insert(format!("{prefix}{}", e.name()), e.clone());
    }
    for m in messages {
        let name = format!("{prefix}{}", m.name());
        collect(
            &format!("{name}."),
            &m.nested_type,
            &m.enum_type,
            out_messages,
            out_enums,
        );
        out_messages.insert(name, m.clone());
    }
}

fn our_proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto")
}

/// Where cargo unpacked a dependency's sources, from `cargo metadata`.
fn package_dir(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the dependency graph"))["manifest_path"]
        .as_str()
        .unwrap()
        .to_string();
    PathBuf::from(manifest).parent().unwrap().to_path_buf()
}
