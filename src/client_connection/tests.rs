//! A client connection driven by hand with a simulated clock, and a client and a server driven
//! against each other in memory (as quinn's tests pair its endpoints).

use super::*;
use crate::closure::Deadline;
use crate::entropy::Sequence;
use crate::server_connection::{ServerConfig, ServerConnection, ServerEvent};

const ACCEPT_FOR_SEQUENCE_0: &str = "Bz3qJYTGdOe8gUSpLosEdiLKDrk=";

fn client(config: ClientConfig, start: Instant) -> ClientConnection {
    let request = ClientRequest {
        host: "example.com".into(),
        resource: "/".into(),
        protocols: vec!["chat".into()],
        ..ClientRequest::default()
    };
    ClientConnection::new(Arc::new(config), request, Box::new(Sequence(0)), start).unwrap()
}

fn response(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {ACCEPT_FOR_SEQUENCE_0}\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A client that got a valid 101 at `start`.
fn open(config: ClientConfig, start: Instant) -> (ClientConnection, SharedDeflate) {
    let mut conn = client(config, start);
    let mut shared = SharedDeflate::new();
    conn.take_output();
    let mut head = response("Sec-WebSocket-Protocol: chat\r\n");
    let received = conn.handle_input(&mut head, start, &mut shared).unwrap();
    assert_eq!(received.event, Some(ClientEvent::Open));
    assert_eq!(conn.protocol(), Some("chat"));
    (conn, shared)
}

#[test]
fn the_response_must_come_within_the_handshake_timeout() {
    let start = Instant::now();
    let mut conn = client(ClientConfig::default(), start);
    assert_eq!(conn.poll_timeout(), Some(start + secs(10)));
    conn.handle_timeout(start + secs(9));
    assert!(!conn.is_closed());
    conn.handle_timeout(start + secs(10));
    assert!(conn.is_closed());
    assert_eq!(conn.closure(), None, "never opened");
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# If the server's response does not conform to the requirements for the
//# server's handshake as defined in this section and in Section 4.2.2,
//# the client MUST _Fail the WebSocket Connection_.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.1
//= type=test
//# To do so, the
//# client MUST _Fail the WebSocket Connection_ as defined in
//# Section 7.1.7.
#[test]
fn a_response_that_breaks_a_rule_fails_without_opening() {
    let start = Instant::now();
    let mut conn = client(ClientConfig::default(), start);
    let mut head = response("").into_iter().collect::<Vec<_>>();
    let text = String::from_utf8(head.clone())
        .unwrap()
        .replace("Drk=", "Drx=");
    head = text.into_bytes();
    assert_eq!(
        conn.handle_input(&mut head, start, &mut SharedDeflate::new()),
        Err(ClientError::Handshake(ResponseError::WrongAccept))
    );
    assert!(conn.is_closed());
    assert_eq!(
        conn.send(MessageKind::Text, b"x", &mut SharedDeflate::new()),
        Err(SendError::NotOpen)
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The nonce
//# MUST be selected randomly for each connection.
#[test]
fn each_connection_draws_its_key_from_its_entropy() {
    let key_of = |first: u8| {
        let request = ClientRequest::for_url(&client_handshake::WsUrl::parse("ws://h/").unwrap());
        let config = Arc::new(ClientConfig::default());
        let mut conn =
            ClientConnection::new(config, request, Box::new(Sequence(first)), Instant::now())
                .unwrap();
        let sent = String::from_utf8(conn.take_output()).unwrap();
        let line = sent.lines().find(|l| l.starts_with("Sec-WebSocket-Key: "));
        line.unwrap()["Sec-WebSocket-Key: ".len()..].to_string()
    };
    let nonce = |first: u8| std::array::from_fn(|i| first.wrapping_add(i as u8));
    assert_eq!(key_of(0), client_handshake::new_key(nonce(0)));
    assert_eq!(key_of(16), client_handshake::new_key(nonce(16)));
    assert_ne!(key_of(0), key_of(16));
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
//= type=test
//# Note that the client is only offering
//# to use any advertised extensions and MUST NOT use them unless the
//# server indicates that it wishes to use the extension.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# Once the client's opening handshake has been sent, the client MUST
//# wait for a response from the server before sending any further data.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# Once a connection to the server has been established (including a
//# connection via a proxy or over a TLS-encrypted tunnel), the client
//# MUST send an opening handshake to the server.
#[test]
fn nothing_is_sent_before_the_response() {
    let start = Instant::now();
    let mut conn = client(ClientConfig::default(), start);
    let mut shared = SharedDeflate::new();
    assert!(conn.take_output().starts_with(b"GET / HTTP/1.1\r\n"));
    assert_eq!(
        conn.send(MessageKind::Text, b"x", &mut shared),
        Err(SendError::NotOpen)
    );
    assert_eq!(conn.ping(b""), Err(SendError::NotOpen));
    assert_eq!(
        conn.close(CloseCode::NORMAL, "", start),
        Err(SendError::NotOpen)
    );
    assert!(conn.take_output().is_empty());
    let mut head = response("Sec-WebSocket-Protocol: chat\r\n");
    conn.handle_input(&mut head, start, &mut shared).unwrap();
    // The server did not accept permessage-deflate: even a message that compresses well goes
    // out plain (RSV1 clear).
    conn.send(MessageKind::Text, &[b'a'; 4096], &mut shared)
        .unwrap();
    assert_eq!(conn.take_output()[0], 0x81);
}

#[test]
fn frames_in_the_same_read_as_the_response_are_processed_after_it() {
    let start = Instant::now();
    let mut conn = client(ClientConfig::default(), start);
    let mut input = response("");
    let head_len = input.len();
    input.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    let mut shared = SharedDeflate::new();
    let received = conn.handle_input(&mut input, start, &mut shared).unwrap();
    assert_eq!(received.consumed, head_len);
    let received = conn
        .handle_input(&mut input[head_len..], start, &mut shared)
        .unwrap();
    let Some(ClientEvent::Message(message)) = received.event else {
        panic!()
    };
    assert_eq!(message.as_text(), Some("hi"));
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
//= type=test
//# A client MUST close a connection if it detects a masked
//# frame.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
//= type=test
//# To do so, the client MUST _Close the
//# WebSocket Connection_, and MAY report the problem to the user (which
//# would be especially useful for developers) in an appropriate manner.
#[test]
fn frames_the_client_sends_are_masked_and_masked_frames_it_receives_fail() {
    let start = Instant::now();
    let (mut conn, mut shared) = open(ClientConfig::default(), start);
    conn.ping(b"p").unwrap();
    let sent = conn.take_output();
    assert_eq!(sent[..2], [0x89, 0x81]);
    // A server frame with a mask (§5.1) fails the connection with 1002.
    let mut masked = [0x81, 0x81, 1, 2, 3, 4, 0x61];
    assert_eq!(
        conn.handle_input(&mut masked, start, &mut shared),
        Err(ClientError::Protocol(ProtocolError::MaskedServerFrame))
    );
    let close = conn.take_output();
    assert_eq!(close[0], 0x88);
    assert_ne!(close[1] & 0x80, 0, "the client's Close is masked too");
    assert!(
        conn.outbox().take_eof(),
        "after failing, the client closes its side"
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
//= type=test
//# The server MUST close the underlying TCP
//# connection immediately; the client SHOULD wait for the server to
//# close the connection but MAY close the connection at any time after
//# sending and receiving a Close message, e.g., if it has not received a
//# TCP Close from the server in a reasonable time period.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
//= type=test
//# As such, when a server
//# is instructed to _Close the WebSocket Connection_ it SHOULD initiate
//# a TCP Close immediately, and when a client is instructed to do the
//# same, it SHOULD wait for a TCP Close from the server.
#[test]
fn after_the_closing_handshake_the_client_waits_for_the_server_to_close_tcp() {
    let start = Instant::now();
    let (mut conn, mut shared) = open(ClientConfig::default(), start);
    // The server closes first; the client answers and waits.
    let mut close = [0x88, 0x02, 0x03, 0xe8];
    conn.handle_input(&mut close, start, &mut shared).unwrap();
    assert_eq!(conn.take_output()[0], 0x88, "the reply");
    assert!(!conn.outbox().take_eof(), "no FIN from the client first");
    assert_eq!(conn.poll_timeout(), Some(start + secs(1)));
    // No FIN from the server within the close timeout: the client closes anyway.
    conn.handle_timeout(start + secs(1));
    assert!(conn.is_closed());
    assert!(
        conn.closure().unwrap().was_clean(),
        "the handshake did complete"
    );
}

#[test]
fn keepalive_is_off_by_default_and_pings_when_set() {
    let start = Instant::now();
    let (conn, _) = open(ClientConfig::default(), start);
    assert_eq!(conn.poll_timeout(), None);
    let config = ClientConfig {
        idle_timeout: secs(20),
        ..ClientConfig::default()
    };
    let (mut conn, _) = open(config, start);
    conn.handle_timeout(start + secs(20));
    let ping = conn.take_output();
    assert_eq!(ping[..2], [0x89, 0x80], "an empty masked ping");
    conn.handle_timeout(start + secs(50));
    assert!(conn.is_closed());
    assert_eq!(
        conn.closure().unwrap().cause,
        CloseCause::TimedOut(Deadline::Keepalive)
    );
}

/// Moves every byte one side queued to the other, until neither has anything to say; returns
/// what each side saw.
fn exchange(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
    now: Instant,
    shared: &mut SharedDeflate,
) -> (Vec<String>, Vec<String>) {
    let (mut client_saw, mut server_saw) = (Vec::new(), Vec::new());
    loop {
        let to_server = client.take_output();
        let to_client = server.take_output();
        if to_server.is_empty() && to_client.is_empty() {
            break;
        }
        let mut input = to_server;
        let mut pos = 0;
        while pos < input.len() {
            let received = server.handle_input(&mut input[pos..], now, shared).unwrap();
            if received.needs_more() {
                break;
            }
            pos += received.consumed;
            match received.event {
                Some(ServerEvent::Upgrade(request)) => {
                    server.accept(&request, Some("chat"), now).unwrap()
                }
                Some(ServerEvent::Message(m)) => {
                    server_saw.push(format!("{:?}", m.as_text()));
                    server.send(m.kind(), m.as_bytes(), shared).unwrap();
                }
                Some(other) => server_saw.push(format!("{other:?}")),
                None => {}
            }
        }
        let mut input = to_client;
        let mut pos = 0;
        while pos < input.len() {
            let received = client.handle_input(&mut input[pos..], now, shared).unwrap();
            if received.needs_more() {
                break;
            }
            pos += received.consumed;
            match received.event {
                Some(ClientEvent::Message(m)) => client_saw.push(format!("{:?}", m.as_text())),
                Some(event) => client_saw.push(format!("{event:?}")),
                None => {}
            }
        }
    }
    (client_saw, server_saw)
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-5.8
//= type=test
//# The endpoints of a connection
//# MUST negotiate the use of any extensions during the opening
//# handshake.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
//= type=test
//# The underlying TCP connection, in most normal cases, SHOULD be closed
//# first by the server, so that it holds the TIME_WAIT state and not the
//# client (as this would prevent it from re-opening the connection for 2
//# maximum segment lifetimes (2MSL), while there is no corresponding
//# server impact as a TIME_WAIT connection is immediately reopened upon
//# a new SYN with a higher seq number).
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.2
//= type=test
//# Once an endpoint has both sent and
//# received a Close control frame, that endpoint SHOULD _Close the
//# WebSocket Connection_ as defined in Section 7.1.1.
#[test]
fn a_client_and_a_server_talk_in_memory_with_compression() {
    let now = Instant::now();
    let mut shared = SharedDeflate::new();
    let mut client = client(ClientConfig::default(), now);
    let mut server = ServerConnection::new(Arc::new(ServerConfig::default()), now);
    let (client_saw, _) = exchange(&mut client, &mut server, now, &mut shared);
    assert_eq!(client_saw, ["Open"]);
    assert_eq!(client.protocol(), Some("chat"));
    let long = "compress me ".repeat(100);
    client
        .send(MessageKind::Text, long.as_bytes(), &mut shared)
        .unwrap();
    let on_the_wire = client.outbox().len();
    assert!(
        on_the_wire < long.len() / 4,
        "compressed: {on_the_wire} bytes"
    );
    let (client_saw, server_saw) = exchange(&mut client, &mut server, now, &mut shared);
    assert_eq!(server_saw, [format!("{:?}", Some(long.as_str()))]);
    assert_eq!(
        client_saw,
        [format!("{:?}", Some(long.as_str()))],
        "the echo"
    );
    // The client closes; the server answers and closes TCP first; the client follows.
    client.close(CloseCode::NORMAL, "done", now).unwrap();
    exchange(&mut client, &mut server, now, &mut shared);
    assert!(server.outbox().take_eof());
    client.handle_eof(now);
    assert!(client.outbox().take_eof());
    server.handle_eof(now);
    assert!(client.is_closed() && server.is_closed());
    assert_eq!(
        client.closure().unwrap().cause,
        CloseCause::ClosedByUs(CloseCode::NORMAL)
    );
    assert_eq!(server.closure().unwrap().reason, "done");
}

#[test]
fn terminate_queues_a_masked_close_drops_the_message_and_closes_our_side() {
    let start = Instant::now();
    let (mut conn, mut shared) = open(ClientConfig::default(), start);
    // Half a fragmented message is held; the terminate drops it.
    let mut first = [0x01, 0x03, b'a', b'b', b'c'];
    conn.handle_input(&mut first, start, &mut shared).unwrap();
    assert_eq!(conn.buffered(), 3);
    conn.send_owned(MessageKind::Binary, vec![9; 10], &mut shared)
        .unwrap();
    let queued = conn.queued();
    assert_eq!(queued, 2 + 4 + 10, "a masked frame of 10 bytes");
    conn.terminate(CloseCode::MESSAGE_TOO_BIG, "memory budget", start);
    assert_eq!(conn.buffered(), 0);
    let out = conn.take_output();
    assert_eq!(out[queued], 0x88);
    assert_ne!(out[queued + 1] & 0x80, 0, "the Close is masked");
    assert!(conn.outbox().take_eof(), "the client closes its side");
    let closure = conn.closure().unwrap();
    assert_eq!(closure.cause, CloseCause::Dropped("memory budget"));
    assert!(conn.send(MessageKind::Text, b"late", &mut shared).is_err());
    conn.handle_eof(start);
    assert!(conn.is_closed());
}

#[test]
fn a_request_that_offers_an_invalid_subprotocol_is_not_sent() {
    let request = ClientRequest {
        host: "example.com".into(),
        resource: "/".into(),
        protocols: vec!["chat".into(), "chat".into()],
        ..ClientRequest::default()
    };
    let conn = ClientConnection::new(
        Arc::new(ClientConfig::default()),
        request,
        Box::new(Sequence(0)),
        Instant::now(),
    );
    assert_eq!(
        conn.err(),
        Some(RequestError::DuplicateProtocol("chat".into()))
    );
}

#[test]
fn open_for_sending_once_the_response_is_accepted_until_a_close() {
    let start = Instant::now();
    let conn = client(ClientConfig::default(), start);
    assert!(!conn.is_open(), "before the response");
    let (mut conn, _) = open(ClientConfig::default(), start);
    assert!(conn.is_open());
    conn.close(CloseCode::NORMAL, "", start).unwrap();
    assert!(!conn.is_open(), "after our Close");
}

#[test]
fn each_client_error_says_what_the_server_got_wrong() {
    assert_eq!(
        ClientError::Handshake(ResponseError::WrongAccept).to_string(),
        "handshake failed: Sec-WebSocket-Accept does not match"
    );
    let error = ProtocolError::ReservedOpcode(3);
    assert_eq!(
        ClientError::Protocol(error).to_string(),
        format!("connection failed (1002): {error}")
    );
}

#[test]
fn a_connection_debugs_without_its_entropy_source() {
    let conn = client(ClientConfig::default(), Instant::now());
    let debug = format!("{conn:?}");
    assert!(debug.contains("keys: Entropy"), "{debug}");
}

#[test]
fn is_closed_only_once_its_own_end_of_stream_is_taken() {
    let start = Instant::now();
    let (mut conn, mut shared) = open(ClientConfig::default(), start);
    let mut close = [0x88, 0x02, 0x03, 0xe8];
    conn.handle_input(&mut close, start, &mut shared).unwrap();
    conn.take_output();
    conn.handle_eof(start);
    assert!(!conn.is_closed(), "its own FIN is not written yet");
    assert!(conn.outbox().take_eof());
    assert!(conn.is_closed());
}

#[test]
fn is_open_from_the_response_to_the_close() {
    let start = Instant::now();
    let conn = client(ClientConfig::default(), start);
    assert!(!conn.is_open() && conn.is_handshaking());
    let (mut conn, _) = open(ClientConfig::default(), start);
    assert!(conn.is_open() && !conn.is_handshaking());
    conn.close(CloseCode::NORMAL, "", start).unwrap();
    assert!(!conn.is_open());
}

#[test]
fn a_large_compressed_message_leaves_work_pending_between_calls() {
    use crate::frame::{FrameHeader, Opcode, encode_frame};
    let start = Instant::now();
    let mut conn = client(ClientConfig::default(), start);
    let mut shared = SharedDeflate::new();
    assert!(!conn.has_pending_work(), "not open");
    let mut head = response(
        "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    let received = conn.handle_input(&mut head, start, &mut shared).unwrap();
    assert_eq!(received.event, Some(ClientEvent::Open));
    assert!(!conn.has_pending_work(), "nothing received yet");
    let mut compressed = Vec::new();
    SharedDeflate::new().compress(&vec![0u8; 1 << 20], 15, 6, &mut compressed);
    let header = FrameHeader::new(Opcode::Binary, compressed.len()).with_rsv1(true);
    let mut frame = Vec::new();
    encode_frame(&header, &compressed, &mut frame);
    let mut pos = 0;
    let mut pending = 0;
    loop {
        let received = conn
            .handle_input(&mut frame[pos..], start, &mut shared)
            .unwrap();
        pos += received.consumed;
        if let Some(ClientEvent::Message(message)) = received.event {
            assert_eq!(message.as_bytes().len(), 1 << 20);
            break;
        }
        assert!(conn.has_pending_work());
        pending += 1;
    }
    assert!(pending >= 3, "{pending}");
    assert!(!conn.has_pending_work());
}

#[test]
fn abort_ends_the_connection_and_reports_a_drop_once_open() {
    let start = Instant::now();
    let mut conn = client(ClientConfig::default(), start);
    conn.abort("io error");
    assert!(conn.is_closed());
    assert_eq!(conn.closure(), None, "never opened");
    let (mut conn, _) = open(ClientConfig::default(), start);
    conn.abort("io error");
    assert!(conn.is_closed());
    assert_eq!(
        conn.closure().unwrap().cause,
        CloseCause::Dropped("io error")
    );
}

#[test]
fn the_compression_window_is_the_clients_once_permessage_deflate_is_agreed() {
    let start = Instant::now();
    let mut shared = SharedDeflate::new();
    let threshold = DeflateConfig::default().threshold;
    let mut conn = client(ClientConfig::default(), start);
    assert_eq!(conn.compression_window(1000), None, "not open yet");
    let mut head = response(
        "Sec-WebSocket-Protocol: chat\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n",
    );
    conn.handle_input(&mut head, start, &mut shared).unwrap();
    assert_eq!(
        conn.compression_window(threshold),
        Some(10),
        "the window the server set"
    );
    assert_eq!(
        conn.compression_window(threshold - 1),
        None,
        "too short to compress"
    );
    let (conn, _) = open(ClientConfig::default(), start);
    assert_eq!(conn.compression_window(1000), None, "not agreed");
}
