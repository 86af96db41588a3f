use clap::{CommandFactory, Parser};

use super::*;
use crate::Cli;

/// The SPIRE flags Lanyard does not implement, by the Lanyard command standing in for SPIRE's.
/// The same list is in docs/compatibility.md ("Command lines").
const UNSUPPORTED_FLAGS: &[(&str, &str)] = &[
    ("server run", "logSourceLocation"),
    ("server validate", "logSourceLocation"),
    ("server entry create", "entryID"),
    ("server jwt mint", "write"),
    ("server federation create", "data"),
    ("server federation update", "data"),
    ("agent run", "allowUnauthenticatedVerifiers"),
    ("agent run", "logSourceLocation"),
    ("agent run", "rebootstrapDelay"),
    ("agent run", "rebootstrapMode"),
    ("agent run", "retryBootstrap"),
    ("agent validate", "allowUnauthenticatedVerifiers"),
    ("agent validate", "logSourceLocation"),
    ("agent validate", "rebootstrapDelay"),
    ("agent validate", "rebootstrapMode"),
    ("agent validate", "retryBootstrap"),
    ("agent api fetch x509", "silent"),
];

/// The SPIRE commands Lanyard does not have.
const UNSUPPORTED_COMMANDS: &[&str] = &[
    "server agent purge",
    "server federation refresh",
    "server upstreamauthority revoke",
    "server upstreamauthority taint",
    "server logger get",
    "server logger set",
    "server logger reset",
];

/// `rewrite` of a whitespace-separated command line, as strings.
fn rw(line: &str) -> Result<Vec<String>, SpireArgsError> {
    let argv = line.split_whitespace().map(OsString::from);
    let out = rewrite(argv, Cli::command())?;
    Ok(out
        .into_iter()
        .map(|a| a.into_string().expect("utf-8"))
        .collect())
}

fn ok(line: &str) -> String {
    rw(line).unwrap_or_else(|e| panic!("{line}: {e}")).join(" ")
}

/// The Lanyard command at a space-separated path.
fn lanyard_command<'c>(root: &'c Command, path: &str) -> Option<&'c Command> {
    path.split(' ')
        .try_fold(root, |cmd, name| cmd.find_subcommand(name))
}

fn built_root() -> Command {
    let mut root = Cli::command();
    root.build();
    root
}

#[test]
fn camel_case_becomes_kebab_case_with_acronyms_whole() {
    for (camel, kebab_case) in [
        ("spiffeID", "spiffe-id"),
        ("parentID", "parent-id"),
        ("federatesWith", "federates-with"),
        ("bundleEndpointURL", "bundle-endpoint-url"),
        ("trustBundleUrl", "trust-bundle-url"),
        ("matchFederatesWithOn", "match-federates-with-on"),
        ("socketPath", "socket-path"),
        ("shallow", "shallow"),
        ("spiffe-id", "spiffe-id"),
        ("x509", "x509"),
    ] {
        assert_eq!(kebab(camel), kebab_case, "{camel}");
    }
}

#[test]
fn spire_binary_names_dispatch_to_server_and_agent() {
    assert_eq!(
        dispatch(OsStr::new("/usr/bin/spire-server")),
        Some("server")
    );
    assert_eq!(dispatch(OsStr::new("spire-agent")), Some("agent"));
    assert_eq!(dispatch(OsStr::new("/opt/spire/bin/lanyard")), None);
    assert_eq!(dispatch(OsStr::new("spire-server-old")), None);
    assert_eq!(
        ok("/opt/spire/bin/spire-server run -config /etc/spire/server.conf"),
        "lanyard server run --config=/etc/spire/server.conf"
    );
    assert_eq!(
        ok("spire-agent healthcheck -shallow"),
        "lanyard agent healthcheck --shallow"
    );
}

#[test]
fn entry_create_with_spire_flags_becomes_lanyard_long_flags() {
    let line = "spire-server entry create -socketPath /tmp/api.sock \
                -spiffeID spiffe://example.org/w -parentID spiffe://example.org/n \
                -selector unix:uid:1000 -x509SVIDTTL 3600 -jwtSVIDTTL=60 \
                -federatesWith spiffe://other.org -dns a.example -admin -storeSVID \
                -entryExpiry 1900000000";
    let out = rw(line).unwrap();
    assert_eq!(
        out[1..].join(" "),
        "server entry create --socket=/tmp/api.sock \
         --spiffe-id=spiffe://example.org/w --parent-id=spiffe://example.org/n \
         --selector=unix:uid:1000 --x509-svid-ttl=3600 --jwt-svid-ttl=60 \
         --federates-with=spiffe://other.org --dns=a.example --admin --store-svid \
         --expires-at=1900000000"
    );
    Cli::try_parse_from(out).expect("clap takes the rewritten line");
}

#[test]
fn values_are_never_translated() {
    // The token after a flag that takes a value is that value, whatever it looks like.
    assert_eq!(
        ok("spire-server entry show -hint -spiffeID"),
        "lanyard server entry show --hint=-spiffeID"
    );
    assert_eq!(
        ok("lanyard server entry show --hint -parentID -selector a:b"),
        "lanyard server entry show --hint -parentID --selector=a:b"
    );
    // Not even a subcommand's name.
    assert_eq!(
        ok("lanyard server token generate -spiffeID run"),
        "lanyard server token generate --spiffe-id=run"
    );
}

#[test]
fn dash_dash_and_single_letter_shorts_keep_clap_semantics() {
    assert_eq!(
        ok("spire-server entry show -- -spiffeID x"),
        "lanyard server entry show -- -spiffeID x"
    );
    assert_eq!(ok("lanyard server run -h"), "lanyard server run -h");
    assert_eq!(ok("lanyard -V"), "lanyard -V");
    assert_eq!(ok("spire-server run -help"), "lanyard server run --help");
    // `-` alone is a value (stdin), not a flag.
    assert_eq!(
        ok("spire-server bundle set -id spiffe://o.org -path -"),
        "lanyard server bundle set --id=spiffe://o.org --path=-"
    );
}

#[test]
fn equals_forms_with_one_or_two_dashes() {
    assert_eq!(
        ok("spire-server entry show -spiffeID=spiffe://e.org/a --parentID=spiffe://e.org/b"),
        "lanyard server entry show --spiffe-id=spiffe://e.org/a \
         --parentID=spiffe://e.org/b"
    );
    // A value holding `=` keeps it.
    assert_eq!(
        ok("spire-server entry create -selector=k8s:label:a=b"),
        "lanyard server entry create --selector=k8s:label:a=b"
    );
}

#[test]
fn bool_flags_take_go_bool_values() {
    assert_eq!(
        ok("spire-server healthcheck -shallow=true -verbose=false"),
        "lanyard server healthcheck --shallow"
    );
    assert_eq!(
        ok("spire-server entry update -admin=1 -downstream=F"),
        "lanyard server entry update --admin=true --downstream=false"
    );
    assert_eq!(
        rw("spire-server healthcheck -shallow=maybe"),
        Err(SpireArgsError::NotABool {
            flag: "shallow".into(),
            value: "maybe".into()
        })
    );
}

#[test]
fn spire_flags_lanyard_lacks_are_named_as_unsupported() {
    let e = rw("spire-server run -config f -logSourceLocation").unwrap_err();
    assert_eq!(
        e.to_string(),
        "-logSourceLocation (a flag of `spire-server run`) is not supported by Lanyard"
    );
    let e = rw("spire-agent api fetch x509 -silent").unwrap_err();
    assert_eq!(
        e.to_string(),
        "-silent (a flag of `spire-agent api fetch x509`) is not supported by Lanyard"
    );
    let e = rw("spire-server agent purge -dryRun").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`spire-server agent purge` is a SPIRE command that Lanyard does not support"
    );
}

#[test]
fn flags_of_neither_are_left_for_clap_to_name_whole() {
    let out = rw("spire-server entry show -fooBar x").unwrap();
    assert_eq!(out[1..].join(" "), "server entry show --fooBar x");
    let e = Cli::try_parse_from(out).unwrap_err().to_string();
    assert!(e.contains("'--fooBar'"), "{e}");
}

#[test]
fn spire_agent_api_fetch_alone_is_fetch_x509() {
    assert_eq!(
        ok("spire-agent api fetch -socketPath /s -write /d"),
        "lanyard agent api fetch x509 --socket=/s --write=/d"
    );
    assert_eq!(ok("spire-agent api fetch"), "lanyard agent api fetch x509");
    assert_eq!(
        ok("spire-agent api fetch -- x"),
        "lanyard agent api fetch x509 -- x"
    );
    assert_eq!(
        ok("spire-agent api fetch jwt -audience a"),
        "lanyard agent api fetch jwt --audience=a"
    );
}

/// Every SPIRE flag of every SPIRE command reaches a Lanyard flag, unless it is listed as
/// unsupported; and every listed one really is missing (the lists stay honest both ways).
#[test]
fn every_spire_flag_maps_or_is_declared_unsupported() {
    let root = built_root();
    let mut wrong = Vec::new();
    for spire in spire_flags::COMMANDS {
        let Some(command) = lanyard_command(&root, spire.path) else {
            assert!(
                UNSUPPORTED_COMMANDS.contains(&spire.path),
                "Lanyard has no `{}`",
                spire.path
            );
            continue;
        };
        assert!(
            !UNSUPPORTED_COMMANDS.contains(&spire.path),
            "`{}` exists",
            spire.path
        );
        for flag in spire.flags() {
            let at = Position {
                command,
                path: spire.path.split(' ').collect(),
            };
            let maps = find_arg(&at, flag).is_some();
            let declared = UNSUPPORTED_FLAGS.contains(&(spire.path, flag));
            if maps == declared {
                wrong.push(format!("`{}` -{flag}: maps={maps}", spire.path));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Property over the whole command tree: each long flag of each command, written as Go would
/// (`-camelCase`, `-kebab-case`, `--camelCase`, `-name=value`), becomes that flag, and the
/// value after it passes through even when it looks like a flag.
#[test]
fn every_lanyard_long_flag_is_reachable_in_go_spelling() {
    let root = built_root();
    let mut stack = vec![(Vec::<String>::new(), &root)];
    let mut checked = 0;
    while let Some((path, command)) = stack.pop() {
        for sub in command.get_subcommands() {
            let mut path = path.clone();
            path.push(sub.get_name().to_owned());
            stack.push((path, sub));
        }
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else {
                continue;
            };
            let camel = camel(long);
            for spelling in [
                format!("-{camel}"),
                format!("--{camel}"),
                format!("-{long}"),
            ] {
                let mut argv: Vec<String> = vec!["lanyard".into()];
                argv.extend(path.iter().cloned());
                argv.push(spelling.clone());
                let native = spelling
                    .strip_prefix("--")
                    .is_some_and(|name| find_long(command, name).is_some());
                let expected = match (takes_next(arg), native) {
                    (true, true) => vec![spelling.clone(), "-looksLikeAFlag".to_owned()],
                    (true, false) => vec![format!("--{long}=-looksLikeAFlag")],
                    (false, _) => vec![format!("--{long}")],
                };
                if takes_next(arg) {
                    argv.push("-looksLikeAFlag".into());
                }
                let out: Vec<String> = rewrite(argv.iter().map(OsString::from), root.clone())
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
                    .into_iter()
                    .map(|s| s.into_string().expect("utf-8"))
                    .collect();
                assert_eq!(out[out.len() - expected.len()..], expected, "{argv:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} spellings checked");
}

/// kebab-case to camelCase: `x509-svid-ttl` is `x509SvidTtl`.
fn camel(long: &str) -> String {
    let mut out = String::new();
    for (i, word) in long.split('-').enumerate() {
        let mut chars = word.chars();
        match chars.next() {
            Some(first) if i > 0 => {
                out.push(first.to_ascii_uppercase());
                out.extend(chars);
            }
            Some(first) => {
                out.push(first);
                out.extend(chars);
            }
            None => {}
        }
    }
    out
}

#[test]
fn server_port_reaches_bind_port_through_its_clap_alias() {
    for command in ["run", "validate"] {
        let out = rw(&format!(
            "spire-server {command} -serverPort 8443 -bindAddress 0.0.0.0"
        ))
        .unwrap();
        assert_eq!(
            out[1..].join(" "),
            format!("server {command} --bind-port=8443 --bind-address=0.0.0.0")
        );
        Cli::try_parse_from(out).expect("clap takes the rewritten line");
    }
}

#[test]
fn fetch_jwt_audience_list_passes_whole_for_clap_to_split() {
    let out = rw("spire-agent api fetch jwt -audience a,b -spiffeID spiffe://e.org/w").unwrap();
    assert_eq!(
        out[1..].join(" "),
        "agent api fetch jwt --audience=a,b --spiffe-id=spiffe://e.org/w"
    );
    Cli::try_parse_from(out).expect("clap takes the rewritten line");
}
