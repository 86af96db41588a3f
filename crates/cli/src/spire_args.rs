//! SPIRE's command lines, accepted as they are.
//!
//! SPIRE's binaries parse flags with Go's `flag` package: one or two dashes, camelCase names,
//! `-name value` or `-name=value` (`spire-server entry create -socketPath S -spiffeID ID`).
//! Systemd units, Helm charts and scripts hold such command lines, and Lanyard replaces SPIRE
//! without them changing, so before clap sees argv [`rewrite`] turns each Go-style flag into
//! the clap long flag of the (sub)command it follows, and a binary invoked as `spire-server` or
//! `spire-agent` (a symlink to `lanyard`) into `lanyard server` or `lanyard agent`.
//!
//! Lanyard's flags come from clap's own command tree, never from a list kept here: a flag
//! matches after camelCase becomes kebab-case (`parentID` is `--parent-id`), or through a clap
//! alias on the arg where SPIRE's name is not a plain conversion (`x509SVIDTTL`, `socketPath`).
//! What clap already understands is left alone: values (the token after a flag that takes one,
//! even when it starts with a dash), single-letter shorts and everything after `--`. SPIRE's
//! own flag list ([`spire_flags`]) is read only to say which SPIRE flag or command Lanyard does
//! not implement, instead of clap's "unexpected argument '-c'".
//!
//! Started under a SPIRE name, the process also takes SPIRE's default socket paths
//! ([`sockets`]), so that command lines relying on them reach the same sockets.

mod sockets;
mod spire_flags;

pub(crate) use sockets::{agent_socket, invoked_as_spire, server_socket};

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::Path;

use clap::{Arg, Command};

/// A SPIRE command line Lanyard cannot run.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SpireArgsError {
    /// A flag of SPIRE's command that Lanyard's counterpart does not implement.
    #[error("-{flag} (a flag of `{command}`) is not supported by Lanyard")]
    UnsupportedFlag { flag: String, command: String },
    /// A SPIRE command Lanyard does not have.
    #[error("`{command}` is a SPIRE command that Lanyard does not support")]
    UnsupportedCommand { command: String },
    /// `-flag=value` on a flag that takes no value, with a value Go would not read as a bool.
    #[error("-{flag}={value}: the flag takes no value other than true or false")]
    NotABool { flag: String, value: String },
}

/// Where translation stands: the (sub)command reached so far and its path from the root.
struct Position<'c> {
    command: &'c Command,
    path: Vec<&'c str>,
}

impl<'c> Position<'c> {
    fn path(&self) -> String {
        self.path.join(" ")
    }

    /// The path of `name` below this command.
    fn child_path(&self, name: &str) -> String {
        let mut path = self.path.clone();
        path.push(name);
        path.join(" ")
    }

    /// Moves to the subcommand `name` (or alias) and says so; stays put if there is none.
    fn descend(&mut self, name: &str) -> bool {
        match self.command.find_subcommand(name) {
            Some(sub) => {
                self.path.push(sub.get_name());
                self.command = sub;
                true
            }
            None => false,
        }
    }

    /// The subcommand SPIRE runs when none is named: `spire-agent api fetch` is `fetch x509`.
    fn default_subcommand(&self) -> Option<&'static str> {
        (self.path() == "agent api fetch").then_some("x509")
    }
}

/// argv as clap should see it: `spire-server`/`spire-agent` dispatched, Go-style flags turned
/// into clap long flags of the command they follow.
///
/// # Errors
///
/// A SPIRE flag or command Lanyard does not implement, and a bool flag given a value that is
/// not a bool; anything else clap does not accept is left for clap to report.
pub(crate) fn rewrite(
    argv: impl IntoIterator<Item = OsString>,
    mut root: Command,
) -> Result<Vec<OsString>, SpireArgsError> {
    root.build();
    let mut rest: VecDeque<OsString> = argv.into_iter().collect();
    let Some(bin) = rest.pop_front() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(rest.len() + 2);
    if let Some(daemon) = dispatch(&bin) {
        rest.push_front(daemon.into());
        // clap names the binary after argv[0] in usage lines: `lanyard server run`, not
        // `spire-server server run`.
        out.push(OsString::from("lanyard"));
    } else {
        out.push(bin);
    }
    let mut at = Position {
        command: &root,
        path: Vec::new(),
    };

    let mut ended_by_dashes = false;
    while let Some(token) = rest.pop_front() {
        let Some(text) = token.to_str() else {
            out.push(token);
            continue;
        };
        if text == "--" {
            out.extend(at.default_subcommand().map(OsString::from));
            out.push(token);
            out.extend(rest.drain(..));
            ended_by_dashes = true;
            break;
        }
        if let Some(flag) = GoFlag::parse(text) {
            if let Some(sub) = at.default_subcommand() {
                at.descend(sub);
                out.push(sub.into());
            }
            flag.translate(&at, &mut rest, &mut out)?;
            continue;
        }
        if at.command.has_subcommands()
            && !at.descend(text)
            && spire_flags::has_command_under(&at.child_path(text))
        {
            return Err(SpireArgsError::UnsupportedCommand {
                command: spire_flags::spire_spelling(&at.child_path(text)),
            });
        }
        out.push(token);
    }
    if !ended_by_dashes {
        out.extend(at.default_subcommand().map(OsString::from));
    }
    Ok(out)
}

/// `lanyard server` or `lanyard agent` for a binary named `spire-server` or `spire-agent`.
fn dispatch(argv0: &OsStr) -> Option<&'static str> {
    match Path::new(argv0).file_name()?.to_str()? {
        "spire-server" => Some("server"),
        "spire-agent" => Some("agent"),
        _ => None,
    }
}

/// A token shaped like a flag: one or two dashes, a name, maybe `=value`.
#[derive(Debug)]
struct GoFlag<'t> {
    token: &'t str,
    dashes: usize,
    name: &'t str,
    value: Option<&'t str>,
}

impl<'t> GoFlag<'t> {
    fn parse(token: &'t str) -> Option<Self> {
        let (dashes, body) = match token.strip_prefix("--") {
            Some(body) => (2, body),
            None => (1, token.strip_prefix('-')?),
        };
        // A lone `-` is a value (stdin), and Go refuses `---x` and `-=x` as flags.
        if body.is_empty() || body.starts_with(['-', '=']) {
            return None;
        }
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        Some(Self {
            token,
            dashes,
            name,
            value,
        })
    }

    /// Pushes what clap should see for this flag (and its value, taken from `rest` when it
    /// is the next token) onto `out`.
    fn translate(
        &self,
        at: &Position<'_>,
        rest: &mut VecDeque<OsString>,
        out: &mut Vec<OsString>,
    ) -> Result<(), SpireArgsError> {
        let command = at.command;
        if self.dashes == 2
            && let Some(arg) = find_long(command, self.name)
        {
            // Already clap's spelling: its value, if separate, is never translated.
            out.push(self.token.into());
            if self.value.is_none() && takes_next(arg) {
                out.extend(rest.pop_front());
            }
            return Ok(());
        }
        if self.dashes == 1 && self.is_short_for(command) {
            out.push(self.token.into());
            return Ok(());
        }
        let Some(arg) = find_arg(at, self.name) else {
            return self.unknown(at, out);
        };
        let long = arg.get_long().unwrap_or(self.name);
        if !arg.get_action().takes_values() {
            return match self.value.map(go_bool) {
                None | Some(Some(true)) => {
                    out.push(format!("--{long}").into());
                    Ok(())
                }
                Some(Some(false)) => Ok(()),
                Some(None) => Err(SpireArgsError::NotABool {
                    flag: self.name.to_owned(),
                    value: self.value.unwrap_or_default().to_owned(),
                }),
            };
        }
        let value = match self.value {
            Some(v) => Some(normalize_bool(arg, v)),
            // Go reads the next token as the value even when it starts with a dash; joined
            // with `=`, clap does too.
            None if takes_next(arg) => rest.pop_front(),
            None => None,
        };
        let mut flag = OsString::from(format!("--{long}"));
        if let Some(value) = value {
            flag.push("=");
            flag.push(value);
        }
        out.push(flag);
        Ok(())
    }

    /// `-h`, or a cluster of the command's single-letter shorts: clap's to read.
    fn is_short_for(&self, command: &Command) -> bool {
        let shorts: Vec<char> = command.get_arguments().filter_map(Arg::get_short).collect();
        self.name
            .chars()
            .next()
            .is_some_and(|c| shorts.contains(&c))
            && (self.name.chars().count() == 1
                || (find_long(command, self.name).is_none()
                    && find_long(command, &kebab(self.name)).is_none()))
    }

    /// A flag Lanyard's command lacks. If SPIRE's command has it, the error says Lanyard does
    /// not support it; otherwise clap reports it, given in its long form so that clap names the
    /// whole flag (and suggests a near one) rather than its first letter.
    fn unknown(&self, at: &Position<'_>, out: &mut Vec<OsString>) -> Result<(), SpireArgsError> {
        let path = at.path();
        if spire_flags::command(&path).is_some_and(|spire| spire.flags().any(|f| f == self.name)) {
            return Err(SpireArgsError::UnsupportedFlag {
                flag: self.name.to_owned(),
                command: spire_flags::spire_spelling(&path),
            });
        }
        let whole = self.token.trim_start_matches('-');
        if self.name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push(format!("--{whole}").into());
        } else {
            out.push(self.token.into());
        }
        Ok(())
    }
}

/// The arg of the command at `at` that SPIRE's (or Lanyard's) flag `name` stands for.
fn find_arg<'c>(at: &Position<'c>, name: &str) -> Option<&'c Arg> {
    let command = at.command;
    find_long(command, name).or_else(|| find_long(command, &kebab(name)))
}

/// The arg of `command` whose long name or one of whose aliases (hidden ones too) is `name`.
fn find_long<'c>(command: &'c Command, name: &str) -> Option<&'c Arg> {
    command.get_arguments().find(|arg| {
        arg.get_long() == Some(name)
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

/// Whether `arg` takes the next token as its value when none is attached with `=`.
fn takes_next(arg: &Arg) -> bool {
    arg.get_action().takes_values()
        && !arg.is_require_equals_set()
        && arg.get_num_args().is_none_or(|n| n.min_values() > 0)
}

/// camelCase to kebab-case, acronyms kept whole: `spiffeID` is `spiffe-id`, `bundleEndpointURL`
/// is `bundle-endpoint-url`, `federatesWith` is `federates-with`. A dash already there stays.
fn kebab(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let before = chars[i - 1];
            let after_is_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            let starts_word = before.is_ascii_lowercase()
                || before.is_ascii_digit()
                || (before.is_ascii_uppercase() && after_is_lower);
            if starts_word && before != '-' {
                out.push('-');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// What Go's `strconv.ParseBool` reads `value` as.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `value` as clap's bool parser wants it (`true`/`false`) when `arg` takes a bool and Go
/// would read `value` as one (`-admin=1`); otherwise unchanged.
fn normalize_bool(arg: &Arg, value: &str) -> OsString {
    let names: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_owned())
        .collect();
    let is_bool = names.len() == 2 && names.iter().all(|n| n == "true" || n == "false");
    match go_bool(value) {
        Some(b) if is_bool => b.to_string().into(),
        _ => value.into(),
    }
}

#[cfg(test)]
#[path = "spire_args/tests.rs"]
mod tests;
