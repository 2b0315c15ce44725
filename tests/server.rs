//! The echo server over real loopback sockets: handshake answers, echo at every length form,
//! fragmentation, pings, the close handshake from both sides, and odd packetization.

mod common;

use common::{Client, Mode, config, read_response_head, read_to_eof, start, tcp, upgrade_request};
use rfc6455::frame::Opcode;
use std::io::Write;

#[test]
fn handshake_answers_101_with_accept_key() {
    let server = start(Mode::Echo, config());
    let _client = Client::connect(server.addr);
}

#[test]
fn handshake_errors_get_their_status_and_connection_close() {
    let server = start(Mode::Echo, config());
    let good = upgrade_request(server.addr);
    let cases = [
        (good.replace("GET /chat", "POST /chat"), 405, "Allow: GET"),
        (good.replace("HTTP/1.1", "HTTP/1.0"), 400, ""),
        (
            good.replace(&format!("Host: {}\r\n", server.addr), ""),
            400,
            "",
        ),
        (
            good.replace("Upgrade: websocket\r\n", ""),
            426,
            "Sec-WebSocket-Version: 13",
        ),
        (
            good.replace("Connection: Upgrade", "Connection: close"),
            400,
            "",
        ),
        (
            good.replace("Version: 13", "Version: 12"),
            426,
            "Sec-WebSocket-Version: 13",
        ),
        (
            good.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            400,
            "",
        ),
        (
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000)),
            431,
            "",
        ),
        ("\x16\x03\x01 not http\r\n\r\n".to_string(), 400, ""),
    ];
    for (request, status, header) in cases {
        let mut stream = tcp(server.addr);
        stream.write_all(request.as_bytes()).unwrap();
        let (got, head) = read_response_head(&mut stream);
        assert_eq!(got, status, "{request:?} -> {head}");
        assert!(head.contains("Connection: close\r\n"), "{head}");
        assert!(head.contains(header), "{head}");
        // The body is as long as Content-Length says, then the server closes.
        let body = read_to_eof(&mut stream);
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
    }
}

#[test]
fn echoes_text_and_binary_at_every_length_form() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    for len in [0usize, 125, 126, 65535, 65536, 16 * 1024 * 1024] {
        let binary: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        client.send_frame(true, Opcode::Binary, &binary);
        let frame = client.expect_frame();
        assert_eq!(
            (frame.opcode, frame.fin, frame.payload.len()),
            (Opcode::Binary, true, len)
        );
        assert!(frame.payload == binary, "binary payload of {len} differs");
        let text = "é".repeat(len / 2);
        client.send_text(&text);
        let frame = client.expect_frame();
        assert_eq!(frame.opcode, Opcode::Text);
        assert!(
            frame.payload == text.as_bytes(),
            "text payload of {len} differs"
        );
    }
}

#[test]
fn reassembles_fragments_with_pings_between() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    client.send_frame(false, Opcode::Text, b"Hel");
    client.send_frame(true, Opcode::Ping, b"are you there");
    client.send_frame(false, Opcode::Continuation, b"lo, ");
    client.send_frame(true, Opcode::Continuation, "wörld".as_bytes());
    let pong = client.expect_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (Opcode::Pong, &b"are you there"[..])
    );
    let echo = client.expect_frame();
    assert_eq!(
        (echo.opcode, echo.payload),
        (Opcode::Text, "Hello, wörld".as_bytes().to_vec())
    );
}

#[test]
fn client_close_is_echoed_and_server_closes_tcp_first() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    client.send_frame(true, Opcode::Close, b"\x03\xe8done");
    assert_eq!(client.expect_close(), Some(1000));
    // We never closed our side: EOF means the server closed TCP first (§7.1.1).
    client.expect_eof();
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
//= type=test
//# Similarly, to do so, the server MUST _Close the WebSocket
//# Connection_, and SHOULD log the problem.
#[test]
fn protocol_error_closes_with_1002_after_earlier_messages() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    let mut burst = Client::encode(true, Opcode::Text, b"first");
    burst.extend_from_slice(&[0x81, 0x01, b'x']); // unmasked: a protocol error
    client.stream.write_all(&burst).unwrap();
    assert_eq!(client.expect_frame().payload, b"first");
    assert_eq!(client.expect_close(), Some(1002));
    client.expect_eof();
}

#[test]
fn invalid_utf8_closes_with_1007() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    client.send_frame(true, Opcode::Text, b"\xce\xba\xed\xa0\x80");
    assert_eq!(client.expect_close(), Some(1007));
    client.expect_eof();
}

#[test]
fn oversized_message_closes_with_1009_from_the_header() {
    let mut cfg = config();
    cfg.connection.limits.max_message_size = 1000;
    cfg.connection.limits.max_frame_size = 1000;
    let server = start(Mode::Echo, cfg);
    let mut client = Client::connect(server.addr);
    // Only the header of a 1001-byte frame: the server must not wait for the payload.
    let frame = Client::encode(true, Opcode::Binary, &[0u8; 1001]);
    client.stream.write_all(&frame[..8]).unwrap();
    assert_eq!(client.expect_close(), Some(1009));
}

#[test]
fn server_initiated_close_on_shutdown_is_1001() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    client.send_text("hi");
    assert_eq!(client.expect_frame().payload, b"hi");
    server.handle.shutdown();
    assert_eq!(client.expect_close(), Some(1001));
    client.send_frame(true, Opcode::Close, b"\x03\xe9");
    client.expect_eof();
    let stats = server.stop();
    assert_eq!(stats.opened, 1);
}

#[test]
fn request_and_first_frame_in_one_packet() {
    let server = start(Mode::Echo, config());
    let mut stream = tcp(server.addr);
    let mut packet = upgrade_request(server.addr).into_bytes();
    packet.extend_from_slice(&Client::encode(true, Opcode::Text, b"early bird"));
    stream.write_all(&packet).unwrap();
    let (status, _) = read_response_head(&mut stream);
    assert_eq!(status, 101);
    let mut client = Client::from_stream(stream);
    assert_eq!(client.expect_frame().payload, b"early bird");
}

#[test]
fn request_and_frames_dripped_one_byte_at_a_time() {
    let server = start(Mode::Echo, config());
    let mut stream = tcp(server.addr);
    let mut bytes = upgrade_request(server.addr).into_bytes();
    bytes.extend_from_slice(&Client::encode(false, Opcode::Binary, b"drip"));
    bytes.extend_from_slice(&Client::encode(true, Opcode::Ping, b"p"));
    bytes.extend_from_slice(&Client::encode(true, Opcode::Continuation, b"ped"));
    for byte in &bytes {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let (status, _) = read_response_head(&mut stream);
    assert_eq!(status, 101);
    let mut client = Client::from_stream(stream);
    assert_eq!(client.expect_frame().opcode, Opcode::Pong);
    assert_eq!(client.expect_frame().payload, b"dripped");
}

#[test]
fn a_ping_among_pipelined_messages_is_answered_in_its_place() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    let mut burst = Vec::new();
    burst.extend_from_slice(&Client::encode(true, Opcode::Text, b"one"));
    burst.extend_from_slice(&Client::encode(true, Opcode::Binary, b"two"));
    burst.extend_from_slice(&Client::encode(true, Opcode::Ping, b"ping"));
    burst.extend_from_slice(&Client::encode(true, Opcode::Text, b"three"));
    client.stream.write_all(&burst).unwrap();
    // The Pong does not overtake the replies to the messages before its Ping.
    for (opcode, payload) in [
        (Opcode::Text, &b"one"[..]),
        (Opcode::Binary, b"two"),
        (Opcode::Pong, b"ping"),
        (Opcode::Text, b"three"),
    ] {
        let frame = client.expect_frame();
        assert_eq!((frame.opcode, &frame.payload[..]), (opcode, payload));
    }
}

#[test]
fn invalid_text_among_pipelined_messages_fails_the_connection_after_the_messages_before_it() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    let mut burst = Vec::new();
    burst.extend_from_slice(&Client::encode(true, Opcode::Text, b"one"));
    burst.extend_from_slice(&Client::encode(true, Opcode::Text, b"two"));
    burst.extend_from_slice(&Client::encode(true, Opcode::Text, b"\xff not UTF-8"));
    burst.extend_from_slice(&Client::encode(true, Opcode::Text, b"never echoed"));
    client.stream.write_all(&burst).unwrap();
    assert_eq!(client.expect_frame().payload, b"one");
    assert_eq!(client.expect_frame().payload, b"two");
    // RFC 6455 §8.1: the connection fails with 1007, after the replies already due.
    assert_eq!(client.expect_close(), Some(1007));
    client.expect_eof();
    assert_eq!(server.stop().messages_in, 2);
}

#[test]
fn pipelined_messages_come_back_in_order() {
    let server = start(Mode::Echo, config());
    let mut client = Client::connect(server.addr);
    let mut burst = Vec::new();
    for i in 0..1000 {
        burst.extend_from_slice(&Client::encode(
            true,
            Opcode::Text,
            format!("message {i}").as_bytes(),
        ));
    }
    client.stream.write_all(&burst).unwrap();
    for i in 0..1000 {
        assert_eq!(
            client.expect_frame().payload,
            format!("message {i}").as_bytes()
        );
    }
}
