//! `spire-server` and `spire-agent` symlinks to the `lanyard` binary under test, as a host
//! that swaps SPIRE for Lanyard installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lanyard_testkit::{CliOutput, Lanyard};

/// `spire-server` and `spire-agent`: symlinks to the `lanyard` binary under test.
pub struct Links {
    pub server: PathBuf,
    pub agent: PathBuf,
}

impl Links {
    pub fn new(l: &Lanyard) -> Self {
        let dir = l.path("bin");
        std::fs::create_dir(&dir).unwrap();
        let lanyard = Path::new(env!("CARGO_BIN_EXE_lanyard"));
        let link = |name: &str| {
            let path = dir.join(name);
            std::os::unix::fs::symlink(lanyard, &path).unwrap();
            path
        };
        Self {
            server: link("spire-server"),
            agent: link("spire-agent"),
        }
    }

    /// `spire-server <args>` through the symlink.
    pub fn server(&self, args: &[&str]) -> CliOutput {
        run(&self.server, args)
    }

    /// `spire-agent <args>` through the symlink.
    pub fn agent(&self, args: &[&str]) -> CliOutput {
        run(&self.agent, args)
    }
}

/// Runs `bin args` to completion, in UTC as `Spire` runs SPIRE's CLI, so times print alike.
pub fn run(bin: &Path, args: &[&str]) -> CliOutput {
    let out = Command::new(bin)
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    CliOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
