//! Compiles the `.proto` files under `proto/` with protox (pure Rust, no system protoc) and
//! generates prost messages plus tonic clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "workload.proto",
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
        "grpc/health/v1/health.proto",
        "lanyard/agent/v1/notify.proto",
    ];
    println!("cargo:rerun-if-changed=proto");

    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        // Ordered maps encode the same message to the same bytes every time: the Workload API
        // server compares answers by their encoding, and wire tests can spell out the bytes.
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
