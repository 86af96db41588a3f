//! SPIRE's command lines, unchanged, through `spire-server` and `spire-agent` symlinks to
//! `lanyard`: the server starts from `spire-server run -config <SPIRE's server.conf>`, the agent
//! from `spire-agent run -config <SPIRE's agent.conf>`, and admin commands written in SPIRE's
//! Go flag syntax print what SPIRE's own `spire-server` prints against the same server.

use std::path::Path;
use std::time::Duration;

use crate::agent_cli::jwt_token;
use crate::checks::assert_written_svid;
use crate::common::*;
use crate::daemon::{Daemon, spire_agent_conf, spire_server_conf};
use crate::links::Links;
use crate::spire::{
    Spire, entry_id, free_port, join_token_agent_id, ok, poll, text_field, token_of,
};

#[test]
fn spire_command_lines_run_unchanged_through_spire_named_links() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let links = Links::new(&l);

    let socket = l.path("api.sock");
    let socket = socket.to_str().unwrap();
    let port = free_port();
    let config = l.path("server.conf");
    std::fs::write(
        &config,
        spire_server_conf(port, Path::new(socket), &l.path("server-data")),
    )
    .unwrap();
    let mut server = Daemon::spawn(
        "lanyard as spire-server",
        &links.server,
        &["run", "-config", config.to_str().unwrap()],
        l.path("server.log"),
    );
    poll(Duration::from_secs(60), "the server to be healthy", || {
        server.assert_running();
        let out = links.server(&["healthcheck", "-socketPath", socket]);
        out.success.then_some(()).ok_or(format!("{out:?}"))
    });

    let bundle = l.path("bootstrap.pem");
    let pem = links.server(&["bundle", "show", "-socketPath", socket]);
    assert!(pem.success, "{pem:?}");
    std::fs::write(&bundle, &pem.stdout).unwrap();
    // A foreign bundle for `-federatesWith` (its certificates are ours: only the name counts).
    let set = ["bundle", "set", "-id", "spiffe://other.org", "-path"];
    let out =
        links.server(&[&set[..], &[bundle.to_str().unwrap(), "-socketPath", socket]].concat());
    assert!(out.success, "{out:?}");

    let same = |args: &[&str]| same_output(&spire, &links, socket, args, |s| s.to_owned());
    same(&["healthcheck"]);
    same(&["healthcheck", "-shallow"]);
    same(&["healthcheck", "-verbose"]);
    same(&["healthcheck", "-shallow", "-verbose"]);
    same(&["bundle", "show", "-format", "spiffe"]);
    same(&["bundle", "show", "-format=pem"]);
    same(&["bundle", "list", "-id", "spiffe://other.org"]);

    // A join token through the link, for an agent started through the other link.
    let out = links.server(&[
        "token",
        "generate",
        "-socketPath",
        socket,
        "-spiffeID",
        "spiffe://example.org/nodes/n1",
        "-ttl",
        "600",
    ]);
    assert!(out.success, "{out:?}");
    let token = token_of(&out.stdout);
    let blank_token = |out: &str| match text_field(out, "Token") {
        Some(token) => out.replace(token, "TOKEN"),
        None => out.to_owned(),
    };
    same_output(
        &spire,
        &links,
        socket,
        &["token", "generate", "-spiffeID", "spiffe://example.org/n2"],
        blank_token,
    );

    let agent_socket = l.path("agent.sock");
    let agent_socket = agent_socket.to_str().unwrap();
    let agent_config = l.path("agent.conf");
    std::fs::write(
        &agent_config,
        spire_agent_conf(
            &l.path("agent-data"),
            ("127.0.0.1", &port.to_string()),
            Path::new(agent_socket),
            &bundle,
            &token,
        ),
    )
    .unwrap();
    let mut agent = Daemon::spawn(
        "lanyard as spire-agent",
        &links.agent,
        &["run", "-config", agent_config.to_str().unwrap()],
        l.path("agent.log"),
    );
    poll(Duration::from_secs(60), "the agent to be healthy", || {
        agent.assert_running();
        let out = links.agent(&["healthcheck", "-socketPath", agent_socket]);
        out.success.then_some(()).ok_or(format!("{out:?}"))
    });
    for flags in [&["-verbose"][..], &["-shallow", "-verbose"]] {
        let args = [&["healthcheck", "-socketPath", agent_socket][..], flags].concat();
        let theirs = ok(spire.agent_cli(&args));
        assert_eq!(
            ok(links.agent(&args)),
            theirs,
            "`spire-agent {}`",
            args.join(" ")
        );
        assert_eq!(theirs, "Checking agent health...\nAgent is healthy.\n");
    }
    same(&["agent", "list"]);
    same(&["agent", "show", "-spiffeID", &join_token_agent_id(&token)]);

    entry_commands_match(&spire, &links, socket, &join_token_agent_id(&token));

    // The workload side: `spire-agent api fetch x509 -write` through the link.
    let workload = format!("spiffe://{TD}/syntax/workload");
    let selector = format!("unix:uid:{}", uid());
    let out = links.server(&[
        "entry",
        "create",
        "-socketPath",
        socket,
        "-spiffeID",
        &workload,
        "-parentID",
        &join_token_agent_id(&token),
        "-selector",
        &selector,
    ]);
    assert!(out.success, "{out:?}");
    let dir = l.path("x509");
    std::fs::create_dir(&dir).unwrap();
    let fetched = poll(
        Duration::from_secs(30),
        "the agent to serve the SVID",
        || {
            agent.assert_running();
            let args = ["api", "fetch", "x509", "-socketPath", agent_socket];
            let out = links.agent(&[&args[..], &["-write", dir.to_str().unwrap()]].concat());
            out.success
                .then_some(out.stdout.clone())
                .ok_or(format!("{out:?}"))
        },
    );
    assert!(fetched.contains(&workload), "{fetched}");
    assert_written_svid(&dir, &bundle, &workload);
    // SPIRE's default subcommand: `api fetch` alone is `api fetch x509`.
    let out = links.agent(&["api", "fetch", "-socketPath", agent_socket, "-silent"]);
    assert!(!out.success);
    assert!(out.stderr.contains("-silent"), "{out:?}");
    let out = links.agent(&["api", "fetch", "-socketPath", agent_socket]);
    assert!(out.success && out.stdout.contains(&workload), "{out:?}");
    jwt_audience_lists_match(&spire, &links, agent_socket, &workload);
}

/// `api fetch jwt -audience a,b` asks for both audiences through the link as through SPIRE's
/// CLI: each token validates for `a` and for `b` with either CLI. `api validate jwt -audience`
/// takes one value, commas and all, in both: `a,b` is an audience neither token carries.
fn jwt_audience_lists_match(spire: &Spire, links: &Links, socket: &str, workload: &str) {
    let fetch = [
        "api",
        "fetch",
        "jwt",
        "-audience",
        "a,b",
        "-socketPath",
        socket,
    ];
    let tokens = [
        jwt_token(&ok(spire.agent_cli(&fetch)), workload),
        jwt_token(&ok(links.agent(&fetch)), workload),
    ];
    for token in &tokens {
        for audience in ["a", "b", "a,b"] {
            let validate = [
                "api",
                "validate",
                "jwt",
                "-audience",
                audience,
                "-svid",
                token,
                "-socketPath",
                socket,
            ];
            let theirs = spire.agent_cli(&validate);
            let ours = links.agent(&validate);
            let valid = audience != "a,b";
            assert_eq!(
                theirs.success, valid,
                "SPIRE, audience {audience}: {theirs:?}"
            );
            assert_eq!(ours.success, valid, "link, audience {audience}: {ours:?}");
        }
    }
}

/// A SPIRE flag Lanyard lacks is named in the error, not reduced to its first letter.
#[test]
fn unsupported_spire_flags_are_named() {
    let l = lanyard();
    let links = Links::new(&l);
    let out = links.server(&["run", "-config", "/nonexistent", "-logSourceLocation"]);
    assert!(!out.success);
    assert_eq!(
        out.stderr.trim(),
        "error: -logSourceLocation (a flag of `spire-server run`) is not supported by Lanyard"
    );
    let out = links.server(&["federation", "refresh", "-id", "spiffe://o.org"]);
    assert!(!out.success);
    assert!(
        out.stderr.contains("`spire-server federation refresh`"),
        "{out:?}"
    );
}

/// `entry create` (many flags), `show -spiffeID`, `count`, `update -entryID` and `delete
/// -entryID`: each through SPIRE's CLI and through the link prints the same, once the fresh
/// entry ID and revision are blanked.
fn entry_commands_match(spire: &Spire, links: &Links, socket: &str, parent: &str) {
    let create = [
        "entry",
        "create",
        "-spiffeID",
        "spiffe://example.org/syntax/web",
        "-parentID",
        parent,
        "-selector",
        "unix:uid:1000",
        "-selector=k8s:ns:default",
        "-dns",
        "web.example",
        "-federatesWith",
        "spiffe://other.org",
        "-hint",
        "web",
        "-x509SVIDTTL",
        "3600",
        "-jwtSVIDTTL=300",
        "-admin",
        "-downstream=false",
        "-entryExpiry",
        "1900000000",
    ];
    // SPIRE's CLI creates the entry and the link deletes it; then the other way round.
    let theirs = ok(spire.server_cli(&[&create[..], &["-socketPath", socket]].concat()));
    let their_id = entry_id(&theirs);
    let deleted_by_link = ok(links.server(&[
        "entry",
        "delete",
        "-socketPath",
        socket,
        "-entryID",
        &their_id,
    ]));
    let ours = ok(links.server(&[&create[..], &["-socketPath", socket]].concat()));
    let our_id = entry_id(&ours);
    assert_eq!(ours.replace(&our_id, "ID"), theirs.replace(&their_id, "ID"));

    let same = |args: &[&str]| same_output(spire, links, socket, args, |s| s.to_owned());
    same(&[
        "entry",
        "show",
        "-spiffeID",
        "spiffe://example.org/syntax/web",
    ]);
    same(&["entry", "show", "-entryID", &our_id]);
    same(&["entry", "count"]);
    let update = [
        "entry",
        "update",
        "-entryID",
        &our_id,
        "-spiffeID",
        "spiffe://example.org/syntax/web",
        "-parentID",
        parent,
        "-selector",
        "unix:uid:1001",
        "-x509SVIDTTL=600",
    ];
    same_output(spire, links, socket, &update, |out| {
        let lines = out.lines().filter(|l| !l.starts_with("Revision"));
        lines.collect::<Vec<_>>().join("\n")
    });

    let deleted_by_spire = ok(spire.server_cli(&[
        "entry",
        "delete",
        "-socketPath",
        socket,
        "-entryID",
        &our_id,
    ]));
    assert_eq!(
        deleted_by_link.replace(&their_id, "ID"),
        deleted_by_spire.replace(&our_id, "ID")
    );
}

/// `args -socketPath S` prints the same, after `normalize`, through SPIRE's `spire-server`
/// and through the link.
fn same_output(
    spire: &Spire,
    links: &Links,
    socket: &str,
    args: &[&str],
    normalize: impl Fn(&str) -> String,
) {
    let args = [args, &["-socketPath", socket]].concat();
    let theirs = ok(spire.server_cli(&args));
    let ours = ok(links.server(&args));
    assert_eq!(
        normalize(&ours),
        normalize(&theirs),
        "`spire-server {}`",
        args.join(" ")
    );
}
