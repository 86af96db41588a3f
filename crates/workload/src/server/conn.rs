//! An accepted unix socket connection that carries the peer's kernel credentials into every
//! request on it, and that the server can cut off when a graceful shutdown takes too long.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tonic::transport::server::Connected;

use super::authority::AuthorityFix;
use crate::Caller;
use crate::source::ProcessDirs;

type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One Workload API connection: the socket, who is on the other end, and the kill switch.
pub(crate) struct PeerConn {
    /// The socket, with grpc-core's unix-socket `:authority` made acceptable to h2.
    stream: AuthorityFix<UnixStream>,
    caller: Caller,
    /// Completes when the server gives up waiting for this connection to close by itself.
    kill: Signal,
    killed: bool,
}

impl PeerConn {
    /// Reads the peer's credentials once, at accept time (`SO_PEERCRED`: the values the
    /// kernel recorded when the peer called `connect`, which the peer cannot forge).
    ///
    /// The connection is cut off once `kill` holds `true` or its sender is gone.
    pub(crate) fn new(
        stream: UnixStream,
        mut kill: watch::Receiver<bool>,
        dirs: &ProcessDirs,
    ) -> io::Result<Self> {
        let cred = stream.peer_cred()?;
        // Taken now, before the peer could exit and its PID be reused: see `ProcessDir`.
        let process = cred.pid().and_then(|pid| match dirs.open(pid) {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::debug!(peer.pid = pid, error = %e, "Cannot open the peer's /proc directory");
                None
            }
        });
        let caller = Caller::new(cred.pid(), cred.uid(), cred.gid(), process);
        let kill = Box::pin(async move {
            let _gone = kill.wait_for(|k| *k).await.is_err();
        });
        Ok(Self {
            stream: AuthorityFix::new(stream),
            caller,
            kill,
            killed: false,
        })
    }

    /// The peer's credentials.
    pub(crate) fn caller(&self) -> &Caller {
        &self.caller
    }

    /// `Err` once the kill switch has fired; registers the task for it otherwise.
    fn check_alive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.killed && self.kill.as_mut().poll(cx).is_ready() {
            self.killed = true;
        }
        if self.killed {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the workload API server closed the connection at shutdown",
            ));
        }
        Ok(())
    }
}

impl Connected for PeerConn {
    type ConnectInfo = Caller;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.caller.clone()
    }
}

// Reads and writes pass through to the socket until the kill switch fires; hyper always has a
// read outstanding on a live connection, so polling the switch there is enough to wake it.
impl AsyncRead for PeerConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.check_alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check_alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.check_alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn pair(kill: watch::Receiver<bool>) -> (PeerConn, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (PeerConn::new(a, kill, &ProcessDirs::default()).unwrap(), b)
    }

    #[tokio::test]
    async fn reports_the_peers_kernel_credentials() {
        let (_tx, rx) = watch::channel(false);
        let (conn, _other) = pair(rx);
        let caller = conn.connect_info();
        assert_eq!(caller.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(caller.gid, nix::unistd::getegid().as_raw());
        assert_eq!(caller.pid, Some(i32::try_from(std::process::id()).unwrap()));
        assert!(
            caller.process.is_some(),
            "the peer's /proc directory is open"
        );
    }

    #[tokio::test]
    async fn passes_bytes_through_until_killed() {
        let (tx, rx) = watch::channel(false);
        let (mut conn, mut other) = pair(rx);
        other.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        // A read that is already waiting is woken by the kill switch.
        let pending = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            conn.read(&mut buf).await
        });
        tx.send_replace(true);
        let err = pending.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }

    #[tokio::test]
    async fn is_cut_off_when_the_server_is_gone() {
        let (tx, rx) = watch::channel(false);
        let (mut conn, _other) = pair(rx);
        drop(tx);
        let err = conn.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
}
