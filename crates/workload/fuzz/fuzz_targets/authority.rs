//! The `:authority` adapter of the Workload API socket: no panic on any client byte stream,
//! however it is split into reads; the server sees the same bytes whatever the split; a
//! stream with no block rewritten, or with no HEADERS frame at all, reaches the server byte
//! for byte.
#![no_main]

use lanyard_workload::server::rewrite_client_stream;
use libfuzzer_sys::fuzz_target;

const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;

fuzz_target!(|data: &[u8]| {
    // Layout (README): server read size - 1 (u16, big-endian), then the two client read
    // sizes used alternately (`a + 1` and `64 * b + 1`), then the client's bytes.
    let Some((&[hi, lo, a, b], input)) = data.split_first_chunk::<4>() else {
        return;
    };
    let server_read = usize::from(u16::from_be_bytes([hi, lo])) + 1;
    let sizes = [usize::from(a) + 1, 64 * usize::from(b) + 1];

    let mut reads = Vec::new();
    let mut rest = input;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (read, after) = rest.split_at((*size).min(rest.len()));
        reads.push(read);
        rest = after;
    }

    let split = rewrite_client_stream(&reads, server_read);
    let whole = rewrite_client_stream(&[input], 1 << 16);
    assert_eq!(split, whole, "output depends on the read split");

    if !whole.rewritten {
        assert_eq!(
            whole.bytes, input,
            "nothing was rewritten, yet the bytes changed"
        );
    }
    if !has_headers_frame(input) {
        assert!(!whole.rewritten, "rewrote a stream without a HEADERS frame");
    }
});

/// Whether a complete frame header of type HEADERS follows the preface, walking frames by
/// their length fields (RFC 9113 §4.1) independently of the adapter.
fn has_headers_frame(input: &[u8]) -> bool {
    let mut rest = input.get(PREFACE_LEN..).unwrap_or_default();
    while let Some((head, after)) = rest.split_first_chunk::<FRAME_HEADER_LEN>() {
        if head[3] == HEADERS {
            return true;
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        rest = after.get(len..).unwrap_or_default();
    }
    false
}
