//! The `unix` workload attestor with `discover_workload_path` set in an HCL agent config: a
//! workload is known by its binary's path and SHA-256. The workload is `lanyard agent api
//! fetch x509` itself.

use std::time::Duration;

use lanyard_testkit::{AgentOptions, wait_until};

use crate::common::*;

/// The SHA-256 of a file, lower-case hex.
fn sha256_hex(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn create_entry(l: &lanyard_testkit::Lanyard, socket: &str, id: &str, parent: &str, sel: &str) {
    let out = l.cli(&[
        "server",
        "entry",
        "create",
        "--socket",
        socket,
        "--spiffe-id",
        id,
        "--parent-id",
        parent,
        "--selector",
        sel,
    ]);
    assert!(
        out.success,
        "entry create failed:\n{}\n{}",
        out.stdout, out.stderr
    );
}

#[test]
fn workloads_are_attested_by_binary_path_and_hash() {
    let l = lanyard();
    let conf = l.path("agent.conf");
    std::fs::write(
        &conf,
        "plugins {\n  WorkloadAttestor \"unix\" {\n    plugin_data {\n      \
         discover_workload_path = true\n      workload_size_limit = 0\n    }\n  }\n}\n",
    )
    .unwrap();
    let server = l.start_server(Default::default());
    let token = l.generate_token(&server, &[]);
    let agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            extra_args: vec!["--config".into(), conf.display().to_string()],
            ..Default::default()
        },
    );

    // The kernel reports the executed file with symlinks resolved.
    let bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_lanyard")).unwrap();
    let socket = server.socket_str();
    let parent = agent_id(&token);
    let by_path = format!("spiffe://{TD}/by-path");
    let by_hash = format!("spiffe://{TD}/by-hash");
    let elsewhere = format!("spiffe://{TD}/other-binary");
    create_entry(
        &l,
        &socket,
        &by_path,
        &parent,
        &format!("unix:path:{}", bin.display()),
    );
    create_entry(
        &l,
        &socket,
        &by_hash,
        &parent,
        &format!("unix:sha256:{}", sha256_hex(&bin)),
    );
    create_entry(
        &l,
        &socket,
        &elsewhere,
        &parent,
        "unix:path:/usr/bin/not-lanyard",
    );

    let fetch = || {
        l.cli(&[
            "agent",
            "api",
            "fetch",
            "x509",
            "--socket",
            &agent.endpoint(),
            "--output",
            "json",
        ])
    };
    let ids = |stdout: &str| -> Vec<String> {
        let json: serde_json::Value = serde_json::from_str(stdout).unwrap_or_default();
        json["svids"]
            .as_array()
            .map(|svids| {
                svids
                    .iter()
                    .filter_map(|s| s["spiffe_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until(Duration::from_secs(30), "both entries to be served", || {
        let out = fetch();
        out.success && ids(&out.stdout).len() == 2
    });
    let out = fetch();
    let mut got = ids(&out.stdout);
    got.sort();
    assert_eq!(got, [by_hash, by_path], "{}", out.stdout);
    assert!(!out.stdout.contains(&elsewhere), "{}", out.stdout);
}
