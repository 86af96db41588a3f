//! Lets grpc-core clients (grpcio for Python, so py-spiffe; grpc-java; grpc C++) call the
//! Workload API over its unix socket.
//!
//! Those clients send the percent-encoded socket path as `:authority` (`tmp%2Fagent.sock`),
//! which is not a valid URI authority. The h2 server under tonic parses `:authority` strictly
//! and resets such a stream with PROTOCOL_ERROR before tonic or Lanyard sees the request
//! (hyperium/h2 issue #442 and hyperium/tonic issue #243; a relaxation is proposed in
//! hyperium/h2 PR #487, still open). grpc-core took up the percent-encoded path in grpc/grpc
//! PR #33571 (see grpc/grpc issue #38142). grpc-go sends `localhost` and is not affected.
//!
//! The Workload API never looks at `:authority`, so [`AuthorityFix`] wraps each accepted unix
//! connection and rewrites, in the bytes the client sends, an `:authority` that
//! `http::uri::Authority` refuses to `localhost` (what gRPC means by the authority of a `unix:`
//! target). Everything else reaches h2 byte for byte:
//! - the connection preface and every frame other than HEADERS/CONTINUATION are copied as they
//!   arrive (DATA is never held whole);
//! - each header block is decoded with one HPACK decoder per connection, following the
//!   client's dynamic table; a block that needs no change goes on as sent;
//! - a block that does is re-encoded with literals only (never touching h2's dynamic table) as
//!   one HEADERS frame, plus CONTINUATIONs past 16 KiB, with the same stream, END_STREAM and
//!   priority fields; padding is dropped. From then on every block of that connection is
//!   re-encoded, since h2's dynamic table no longer mirrors the client's;
//! - a block that does not decode, arrives out of order, or exceeds 80 KiB is passed on as
//!   sent and the connection is no longer rewritten, so h2 reports the error it would have.
//!
//! Server-to-client bytes are not touched. TCP and TLS listeners do not use this.

mod frames;
mod fuzz;
mod hpack;
mod huffman;
#[cfg(test)]
mod seeds;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testwire;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use frames::Rewriter;

#[doc(hidden)]
pub use fuzz::{Rewritten, rewrite_client_stream};

/// Read size while looking at header frames.
const SCRATCH: usize = 8 * 1024;

/// An HTTP/2 server-side stream whose incoming request headers get a parseable
/// `:authority` (see the module documentation).
pub(crate) struct AuthorityFix<S> {
    inner: S,
    rewriter: Rewriter,
    /// Rewritten bytes not yet read by the server, from `pos` on.
    out: Vec<u8>,
    pos: usize,
    scratch: Box<[u8]>,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    /// Wraps the server side of a fresh connection (before the client preface).
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            rewriter: Rewriter::new(),
            out: Vec::new(),
            pos: 0,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            eof: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.out.len() {
                let n = (this.out.len() - this.pos).min(buf.remaining());
                buf.put_slice(&this.out[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.out.len() {
                    this.out.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }

            // Frame payloads that hold no header block go straight into the caller's buffer.
            if let Some(copyable) = this.rewriter.copyable() {
                let limit = copyable.min(buf.remaining());
                let mut direct = ReadBuf::new(buf.initialize_unfilled_to(limit));
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut direct))?;
                let n = direct.filled().len();
                this.rewriter.copied(n);
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }

            let mut scratch = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut scratch))?;
            if scratch.filled().is_empty() {
                this.rewriter.finish(&mut this.out);
                this.eof = true;
            } else {
                this.rewriter.feed(scratch.filled(), &mut this.out);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
