//! A server connection driven by hand, with a simulated clock: every deadline is tested by
//! passing instants, never by sleeping.

use super::*;
use crate::batch::Batch;
use crate::closure::Deadline;
use crate::frame::{FrameHeader, Opcode, encode_frame};
use crate::handshake::OriginPolicy;

const REQUEST: &[u8] = b"GET /chat?room=a HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A masked client frame; `first` is the first byte (FIN, RSV, opcode).
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let opcode = Opcode::from_u8(first & 0x0F).unwrap();
    let header = FrameHeader::new(opcode, payload.len())
        .with_fin(first & 0x80 != 0)
        .masked([0x11, 0x22, 0x33, 0x44]);
    let mut out = Vec::new();
    encode_frame(&header, payload, &mut out);
    out
}

struct Harness {
    conn: ServerConnection,
    shared: SharedDeflate,
    start: Instant,
}

impl Harness {
    fn new(config: ServerConfig) -> Self {
        let start = Instant::now();
        Harness {
            conn: ServerConnection::new(Arc::new(config), start),
            shared: SharedDeflate::new(),
            start,
        }
    }

    /// A connection whose upgrade was accepted at `start`, with the 101 taken.
    fn open(config: ServerConfig) -> Self {
        let mut h = Harness::new(config);
        let mut request = REQUEST.to_vec();
        let received = h.input_at(0.0, &mut request).unwrap();
        let Some(ServerEvent::Upgrade(request)) = received.event else {
            panic!("expected an upgrade")
        };
        h.conn.accept(&request, None, h.start).unwrap();
        let response = h.conn.take_output();
        assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        h
    }

    fn at(&self, s: f64) -> Instant {
        self.start + secs(s)
    }

    fn input_at<'a>(
        &mut self,
        s: f64,
        input: &'a mut [u8],
    ) -> Result<Received<ServerEvent<'a>>, Error> {
        let now = self.at(s);
        self.conn.handle_input(input, now, &mut self.shared)
    }

    /// Feeds all of `input` at time `s`, returning a description of each event or error.
    fn feed(&mut self, s: f64, input: &[u8]) -> Vec<String> {
        let mut buf = input.to_vec();
        let mut pos = 0;
        let mut seen = Vec::new();
        let now = self.at(s);
        loop {
            match self
                .conn
                .handle_input(&mut buf[pos..], now, &mut self.shared)
            {
                Ok(received) => {
                    if received.needs_more() {
                        break;
                    }
                    pos += received.consumed;
                    if let Some(event) = received.event {
                        seen.push(format!("{event:?}"));
                    }
                }
                Err(error) => {
                    seen.push(format!("error: {error}"));
                    pos = buf.len();
                }
            }
            if pos == buf.len() {
                break;
            }
        }
        seen
    }

    fn timeout_at(&mut self, s: f64) {
        let now = self.at(s);
        self.conn.handle_timeout(now);
    }

    fn deadline(&self) -> Option<f64> {
        self.conn
            .poll_timeout()
            .map(|at| (at - self.start).as_secs_f64())
    }
}

fn close_payload(frame: &[u8]) -> (u16, String) {
    assert_eq!(frame[0], 0x88, "a close frame: {frame:?}");
    let len = frame[1] as usize;
    let code = u16::from_be_bytes([frame[2], frame[3]]);
    (code, String::from_utf8(frame[4..2 + len].to_vec()).unwrap())
}

#[test]
fn the_request_head_must_arrive_within_the_handshake_timeout() {
    let mut h = Harness::new(ServerConfig::default());
    assert_eq!(h.deadline(), Some(10.0));
    // Dripped bytes do not move the deadline: it counts from the connection's start.
    let mut partial = REQUEST[..20].to_vec();
    assert!(h.input_at(5.0, &mut partial).unwrap().needs_more());
    assert_eq!(h.deadline(), Some(10.0));
    h.timeout_at(9.999);
    assert!(!h.conn.is_closed());
    h.timeout_at(10.0);
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.closure(), None, "never opened");
}

#[test]
fn a_request_dripped_byte_by_byte_is_reported_once_complete() {
    let mut h = Harness::new(ServerConfig::default());
    for end in 1..REQUEST.len() {
        let mut prefix = REQUEST[..end].to_vec();
        assert!(h.input_at(0.0, &mut prefix).unwrap().needs_more(), "{end}");
    }
    let mut whole = REQUEST.to_vec();
    let received = h.input_at(0.0, &mut whole).unwrap();
    assert_eq!(received.consumed, REQUEST.len());
    let Some(ServerEvent::Upgrade(request)) = received.event else {
        panic!()
    };
    assert_eq!(request.path, "/chat?room=a");
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
//= type=test
//# When a client establishes a WebSocket connection to a server, the
//# server MUST complete the following steps to accept the connection and
//# send the server's opening handshake.
#[test]
fn frames_after_the_request_in_the_same_read_wait_for_the_answer() {
    let mut h = Harness::new(ServerConfig::default());
    let mut input = REQUEST.to_vec();
    input.extend(masked(0x81, b"early"));
    let received = h.input_at(0.0, &mut input).unwrap();
    assert_eq!(received.consumed, REQUEST.len());
    let head = input[..REQUEST.len()].to_vec();
    let request = handshake::parse_request(&head, &Limits::default()).unwrap();
    let mut rest = input[REQUEST.len()..].to_vec();
    assert!(
        h.input_at(0.0, &mut rest).unwrap().needs_more(),
        "unanswered"
    );
    h.conn.accept(&request, Some("superchat"), h.start).unwrap();
    let response = String::from_utf8(h.conn.take_output()).unwrap();
    assert!(
        response.contains("Sec-WebSocket-Protocol: superchat\r\n"),
        "{response}"
    );
    assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_eq!(
        h.feed(0.0, &rest),
        [r#"Message(Message { kind: Text, payload: [101, 97, 114, 108, 121] })"#]
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
//= type=test
//# The value chosen MUST be derived
//# from the client's handshake, specifically by selecting one of
//# the values from the |Sec-WebSocket-Protocol| field that the
//# server is willing to use for this connection (if any).
#[test]
fn accepting_a_protocol_the_client_did_not_offer_is_refused() {
    let mut h = Harness::new(ServerConfig::default());
    let mut input = REQUEST.to_vec();
    let received = h.input_at(0.0, &mut input).unwrap();
    let Some(ServerEvent::Upgrade(request)) = received.event else {
        panic!()
    };
    assert_eq!(
        h.conn.accept(&request, Some("graphql-ws"), h.start),
        Err(AnswerError::ProtocolNotOffered)
    );
    assert!(h.conn.is_handshaking());
    assert_eq!(
        h.conn.respond(&Response::new(200), h.start),
        Err(AnswerError::NoHttpRequestPending)
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
//= type=test
//# If the server does not wish to accept this
//# connection, it MUST return an appropriate HTTP error code
//# (e.g., 403 Forbidden) and abort the WebSocket handshake
//# described in this section.
#[test]
fn the_application_can_refuse_an_upgrade() {
    let mut h = Harness::new(ServerConfig::default());
    let mut input = REQUEST.to_vec();
    let received = h.input_at(0.0, &mut input).unwrap();
    assert!(matches!(received.event, Some(ServerEvent::Upgrade(_))));
    h.conn
        .refuse(&Response::text(401, "token required\n"), h.at(0.0))
        .unwrap();
    let response = String::from_utf8(h.conn.take_output()).unwrap();
    assert!(response.starts_with("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n"));
    assert!(h.conn.outbox().take_eof());
    assert!(!h.conn.is_closed(), "waits for the client's FIN");
    h.conn.handle_eof(h.at(0.1));
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.closure(), None);
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.2
//= type=test
//# To do so, the
//# server MUST simply _Close the WebSocket Connection_ (Section 7.1.1).
#[test]
fn a_bad_request_gets_its_status_and_the_connection_closes() {
    let config = ServerConfig {
        origins: OriginPolicy::AllowList(vec!["https://chat.example".into()]),
        ..ServerConfig::default()
    };
    let mut h = Harness::new(config);
    let mut input = String::from_utf8(REQUEST.to_vec())
        .unwrap()
        .replace("\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n")
        .into_bytes();
    assert_eq!(
        h.input_at(0.0, &mut input).unwrap_err(),
        Error::Handshake(HandshakeError::OriginNotAllowed)
    );
    let response = String::from_utf8(h.conn.take_output()).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{response}"
    );
    assert!(h.conn.outbox().take_eof());
    // Whatever the client sends now is read and dropped; the close timeout ends it.
    assert_eq!(h.feed(0.5, b"more bytes"), Vec::<String>::new());
    assert_eq!(h.deadline(), Some(1.0));
    h.timeout_at(1.0);
    assert!(h.conn.is_closed());
}

#[test]
fn an_http_request_followed_at_once_by_fin_still_gets_its_answer() {
    let mut h = Harness::new(ServerConfig::default());
    let mut input = b"GET /page HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
    let received = h.input_at(0.0, &mut input).unwrap();
    let Some(ServerEvent::Http(request)) = received.event else {
        panic!()
    };
    assert_eq!(request.path, "/page");
    h.conn.handle_eof(h.at(0.0));
    assert!(!h.conn.is_closed(), "the answer is still owed");
    h.conn
        .respond(&Response::text(200, "hello\n"), h.at(0.0))
        .unwrap();
    let response = String::from_utf8(h.conn.take_output()).unwrap();
    assert!(response.ends_with("\r\n\r\nhello\n"));
    assert!(!h.conn.is_closed(), "our EOF is not written yet");
    assert!(h.conn.outbox().take_eof());
    assert!(h.conn.is_closed());
}

#[test]
fn an_upgrade_followed_at_once_by_fin_gets_its_101_then_closes() {
    let mut h = Harness::new(ServerConfig::default());
    let mut input = REQUEST.to_vec();
    let received = h.input_at(0.0, &mut input).unwrap();
    let Some(ServerEvent::Upgrade(request)) = received.event else {
        panic!()
    };
    h.conn.handle_eof(h.at(0.0));
    h.conn.accept(&request, None, h.at(0.0)).unwrap();
    assert!(h.conn.take_output().starts_with(b"HTTP/1.1 101"));
    assert!(h.conn.outbox().take_eof());
    assert!(h.conn.is_closed());
    assert_eq!(h.conn.closure().unwrap().cause, CloseCause::TransportClosed);
}

#[test]
fn keepalive_pings_after_the_idle_timeout_and_drops_without_an_answer() {
    let mut h = Harness::open(ServerConfig::default());
    assert_eq!(h.deadline(), Some(60.0));
    // Input moves the idle deadline.
    h.feed(30.0, &masked(0x8A, b""));
    assert_eq!(h.deadline(), Some(90.0));
    h.timeout_at(89.0);
    assert!(h.conn.take_output().is_empty(), "not idle yet");
    h.timeout_at(90.0);
    assert_eq!(h.conn.take_output(), [0x89, 0x00], "the keepalive ping");
    assert_eq!(h.deadline(), Some(120.0), "the pong timeout");
    // Any input counts as an answer.
    h.feed(100.0, &masked(0x8A, b""));
    assert_eq!(h.deadline(), Some(160.0));
    h.timeout_at(160.0);
    assert_eq!(h.conn.take_output(), [0x89, 0x00]);
    h.timeout_at(189.9);
    assert!(!h.conn.is_closed());
    h.timeout_at(190.0);
    assert!(h.conn.is_closed());
    let closure = h.conn.closure().unwrap();
    assert_eq!(closure.code, CloseCode::ABNORMAL);
    assert_eq!(closure.cause, CloseCause::TimedOut(Deadline::Keepalive));
    assert!(!closure.was_clean());
}

#[test]
fn keepalive_off_means_no_deadline_while_open() {
    let mut h = Harness::open(ServerConfig {
        idle_timeout: Duration::ZERO,
        ..ServerConfig::default()
    });
    assert_eq!(h.deadline(), None);
    h.timeout_at(1e6);
    assert!(h.conn.take_output().is_empty());
    assert!(!h.conn.is_closed());
}

#[test]
fn a_ping_without_pong_timeout_repeats_each_idle_period() {
    let mut h = Harness::open(ServerConfig {
        pong_timeout: Duration::ZERO,
        ..ServerConfig::default()
    });
    h.timeout_at(60.0);
    assert_eq!(h.conn.take_output(), [0x89, 0x00]);
    assert_eq!(h.deadline(), Some(120.0));
    h.timeout_at(120.0);
    assert_eq!(h.conn.take_output(), [0x89, 0x00]);
    assert!(!h.conn.is_closed());
}

#[test]
fn our_close_is_given_the_close_timeout() {
    let mut h = Harness::open(ServerConfig::default());
    h.conn
        .close(CloseCode::GOING_AWAY, "bye", h.at(5.0))
        .unwrap();
    assert_eq!(close_payload(&h.conn.take_output()), (1001, "bye".into()));
    assert_eq!(h.deadline(), Some(6.0));
    h.timeout_at(6.0);
    assert!(h.conn.is_closed());
    let closure = h.conn.closure().unwrap();
    assert_eq!(closure.cause, CloseCause::TimedOut(Deadline::Close));
    assert_eq!(closure.code, CloseCode::ABNORMAL);
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
//= type=test
//# After both sending and receiving a Close message, an endpoint
//# considers the WebSocket connection closed and MUST close the
//# underlying TCP connection.
//
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
//# The underlying TCP connection, in most normal cases, SHOULD be closed
//# first by the server, so that it holds the TIME_WAIT state and not the
//# client (as this would prevent it from re-opening the connection for 2
//# maximum segment lifetimes (2MSL), while there is no corresponding
//# server impact as a TIME_WAIT connection is immediately reopened upon
//# a new SYN with a higher seq number).
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
//= type=test
//# As such, when a server
//# is instructed to _Close the WebSocket Connection_ it SHOULD initiate
//# a TCP Close immediately, and when a client is instructed to do the
//# same, it SHOULD wait for a TCP Close from the server.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.2
//= type=test
//# Once an endpoint has both sent and
//# received a Close control frame, that endpoint SHOULD _Close the
//# WebSocket Connection_ as defined in Section 7.1.1.
#[test]
fn our_close_answered_is_a_clean_close_by_us() {
    let mut h = Harness::open(ServerConfig::default());
    h.conn.close(CloseCode::NORMAL, "done", h.at(1.0)).unwrap();
    h.conn.take_output();
    let seen = h.feed(1.1, &masked(0x88, b"\x03\xe8ok"));
    assert_eq!(seen.len(), 1);
    assert!(h.conn.take_output().is_empty(), "no second Close");
    assert!(h.conn.outbox().take_eof(), "the server closes TCP first");
    assert_eq!(h.deadline(), Some(2.1), "then waits for the client's FIN");
    h.conn.handle_eof(h.at(1.2));
    assert!(h.conn.is_closed());
    let closure = h.conn.closure().unwrap();
    assert_eq!(closure.code, CloseCode::NORMAL);
    assert_eq!(closure.reason, "ok");
    assert_eq!(closure.cause, CloseCause::ClosedByUs(CloseCode::NORMAL));
    assert!(closure.was_clean());
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.2
//= type=test
//# Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
//# response, unless it already received a Close frame.
#[test]
fn answers_ping_after_sending_close() {
    let mut h = Harness::open(ServerConfig::default());
    h.conn.close(CloseCode::NORMAL, "", h.at(1.0)).unwrap();
    h.conn.take_output();
    // §5.5.2: the peer's Close has not arrived, so its ping gets its pong.
    h.feed(1.1, &masked(0x89, b"still there?"));
    let mut pong = vec![0x8A, 12];
    pong.extend_from_slice(b"still there?");
    assert_eq!(h.conn.take_output(), pong);
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.2
//= type=test
//# Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
//# response, unless it already received a Close frame.
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
//= type=test
//# An endpoint SHOULD use a method that
//# cleanly closes the TCP connection, as well as the TLS session, if
//# applicable, discarding any trailing bytes that may have been
//# received.
#[test]
fn ignores_ping_after_receiving_close() {
    let mut h = Harness::open(ServerConfig::default());
    let mut input = masked(0x88, b"\x03\xe8");
    input.extend(masked(0x89, b"late"));
    h.feed(1.0, &input);
    assert_eq!(
        h.conn.take_output(),
        [0x88, 0x02, 0x03, 0xe8],
        "only the reply"
    );
}

#[test]
fn a_close_followed_at_once_by_fin_gets_its_reply_then_the_half_close() {
    let mut h = Harness::open(ServerConfig::default());
    h.feed(1.0, &masked(0x88, b"\x03\xe9going"));
    h.conn.handle_eof(h.at(1.0));
    assert!(!h.conn.is_closed(), "the reply is owed");
    assert_eq!(h.conn.take_output(), [0x88, 0x02, 0x03, 0xe9]);
    assert!(h.conn.outbox().take_eof());
    assert!(h.conn.is_closed());
    let closure = h.conn.closure().unwrap();
    assert_eq!(
        (closure.code, closure.reason.as_str()),
        (CloseCode::GOING_AWAY, "going")
    );
    assert_eq!(closure.cause, CloseCause::ClosedByPeer);
}

#[test]
fn an_empty_close_is_code_1005() {
    let mut h = Harness::open(ServerConfig::default());
    h.feed(1.0, &masked(0x88, b""));
    assert_eq!(h.conn.take_output(), [0x88, 0x00]);
    assert_eq!(h.conn.closure().unwrap().code, CloseCode::NO_STATUS);
}

#[test]
fn eof_before_a_close_is_abnormal_and_queued_echoes_still_go_out() {
    let mut h = Harness::open(ServerConfig::default());
    let seen = h.feed(1.0, &masked(0x81, b"last words"));
    assert_eq!(seen.len(), 1);
    h.conn
        .send(MessageKind::Text, b"last words", &mut h.shared)
        .unwrap();
    h.conn.handle_eof(h.at(1.0));
    let closure = h.conn.closure().unwrap();
    assert_eq!(closure.code, CloseCode::ABNORMAL);
    assert_eq!(closure.cause, CloseCause::TransportClosed);
    assert_eq!(h.conn.take_output(), b"\x81\x0alast words");
    assert!(h.conn.outbox().take_eof());
    assert!(h.conn.is_closed());
    assert_eq!(
        h.conn.send(MessageKind::Text, b"x", &mut h.shared),
        Err(SendError::NotOpen)
    );
}

// The log line is the shell's (`event_loop.rs`); no test reads the log.
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
//= type=test
//# Similarly, to do so, the server MUST _Close the WebSocket
//# Connection_, and SHOULD log the problem.
#[test]
fn a_protocol_error_fails_with_its_code_and_reason_then_closes() {
    let mut h = Harness::open(ServerConfig::default());
    let seen = h.feed(1.0, &[0x81, 0x02, b'h', b'i']); // unmasked
    assert_eq!(
        seen,
        ["error: connection failed (1002): client frame not masked"]
    );
    assert_eq!(
        close_payload(&h.conn.take_output()),
        (1002, "client frame not masked".into())
    );
    assert!(h.conn.outbox().take_eof());
    assert_eq!(h.deadline(), Some(2.0));
    h.timeout_at(2.0);
    assert!(h.conn.is_closed());
    let closure = h.conn.closure().unwrap();
    assert_eq!(
        closure.cause,
        CloseCause::Failed(crate::ProtocolError::UnmaskedClientFrame)
    );
}

#[test]
fn a_ping_flood_from_a_client_that_never_reads_holds_a_bounded_number_of_pongs() {
    let mut h = Harness::open(ServerConfig::default());
    let mut flood = Vec::new();
    for i in 0..10_000u32 {
        flood.extend(masked(0x89, &i.to_be_bytes()));
    }
    let seen = h.feed(1.0, &flood);
    assert_eq!(seen.len(), 10_000);
    let in_flight = crate::outbox::MAX_PONGS_IN_FLIGHT;
    assert_eq!(
        h.conn.queued(),
        6 * in_flight,
        "the rest wait outside the queue"
    );
    // Once written, the most recent ping's pong follows; the others were dropped (§5.5.3).
    let output = h.conn.take_output();
    assert_eq!(output.len(), 6 * (in_flight + 1));
    assert_eq!(&output[..6], [0x8A, 0x04, 0, 0, 0, 0]);
    assert_eq!(&output[output.len() - 6..], [0x8A, 0x04, 0, 0, 0x27, 0x0F]);
    assert!(h.conn.take_output().is_empty());
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.2
//= type=test
//# It SHOULD
//# respond with Pong frame as soon as is practical.
#[test]
fn a_burst_of_pings_gets_every_pong() {
    let mut h = Harness::open(ServerConfig::default());
    let mut burst = Vec::new();
    for i in 0..10u8 {
        burst.extend(masked(0x89, &[i]));
    }
    h.feed(1.0, &burst);
    let output = h.conn.take_output();
    let expected: Vec<u8> = (0..10u8).flat_map(|i| [0x8A, 0x01, i]).collect();
    assert_eq!(output, expected);
}

#[test]
fn abort_reports_a_drop_with_its_reason() {
    let mut h = Harness::open(ServerConfig::default());
    h.conn.abort("slow consumer");
    assert!(h.conn.is_closed());
    assert_eq!(
        h.conn.closure().unwrap().cause,
        CloseCause::Dropped("slow consumer")
    );
}

/// A connection that negotiated permessage-deflate.
fn open_compressed() -> Harness {
    let mut h = Harness::new(ServerConfig {
        limits: Limits {
            max_message_size: 8 << 20,
            ..Limits::default()
        },
        ..ServerConfig::default()
    });
    let request = String::from_utf8(REQUEST.to_vec()).unwrap().replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    let mut request = request.into_bytes();
    let received = h.input_at(0.0, &mut request).unwrap();
    let Some(ServerEvent::Upgrade(request)) = received.event else {
        panic!()
    };
    h.conn.accept(&request, None, h.start).unwrap();
    let response = String::from_utf8(h.conn.take_output()).unwrap();
    assert!(response.contains("permessage-deflate"), "{response}");
    h
}

fn compressed_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut compressed = Vec::new();
    SharedDeflate::new().compress(payload, 15, 6, &mut compressed);
    let opcode = Opcode::from_u8(first & 0x0F).unwrap();
    let header = FrameHeader::new(opcode, compressed.len())
        .with_rsv1(true)
        .masked([1, 2, 3, 4]);
    let mut frame = Vec::new();
    encode_frame(&header, &compressed, &mut frame);
    frame
}

#[test]
fn a_message_that_inflates_to_megabytes_is_inflated_a_step_per_call() {
    let mut h = open_compressed();
    let mut frame = compressed_frame(0x82, &vec![0u8; 4 << 20]);
    let now = h.at(1.0);
    let mut pos = 0;
    let mut steps = 0;
    let message = loop {
        let received = h
            .conn
            .handle_input(&mut frame[pos..], now, &mut h.shared)
            .unwrap();
        pos += received.consumed;
        if let Some(ServerEvent::Message(message)) = received.event {
            break message.into_payload();
        }
        assert!(received.unfinished, "work left without more input");
        assert!(h.conn.has_pending_work());
        steps += 1;
    };
    assert_eq!(message.len(), 4 << 20);
    assert!(message.iter().all(|&b| b == 0));
    assert_eq!(pos, frame.len());
    assert!(!h.conn.has_pending_work());
    // 4 MiB at 256 KiB a call.
    assert!(steps >= 15, "{steps} steps");
}

#[test]
fn invalid_utf8_in_compressed_text_fails_before_the_rest_is_inflated() {
    let mut h = open_compressed();
    let mut text = vec![b'a'; 4 << 20];
    text[10] = 0xff;
    let mut frame = compressed_frame(0x81, &text);
    let now = h.at(1.0);
    let mut calls = 0;
    let error = loop {
        calls += 1;
        match h.conn.handle_input(&mut frame, now, &mut h.shared) {
            Ok(received) => assert!(received.unfinished),
            Err(error) => break error,
        }
    };
    assert_eq!(error, Error::Protocol(crate::ProtocolError::InvalidUtf8));
    assert_eq!(calls, 1, "found in the first step, not after 4 MiB");
}

#[test]
fn open_for_sending_only_between_the_handshake_and_a_close() {
    let mut h = Harness::new(ServerConfig::default());
    assert!(!h.conn.is_open(), "while the request is read");
    assert_eq!(
        h.conn.send(MessageKind::Text, b"early", &mut h.shared),
        Err(SendError::NotOpen)
    );
    let mut h = Harness::open(ServerConfig::default());
    assert!(h.conn.is_open());
    h.conn.close(CloseCode::NORMAL, "", h.at(1.0)).unwrap();
    assert!(!h.conn.is_open(), "after our Close");
    let mut h = Harness::open(ServerConfig::default());
    h.conn.abort("gone");
    assert!(!h.conn.is_open(), "after an abort");
}

#[test]
fn the_compression_window_is_the_negotiated_one_for_a_message_worth_compressing() {
    let h = Harness::new(ServerConfig::default());
    assert_eq!(h.conn.compression_window(1000), None, "not open yet");
    let h = Harness::open(ServerConfig::default());
    assert_eq!(h.conn.compression_window(1000), None, "not negotiated");
    let mut h = open_compressed();
    // The client offered no window bits: the server compresses with a 15-bit window.
    assert_eq!(h.conn.compression_window(1000), Some(15));
    let threshold = DeflateConfig::default().threshold;
    assert_eq!(h.conn.compression_window(threshold - 1), None, "too short");
    assert_eq!(h.conn.compression_window(threshold), Some(15));
    h.conn.abort("gone");
    assert_eq!(h.conn.compression_window(1000), None, "closed");
}

#[test]
fn reports_its_config_and_where_it_is_in_its_life() {
    let config = ServerConfig {
        close_timeout: secs(3.0),
        ..ServerConfig::default()
    };
    let mut h = Harness::new(config.clone());
    assert_eq!(h.conn.config(), &config);
    assert!(h.conn.is_handshaking() && !h.conn.is_open());
    let mut request = REQUEST.to_vec();
    let received = h.input_at(0.0, &mut request).unwrap();
    let Some(ServerEvent::Upgrade(request)) = received.event else {
        panic!("expected an upgrade")
    };
    assert!(h.conn.is_handshaking() && !h.conn.is_open(), "awaiting");
    h.conn.accept(&request, None, h.start).unwrap();
    assert!(!h.conn.is_handshaking() && h.conn.is_open());
    h.conn.close(CloseCode::NORMAL, "", h.at(1.0)).unwrap();
    assert!(!h.conn.is_handshaking() && !h.conn.is_open(), "closing");
}

#[test]
fn terminate_queues_its_close_and_ends_the_connection() {
    let mut h = Harness::open(ServerConfig::default());
    h.conn
        .terminate(CloseCode::GOING_AWAY, "shedding load", h.at(1.0));
    assert_eq!(
        close_payload(&h.conn.take_output()),
        (1001, "shedding load".into())
    );
    assert!(!h.conn.is_open());
    assert_eq!(
        h.conn.closure().unwrap().cause,
        CloseCause::Dropped("shedding load")
    );
    assert!(h.conn.outbox().take_eof(), "TCP closes as after a failure");
    // A connection that is not open is aborted.
    let mut h = Harness::new(ServerConfig::default());
    h.conn
        .terminate(CloseCode::GOING_AWAY, "shedding load", h.at(1.0));
    assert!(h.conn.is_closed());
}

#[test]
fn buffered_counts_the_message_being_assembled() {
    let h = Harness::new(ServerConfig::default());
    assert_eq!(h.conn.buffered(), 0);
    let mut h = Harness::open(ServerConfig::default());
    assert_eq!(h.feed(1.0, &masked(0x01, b"abc")), Vec::<String>::new());
    assert_eq!(h.conn.buffered(), 3);
}

#[test]
fn owned_and_prepared_messages_are_queued_only_while_open() {
    let prepared = PreparedFrame::new(MessageKind::Binary, b"x");
    let mut h = Harness::new(ServerConfig::default());
    assert_eq!(
        h.conn
            .send_owned(MessageKind::Text, b"hi".to_vec(), &mut h.shared),
        Err(SendError::NotOpen)
    );
    assert_eq!(h.conn.send_prepared(&prepared), Err(SendError::NotOpen));
    let mut h = Harness::open(ServerConfig::default());
    h.conn
        .send_owned(MessageKind::Text, b"hi".to_vec(), &mut h.shared)
        .unwrap();
    h.conn.send_prepared(&prepared).unwrap();
    assert_eq!(h.conn.take_output(), b"\x81\x02hi\x82\x01x");
}

#[test]
fn the_compression_window_is_the_negotiated_one_from_the_threshold_on() {
    let h = Harness::new(ServerConfig::default());
    assert_eq!(h.conn.compression_window(1000), None, "not open");
    let h = Harness::open(ServerConfig::default());
    assert_eq!(
        h.conn.compression_window(1000),
        None,
        "no permessage-deflate"
    );
    let h = open_compressed();
    assert_eq!(h.conn.compression_window(1000), Some(15));
    assert_eq!(h.conn.compression_window(63), None, "under the threshold");
}

/// A writer that takes at most `room` bytes in all, or fails; it counts the calls made to it.
#[derive(Default)]
struct Taking {
    written: Vec<u8>,
    room: usize,
    fail: bool,
    calls: usize,
}

impl Write for Taking {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.fail {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let before = self.written.len();
        for buf in bufs {
            let take = buf.len().min(self.room - (self.written.len() - before));
            self.written.extend_from_slice(&buf[..take]);
        }
        self.room -= self.written.len() - before;
        Ok(self.written.len() - before)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn send_through_writes_what_the_writer_takes_and_queues_the_rest() {
    let payload = [7u8; 200];
    let mut frame = vec![0x82, 126, 0, 200];
    frame.extend_from_slice(&payload);
    for room in [0, 2, 4, 50, 204, 1000] {
        let mut h = Harness::open(ServerConfig::default());
        let _ = h.conn.outbox().take_spare();
        let mut writer = Taking {
            room,
            ..Taking::default()
        };
        let written = h
            .conn
            .send_through(MessageKind::Binary, &payload, &mut writer, &mut h.shared)
            .unwrap();
        assert_eq!(written, room.min(204), "room {room}");
        assert_eq!(writer.written, frame[..written], "room {room}");
        assert_eq!(h.conn.queued(), 204 - written, "room {room}");
        // A message that went out whole leaves the queue holding no memory.
        assert!(!h.conn.outbox().holds_spare(), "room {room}");
        assert_eq!(h.conn.take_output(), frame[written..], "room {room}");
    }
    // A failing writer: everything is queued.
    let mut h = Harness::open(ServerConfig::default());
    let mut writer = Taking {
        room: 1000,
        fail: true,
        ..Taking::default()
    };
    let sent = h
        .conn
        .send_through(MessageKind::Binary, &payload, &mut writer, &mut h.shared);
    assert_eq!(sent, Ok(0));
    assert_eq!(h.conn.take_output(), frame);
    // Behind queued bytes, the message is queued after them.
    let mut h = Harness::open(ServerConfig::default());
    h.conn.ping(b"p").unwrap();
    let mut writer = Taking {
        room: 1000,
        ..Taking::default()
    };
    let sent = h
        .conn
        .send_through(MessageKind::Binary, &payload, &mut writer, &mut h.shared);
    assert_eq!(sent, Ok(0));
    assert!(writer.written.is_empty());
    let mut expected = b"\x89\x01p".to_vec();
    expected.extend_from_slice(&frame);
    assert_eq!(h.conn.take_output(), expected);
    // Not open.
    let mut h = Harness::new(ServerConfig::default());
    assert_eq!(
        h.conn
            .send_through(MessageKind::Binary, &payload, &mut writer, &mut h.shared),
        Err(SendError::NotOpen)
    );
}

#[test]
fn prepared_frames_sent_through_go_out_in_one_write_and_the_rest_is_queued() {
    let frames = [
        PreparedFrame::new(MessageKind::Text, b"one"),
        PreparedFrame::new(MessageKind::Binary, &[9u8; 200]),
        PreparedFrame::new(MessageKind::Text, b""),
    ];
    let mut wire = b"\x81\x03one\x82\x7e\x00\xc8".to_vec();
    wire.extend_from_slice(&[9u8; 200]);
    wire.extend_from_slice(b"\x81\x00");
    let total = wire.len();
    for room in [0, 1, 5, 6, 100, total, total + 10] {
        let mut h = Harness::open(ServerConfig::default());
        let _ = h.conn.outbox().take_spare();
        let mut writer = Taking {
            room,
            ..Taking::default()
        };
        let mut scratch = b"left over".to_vec();
        let written = h
            .conn
            .send_prepared_through(&frames, &mut scratch, &mut writer)
            .unwrap();
        assert_eq!(writer.calls, 1, "room {room}: gathered into one write");
        assert_eq!(written, room.min(total), "room {room}");
        assert_eq!(writer.written, wire[..written], "room {room}");
        assert_eq!(h.conn.queued(), total - written, "room {room}");
        // Frames that went out whole leave the queue holding no memory.
        assert!(!h.conn.outbox().holds_spare(), "room {room}");
        assert_eq!(h.conn.take_output(), wire[written..], "room {room}");
    }
    // A failing writer: everything is queued, in order.
    let mut h = Harness::open(ServerConfig::default());
    let mut writer = Taking {
        room: 1000,
        fail: true,
        ..Taking::default()
    };
    let sent = h
        .conn
        .send_prepared_through(&frames, &mut Vec::new(), &mut writer);
    assert_eq!(sent, Ok(0));
    assert_eq!(h.conn.take_output(), wire);
    // Behind queued bytes, the frames are queued after them and nothing is written.
    let mut h = Harness::open(ServerConfig::default());
    h.conn.ping(b"p").unwrap();
    let mut writer = Taking {
        room: 1000,
        ..Taking::default()
    };
    let sent = h
        .conn
        .send_prepared_through(&frames, &mut Vec::new(), &mut writer);
    assert_eq!(sent, Ok(0));
    assert_eq!(writer.calls, 0);
    let mut expected = b"\x89\x01p".to_vec();
    expected.extend_from_slice(&wire);
    assert_eq!(h.conn.take_output(), expected);
    // Not open: before the handshake, and after our Close.
    for mut h in [
        Harness::new(ServerConfig::default()),
        Harness::open(ServerConfig::default()),
    ] {
        if h.conn.is_open() {
            h.conn.close(CloseCode::NORMAL, "", h.start).unwrap();
            h.conn.take_output();
        }
        assert_eq!(
            h.conn
                .send_prepared_through(&frames, &mut Vec::new(), &mut writer),
            Err(SendError::NotOpen)
        );
        assert_eq!(h.conn.queued(), 0);
    }
    assert_eq!(writer.calls, 0);
}

#[test]
fn a_prepared_frame_sent_through_is_the_compressed_one_for_the_connections_window() {
    let payload = [b'a'; 1000];
    let mut frame = PreparedFrame::new(MessageKind::Text, &payload);
    let mut h = open_compressed();
    let bits = h.conn.compression_window(frame.payload_len()).unwrap();
    frame.compress_for(bits, 6, &mut h.shared);
    let compressed = frame.compressed_for(bits).unwrap().to_vec();
    assert_eq!(compressed[0], 0xC1, "FIN, RSV1, text");
    let mut writer = Taking {
        room: 10_000,
        ..Taking::default()
    };
    let written = h
        .conn
        .send_prepared_through([&frame], &mut Vec::new(), &mut writer)
        .unwrap();
    assert_eq!(written, compressed.len());
    assert_eq!(writer.written, compressed);
}

#[test]
fn a_large_frame_is_read_in_place_and_counts_as_input() {
    let mut h = Harness::open(ServerConfig::default());
    let payload: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let wire = masked(0x82, &payload);
    let header_len = wire.len() - payload.len();
    assert!(h.conn.payload_room().is_none(), "no frame under way");
    let mut fed = header_len + 100 * 1024;
    let mut first = wire[..fed].to_vec();
    assert!(h.input_at(1.0, &mut first).unwrap().event.is_none());
    let mut rooms = Vec::new();
    let message = loop {
        let room = h.conn.payload_room().expect("room is lent while open");
        let len = room.len();
        room.copy_from_slice(&wire[fed..fed + len]);
        fed += len;
        rooms.push(len);
        let now = h.at(30.0);
        let received = h.conn.receive_in_place(len, now, &mut h.shared).unwrap();
        assert_eq!(received.consumed, len);
        if let Some(ServerEvent::Message(message)) = received.event {
            break message;
        }
    };
    assert_eq!(rooms, [100 * 1024, 100 * 1024]);
    assert!(message.as_bytes() == payload.as_slice());
    assert_eq!(
        h.deadline(),
        Some(90.0),
        "input read in place moves the idle deadline"
    );
    assert!(h.conn.payload_room().is_none(), "the frame is over");
}

#[test]
fn a_batch_is_taken_only_while_open_and_moves_the_idle_deadline() {
    let mut h = Harness::new(ServerConfig::default());
    // While the request head is awaited, nothing is taken (not even what looks like frames).
    let mut early = masked(0x81, b"early");
    let mut batch = Batch::new();
    h.conn
        .receive_batch(&mut early, h.at(0.0), usize::MAX, &mut batch);
    assert!(batch.is_empty());
    let mut h = Harness::open(ServerConfig::default());
    assert_eq!(h.deadline(), Some(60.0));
    let mut input = [masked(0x81, b"one"), masked(0x82, b"two")].concat();
    let now = h.at(30.0);
    h.conn
        .receive_batch(&mut input, now, usize::MAX, &mut batch);
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.message(&input, 0).as_text(), Some("one"));
    assert_eq!(batch.message(&input, 1).as_bytes(), b"two");
    assert_eq!(h.deadline(), Some(90.0), "input shows the peer is alive");
    assert!(h.conn.delivers_messages());
    h.conn.close(CloseCode::NORMAL, "", h.at(31.0)).unwrap();
    assert!(
        !h.conn.delivers_messages(),
        "§5.5.1: the application asked to stop"
    );
    let mut late = masked(0x81, b"late");
    h.conn
        .receive_batch(&mut late, h.at(32.0), usize::MAX, &mut batch);
    assert!(batch.is_empty());
}
