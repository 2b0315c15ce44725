//! permessage-deflate (RFC 7692) over real sockets: negotiation, compressed echo in one frame and
//! in fragments, the bomb refused with 1009, framing errors, and a broadcast compressed once for
//! the clients that negotiated it while the others get plain frames.

mod common;

use common::{Client, Mode, config, read_response_head, start, tcp, upgrade_request};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rfc6455::frame::Opcode;
use std::io::Write;

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// Compresses one message the way a client without context takeover does (RFC 7692 §7.2.1).
fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut compressor = Compress::new_with_window_bits(Compression::default(), false, 15);
    let mut out = Vec::with_capacity(payload.len() + 1024);
    compressor
        .compress_vec(payload, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(compressed: &[u8]) -> Vec<u8> {
    let mut inflater = Decompress::new_with_window_bits(false, 15);
    let mut input = compressed.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 22);
    inflater
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

fn response_extensions(head: &str) -> Option<String> {
    head.lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_string)
}

#[test]
fn negotiation_answers_each_offer_exactly() {
    let server = start(Mode::Echo, config());
    let base = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let cases: &[(&str, Option<String>)] = &[
        ("", None),
        (OFFER, Some(base.to_string())),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
            Some(format!("{base}; server_max_window_bits=10")),
        ),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
            Some(base.to_string()),
        ),
        // A bad offer is declined, and the next one taken.
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99, permessage-deflate\r\n",
            Some(base.to_string()),
        ),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n",
            None,
        ),
        // Offers across several headers.
        (
            "Sec-WebSocket-Extensions: x-custom\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
            Some(base.to_string()),
        ),
    ];
    for (headers, expected) in cases {
        let (_client, head) = Client::connect_with(server.addr, headers);
        assert_eq!(&response_extensions(&head), expected, "{headers}");
    }
}

#[test]
fn malformed_extensions_header_is_400() {
    let server = start(Mode::Echo, config());
    let mut stream = tcp(server.addr);
    let request = upgrade_request(server.addr).replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate; =\r\n\r\n",
    );
    stream.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_response_head(&mut stream).0, 400);
}

#[test]
fn disabled_compression_declines() {
    let mut cfg = config();
    cfg.connection.deflate.enabled = false;
    let server = start(Mode::Echo, cfg);
    let (_client, head) = Client::connect_with(server.addr, OFFER);
    assert_eq!(response_extensions(&head), None);
}

#[test]
fn compressed_echo_in_one_frame_and_in_fragments() {
    let server = start(Mode::Echo, config());
    let (mut client, _) = Client::connect_with(server.addr, OFFER);
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(100);
    let compressed = deflate(text.as_bytes());
    client
        .stream
        .write_all(&Client::encode_rsv1(true, true, Opcode::Text, &compressed))
        .unwrap();
    let echo = client.expect_frame();
    assert!(echo.rsv1, "a long message is echoed compressed");
    assert!(echo.payload.len() < text.len() / 4);
    assert_eq!(inflate(&echo.payload), text.as_bytes());

    // RSV1 on the first fragment only (RFC 7692 §6.1).
    let (a, b) = compressed.split_at(compressed.len() / 2);
    client
        .stream
        .write_all(&Client::encode_rsv1(false, true, Opcode::Text, a))
        .unwrap();
    client.send_frame(true, Opcode::Ping, b"between");
    client
        .stream
        .write_all(&Client::encode_rsv1(true, false, Opcode::Continuation, b))
        .unwrap();
    assert_eq!(client.expect_frame().opcode, Opcode::Pong);
    let echo = client.expect_frame();
    assert_eq!(inflate(&echo.payload), text.as_bytes());

    // A short message goes back uncompressed (below the threshold).
    client
        .stream
        .write_all(&Client::encode_rsv1(
            true,
            true,
            Opcode::Text,
            &deflate(b"hi"),
        ))
        .unwrap();
    let echo = client.expect_frame();
    assert_eq!((echo.rsv1, echo.payload.as_slice()), (false, &b"hi"[..]));
}

#[test]
fn rsv1_on_a_continuation_is_a_protocol_error() {
    let server = start(Mode::Echo, config());
    let (mut client, _) = Client::connect_with(server.addr, OFFER);
    let compressed = deflate(b"hello hello hello");
    client
        .stream
        .write_all(&Client::encode_rsv1(false, true, Opcode::Text, &compressed))
        .unwrap();
    client
        .stream
        .write_all(&Client::encode_rsv1(true, true, Opcode::Continuation, b""))
        .unwrap();
    assert_eq!(client.expect_close(), Some(1002));
}

#[test]
fn rsv1_without_negotiation_is_a_protocol_error() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    client
        .stream
        .write_all(&Client::encode_rsv1(
            true,
            true,
            Opcode::Text,
            &deflate(b"x"),
        ))
        .unwrap();
    assert_eq!(client.expect_close(), Some(1002));
}

#[test]
fn a_decompression_bomb_is_refused_with_1009() {
    let mut cfg = config();
    cfg.connection.limits.max_message_size = 1 << 20;
    let server = start(Mode::Echo, cfg);
    let (mut client, _) = Client::connect_with(server.addr, OFFER);
    // 64 MiB of zeros compress to about 64 KiB: small on the wire, far over the limit inflated.
    let bomb = deflate(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < (1 << 20));
    client
        .stream
        .write_all(&Client::encode_rsv1(true, true, Opcode::Binary, &bomb))
        .unwrap();
    assert_eq!(client.expect_close(), Some(1009));
}

/// Bytes no compressor can shrink (a xorshift sequence).
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_message_of_exactly_the_limit_is_accepted_compressed() {
    const LIMIT: usize = 64 * 1024;
    let mut cfg = config();
    cfg.connection.limits.max_message_size = LIMIT as u64;
    cfg.connection.limits.max_frame_size = LIMIT as u64;
    let server = start(Mode::Echo, cfg);
    let (mut client, _) = Client::connect_with(server.addr, OFFER);
    let payload = incompressible(LIMIT);
    let compressed = deflate(&payload);
    assert!(
        compressed.len() > LIMIT,
        "incompressible data grows a little"
    );
    client
        .stream
        .write_all(&Client::encode_rsv1(
            true,
            true,
            Opcode::Binary,
            &compressed,
        ))
        .unwrap();
    let echo = client.expect_frame();
    assert!(echo.rsv1, "echoed compressed");
    assert_eq!(inflate(&echo.payload), payload);
    // One byte more is over the limit once inflated.
    let too_big = deflate(&incompressible(LIMIT + 1));
    client
        .stream
        .write_all(&Client::encode_rsv1(true, true, Opcode::Binary, &too_big))
        .unwrap();
    assert_eq!(client.expect_close(), Some(1009));
}

#[test]
fn invalid_compressed_data_and_invalid_utf8_are_1007() {
    let server = start(Mode::Echo, config());
    let (mut client, _) = Client::connect_with(server.addr, OFFER);
    client
        .stream
        .write_all(&Client::encode_rsv1(true, true, Opcode::Binary, &[0xff; 8]))
        .unwrap();
    assert_eq!(client.expect_close(), Some(1007));
    let (mut client, _) = Client::connect_with(server.addr, OFFER);
    client
        .stream
        .write_all(&Client::encode_rsv1(
            true,
            true,
            Opcode::Text,
            &deflate(b"\xce\xba\xed\xa0\x80"),
        ))
        .unwrap();
    assert_eq!(client.expect_close(), Some(1007));
}

#[test]
fn client_context_takeover_when_configured() {
    let mut cfg = config();
    cfg.connection.deflate.client_context_takeover = true;
    let server = start(Mode::Echo, cfg);
    let (mut client, head) = Client::connect_with(server.addr, OFFER);
    assert_eq!(
        response_extensions(&head).as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    // Two messages from one compressor that keeps its context.
    let mut compressor = Compress::new_with_window_bits(Compression::default(), false, 15);
    let text = b"context takeover makes the second copy of this sentence tiny";
    for _ in 0..2 {
        let mut out = Vec::with_capacity(256);
        compressor
            .compress_vec(text, &mut out, FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        client
            .stream
            .write_all(&Client::encode_rsv1(true, true, Opcode::Text, &out))
            .unwrap();
        let echo = client.expect_frame();
        assert!(!echo.rsv1, "62 bytes are under the compression threshold");
        assert_eq!(echo.payload, text);
    }
}

#[test]
fn broadcast_compresses_once_for_those_who_negotiated() {
    let server = start(Mode::Broadcast, config());
    let (mut compressing, _) = Client::connect_with(server.addr, OFFER);
    let (mut also_compressing, _) = Client::connect_with(server.addr, OFFER);
    let mut plain = Client::connect(server.addr);
    for client in [&mut compressing, &mut also_compressing, &mut plain] {
        client.send_frame(true, Opcode::Ping, b"");
        assert_eq!(client.expect_frame().opcode, Opcode::Pong);
    }
    let text = "broadcast to everyone, compressed for some ".repeat(50);
    plain.send_text(&text);
    let a = compressing.expect_frame();
    let b = also_compressing.expect_frame();
    let c = plain.expect_frame();
    assert!(a.rsv1 && b.rsv1 && !c.rsv1);
    assert_eq!(a.payload, b.payload, "the same compressed bytes for both");
    assert_eq!(inflate(&a.payload), text.as_bytes());
    assert_eq!(c.payload, text.as_bytes());
}
