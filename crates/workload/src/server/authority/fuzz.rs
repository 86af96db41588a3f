//! A synchronous way into [`AuthorityFix`] for the fuzz target in `crates/workload/fuzz`:
//! the client's bytes arrive in chosen reads and h2 reads the result with a chosen buffer, so
//! both the header-frame path and the direct-copy path of `poll_read` run as they do on a
//! socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};

use super::AuthorityFix;

/// What the server side read from one connection driven by [`rewrite_client_stream`].
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// Every byte the server read, up to end of stream.
    pub bytes: Vec<u8>,
    /// True when at least one header block was re-encoded; when false the adapter promises
    /// `bytes` equal the client's bytes.
    pub rewritten: bool,
}

/// Runs the client-to-server bytes `reads` (each one socket read; empty ones are skipped, as
/// a socket returns no empty read before end of stream) through [`AuthorityFix`], with the
/// server reading at most `server_read` bytes (at least 1) per call.
///
/// Not an interface: public only so the fuzz target can reach the adapter.
#[doc(hidden)]
pub fn rewrite_client_stream(reads: &[&[u8]], server_read: usize) -> Rewritten {
    let mut fix = AuthorityFix::new(Reads {
        reads: reads.iter().copied().filter(|r| !r.is_empty()).collect(),
        next: 0,
        offset: 0,
    });
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = vec![0; server_read.max(1)];
    let mut bytes = Vec::new();
    loop {
        let mut read = ReadBuf::new(&mut buf);
        // The inner reader is always ready and never fails, so neither arm below ends a
        // stream early; they only keep this loop finite should that ever change.
        match Pin::new(&mut fix).poll_read(&mut cx, &mut read) {
            Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                bytes.extend_from_slice(read.filled())
            }
            Poll::Ready(_) | Poll::Pending => break,
        }
    }
    Rewritten {
        bytes,
        rewritten: fix.rewriter.is_rewriting(),
    }
}

/// A client socket replayed from memory: each call returns the rest of the current read,
/// cut to the caller's buffer.
struct Reads<'a> {
    reads: Vec<&'a [u8]>,
    next: usize,
    offset: usize,
}

impl AsyncRead for Reads<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(read) = this.reads.get(this.next) {
            let n = (read.len() - this.offset).min(buf.remaining());
            buf.put_slice(&read[this.offset..this.offset + n]);
            this.offset += n;
            if this.offset == read.len() {
                this.next += 1;
                this.offset = 0;
            }
        }
        Poll::Ready(Ok(()))
    }
}
