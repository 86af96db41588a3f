//! The client-to-server byte stream of one HTTP/2 connection (RFC 9113), rewritten header
//! block by header block; everything else is copied as it arrives.

use super::hpack::{self, Decoder, Field};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The largest frame payload the rewriter emits: h2's SETTINGS_MAX_FRAME_SIZE, which tonic
/// leaves at the RFC 9113 §6.5.2 default.
const MAX_FRAME: usize = 16_384;

/// The largest header block (all its frames) the rewriter holds: 64 KiB over h2's 16 KiB
/// header list limit. A larger one passes through untouched for h2 to refuse.
pub(crate) const MAX_BLOCK: usize = 64 * 1024 + 16 * 1024;

/// The authority a unix-socket request gets instead of one h2 cannot parse: what gRPC itself
/// uses for `unix:` targets.
const LOCALHOST: &[u8] = b"localhost";

/// Where in the stream the rewriter is.
enum State {
    /// Inside the connection preface; this many bytes are left.
    Preface(usize),
    /// Reading a frame header.
    Header {
        buf: [u8; FRAME_HEADER_LEN],
        filled: usize,
    },
    /// Copying the payload of a frame that carries no header block.
    Copy(usize),
    /// Collecting the payload of a HEADERS or CONTINUATION frame.
    Collect {
        head: [u8; FRAME_HEADER_LEN],
        payload: Vec<u8>,
        left: usize,
    },
    /// Given up: everything else is copied.
    Raw,
}

/// A header block being collected across HEADERS and CONTINUATION frames.
struct Block {
    /// Every byte of its frames as received, to pass on if it is not rewritten.
    raw: Vec<u8>,
    /// The HPACK fragments, padding and priority removed.
    fragment: Vec<u8>,
    stream_id: [u8; 4],
    end_stream: bool,
    /// The priority fields of the HEADERS frame, kept as sent (RFC 9113 §6.2).
    priority: Option<[u8; 5]>,
}

/// Rewrites the `:authority` of request header blocks h2 would refuse (see the parent
/// module); a sans-IO state machine fed with whatever the socket returned.
pub(crate) struct Rewriter {
    state: State,
    block: Option<Block>,
    decoder: Decoder,
    /// Set once a block was re-encoded: from then on the server's dynamic table no longer
    /// matches the client's, so every later block must be re-encoded too.
    rewriting: bool,
}

impl Rewriter {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Preface(PREFACE_LEN),
            block: None,
            decoder: Decoder::new(),
            rewriting: false,
        }
    }

    /// True once the rest of the stream passes through untouched.
    #[cfg(test)]
    pub(crate) fn is_raw(&self) -> bool {
        matches!(self.state, State::Raw)
    }

    /// True once a header block was re-encoded; until then every byte passed on as sent.
    pub(crate) fn is_rewriting(&self) -> bool {
        self.rewriting
    }

    /// How many bytes may be copied straight through right now without looking at them:
    /// the rest of a non-header frame's payload (unbounded once raw). `None` when the next
    /// byte must go through [`Rewriter::feed`].
    pub(crate) fn copyable(&self) -> Option<usize> {
        match self.state {
            State::Copy(left) if left > 0 => Some(left),
            State::Raw => Some(usize::MAX),
            _ => None,
        }
    }

    /// Records that `n` bytes (at most [`Rewriter::copyable`]) were copied straight through.
    pub(crate) fn copied(&mut self, n: usize) {
        if let State::Copy(left) = &mut self.state {
            *left -= n.min(*left);
            if *left == 0 {
                self.state = header();
            }
        }
    }

    /// Processes `input`, appending what the server should read to `out`.
    pub(crate) fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match &mut self.state {
                State::Raw => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Preface(left) | State::Copy(left) => {
                    let n = (*left).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        self.state = header();
                    }
                }
                State::Header { buf, filled } => {
                    let n = (FRAME_HEADER_LEN - *filled).min(input.len());
                    buf[*filled..*filled + n].copy_from_slice(&input[..n]);
                    *filled += n;
                    input = &input[n..];
                    if *filled == FRAME_HEADER_LEN {
                        let head = *buf;
                        self.on_frame_header(head, out);
                    }
                }
                State::Collect {
                    head,
                    payload,
                    left,
                } => {
                    let n = (*left).min(input.len());
                    payload.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        let head = *head;
                        let payload = std::mem::take(payload);
                        self.on_header_frame(head, payload, out);
                    }
                }
            }
        }
    }

    /// Flushes whatever is held back, as received: the stream ended mid-block.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.state, State::Raw) {
            State::Header { buf, filled } => {
                self.give_up(out);
                out.extend_from_slice(&buf[..filled]);
            }
            State::Collect { head, payload, .. } => {
                self.give_up(out);
                out.extend_from_slice(&head);
                out.extend_from_slice(&payload);
            }
            _ => self.give_up(out),
        }
    }

    fn on_frame_header(&mut self, head: [u8; FRAME_HEADER_LEN], out: &mut Vec<u8>) {
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let kind = head[3];
        let held = self.block.as_ref().map_or(0, |b| b.raw.len());
        let continues = self
            .block
            .as_ref()
            .is_some_and(|b| kind == CONTINUATION && b.stream_id == stream_id(&head));
        let starts = self.block.is_none() && kind == HEADERS;

        if (continues || starts) && held + FRAME_HEADER_LEN + len <= MAX_BLOCK {
            self.state = State::Collect {
                head,
                payload: Vec::with_capacity(len),
                left: len,
            };
            if len == 0 {
                self.on_header_frame(head, Vec::new(), out);
            }
        } else if self.block.is_some() || starts {
            // A block interrupted by another frame (a connection error, RFC 9113 §6.10) or
            // one too large to hold: h2 shall see it as sent.
            self.give_up(out);
            out.extend_from_slice(&head);
        } else {
            out.extend_from_slice(&head);
            self.state = if len == 0 { header() } else { State::Copy(len) };
        }
    }

    fn on_header_frame(
        &mut self,
        head: [u8; FRAME_HEADER_LEN],
        payload: Vec<u8>,
        out: &mut Vec<u8>,
    ) {
        let flags = head[4];
        let block = self.block.get_or_insert_with(|| Block {
            raw: Vec::new(),
            fragment: Vec::new(),
            stream_id: stream_id(&head),
            end_stream: flags & END_STREAM != 0,
            priority: None,
        });
        block.raw.extend_from_slice(&head);
        block.raw.extend_from_slice(&payload);
        let fragment = if head[3] == HEADERS {
            match headers_fragment(flags, &payload) {
                Some((priority, fragment)) => {
                    block.priority = priority;
                    fragment
                }
                None => return self.give_up(out),
            }
        } else {
            &payload[..]
        };
        block.fragment.extend_from_slice(fragment);
        self.state = header();
        if flags & END_HEADERS != 0 {
            self.on_block(out);
        }
    }

    /// A complete block: decoded to keep the table in step, re-encoded if needed.
    fn on_block(&mut self, out: &mut Vec<u8>) {
        let Some(block) = self.block.take() else {
            return;
        };
        let mut fields = match self.decoder.decode(&block.fragment, MAX_BLOCK) {
            Ok(fields) => fields,
            Err(e) => {
                tracing::debug!(error = %e, "Header block does not decode; passing it to h2 as sent");
                self.block = Some(block);
                return self.give_up(out);
            }
        };
        let mut fixed = false;
        for field in fields.iter_mut().filter(|f| f.name == b":authority") {
            if http::uri::Authority::try_from(field.value.as_slice()).is_err() {
                field.value = LOCALHOST.to_vec();
                fixed = true;
            }
        }
        if !(fixed || self.rewriting) {
            out.extend_from_slice(&block.raw);
            return;
        }
        self.rewriting = true;
        write_block(&block, &fields, out);
    }

    /// Passes the held block on as received and stops rewriting for good.
    fn give_up(&mut self, out: &mut Vec<u8>) {
        if let Some(block) = self.block.take() {
            out.extend_from_slice(&block.raw);
        }
        self.state = State::Raw;
    }
}

fn header() -> State {
    State::Header {
        buf: [0; FRAME_HEADER_LEN],
        filled: 0,
    }
}

fn stream_id(head: &[u8; FRAME_HEADER_LEN]) -> [u8; 4] {
    [head[5], head[6], head[7], head[8]]
}

/// The priority fields and the HPACK fragment of a HEADERS payload (RFC 9113 §6.2), or `None`
/// when the padding or priority overrun it (a PROTOCOL_ERROR h2 will report).
fn headers_fragment(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut rest = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&len, after) = rest.split_first()?;
        pad = usize::from(len);
        rest = after;
    }
    let priority = if flags & PRIORITY != 0 {
        let (fields, after) = rest.split_first_chunk::<5>()?;
        rest = after;
        Some(*fields)
    } else {
        None
    };
    let end = rest.len().checked_sub(pad)?;
    Some((priority, &rest[..end]))
}

/// `fields` as one HEADERS frame, followed by CONTINUATIONs when over [`MAX_FRAME`]; same
/// stream, END_STREAM and priority, no padding.
fn write_block(block: &Block, fields: &[Field], out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(block.fragment.len() + 64);
    let mut flags = if block.end_stream { END_STREAM } else { 0 };
    if let Some(priority) = block.priority {
        payload.extend_from_slice(&priority);
        flags |= PRIORITY;
    }
    hpack::encode(fields, &mut payload);

    // CONTINUATION frames define END_HEADERS only (RFC 9113 §6.10).
    let mut chunks = payload.chunks(MAX_FRAME).peekable();
    let mut kind = HEADERS;
    loop {
        let chunk = chunks.next().unwrap_or_default();
        let last = chunks.peek().is_none();
        let end = if last { END_HEADERS } else { 0 };
        frame(out, kind, flags | end, block.stream_id, chunk);
        if last {
            return;
        }
        kind = CONTINUATION;
        flags = 0;
    }
}

/// Appends one frame (RFC 9113 §4.1); `payload` is at most [`MAX_FRAME`] long.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream_id: [u8; 4], payload: &[u8]) {
    let len = payload.len().to_be_bytes();
    out.extend_from_slice(&len[len.len() - 3..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream_id);
    out.extend_from_slice(payload);
}
