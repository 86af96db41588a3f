//! The rewriter fed with hand-built client frame sequences, and the adapter over a socket pair.

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::AuthorityFix;
use super::frames::MAX_BLOCK;
use super::testwire::*;

#[test]
fn percent_encoded_authority_becomes_localhost_and_nothing_else_changes() {
    let mut client = Client::new();
    let block = client.block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, true);
    let input = with_preface(&[headers(1, &block), frame(0x0, 0x1, 1, b"\0\0\0\0\0")]);
    let (out, _) = rewrite([&input[..]]);
    let frames = parse(&out);
    assert_eq!(decoded(&frames), [fields(&request("localhost"))]);
    assert_eq!(frames[0].2, 1, "same stream");
    assert_eq!(
        frames[1],
        (0x0, 0x1, 1, b"\0\0\0\0\0".to_vec()),
        "DATA as sent"
    );
}

#[test]
fn valid_authority_passes_byte_for_byte() {
    for authority in ["localhost", "example.org:8081", "[::1]:443"] {
        let block = Client::new().block(&request(authority), Rep::Indexed, true);
        let input = with_preface(&[headers(1, &block), headers(3, &block)]);
        assert_eq!(rewrite([&input[..]]).0, input, "{authority}");
    }
}

#[test]
fn end_stream_and_priority_are_kept_and_padding_is_dropped() {
    let block = Client::new().block(&request(GRPC_CORE_AUTHORITY), Rep::Without, false);
    let mut payload = vec![3]; // pad length
    payload.extend_from_slice(&[0x80, 0, 0, 1, 15]); // exclusive on stream 1, weight 16
    payload.extend_from_slice(&block);
    payload.extend_from_slice(&[0; 3]);
    let input = with_preface(&[frame(0x1, 0x1 | 0x4 | 0x8 | 0x20, 5, &payload)]);
    let frames = parse(&rewrite([&input[..]]).0);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].0, frames[0].1, frames[0].2),
        (0x1, 0x1 | 0x4 | 0x20, 5)
    );
    assert_eq!(frames[0].3[..5], [0x80, 0, 0, 1, 15]);
    assert_eq!(decoded(&frames), [fields(&request("localhost"))]);
}

#[test]
fn headers_split_over_continuations_come_out_as_one_frame() {
    let block = Client::new().block(&request(GRPC_CORE_AUTHORITY), Rep::Never, true);
    let (a, rest) = block.split_at(7);
    let (b, c) = rest.split_at(20);
    let input = with_preface(&[
        frame(0x1, 0x1, 1, a),
        frame(0x9, 0, 1, b),
        frame(0x9, 0x4, 1, c),
    ]);
    let frames = parse(&rewrite([&input[..]]).0);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].1, 0x1 | 0x4);
    assert_eq!(decoded(&frames), [fields(&request("localhost"))]);
}

#[test]
fn a_block_over_one_frame_is_sent_as_headers_and_continuations() {
    let big = "v".repeat(40_000);
    let mut list = request(GRPC_CORE_AUTHORITY);
    list.push(("x-big", &big));
    let block = Client::new().block(&list, Rep::Without, false);
    let input = with_preface(&[headers(1, &block)]);
    let frames = parse(&rewrite([&input[..]]).0);
    let kinds: Vec<_> = frames.iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(kinds, [(0x1, 0), (0x9, 0), (0x9, 0x4)]);
    assert!(frames.iter().all(|f| f.3.len() <= 16_384 && f.2 == 1));
    let mut want = request("localhost");
    want.push(("x-big", &big));
    assert_eq!(decoded(&frames), [fields(&want)]);
}

#[test]
fn dynamic_table_references_survive_the_rewrite() {
    let mut client = Client::new();
    let mut second = request(GRPC_CORE_AUTHORITY);
    second[2] = (":path", "/SpiffeWorkloadAPI/FetchJWTSVID");
    let blocks = [
        client.block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, true),
        client.block(&second, Rep::Indexed, true),
        client.block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, false),
    ];
    assert!(
        blocks[2].len() <= request("").len(),
        "the third block is all indexed references"
    );
    let input = with_preface(&[
        headers(1, &blocks[0]),
        headers(3, &blocks[1]),
        headers(5, &blocks[2]),
    ]);
    let frames = parse(&rewrite([&input[..]]).0);
    second[3] = (":authority", "localhost");
    assert_eq!(
        decoded(&frames),
        [
            fields(&request("localhost")),
            fields(&second),
            fields(&request("localhost"))
        ]
    );
}

#[test]
fn blocks_after_a_rewrite_are_re_encoded_even_with_a_valid_authority() {
    let mut client = Client::new();
    let first = client.block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, true);
    // Valid, but refers to entries h2's table will not have after the first rewrite.
    let second = client.block(
        &[
            (":method", "POST"),
            ("te", "trailers"),
            (":authority", "ok"),
        ],
        Rep::Indexed,
        true,
    );
    let input = with_preface(&[headers(1, &first), headers(3, &second)]);
    let frames = parse(&rewrite([&input[..]]).0);
    assert_eq!(
        decoded(&frames)[1],
        fields(&[
            (":method", "POST"),
            ("te", "trailers"),
            (":authority", "ok")
        ])
    );
}

#[test]
fn data_and_other_frames_pass_through_identically() {
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    let block = Client::new().block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, true);
    let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let ping = frame(0x6, 0, 0, &[1; 8]);
    let input = with_preface(&[
        settings.clone(),
        headers(1, &block),
        frame(0x0, 0, 1, &data),
        ping.clone(),
    ]);
    let frames = parse(&rewrite(input.chunks(1000)).0);
    assert_eq!(frames[0], (0x4, 0, 0, vec![0, 3, 0, 0, 0, 100]));
    assert_eq!(frames[2], (0x0, 0, 1, data));
    assert_eq!(frames[3], (0x6, 0, 0, vec![1; 8]));
}

#[test]
fn a_malformed_block_passes_through_and_rewriting_stops() {
    let good = Client::new().block(&request(GRPC_CORE_AUTHORITY), Rep::Without, true);
    for bad in [
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        &[0xbe],
        &[0x41, 9, b'a'],
    ] {
        let input = with_preface(&[headers(1, bad), headers(3, &good)]);
        let (out, r) = rewrite([&input[..]]);
        assert_eq!(out, input, "{bad:x?}");
        assert!(r.is_raw());
    }
}

#[test]
fn an_interrupted_or_oversized_block_passes_through() {
    let block = Client::new().block(&request(GRPC_CORE_AUTHORITY), Rep::Without, true);
    let interrupted = with_preface(&[
        frame(0x1, 0, 1, &block),
        frame(0x0, 0, 1, b"x"),
        frame(0x9, 4, 1, &[]),
    ]);
    assert_eq!(rewrite([&interrupted[..]]).0, interrupted);

    let huge = "h".repeat(MAX_BLOCK);
    let mut list = request(GRPC_CORE_AUTHORITY);
    list.push(("x-huge", &huge));
    let oversized = with_preface(&[headers(1, &Client::new().block(&list, Rep::Without, false))]);
    assert_eq!(rewrite(oversized.chunks(4096)).0, oversized);
}

#[test]
fn a_stream_cut_mid_block_is_passed_on_as_received() {
    let block = Client::new().block(&request(GRPC_CORE_AUTHORITY), Rep::Without, true);
    let input = with_preface(&[headers(1, &block)]);
    for cut in [24 + 4, 24 + 9 + 10] {
        assert_eq!(rewrite([&input[..cut]]).0, input[..cut]);
    }
}

#[test]
fn one_byte_reads_give_the_same_stream() {
    let mut client = Client::new();
    let input = with_preface(&[
        headers(
            1,
            &client.block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, true),
        ),
        frame(0x0, 1, 1, b"payload"),
        headers(
            3,
            &client.block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, true),
        ),
    ]);
    let whole = rewrite([&input[..]]).0;
    assert_eq!(rewrite(input.chunks(1)).0, whole);
    assert_eq!(
        decoded(&parse(&whole)),
        [fields(&request("localhost")), fields(&request("localhost"))]
    );
}

#[tokio::test]
async fn the_adapter_rewrites_reads_and_passes_writes() {
    let (client, server) = tokio::io::duplex(64);
    let mut server = AuthorityFix::new(server);
    let mut c = Client::new();
    let data = vec![9u8; 10_000];
    let input = with_preface(&[
        headers(
            1,
            &c.block(&request(GRPC_CORE_AUTHORITY), Rep::Indexed, true),
        ),
        frame(0x0, 1, 1, &data),
    ]);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let writer = tokio::spawn(async move {
        for chunk in input.chunks(3) {
            client_write.write_all(chunk).await.unwrap();
        }
        client_write.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    let frames = parse(&got);
    assert_eq!(decoded(&frames), [fields(&request("localhost"))]);
    assert_eq!(frames[1], (0x0, 1, 1, data));

    server.write_all(b"answer").await.unwrap();
    let mut answer = [0u8; 6];
    client_read.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"answer");
}

fn header_list() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("content-type".to_string()),
        Just("user-agent".to_string()),
        "[a-z][a-z0-9-]{0,12}",
    ];
    prop::collection::vec((name, "[ -~]{0,40}"), 0..8)
}

proptest! {
    #[test]
    fn random_blocks_and_chunking_decode_to_the_fixed_lists(
        requests in prop::collection::vec(
            (header_list(), prop::bool::ANY, 0..3u8, prop::bool::ANY), 1..6),
        chunk in 1usize..64,
    ) {
        let mut client = Client::new();
        let mut frames = Vec::new();
        let mut want = Vec::new();
        for (i, (list, bad, rep, huffman)) in requests.iter().enumerate() {
            let authority = if *bad { GRPC_CORE_AUTHORITY } else { "localhost:1" };
            let mut sent: Vec<(&str, &str)> = vec![(":method", "POST"), (":authority", authority)];
            sent.extend(list.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let rep = [Rep::Indexed, Rep::Without, Rep::Never][usize::from(*rep)];
            frames.push(headers(2 * i as u32 + 1, &client.block(&sent, rep, *huffman)));
            sent[1].1 = if *bad { "localhost" } else { authority };
            want.push(fields(&sent));
        }
        let input = with_preface(&frames);
        let out = rewrite(input.chunks(chunk)).0;
        prop_assert_eq!(decoded(&parse(&out)), want);
        if requests.iter().all(|r| !r.1) {
            prop_assert_eq!(out, input);
        }
    }
}
