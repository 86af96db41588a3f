//! Output parity of the admin CLI: `spire-server <cmd> -socketPath S` and `lanyard server <cmd>
//! --socket S` against the same Lanyard server must print the same thing. Text is compared
//! byte for byte; JSON is compared as parsed values (types included, so an int64 printed as a
//! number where SPIRE prints a string is caught). Where the server hands out fresh values (an
//! entry ID, a revision, a token), both outputs are normalized the same way first.

use lanyard_testkit::{AgentOptions, CliOutput, Lanyard};
use serde_json::Value;

use crate::common::*;
use crate::spire::{Spire, entry_id, ok, text_field};

/// Both CLIs against one server's admin socket.
struct Both<'a> {
    spire: &'a Spire,
    l: &'a Lanyard,
    socket: String,
}

impl Both<'_> {
    /// `spire-server <args> -socketPath S`.
    fn theirs(&self, args: &[&str]) -> CliOutput {
        let mut theirs = args.to_vec();
        theirs.extend_from_slice(&["-socketPath", &self.socket]);
        self.spire.server_cli(&theirs)
    }

    /// `lanyard server <args> --socket S`, SPIRE's flags spelled with two dashes (Lanyard
    /// takes SPIRE's names as aliases).
    fn ours(&self, args: &[&str]) -> CliOutput {
        let long: Vec<String> = args
            .iter()
            .map(|a| match a.strip_prefix('-') {
                Some(flag) if flag.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                    format!("--{flag}")
                }
                _ => (*a).to_owned(),
            })
            .collect();
        let mut ours: Vec<&str> = vec!["server"];
        ours.extend(long.iter().map(String::as_str));
        ours.extend_from_slice(&["--socket", &self.socket]);
        self.l.cli(&ours)
    }

    /// [`Self::theirs`] and [`Self::ours`].
    fn run(&self, args: &[&str]) -> (CliOutput, CliOutput) {
        (self.theirs(args), self.ours(args))
    }

    /// `lanyard server <args>` succeeds; its stdout.
    fn ours_ok(&self, args: &[&str]) -> String {
        let out = self.ours(args);
        assert!(out.success, "lanyard server {args:?} failed: {out:?}");
        out.stdout
    }

    /// Both succeed; their stdouts.
    fn run_ok(&self, args: &[&str]) -> (String, String) {
        let (theirs, ours) = self.run(args);
        assert!(theirs.success, "spire-server {args:?} failed: {theirs:?}");
        assert!(ours.success, "lanyard server {args:?} failed: {ours:?}");
        (theirs.stdout, ours.stdout)
    }

    /// The text output (byte for byte) and the JSON output (as values) are the same.
    fn same(&self, args: &[&str]) {
        let (theirs, ours) = self.run_ok(args);
        assert_eq!(
            ours,
            theirs,
            "`{}` text differs from SPIRE's",
            args.join(" ")
        );
        let (theirs, ours) = self.json(args);
        assert_eq!(ours, theirs, "`{} -output json` differs", args.join(" "));
    }

    /// Both outputs of `args -output json`, parsed.
    fn json(&self, args: &[&str]) -> (Value, Value) {
        let args = [args, &["-output", "json"]].concat();
        let (theirs, ours) = self.run_ok(&args);
        (json(&theirs), json(&ours))
    }
}

#[test]
fn admin_cli_output_matches_spire_server_for_the_same_data() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let l = lanyard();
    let server = l.start_server(Default::default());
    let both = Both {
        spire: &spire,
        l: &l,
        socket: server.socket_str(),
    };
    populate(&l, &both);
    // Attested with a token from Lanyard's own CLI, which testkit reads past SPIRE's warning.
    let token = l.generate_token(&server, &[]);
    let _agent = l.start_agent(
        &server,
        AgentOptions {
            join_token: Some(token.clone()),
            ..Default::default()
        },
    );
    let agent = agent_id(&token);

    for args in [
        &["entry", "show"][..],
        &["entry", "show", "-downstream"],
        &["entry", "show", "-spiffeID", &format!("spiffe://{TD}/web")],
        &["entry", "show", "-parentID", &format!("spiffe://{TD}/node")],
        &["entry", "show", "-selector", "unix:uid:1000"],
        &[
            "entry",
            "show",
            "-selector",
            "unix:uid:5",
            "-selector",
            "unix:uid:1000",
            "-matchSelectorsOn",
            "any",
        ],
        &["entry", "show", "-federatesWith", "spiffe://other.org"],
        &["entry", "show", "-hint", "web"],
        &["entry", "count"],
        &["entry", "count", "-downstream"],
        &["agent", "list"],
        &["agent", "show", "-spiffeID", &agent],
        &["agent", "count"],
        &["bundle", "show"],
        &["bundle", "show", "-format", "spiffe"],
        &["bundle", "list"],
        &["bundle", "list", "-format", "spiffe"],
        &["bundle", "list", "-id", "spiffe://third.org"],
        &["bundle", "count"],
        &["federation", "list"],
        &["federation", "show", "-trustDomain", "fed.org"],
    ] {
        both.same(args);
    }

    // The show of one entry, looked up by ID.
    let (listed, _) = both.json(&["entry", "show", "-spiffeID", &format!("spiffe://{TD}/aaa")]);
    let id = listed["entries"][0]["id"].as_str().unwrap().to_owned();
    both.same(&["entry", "show", "-entryID", &id]);

    token_output_matches(&both);
    entry_writes_match(&both);
}

/// Entries (selectors, DNS names and federated trust domains out of order, entries made in no
/// sorted order, ties broken by parent and TTL), two federated bundles and two relationships.
fn populate(l: &Lanyard, both: &Both<'_>) {
    let pem = l.path("own.pem");
    let doc = l.path("own.json");
    std::fs::write(&pem, both.ours_ok(&["bundle", "show"])).unwrap();
    std::fs::write(&doc, both.ours_ok(&["bundle", "show", "-format", "spiffe"])).unwrap();
    let (pem, doc) = (pem.to_str().unwrap(), doc.to_str().unwrap());

    let lanyard_ok = |args: &[&str]| {
        both.ours_ok(args);
    };
    lanyard_ok(&["bundle", "set", "-id", "spiffe://other.org", "-path", pem]);
    lanyard_ok(&[
        "bundle",
        "set",
        "-id",
        "spiffe://third.org",
        "-path",
        doc,
        "-format",
        "spiffe",
    ]);
    lanyard_ok(&[
        "federation",
        "create",
        "-trustDomain",
        "fed.org",
        "-bundleEndpointURL",
        "https://127.0.0.1:9/bundle",
        "-bundleEndpointProfile",
        "https_spiffe",
        "-endpointSpiffeID",
        "spiffe://fed.org/spire/server",
        "-trustDomainBundlePath",
        pem,
        "-trustDomainBundleFormat",
        "pem",
    ]);
    lanyard_ok(&[
        "federation",
        "create",
        "-trustDomain",
        "aweb.org",
        "-bundleEndpointURL",
        "https://127.0.0.1:9/web",
        "-bundleEndpointProfile",
        "https_web",
    ]);

    let web = format!("spiffe://{TD}/web");
    let node = format!("spiffe://{TD}/node");
    let other_node = format!("spiffe://{TD}/a-node");
    let entry = |args: &[&str]| lanyard_ok(&[&["entry", "create"][..], args].concat());
    entry(&[
        "-spiffeID",
        &web,
        "-parentID",
        &node,
        "-selector",
        "unix:uid:1000",
        "-selector",
        "k8s:ns:default",
        "-selector",
        "unix:gid:50",
        "-dns",
        "web.b",
        "-dns",
        "a.web",
        "-federatesWith",
        "spiffe://third.org",
        "-federatesWith",
        "spiffe://other.org",
        "-hint",
        "web",
        "-x509SVIDTTL",
        "600",
        "-jwtSVIDTTL",
        "120",
        "-entryExpiry",
        "1900000000",
    ]);
    let admin = format!("spiffe://{TD}/admin");
    entry(&[
        "-spiffeID",
        &admin,
        "-parentID",
        &node,
        "-selector",
        "unix:uid:0",
        "-admin",
        "-downstream",
    ]);
    let aaa = format!("spiffe://{TD}/aaa");
    entry(&[
        "-spiffeID",
        &aaa,
        "-parentID",
        &node,
        "-selector",
        "unix:uid:5",
        "-storeSVID",
    ]);
    entry(&[
        "-spiffeID",
        &web,
        "-parentID",
        &other_node,
        "-selector",
        "unix:uid:1000",
    ]);
    entry(&[
        "-spiffeID",
        &web,
        "-parentID",
        &node,
        "-selector",
        "unix:uid:2",
    ]);
}

/// `token generate` prints the same lines (SPIRE's warning without `-spiffeID`, on stdout) and
/// the same JSON members and types; only the token and its expiry differ.
fn token_output_matches(both: &Both<'_>) {
    for extra in [&[][..], &["-spiffeID", "spiffe://example.org/nodes/n1"]] {
        let args = [&["token", "generate"][..], extra].concat();
        let (theirs, ours) = both.run_ok(&args);
        let blank = |out: &str| {
            let token = text_field(out, "Token").unwrap_or_else(|| panic!("{out}"));
            out.replace(token, "TOKEN")
        };
        assert_eq!(blank(&ours), blank(&theirs), "`{}` differs", args.join(" "));

        let (theirs, ours) = both.json(&args);
        let blank = |mut v: Value| {
            assert!(v["value"].is_string() && v["expires_at"].is_string(), "{v}");
            v["value"] = "TOKEN".into();
            v["expires_at"] = "EXPIRY".into();
            v
        };
        assert_eq!(
            blank(ours),
            blank(theirs),
            "`{} -output json`",
            args.join(" ")
        );
    }
}

/// `entry create`, `update` and `delete`: results on stdout, failures on stderr, in both
/// formats. Fresh IDs, creation times and revisions are blanked.
fn entry_writes_match(both: &Both<'_>) {
    let fresh = format!("spiffe://{TD}/fresh");
    let create = [
        "entry",
        "create",
        "-spiffeID",
        &fresh,
        "-parentID",
        "spiffe://example.org/node",
        "-selector",
        "unix:uid:9",
        "-selector",
        "docker:label:a",
        "-dns",
        "fresh.internal",
        "-hint",
        "f",
    ];

    // Each CLI creates the entry, which the other then deletes, and the same again in JSON.
    let theirs = ok(both.theirs(&create));
    let their_id = entry_id(&theirs);
    let by_lanyard = ok(both.ours(&["entry", "delete", "-entryID", &their_id]));
    let ours = ok(both.ours(&create));
    let our_id = entry_id(&ours);
    let by_spire = ok(both.theirs(&["entry", "delete", "-entryID", &our_id]));
    assert_eq!(
        ours.replace(&our_id, "ID"),
        theirs.replace(&their_id, "ID"),
        "`entry create` text"
    );
    assert_eq!(
        by_lanyard.replace(&their_id, "ID"),
        by_spire.replace(&our_id, "ID"),
        "`entry delete` text"
    );
    let json_create = [&create[..], &["-output", "json"]].concat();
    let theirs = json(&ok(both.theirs(&json_create)));
    let their_id = theirs["results"][0]["entry"]["id"].as_str().unwrap();
    let delete = ["entry", "delete", "-entryID", their_id, "-output", "json"];
    let by_lanyard = json(&ok(both.ours(&delete)));
    let ours = json(&ok(both.ours(&json_create)));
    let our_id = ours["results"][0]["entry"]["id"].as_str().unwrap();
    let delete = ["entry", "delete", "-entryID", our_id, "-output", "json"];
    let by_spire = json(&ok(both.theirs(&delete)));
    assert_eq!(
        blank_entries(ours),
        blank_entries(theirs),
        "`entry create` JSON"
    );
    let blank_id = |mut v: Value| {
        v["results"][0]["id"] = "ID".into();
        v
    };
    assert_eq!(
        blank_id(by_lanyard),
        blank_id(by_spire),
        "`entry delete` JSON"
    );

    // A create that fails: the entry as asked for, on stderr (the last line is each CLI's
    // own summary of the failure).
    let dup = [
        "entry",
        "create",
        "-spiffeID",
        "spiffe://example.org/aaa",
        "-parentID",
        "spiffe://example.org/node",
        "-selector",
        "unix:uid:5",
        "-storeSVID",
    ];
    let (theirs, ours) = both.run(&dup);
    assert!(!theirs.success && !ours.success, "{theirs:?}\n{ours:?}");
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(
        all_but_last_line(&ours.stderr),
        all_but_last_line(&theirs.stderr)
    );
    let json_dup = [&dup[..], &["-output", "json"]].concat();
    let (theirs, ours) = both.run(&json_dup);
    assert_eq!(
        json(&ours.stdout),
        json(&theirs.stdout),
        "failed `entry create` JSON"
    );

    // Updates of one entry: the same but for the revision each bumps.
    let (listed, _) = both.json(&["entry", "show", "-spiffeID", "spiffe://example.org/aaa"]);
    let id = listed["entries"][0]["id"].as_str().unwrap().to_owned();
    let update = [
        "entry",
        "update",
        "-entryID",
        &id,
        "-spiffeID",
        "spiffe://example.org/aaa",
        "-parentID",
        "spiffe://example.org/node",
        "-selector",
        "unix:uid:5",
        "-selector",
        "a:b",
        "-hint",
        "h",
    ];
    let theirs = ok(both.theirs(&update));
    let ours = ok(both.ours(&update));
    let revision = |out: &str| {
        out.lines()
            .map(|line| {
                if line.starts_with("Revision ") {
                    "Revision"
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(revision(&ours), revision(&theirs), "`entry update` text");
    let json_update = [&update[..], &["-output", "json"]].concat();
    let theirs = json(&ok(both.theirs(&json_update)));
    let ours = json(&ok(both.ours(&json_update)));
    assert_eq!(
        blank_entries(ours),
        blank_entries(theirs),
        "`entry update` JSON"
    );

    // Deletes that fail: nothing deleted, the same summary.
    let (theirs, ours) = both.run(&["entry", "delete", "-entryID", "no-such-entry"]);
    assert!(!theirs.success && !ours.success, "{theirs:?}\n{ours:?}");
    assert_eq!(ours.stdout, theirs.stdout, "failed `entry delete` stdout");
    assert_eq!(
        all_but_last_line(&ours.stderr),
        all_but_last_line(&theirs.stderr)
    );
    let args = [
        "entry",
        "delete",
        "-entryID",
        "no-such-entry",
        "-output",
        "json",
    ];
    let (theirs, ours) = both.run(&args);
    assert_eq!(
        json(&ours.stdout),
        json(&theirs.stdout),
        "failed `entry delete` JSON"
    );
}

/// A batch response with each entry's fresh fields blanked; the type of each is checked.
fn blank_entries(mut v: Value) -> Value {
    for result in v["results"].as_array_mut().unwrap() {
        let entry = &mut result["entry"];
        for field in ["id", "created_at", "revision_number"] {
            assert!(entry[field].is_string(), "{field} is not a string: {entry}");
            entry[field] = "BLANK".into();
        }
    }
    v
}

fn all_but_last_line(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    lines.join("\n")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
