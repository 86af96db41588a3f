//! The program the helper looks after: started after the first update, signalled after the
//! later ones.

use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The configured command and the child started from it.
pub(crate) struct Managed {
    cmd: Option<String>,
    args: Vec<String>,
    renew_signal: Option<Signal>,
    pid_file: Option<PathBuf>,
    child: Option<tokio::process::Child>,
}

impl Managed {
    /// Nothing is started yet.
    ///
    /// # Errors
    ///
    /// `cmd_args` with an unclosed quote.
    pub(crate) fn new(
        cmd: Option<String>,
        cmd_args: &str,
        renew_signal: Option<Signal>,
        pid_file: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            cmd,
            args: split_args(cmd_args).map_err(|rule| anyhow::anyhow!("cmd_args: {rule}"))?,
            renew_signal,
            pid_file,
            child: None,
        })
    }

    /// After an update: starts the command the first time (and again if it has exited),
    /// otherwise sends the renew signal to it, or to the pid in the pid file.
    ///
    /// # Errors
    ///
    /// The command cannot be started, the pid file is unreadable, the signal cannot be sent.
    pub(crate) fn updated(&mut self) -> anyhow::Result<()> {
        if let Some(pid_file) = &self.pid_file {
            let Some(signal) = self.renew_signal else {
                anyhow::bail!("pid_file_name is set without renew_signal: set both");
            };
            return signal_pid_file(pid_file, signal);
        }
        let running = match &mut self.child {
            Some(child) => child
                .try_wait()
                .context("cannot check the command")?
                .is_none(),
            None => false,
        };
        if !running {
            return self.start();
        }
        if let (Some(signal), Some(pid)) = (
            self.renew_signal,
            self.child.as_ref().and_then(tokio::process::Child::id),
        ) {
            send(pid, signal)?;
            tracing::info!(pid, signal = %signal, "Signalled the command");
        }
        Ok(())
    }

    /// Waits for the started command, if any, and fails when it failed.
    ///
    /// # Errors
    ///
    /// The command exited unsuccessfully.
    pub(crate) async fn wait(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &mut self.child {
            let status = child.wait().await.context("cannot wait for the command")?;
            anyhow::ensure!(status.success(), "the command exited with {status}");
        }
        Ok(())
    }

    /// Asks a still running command to stop (SIGTERM).
    pub(crate) fn stop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(tokio::process::Child::id) {
            let _ = send(pid, Signal::SIGTERM);
        }
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let Some(cmd) = &self.cmd else {
            return Ok(());
        };
        let child = tokio::process::Command::new(cmd)
            .args(&self.args)
            .spawn()
            .with_context(|| format!("cannot start {cmd}"))?;
        tracing::info!(cmd = %cmd, pid = child.id(), "Started the command");
        self.child = Some(child);
        Ok(())
    }
}

fn signal_pid_file(path: &Path, signal: Signal) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the pid file {}", path.display()))?;
    let pid: u32 = text
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 1)
        .with_context(|| {
            format!(
                "pid file {}: {:?} is not a process id above 1",
                path.display(),
                text.trim()
            )
        })?;
    send(pid, signal)?;
    tracing::info!(pid, signal = %signal, "Signalled the process of the pid file");
    Ok(())
}

fn send(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).with_context(|| format!("pid {pid} is out of range"))?;
    kill(Pid::from_raw(raw), signal).with_context(|| format!("cannot send {signal} to pid {pid}"))
}

/// Splits `cmd_args` as a shell would split words: blanks separate, `'...'` is literal,
/// `"..."` and a bare backslash escape one character.
pub(crate) fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a \" quote is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        args.push(word);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_keeps_quoted_text_together() {
        assert_eq!(
            split_args(r#"-c 'trap "echo x" HUP' "a b" c\ d ''"#).unwrap(),
            ["-c", "trap \"echo x\" HUP", "a b", "c d", ""]
        );
        assert!(split_args("'open").is_err());
        assert!(split_args("").unwrap().is_empty());
    }
}
