//! `lanyard`: one binary for the server, the agent, the admin commands, the workload-side
//! commands and the demo.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod cmd;
mod config;
mod duration;
mod logging;
mod output;
mod spire_args;
mod svid_files;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// Lanyard: SPIFFE identities for every workload.
#[derive(Parser, Debug)]
#[command(name = "lanyard", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    // SPIRE's Go-style command lines (and `spire-server`/`spire-agent` symlinks) become
    // Lanyard's before clap reads them; see spire_args.
    let argv = match spire_args::rewrite(std::env::args_os(), Cli::command()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("error: {e}");
            // clap's exit code for a command line it refuses.
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(argv);
    raise_fd_limit();
    // The one process-wide crypto provider; libraries build their configs with it explicitly.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by `: `, leaving out a cause whose text the message
/// before it already holds.
///
/// Error types across the workspace (and in dependencies) both print their cause in their own
/// message and return it from `source()`, so `{:#}` would print it twice (`not a directory:
/// Not a directory (os error 20): Not a directory (os error 20)`). Library messages keep their
/// cause, since callers print them with `{}`; the binary drops the repetition here, once.
fn chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Lifts the soft open-files limit to the hard limit: a server holds one descriptor per
/// agent connection and an agent one per workload stream, and the usual soft limit of 1024
/// would cap a fleet long before memory or CPU do.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot use /x: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[test]
    fn prints_a_cause_once_when_the_message_already_holds_it() {
        let io = std::io::Error::other("Not a directory (os error 20)");
        let e = anyhow::Error::new(Repeats { source: io }).context("server stopped");
        assert_eq!(
            chain(&e),
            "server stopped: cannot use /x: Not a directory (os error 20)"
        );
    }

    #[test]
    fn keeps_causes_the_message_does_not_hold() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain(&e), "outer: inner");
    }
}
