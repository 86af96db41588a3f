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
mod svid_files;

use std::process::ExitCode;

use clap::Parser;

/// Lanyard: SPIFFE identities for every workload.
#[derive(Parser, Debug)]
#[command(name = "lanyard", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
