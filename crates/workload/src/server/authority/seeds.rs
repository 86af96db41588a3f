//! The seed inputs of the `authority` fuzz target (`crates/workload/fuzz`), built with the
//! test wire helpers, and checked here against what the adapter must do with each.
//!
//! `LANYARD_FUZZ_SEEDS=<dir> cargo test -p lanyard-workload authority::seeds` also writes
//! them into `<dir>` (the fuzz crate's `corpus/authority/`).

use super::rewrite_client_stream;
use super::testwire::*;

/// Client SETTINGS as grpc-core sends them: ENABLE_PUSH 0, MAX_CONCURRENT_STREAMS 0,
/// INITIAL_WINDOW_SIZE 4 MiB, MAX_HEADER_LIST_SIZE 16 MiB, and grpc's private 0xfe03 = 1.
const GRPC_SETTINGS: &[u8] = &[
    0, 2, 0, 0, 0, 0, //
    0, 3, 0, 0, 0, 0, //
    0, 4, 0, 0x40, 0, 0, //
    0, 6, 0, 0, 0x40, 0, //
    0xfe, 3, 0, 0, 0, 1,
];

/// The fuzz input header (see the fuzz crate's README): the server reads 4096 bytes at a
/// time and the client's bytes arrive in reads of 33 and 129 bytes, alternately.
const LAYOUT: [u8; 4] = [0x0f, 0xff, 32, 2];

/// A grpc-python connection: preface, SETTINGS, WINDOW_UPDATE, then one unary call per
/// authority (HEADERS with Huffman and incremental indexing, one empty gRPC message).
fn grpc_python(authorities: &[&str]) -> Vec<u8> {
    let mut client = Client::new();
    let mut frames = vec![
        frame(0x4, 0, 0, GRPC_SETTINGS),
        frame(0x8, 0, 0, &0x003e_0001u32.to_be_bytes()),
    ];
    for (i, authority) in authorities.iter().enumerate() {
        let stream = 1 + 2 * i as u32;
        frames.push(headers(
            stream,
            &client.block(&request(authority), Rep::Indexed, true),
        ));
        frames.push(frame(0x0, 0x1, stream, &[0; 5]));
    }
    with_preface(&frames)
}

/// Each seed: file name, client bytes, whether the adapter must rewrite them.
fn seeds() -> Vec<(&'static str, Vec<u8>, bool)> {
    let block = Client::new().block(&request(GRPC_CORE_AUTHORITY), Rep::Without, false);
    let (first, rest) = block.split_at(40);
    let continued = with_preface(&[
        frame(0x4, 0, 0, GRPC_SETTINGS),
        frame(0x1, 0x0, 1, first),
        frame(0x9, 0x4, 1, rest),
    ]);

    let mut padded = vec![4, 0x80, 0, 0, 0, 15]; // pad 4, exclusive on stream 0, weight 16
    padded.extend_from_slice(&Client::new().block(&request("localhost"), Rep::Never, true));
    padded.extend_from_slice(&[0; 4]);
    let padded = with_preface(&[frame(0x1, 0x2d, 1, &padded)]);

    vec![
        ("grpc-python-localhost", grpc_python(&["localhost"]), false),
        (
            "grpc-python-unix-path-twice",
            grpc_python(&[GRPC_CORE_AUTHORITY, GRPC_CORE_AUTHORITY]),
            true,
        ),
        ("continuation-unix-path", continued, true),
        ("padded-priority-end-stream", padded, false),
    ]
}

#[test]
fn seeds_are_rewritten_only_when_the_authority_is_invalid() {
    let dir = std::env::var_os("LANYARD_FUZZ_SEEDS");
    for (name, input, needs_rewrite) in seeds() {
        let out = rewrite_client_stream(&[&input], 4096);
        assert_eq!(out.rewritten, needs_rewrite, "{name}");
        assert_eq!(out.bytes == input, !needs_rewrite, "{name}");
        if let Some(dir) = &dir {
            let seed = [&LAYOUT[..], &input].concat();
            std::fs::write(std::path::Path::new(dir).join(name), seed).unwrap();
        }
    }
}

#[test]
fn output_does_not_depend_on_how_reads_are_split() {
    for (name, input, _) in seeds() {
        let whole = rewrite_client_stream(&[&input], 1 << 16);
        for (read, server_read) in [(1, 1), (7, 3), (9, 16 * 1024), (100, 1)] {
            let reads: Vec<&[u8]> = input.chunks(read).collect();
            let out = rewrite_client_stream(&reads, server_read);
            assert_eq!(
                out, whole,
                "{name} in reads of {read}, server reads {server_read}"
            );
        }
    }
}
