//! Config-file syntax, differentially: each case is one file given to `spire-server validate`
//! (or `spire-agent validate`) and to `lanyard server validate` (`agent validate`). The files
//! are valid in meaning (SQLite in a temporary directory, join tokens, in-memory keys) and vary
//! only in how HCL is written, so a different verdict is a difference in the parser.
//!
//! Where both refuse a string or a port, SPIRE's message shows the value it read (`log_level`
//! and `bind_port` are echoed); the case checks Lanyard names the same value, so that hex,
//! octal, escapes and heredocs mean the same to both. Cases SPIRE accepts and Lanyard refuses on
//! purpose say why (see docs/compatibility.md, "Configuration files").

use std::process::{Command, Stdio};

use crate::spire::Spire;

/// What the two binaries must do with a case.
enum Want {
    /// Both accept.
    Accept,
    /// Both refuse.
    Refuse,
    /// Both refuse the `log_level` value, and both read it as this string.
    LogLevel(&'static str),
    /// Both refuse the `bind_port` value, and both read it as this number.
    Port(i64),
    /// SPIRE accepts; Lanyard refuses on purpose, for this reason.
    Deliberate(&'static str),
    /// SPIRE refuses; Lanyard accepts on purpose (a documented default or a wider form).
    Wider(&'static str),
}

struct Case {
    name: &'static str,
    agent: bool,
    /// The file, with `@DIR@` for the temporary directory.
    text: &'static str,
    /// `Some` runs with `-expandEnv` / `--expand-env` and this environment variable set.
    env: Option<(&'static str, &'static str)>,
    want: Want,
}

/// `server {}` with the keys every case needs, then any more given, then `plugins {}`.
macro_rules! server {
    ($($extra:expr),*) => {
        concat!(
            "server {\n  trust_domain = \"example.org\"\n  data_dir = \"@DIR@/data\"\n",
            "  bind_address = \"127.0.0.1\"\n  socket_path = \"@DIR@/api.sock\"\n",
            $($extra, "\n",)* "}\n", plugins!()
        )
    };
}

macro_rules! plugins {
    () => {
        concat!(
            "plugins {\n  DataStore \"sql\" {\n    plugin_data {\n",
            "      database_type = \"sqlite3\"\n      connection_string = \"@DIR@/ds.db\"\n",
            "    }\n  }\n  NodeAttestor \"join_token\" {\n    plugin_data {}\n  }\n",
            "  KeyManager \"memory\" {\n    plugin_data = {}\n  }\n}\n"
        )
    };
}

/// `agent {}` on one line, with `trust_domain` given.
macro_rules! agent {
    ($td:expr) => {
        concat!(
            "agent { data_dir = \"@DIR@/agent\", server_address = \"127.0.0.1\", ",
            "server_port = 8081, socket_path = \"@DIR@/agent.sock\", ",
            "insecure_bootstrap = true, trust_domain = \"", $td, "\" }\n",
            "plugins { NodeAttestor \"join_token\" { plugin_data {} } ",
            "KeyManager \"memory\" { plugin_data {} } WorkloadAttestor \"unix\" { plugin_data {} } }\n"
        )
    };
}

fn case(name: &'static str, text: &'static str, want: Want) -> Case {
    Case {
        name,
        agent: false,
        text,
        env: None,
        want,
    }
}

fn cases() -> Vec<Case> {
    use Want::*;
    const SERVER_ONE_LINE: &str = concat!(
        "server { trust_domain = \"example.org\", data_dir = \"@DIR@/data\", ",
        "bind_port = 8081, socket_path = \"@DIR@/api.sock\", }\n",
        plugins!()
    );
    let mut cases = vec![
        case("baseline", server!(), Accept),
        case("blocks nested on one line", ONE_LINE_SERVER, Accept),
        case("commas between attributes", SERVER_ONE_LINE, Accept),
        case(
            "attributes side by side",
            server!("log_level = \"DEBUG\" ca_key_type = \"ec-p256\""),
            Accept,
        ),
        case(
            "block as object assignment",
            concat!(
                "server = {\n trust_domain = \"example.org\"\n data_dir = \"@DIR@/data\"\n}\n",
                plugins!()
            ),
            Accept,
        ),
        case(
            "repeated server blocks merge",
            concat!(
                "server {\n trust_domain = \"example.org\"\n}\nserver {\n data_dir = \"@DIR@/data\"\n}\n",
                plugins!()
            ),
            Accept,
        ),
        case(
            "plugin label unquoted",
            concat!(
                "server { trust_domain = \"example.org\" data_dir = \"@DIR@/data\" }\n",
                "plugins {\n DataStore sql { plugin_data { database_type = \"sqlite3\"\n",
                " connection_string = \"@DIR@/ds.db\" } }\n \"NodeAttestor\" \"join_token\" {}\n",
                " KeyManager memory {}\n}\n"
            ),
            Accept,
        ),
        case(
            "plugin as nested blocks",
            concat!(
                "server { trust_domain = \"example.org\" data_dir = \"@DIR@/data\" }\n",
                "plugins {\n DataStore { sql { plugin_data { database_type = \"sqlite3\"\n",
                " connection_string = \"@DIR@/ds.db\" } } }\n NodeAttestor { join_token {} }\n",
                " KeyManager = { memory = { plugin_data = {} } }\n}\n"
            ),
            Accept,
        ),
        case(
            "repeated plugins blocks merge",
            concat!(
                "server { trust_domain = \"example.org\" data_dir = \"@DIR@/data\" }\n",
                "plugins { DataStore \"sql\" { plugin_data { database_type = \"sqlite3\"\n",
                " connection_string = \"@DIR@/ds.db\" } } }\n",
                "plugins { NodeAttestor \"join_token\" {} }\nplugins { KeyManager \"memory\" {} }\n"
            ),
            Accept,
        ),
        case(
            "commas between top-level blocks",
            concat!(
                "server { trust_domain = \"example.org\" data_dir = \"@DIR@/data\" },\n",
                "plugins { DataStore \"sql\" { plugin_data { database_type = \"sqlite3\",\n",
                " connection_string = \"@DIR@/ds.db\", }, }, NodeAttestor \"join_token\" {},\n",
                " KeyManager \"memory\" {}, },\n"
            ),
            Accept,
        ),
        case(
            "list with trailing comma",
            server!("admin_ids = [\"spiffe://example.org/a\", \"spiffe://example.org/b\",]"),
            Accept,
        ),
        case(
            "list on lines with comments",
            server!(
                "admin_ids = [\n  \"spiffe://example.org/a\", # one\n  // two\n",
                "  /* three */ \"spiffe://example.org/b\"\n]"
            ),
            Accept,
        ),
        case("empty list", server!("admin_ids = []"), Accept),
        case("list of only commas", server!("admin_ids = [,]"), Accept),
        case(
            "list without commas",
            server!("admin_ids = [\"spiffe://example.org/a\" \"spiffe://example.org/b\"]"),
            Refuse,
        ),
        case(
            "comments of every kind",
            server!(
                "log_level = \"DEBUG\" # hash\n  /* block\n  comment */ ca_key_type = \"ec-p256\" // sl"
            ),
            Accept,
        ),
        case("unterminated block comment", server!("/* open"), Refuse),
        case("port as a string", server!("bind_port = \"8081\""), Accept),
        case("port in hex", server!("bind_port = 0x1F91"), Accept),
        case("port in octal", server!("bind_port = 017621"), Accept),
        case(
            "octal means octal",
            server!("bind_port = 0777777"),
            Port(262_143),
        ),
        case("negative hex", server!("bind_port = -0x10"), Port(-16)),
        case("port as a fraction", server!("bind_port = 8081.0"), Refuse),
        case("port with an exponent", server!("bind_port = 8e3"), Refuse),
        case("port as a boolean", server!("bind_port = true"), Refuse),
        case("duration with a unit", server!("ca_ttl = \"24h\""), Accept),
        case(
            "duration in whole seconds",
            server!("ca_ttl = 86400"),
            Wider("Lanyard also reads a number as seconds; SPIRE wants a unit"),
        ),
        case(
            "empty server file",
            "",
            Wider("Lanyard's defaults (conf/README.md) include trust_domain and the plugins"),
        ),
        case(
            "boolean as a string",
            server!("audit_log_enabled = \"true\""),
            Refuse,
        ),
        case(
            "boolean as a number",
            server!("audit_log_enabled = 1"),
            Refuse,
        ),
        case(
            "unicode escape",
            server!("log_level = \"DEB\\u0055G\""),
            Accept,
        ),
        case(
            "escapes",
            server!("log_level = \"a\\tb\\x41\\101\\u00e9\\U0001F600\\\"\\\\\""),
            LogLevel("a\tbAAé😀\"\\"),
        ),
        case(
            "unknown escape",
            server!("log_level = \"DEBUG\\q\""),
            Refuse,
        ),
        case("slash escape", server!("log_level = \"DEBUG\\/\""), Refuse),
        case(
            "quotes inside ${}",
            server!("log_level = \"${a\"b}\""),
            Refuse,
        ),
        case(
            "heredoc",
            server!("log_level = <<EOF\nDEBUG\nEOF"),
            LogLevel("DEBUG\n"),
        ),
        case(
            "indented heredoc",
            server!("log_level = <<-EOF\n      a\n    b\n    EOF"),
            LogLevel("  a\nb\n"),
        ),
        case(
            "indented heredoc, a line less indented",
            server!("log_level = <<-EOF\n    a\n  b\n    EOF"),
            LogLevel("    a\n  b\n"),
        ),
        case(
            "heredoc with an indented end",
            server!("log_level = <<EOF\n  a\n  EOF"),
            LogLevel("  a\n  "),
        ),
        case(
            "tabs and CR LF",
            concat!(
                "server {\r\n\ttrust_domain = \"example.org\"\r\n\tdata_dir = \"@DIR@/data\"\r\n}\r\n",
                "plugins {\r\n\tDataStore \"sql\" {\r\n\t\tplugin_data {\r\n",
                "\t\t\tdatabase_type = \"sqlite3\"\r\n\t\t\tconnection_string = \"@DIR@/ds.db\"\r\n",
                "\t\t}\r\n\t}\r\n\tNodeAttestor \"join_token\" {}\r\n\tKeyManager \"memory\" {}\r\n}\r\n"
            ),
            Accept,
        ),
        case("byte order mark", concat!("\u{feff}", server!()), Refuse),
        case(
            "colon instead of =",
            server!("log_level: \"DEBUG\""),
            Refuse,
        ),
        case("semicolon", server!("log_level = \"DEBUG\";"), Refuse),
        case("single quotes", server!("log_level = 'DEBUG'"), Refuse),
        case("null", server!("log_level = null"), Refuse),
        case("bare word value", server!("log_level = DEBUG"), Refuse),
        case(
            "trailing garbage",
            server!("log_level = \"DEBUG\" garbage"),
            Refuse,
        ),
        case(
            "labels on an assignment",
            server!("log level = \"DEBUG\""),
            Refuse,
        ),
        case("key with a dash", server!("log-level = \"DEBUG\""), Refuse),
        case("key with a dot", server!("log.level = \"DEBUG\""), Refuse),
        case("unicode key", server!("niveau_dé_log = \"DEBUG\""), Refuse),
        case("extra closing brace", concat!(server!(), "}\n"), Refuse),
        case(
            "unclosed block",
            concat!(server!(), "telemetry {\n"),
            Refuse,
        ),
        case(
            "unterminated string",
            server!("log_level = \"DEBUG"),
            Refuse,
        ),
        case("key only", server!("log_level"), Refuse),
        case(
            "literal ${} in a value",
            server!("log_level = \"${LEVEL}\""),
            Refuse,
        ),
        case(
            "literal ${} in a path",
            concat!(
                "server { trust_domain = \"example.org\" data_dir = \"@DIR@/${X}\" }\n",
                plugins!()
            ),
            Deliberate(
                "SPIRE keeps ${X} as written; in a config file that is a forgotten -expandEnv, so \
             Lanyard refuses it and names the flag",
            ),
        ),
        case(
            "duplicate key",
            server!("log_level = \"bad\"\n  log_level = \"DEBUG\""),
            Deliberate("SPIRE keeps the last value silently; Lanyard names both lines"),
        ),
        case(
            "key in both of two repeated blocks",
            concat!(
                "server { trust_domain = \"example.org\"\n data_dir = \"@DIR@/data\" }\n",
                "server { data_dir = \"@DIR@/data\" }\n",
                plugins!()
            ),
            Deliberate("SPIRE keeps the last value silently; Lanyard names both lines"),
        ),
        case(
            "label on server",
            concat!(
                "server \"x\" {}\nserver { trust_domain = \"example.org\" data_dir = \"@DIR@/data\" }\n",
                plugins!()
            ),
            Deliberate("SPIRE ignores server.x; Lanyard refuses unknown keys"),
        ),
        case(
            "second label on a plugin",
            concat!(
                "server { trust_domain = \"example.org\" data_dir = \"@DIR@/data\" }\n",
                "plugins { DataStore \"sql\" \"x\" { plugin_data { database_type = \"sqlite3\" ",
                "connection_string = \"@DIR@/ds.db\" } } NodeAttestor \"join_token\" {} ",
                "KeyManager \"memory\" {} }\n"
            ),
            Deliberate("SPIRE reads no settings under the extra label; Lanyard refuses it"),
        ),
    ];
    cases.extend([
        Case {
            agent: true,
            ..case("agent on one line", agent!("example.org"), Accept)
        },
        Case {
            agent: true,
            env: Some(("LANYARD_HCL_TD", "example.org")),
            ..case("expand ${NAME}", agent!("${LANYARD_HCL_TD}"), Accept)
        },
        Case {
            agent: true,
            env: Some(("LANYARD_HCL_TD", "example.org")),
            ..case("expand $NAME", agent!("$LANYARD_HCL_TD"), Accept)
        },
        Case {
            agent: true,
            env: Some(("LANYARD_HCL_TD", "example.org")),
            ..case(
                "expand an unset variable",
                agent!("example.org$LANYARD_HCL_UNSET"),
                Deliberate("SPIRE expands an unset variable to nothing; Lanyard names it"),
            )
        },
        Case {
            agent: true,
            ..case("empty agent file", "", Refuse)
        },
    ]);
    cases
}

const ONE_LINE_SERVER: &str = concat!(
    "server { trust_domain = \"example.org\" data_dir = \"@DIR@/data\" }\n",
    "plugins { DataStore \"sql\" { plugin_data { database_type = \"sqlite3\" ",
    "connection_string = \"@DIR@/ds.db\" } } NodeAttestor \"join_token\" { plugin_data {} } ",
    "KeyManager \"memory\" { plugin_data {} } }\n"
);

struct Verdict {
    accepted: bool,
    output: String,
}

fn validate(bin: &std::path::Path, args: &[&str], env: Option<(&str, &str)>) -> Verdict {
    let mut command = Command::new(bin);
    command
        .args(args)
        .stdin(Stdio::null())
        .env_remove("LANYARD_HCL_UNSET");
    if let Some((name, value)) = env {
        command.env(name, value);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    Verdict {
        accepted: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn lanyard_reads_config_syntax_as_spire_does() {
    let Some(spire) = Spire::find() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir_str = dir.path().to_str().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let lanyard = env!("CARGO_BIN_EXE_lanyard");
    let mut failures = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        let path = dir.path().join(format!("case{i}.conf"));
        std::fs::write(&path, case.text.replace("@DIR@", dir_str)).unwrap();
        let path = path.to_str().unwrap();
        let (spire_bin, kind) = if case.agent {
            (spire.agent_bin(), "agent")
        } else {
            (spire.server_bin(), "server")
        };
        let mut spire_args = vec!["validate", "-config", path];
        let mut lanyard_args = vec![kind, "validate", "--config", path];
        if case.env.is_some() {
            spire_args.push("-expandEnv");
            lanyard_args.push("--expand-env");
        }
        let theirs = validate(&spire_bin, &spire_args, case.env);
        let ours = validate(lanyard.as_ref(), &lanyard_args, case.env);
        if let Err(problem) = judge(&case.want, &theirs, &ours) {
            failures.push(format!(
                "{}: {problem}\n  SPIRE: {}\n  Lanyard: {}",
                case.name,
                theirs.output.trim(),
                ours.output.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn judge(want: &Want, theirs: &Verdict, ours: &Verdict) -> Result<(), String> {
    let verdicts = (theirs.accepted, ours.accepted);
    match want {
        Want::Accept if verdicts != (true, true) => {
            Err(format!("both should accept: {verdicts:?}"))
        }
        Want::Refuse if verdicts != (false, false) => {
            Err(format!("both should refuse: {verdicts:?}"))
        }
        Want::Deliberate(why) if verdicts != (true, false) => Err(format!(
            "SPIRE should accept and Lanyard refuse ({why}): {verdicts:?}"
        )),
        Want::Wider(why) if verdicts != (false, true) => Err(format!(
            "SPIRE should refuse and Lanyard accept ({why}): {verdicts:?}"
        )),
        Want::LogLevel(value) => {
            let shown = format!("{value:?}");
            let spire_saw = theirs.output.contains(&format!("Level: {shown}"));
            let we_saw = ours.output.contains(&format!("log_level = {shown}"));
            (verdicts == (false, false) && spire_saw && we_saw)
                .then_some(())
                .ok_or(format!(
                    "both should refuse log_level {shown}: {verdicts:?}"
                ))
        }
        Want::Port(port) => {
            let spire_saw = theirs.output.contains(&format!("127.0.0.1:{port}\""));
            let we_saw = ours.output.contains(&format!("bind_port = {port} "));
            (verdicts == (false, false) && spire_saw && we_saw)
                .then_some(())
                .ok_or(format!("both should refuse port {port}: {verdicts:?}"))
        }
        _ => Ok(()),
    }
}
