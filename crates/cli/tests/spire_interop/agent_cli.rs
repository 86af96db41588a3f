//! SPIRE's Workload API CLI, `spire-agent api ...` with `-socketPath`, against a Lanyard
//! agent: X509-SVIDs it writes verify against the Lanyard server's bundle, JWT-SVIDs it
//! fetches validate against it, and `api validate jwt` agrees.

use std::time::Duration;

use crate::checks::{assert_written_svid, validate_jwt};
use crate::common::*;
use crate::spire::Spire;

const AUDIENCE: &str = "spire-cli";

#[tokio::test(flavor = "multi_thread")]
async fn spire_agent_api_commands_work_against_a_lanyard_agent() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let (server, agent, token) = server_and_agent(&l, &[]);
    let workload = format!("spiffe://{TD}/spire-cli/workload");
    register(&l, &server, &workload, &agent_id(&token));
    fetch_with_spiffe_crate(&agent, Duration::from_secs(30)).await;
    let socket = agent.socket.to_str().unwrap().to_owned();
    let socket = socket.as_str();

    let roots = l.path("lanyard-bundle.pem");
    let pem = l.cli(&["server", "bundle", "show", "--socket", &server.socket_str()]);
    assert!(pem.success, "{}", pem.stderr);
    std::fs::write(&roots, pem.stdout).unwrap();
    let spiffe_bundle = l.cli(&[
        "server",
        "bundle",
        "show",
        "--socket",
        &server.socket_str(),
        "--format",
        "spiffe",
    ]);
    assert!(spiffe_bundle.success, "{}", spiffe_bundle.stderr);

    // fetch x509 -write: SPIRE's file names, a chain that openssl verifies against the server's
    // bundle, and the key of the leaf.
    let dir = l.path("spire-x509");
    // Unlike Lanyard's `--write`, SPIRE's `-write` does not create the directory.
    std::fs::create_dir(&dir).unwrap();
    let fetched = spire.agent_ok(&[
        "api",
        "fetch",
        "x509",
        "-socketPath",
        socket,
        "-write",
        dir.to_str().unwrap(),
    ]);
    assert!(fetched.contains(&workload), "{fetched}");
    assert!(fetched.contains("Received 1 svid"), "{fetched}");
    assert_written_svid(&dir, &roots, &workload);
    // The bundle it wrote is the server's, as Lanyard's CLI prints it.
    assert_eq!(
        std::fs::read_to_string(dir.join("bundle.0.pem"))
            .unwrap()
            .trim(),
        std::fs::read_to_string(&roots).unwrap().trim()
    );

    // fetch jwt: a token for the audience, which validates against the server's JWT keys.
    let jwt_out = spire.agent_ok(&[
        "api",
        "fetch",
        "jwt",
        "-socketPath",
        socket,
        "-audience",
        AUDIENCE,
    ]);
    let token = jwt_token(&jwt_out, &workload);
    let svid = validate_jwt(&token, &spiffe_bundle.stdout, AUDIENCE)
        .unwrap_or_else(|e| panic!("{e}\n{jwt_out}"));
    assert_eq!(svid.spiffe_id().to_string(), workload);
    assert!(
        jwt_out.contains(&format!("bundle(spiffe://{TD})")),
        "{jwt_out}"
    );

    // validate jwt: the agent accepts its own token for the audience, refuses another.
    let valid = spire.agent_ok(&[
        "api",
        "validate",
        "jwt",
        "-socketPath",
        socket,
        "-audience",
        AUDIENCE,
        "-svid",
        &token,
    ]);
    assert!(valid.contains("SVID is valid."), "{valid}");
    assert!(valid.contains(&workload), "{valid}");
    let refused = spire.agent_cli(&[
        "api",
        "validate",
        "jwt",
        "-socketPath",
        socket,
        "-audience",
        "someone-else",
        "-svid",
        &token,
    ]);
    assert!(!refused.success, "{refused:?}");
    // SPIRE's CLI prints the status message only; go-spiffe's test checks the code.
    assert!(
        refused.stderr.contains("SVID is not valid") && refused.stderr.contains("someone-else"),
        "{refused:?}"
    );
}

/// The token of the `token(<spiffe id>):` block of `spire-agent api fetch jwt`.
pub fn jwt_token(output: &str, spiffe_id: &str) -> String {
    let header = format!("token({spiffe_id}):");
    let mut lines = output.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "no {header} in:\n{output}");
    lines
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|t| t.split('.').count() == 3)
        .unwrap_or_else(|| panic!("no JWT after {header} in:\n{output}"))
}
