//! Test wire helpers: a client-side HPACK encoder that mirrors its dynamic table, and frame
//! building and parsing.

use std::collections::VecDeque;

use super::frames::Rewriter;
use super::hpack::{Decoder, Field};
use super::huffman;

pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub(super) const GRPC_CORE_AUTHORITY: &str = "tmp%2Fh%2Fagent.sock";

/// How a test client sends one field.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rep {
    /// Literal with incremental indexing (§6.2.1), which later blocks may refer to.
    Indexed,
    Without,
    Never,
}

/// A client-side HPACK encoder that mirrors its dynamic table, to produce blocks that refer
/// to earlier ones as real clients do.
pub(super) struct Client {
    table: VecDeque<(String, String)>,
    size: usize,
}

impl Client {
    pub(super) fn new() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
        }
    }

    /// Encodes `fields`: a field already in the dynamic table by its index, others as `rep`.
    pub(super) fn block(&mut self, fields: &[(&str, &str)], rep: Rep, huffman: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for &(name, value) in fields {
            if let Some(i) = self.table.iter().position(|(n, v)| n == name && v == value) {
                integer(&mut out, 0x80, 7, 62 + i);
                continue;
            }
            let flag = match rep {
                Rep::Indexed => 0x40,
                Rep::Without => 0x00,
                Rep::Never => 0x10,
            };
            out.push(flag);
            string(&mut out, name, huffman);
            string(&mut out, value, huffman);
            if let Rep::Indexed = rep {
                let size = name.len() + value.len() + 32;
                while self.size + size > 4096 {
                    let (n, v) = self.table.pop_back().unwrap();
                    self.size -= n.len() + v.len() + 32;
                }
                self.size += size;
                self.table.push_front((name.to_string(), value.to_string()));
            }
        }
        out
    }
}

pub(super) fn integer(out: &mut Vec<u8>, flags: u8, n: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(super) fn string(out: &mut Vec<u8>, s: &str, huffman: bool) {
    if huffman {
        let coded = huffman::encode(s.as_bytes());
        integer(out, 0x80, 7, coded.len());
        out.extend_from_slice(&coded);
    } else {
        integer(out, 0, 7, s.len());
        out.extend_from_slice(s.as_bytes());
    }
}

pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len().to_be_bytes();
    let mut out = len[len.len() - 3..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub(super) fn headers(stream: u32, block: &[u8]) -> Vec<u8> {
    frame(0x1, 0x4, stream, block)
}

pub(super) fn request(authority: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/SpiffeWorkloadAPI/FetchX509SVID"),
        (":authority", authority),
        ("te", "trailers"),
        ("content-type", "application/grpc"),
        (
            "user-agent",
            "grpc-python/1.85.3 grpc-c/52.0.0 (linux; chttp2)",
        ),
        ("workload.spiffe.io", "true"),
    ]
}

pub(super) fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Runs `chunks` through a rewriter, as separate reads.
pub(super) fn rewrite<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, Rewriter) {
    let mut r = Rewriter::new();
    let mut out = Vec::new();
    for chunk in chunks {
        r.feed(chunk, &mut out);
    }
    r.finish(&mut out);
    (out, r)
}

/// A parsed frame: type, flags, stream, payload.
pub(super) type Frame = (u8, u8, u32, Vec<u8>);

pub(super) fn parse(stream: &[u8]) -> Vec<Frame> {
    assert_eq!(&stream[..24], PREFACE);
    let mut rest = &stream[24..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let stream = u32::from_be_bytes(rest[5..9].try_into().unwrap());
        frames.push((rest[3], rest[4], stream, rest[9..9 + len].to_vec()));
        rest = &rest[9 + len..];
    }
    frames
}

/// The header lists a fresh server-side decoder gets from `frames` (no padding expected).
pub(super) fn decoded(frames: &[Frame]) -> Vec<Vec<(String, String)>> {
    let mut decoder = Decoder::new();
    let mut lists = Vec::new();
    let mut block = Vec::new();
    for (kind, flags, _, payload) in frames {
        match kind {
            0x1 => {
                assert_eq!(flags & 0x8, 0, "no padding after a rewrite");
                let skip = if flags & 0x20 != 0 { 5 } else { 0 };
                block.extend_from_slice(&payload[skip..]);
            }
            0x9 => block.extend_from_slice(payload),
            _ => continue,
        }
        if flags & 0x4 != 0 {
            let list = decoder.decode(&block, usize::MAX).unwrap();
            lists.push(
                list.into_iter()
                    .map(|Field { name, value, .. }| {
                        (
                            String::from_utf8(name).unwrap(),
                            String::from_utf8(value).unwrap(),
                        )
                    })
                    .collect(),
            );
            block.clear();
        }
    }
    lists
}

pub(super) fn with_preface(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    for f in frames {
        out.extend_from_slice(f);
    }
    out
}
