//! `lanyard`: one binary for the server, the agent, the admin commands, the workload-side
//! commands and the demo.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod cmd;
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
