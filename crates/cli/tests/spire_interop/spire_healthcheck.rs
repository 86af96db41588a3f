//! `healthcheck` through the `spire-server`/`spire-agent` links prints what SPIRE's own
//! binaries print when nothing serves the socket, stream for stream, with the same exit status;
//! and commands run through the links default to SPIRE's socket paths. (The healthy answers
//! are compared against live daemons in `spire_syntax`.)

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;
use crate::links::Links;
use crate::spire::Spire;

/// What a command printed, and its exit status.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_with(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts that `ours` printed what `theirs` did. With `-verbose` the `Failed to check health:`
/// line carries each implementation's own reason (Go's gRPC error text in SPIRE's), so only its
/// start is compared.
fn assert_same(theirs: &Ran, ours: &Ran, verbose: bool, what: &str) {
    assert_eq!(
        ours.code, theirs.code,
        "exit status of {what}\n{theirs:?}\n{ours:?}"
    );
    assert_eq!(ours.stdout, theirs.stdout, "stdout of {what}");
    if !verbose {
        assert_eq!(ours.stderr, theirs.stderr, "stderr of {what}");
        return;
    }
    let their_lines: Vec<&str> = theirs.stderr.lines().collect();
    let our_lines: Vec<&str> = ours.stderr.lines().collect();
    assert_eq!(
        our_lines.len(),
        their_lines.len(),
        "stderr of {what}\n{theirs:?}\n{ours:?}"
    );
    for (o, t) in our_lines.iter().zip(&their_lines) {
        match t.strip_prefix("Failed to check health: ") {
            Some(_) => assert!(o.starts_with("Failed to check health: "), "{what}: {o}"),
            None => assert_eq!(o, t, "stderr of {what}"),
        }
    }
}

#[test]
fn healthcheck_failures_print_what_spire_prints() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let links = Links::new(&l);
    let missing = l.path("missing.sock");
    // A socket file nobody listens on: the listener is gone, the file stays.
    let stale = l.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());

    let daemons = [
        (spire.server_bin(), &links.server),
        (spire.agent_bin(), &links.agent),
    ];
    for (spire_bin, link) in &daemons {
        for socket in [&missing, &stale] {
            for flags in [
                &[][..],
                &["-verbose"],
                &["-shallow"],
                &["-shallow", "-verbose"],
            ] {
                let args = [
                    &["healthcheck", "-socketPath", socket.to_str().unwrap()][..],
                    flags,
                ]
                .concat();
                let what = format!("{} {}", link.display(), args.join(" "));
                let theirs = run_with(spire_bin, &args, &[]);
                let ours = run_with(link, &args, &[]);
                assert_eq!(theirs.code, Some(1), "{theirs:?}");
                assert_same(&theirs, &ours, flags.contains(&"-verbose"), &what);
            }
        }
    }
}

/// Through the links, the admin and healthcheck commands default to SPIRE's socket paths;
/// `lanyard` under its own name keeps Lanyard's. Read from `-h` (clap prints the default), so
/// that no test binds or dials a fixed path shared by every test and user of this machine;
/// that the daemons' `run` takes the same defaults is a unit test (`spire_args::sockets`).
#[test]
fn linked_commands_default_to_spires_sockets() {
    let l = lanyard();
    let links = Links::new(&l);
    let lanyard = Path::new(env!("CARGO_BIN_EXE_lanyard"));
    let server_default = "[default: /tmp/spire-server/private/api.sock]";
    let agent_default = "[default: /tmp/spire-agent/public/api.sock]";
    for args in [
        &["healthcheck", "-h"][..],
        &["entry", "show", "-h"],
        &["bundle", "show", "-h"],
    ] {
        let help = run_with(&links.server, args, &[]);
        assert!(help.stdout.contains(server_default), "{args:?}: {help:?}");
        let mut own = vec!["server"];
        own.extend_from_slice(args);
        let help = run_with(lanyard, &own, &[]);
        assert!(
            help.stdout
                .contains("[default: /tmp/lanyard-server/private/api.sock]"),
            "{own:?}: {help:?}"
        );
    }
    let help = run_with(&links.agent, &["healthcheck", "-h"], &[]);
    assert!(help.stdout.contains(agent_default), "{help:?}");
    let help = run_with(lanyard, &["agent", "healthcheck", "-h"], &[]);
    assert!(
        help.stdout
            .contains("[default: /tmp/lanyard-agent/public/api.sock]"),
        "{help:?}"
    );
}

/// `spire-agent api fetch` without `-socketPath` dials SPIRE's default path, and, like SPIRE's
/// CLI, not `SPIFFE_ENDPOINT_SOCKET`. Only what the error names is read: nothing is bound or
/// created at the fixed path, and the check is skipped while something exists there (an agent
/// someone runs on this machine).
#[test]
fn linked_workload_commands_dial_spires_default_socket() {
    let default = Path::new("/tmp/spire-agent/public/api.sock");
    if default.exists() {
        println!("SKIPPED: {} exists on this machine", default.display());
        return;
    }
    let l = lanyard();
    let links = Links::new(&l);
    let elsewhere = format!("unix://{}", l.path("env.sock").display());
    let env = [("SPIFFE_ENDPOINT_SOCKET", elsewhere.as_str())];
    for args in [
        &["api", "fetch", "-timeout", "2s"][..],
        &["api", "fetch", "jwt", "-audience", "a"],
    ] {
        let out = run_with(&links.agent, args, &env);
        assert_ne!(out.code, Some(0), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(default.to_str().unwrap()),
            "{args:?}: {out:?}"
        );
    }
    let out = run_with(&links.agent, &["healthcheck", "-verbose"], &env);
    assert!(out.stderr.contains(default.to_str().unwrap()), "{out:?}");
}
