//! A unix socket connection that carries the peer's kernel credentials into each request.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tonic::transport::server::Connected;

use crate::Caller;

/// An accepted Workload API connection.
pub(crate) struct PeerConn {
    pub(crate) stream: UnixStream,
    pub(crate) caller: Option<Caller>,
}

impl PeerConn {
    /// Reads the peer's credentials once, at accept time.
    pub(crate) fn new(stream: UnixStream) -> Self {
        let caller = stream.peer_cred().ok().map(|cred| Caller {
            pid: cred.pid(),
            uid: cred.uid(),
            gid: cred.gid(),
        });
        Self { stream, caller }
    }
}

impl Connected for PeerConn {
    type ConnectInfo = Option<Caller>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.caller
    }
}

impl AsyncRead for PeerConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
