//! Connections opened from the server's own loop (`Context::connect`, `Handle::connect`): an
//! application on one server connects to another server and talks to it through the same
//! handler callbacks as its accepted peers. The far end is a second server of this crate, or a
//! raw TCP listener that checks the bytes the loop sent as a client.

mod common;

use common::{Echo, READ_TIMEOUT, config, start_with};
use rfc6455::client_handshake::ResponseError;
use rfc6455::handshake::accept_key;
use rfc6455::server::{
    ConnectError, ConnectOptions, Context, Handle, Handler, Opening, PeerId, Upgrade,
};
use rfc6455::{CloseCause, CloseCode, Closure, Message, MessageKind, Request, Response};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// What the dialling application saw.
#[derive(Debug)]
enum Seen {
    Open {
        peer: PeerId,
        outbound: bool,
        path: String,
        protocol: Option<String>,
        remote_addr: SocketAddr,
    },
    Message {
        peer: PeerId,
        kind: MessageKind,
        payload: Vec<u8>,
    },
    Close {
        peer: PeerId,
        closure: Closure,
    },
    Failed {
        peer: PeerId,
        failure: Failure,
    },
}

/// Why a connection did not open, as the test compares it.
#[derive(Debug, PartialEq)]
enum Failure {
    Refused(u16),
    Io(std::io::ErrorKind),
    TimedOut,
    Other(String),
}

/// Reports everything; the test acts through the server's handle.
struct Dialer {
    seen: Sender<Seen>,
}

impl Handler for Dialer {
    fn on_open(&mut self, _ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        let _ = self.seen.send(Seen::Open {
            peer,
            outbound: opening.outbound,
            path: opening.request.path.to_owned(),
            protocol: opening.protocol.map(str::to_owned),
            remote_addr: opening.remote_addr,
        });
    }
    fn on_message(&mut self, _ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        let _ = self.seen.send(Seen::Message {
            peer,
            kind: message.kind(),
            payload: message.as_bytes().to_vec(),
        });
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, peer: PeerId, closure: &Closure) {
        let _ = self.seen.send(Seen::Close {
            peer,
            closure: closure.clone(),
        });
    }
    fn on_connect_failed(&mut self, _ctx: &mut Context<'_>, peer: PeerId, error: &ConnectError) {
        let failure = match error {
            ConnectError::Handshake(ResponseError::Refused(refusal)) => {
                Failure::Refused(refusal.status)
            }
            ConnectError::Io(e) => Failure::Io(e.kind()),
            ConnectError::TimedOut => Failure::TimedOut,
            other => Failure::Other(other.to_string()),
        };
        let _ = self.seen.send(Seen::Failed { peer, failure });
    }
}

/// A server running the dialler, and what it reports.
fn dialler() -> (common::TestServer, Receiver<Seen>) {
    let (seen, receiver) = channel();
    (start_with(Dialer { seen }, config()), receiver)
}

fn next(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(READ_TIMEOUT)
        .expect("the application heard something")
}

/// Echoes, but closes with 4001 when asked to, and refuses `/private` with 403; reports how
/// its connections ended.
#[derive(Default)]
struct Far {
    closes: Option<Sender<Closure>>,
}

impl Handler for Far {
    fn on_close(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, closure: &Closure) {
        if let Some(closes) = &self.closes {
            let _ = closes.send(closure.clone());
        }
    }
    fn on_upgrade(&mut self, request: &Request<'_>, _from: SocketAddr) -> Upgrade {
        match request.path {
            "/private" => Upgrade::Refuse(Response::text(403, "no\n")),
            _ if request.has_token("Sec-WebSocket-Protocol", "relay") => {
                Upgrade::accept_with("relay")
            }
            _ => Upgrade::accept(),
        }
    }
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        if message.as_text() == Some("close me") {
            let _ = ctx.close(peer, CloseCode(4001), "as you wish");
        } else {
            let _ = ctx.forward(peer, message);
        }
    }
}

/// Connects the dialler to `url` through its handle.
fn connect(handle: &Handle, url: &str, options: ConnectOptions) -> PeerId {
    handle.connect(url, options).expect("the connect started")
}

fn expect_open(seen: &Receiver<Seen>, id: PeerId) -> (String, Option<String>, SocketAddr) {
    match next(seen) {
        Seen::Open {
            peer,
            outbound,
            path,
            protocol,
            remote_addr,
        } => {
            assert_eq!(peer, id);
            assert!(outbound, "an outbound connection says so");
            (path, protocol, remote_addr)
        }
        other => panic!("expected the open, saw {other:?}"),
    }
}

fn expect_message(seen: &Receiver<Seen>, id: PeerId) -> (MessageKind, Vec<u8>) {
    match next(seen) {
        Seen::Message {
            peer,
            kind,
            payload,
        } => {
            assert_eq!(peer, id);
            (kind, payload)
        }
        other => panic!("expected a message, saw {other:?}"),
    }
}

fn expect_close(seen: &Receiver<Seen>, id: PeerId) -> Closure {
    match next(seen) {
        Seen::Close { peer, closure } => {
            assert_eq!(peer, id);
            closure
        }
        other => panic!("expected the close, saw {other:?}"),
    }
}

fn expect_failure(seen: &Receiver<Seen>, id: PeerId) -> Failure {
    match next(seen) {
        Seen::Failed { peer, failure } => {
            assert_eq!(peer, id);
            failure
        }
        other => panic!("expected a failure, saw {other:?}"),
    }
}

#[test]
fn an_application_connects_out_and_gets_the_echo_of_what_it_sends() {
    let far = start_with(Echo, config());
    let (near, seen) = dialler();
    let url = format!("ws://{}/echo?x=1", far.addr);
    let id = connect(&near.handle, &url, ConnectOptions::default());
    let (path, protocol, remote_addr) = expect_open(&seen, id);
    assert_eq!(path, "/echo?x=1");
    assert_eq!(protocol, None);
    assert_eq!(remote_addr, far.addr);

    near.handle.send(id, MessageKind::Text, "hello").unwrap();
    assert_eq!(
        expect_message(&seen, id),
        (MessageKind::Text, b"hello".to_vec())
    );
    // Large enough to be queued by reference and to take more than one read on the far side.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    near.handle
        .send(id, MessageKind::Binary, big.clone())
        .unwrap();
    assert_eq!(expect_message(&seen, id), (MessageKind::Binary, big));

    // Topics reach it like any peer.
    near.handle.subscribe(id, "upstream").unwrap();
    near.handle
        .publish("upstream", MessageKind::Text, "to the topic")
        .unwrap();
    assert_eq!(
        expect_message(&seen, id),
        (MessageKind::Text, b"to the topic".to_vec())
    );
}

#[test]
fn a_subprotocol_is_offered_and_agreed() {
    let far = start_with(Far::default(), config());
    let (near, seen) = dialler();
    let options = ConnectOptions {
        protocols: vec!["other".into(), "relay".into()],
        ..ConnectOptions::default()
    };
    let id = connect(&near.handle, &format!("ws://{}/", far.addr), options);
    let (_, protocol, _) = expect_open(&seen, id);
    assert_eq!(protocol.as_deref(), Some("relay"));
}

#[test]
fn a_close_from_the_application_reaches_on_close_on_both_servers() {
    let (closes, far_closures) = channel();
    let far = start_with(
        Far {
            closes: Some(closes),
        },
        config(),
    );
    let (near, seen) = dialler();
    let id = connect(
        &near.handle,
        &format!("ws://{}/", far.addr),
        ConnectOptions::default(),
    );
    expect_open(&seen, id);
    near.handle.close(id, CloseCode(4000), "done").unwrap();
    let closure = expect_close(&seen, id);
    assert!(closure.was_clean(), "{closure:?}");
    assert_eq!(closure.cause, CloseCause::ClosedByUs(CloseCode(4000)));
    assert_eq!(closure.code, CloseCode(4000), "the far end echoed the code");
    let far_closure = far_closures.recv_timeout(READ_TIMEOUT).unwrap();
    assert_eq!(far_closure.code, CloseCode(4000));
    assert_eq!(far_closure.reason, "done");
    assert_eq!(far_closure.cause, CloseCause::ClosedByPeer);
    assert!(near.handle.send(id, MessageKind::Text, "late").is_ok());
    assert!(
        seen.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing after on_close"
    );
}

#[test]
fn a_close_from_the_far_server_reaches_on_close() {
    let far = start_with(Far::default(), config());
    let (near, seen) = dialler();
    let id = connect(
        &near.handle,
        &format!("ws://{}/", far.addr),
        ConnectOptions::default(),
    );
    expect_open(&seen, id);
    near.handle.send(id, MessageKind::Text, "close me").unwrap();
    let closure = expect_close(&seen, id);
    assert!(closure.was_clean(), "{closure:?}");
    assert_eq!(closure.cause, CloseCause::ClosedByPeer);
    assert_eq!(closure.code, CloseCode(4001));
    assert_eq!(closure.reason, "as you wish");
}

#[test]
fn a_refused_upgrade_reaches_the_application_with_its_status() {
    let far = start_with(Far::default(), config());
    let (near, seen) = dialler();
    let url = format!("ws://{}/private", far.addr);
    let id = connect(&near.handle, &url, ConnectOptions::default());
    assert_eq!(expect_failure(&seen, id), Failure::Refused(403));
    assert_eq!(near.stop().open, 0);
}

#[test]
fn a_refused_tcp_connection_reaches_the_application() {
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (near, seen) = dialler();
    let id = connect(
        &near.handle,
        &format!("ws://{closed_port}/"),
        ConnectOptions::default(),
    );
    assert_eq!(
        expect_failure(&seen, id),
        Failure::Io(std::io::ErrorKind::ConnectionRefused)
    );
}

#[test]
fn a_server_that_never_answers_hits_the_handshake_deadline() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let (near, seen) = dialler();
    let mut options = ConnectOptions::default();
    options.config.handshake_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let id = connect(
        &near.handle,
        &format!("ws://{}/", silent.local_addr().unwrap()),
        options,
    );
    let (mut accepted, _) = silent.accept().unwrap();
    assert_eq!(expect_failure(&seen, id), Failure::TimedOut);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // The loop closed the socket: the request, then EOF.
    accepted.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut sent = Vec::new();
    accepted.read_to_end(&mut sent).unwrap();
    assert!(sent.starts_with(b"GET / HTTP/1.1\r\n"));
}

#[test]
fn wss_and_host_names_are_refused_at_once() {
    let (near, _seen) = dialler();
    let error = near
        .handle
        .connect("wss://127.0.0.1:1/", ConnectOptions::default())
        .unwrap_err();
    assert!(matches!(error, ConnectError::TlsNotSupported), "{error:?}");
    let error = near
        .handle
        .connect("ws://example.com/", ConnectOptions::default())
        .unwrap_err();
    assert!(matches!(error, ConnectError::Unresolved(_)), "{error:?}");
    let error = near
        .handle
        .connect("http://127.0.0.1/", ConnectOptions::default())
        .unwrap_err();
    assert!(matches!(error, ConnectError::Url(_)), "{error:?}");
}

/// Reads one HTTP head from `stream`.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "EOF inside the head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The value of header `name` in `head` (the only one of that name).
fn header<'h>(head: &'h str, name: &str) -> &'h str {
    let mut values = head.lines().filter_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    });
    let value = values
        .next()
        .unwrap_or_else(|| panic!("no {name} in {head}"));
    assert!(values.next().is_none(), "{name} twice");
    value
}

/// Reads one client frame: (first byte, mask bit, masking key, unmasked payload).
fn read_client_frame(stream: &mut TcpStream) -> (u8, bool, [u8; 4], Vec<u8>) {
    let mut two = [0u8; 2];
    stream.read_exact(&mut two).unwrap();
    let masked = two[1] & 0x80 != 0;
    let len = match two[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).unwrap();
            u16::from_be_bytes(ext) as usize
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).unwrap();
            u64::from_be_bytes(ext) as usize
        }
        len => len as usize,
    };
    let mut key = [0u8; 4];
    if masked {
        stream.read_exact(&mut key).unwrap();
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
    (two[0], masked, key, payload)
}

#[test]
fn the_request_is_a_valid_opening_handshake_and_every_frame_is_masked() {
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = raw.local_addr().unwrap();
    let (near, seen) = dialler();
    let options = ConnectOptions {
        origin: Some("http://near.example".into()),
        headers: vec![("X-Relay".into(), "1".into())],
        ..ConnectOptions::default()
    };
    let id = connect(&near.handle, &format!("ws://{addr}/raw?q=1"), options);
    let (mut stream, _) = raw.accept().unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();

    // §4.1: GET, HTTP/1.1, the resource, Host with the port, Upgrade, Connection, a 16-byte
    // nonce in base64, version 13.
    let head = read_head(&mut stream);
    assert!(head.starts_with("GET /raw?q=1 HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "Host"), addr.to_string());
    assert!(header(&head, "Upgrade").eq_ignore_ascii_case("websocket"));
    assert!(header(&head, "Connection").eq_ignore_ascii_case("Upgrade"));
    assert_eq!(header(&head, "Sec-WebSocket-Version"), "13");
    assert_eq!(header(&head, "Origin"), "http://near.example");
    assert_eq!(header(&head, "X-Relay"), "1");
    let key = header(&head, "Sec-WebSocket-Key");
    assert_eq!(key.len(), 24, "16 bytes in base64: {key}");
    assert!(key.ends_with("=="));
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key.as_bytes())
    );
    // The first frame from the server comes with the response.
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    stream.write_all(&bytes).unwrap();
    let (path, _, _) = expect_open(&seen, id);
    assert_eq!(path, "/raw?q=1");
    assert_eq!(
        expect_message(&seen, id),
        (MessageKind::Text, b"hi".to_vec())
    );

    near.handle.send(id, MessageKind::Text, "one").unwrap();
    near.handle
        .send(id, MessageKind::Binary, vec![7u8; 200])
        .unwrap();
    let (first, masked, key1, payload) = read_client_frame(&mut stream);
    assert_eq!((first, masked), (0x81, true), "a masked final text frame");
    assert_eq!(payload, b"one");
    let (first, masked, key2, payload) = read_client_frame(&mut stream);
    assert_eq!((first, masked), (0x82, true), "a masked final binary frame");
    assert_eq!(payload, vec![7u8; 200]);
    assert_ne!(key1, key2, "a fresh masking key per frame");

    // The server closes: the client answers with a masked Close and waits for the server's
    // TCP close (§7.1.1), which ends the connection cleanly.
    stream.write_all(&[0x88, 0x02, 0x03, 0xe8]).unwrap();
    let (first, masked, _, payload) = read_client_frame(&mut stream);
    assert_eq!((first, masked), (0x88, true), "a masked Close");
    assert_eq!(payload, [0x03, 0xe8]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        seen.try_recv().is_err(),
        "the client waits for the server's TCP close"
    );
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let closure = expect_close(&seen, id);
    assert!(closure.was_clean());
    assert_eq!(closure.code, CloseCode::NORMAL);
    assert_eq!(closure.cause, CloseCause::ClosedByPeer);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the Close, then EOF");
}

#[test]
fn a_server_that_does_not_close_tcp_is_closed_after_the_close_timeout() {
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = raw.local_addr().unwrap();
    let (near, seen) = dialler();
    let mut options = ConnectOptions::default();
    options.config.close_timeout = Duration::from_millis(200);
    let id = connect(&near.handle, &format!("ws://{addr}/"), options);
    let (mut stream, _) = raw.accept().unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let head = read_head(&mut stream);
    let key = header(&head, "Sec-WebSocket-Key").to_owned();
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key.as_bytes())
    )
    .unwrap();
    expect_open(&seen, id);
    stream.write_all(&[0x88, 0x02, 0x03, 0xe8]).unwrap();
    let started = Instant::now();
    let closure = expect_close(&seen, id);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(closure.was_clean(), "the closing handshake completed");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
}

/// Tries to connect out when a connection closes, and says what came of it.
struct Reconnecter {
    target: String,
    results: Sender<Result<PeerId, String>>,
}

impl Handler for Reconnecter {
    fn on_message(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, _message: Message<'_>) {}
    fn on_close(&mut self, ctx: &mut Context<'_>, _peer: PeerId, _closure: &Closure) {
        let result = ctx.connect(&self.target, ConnectOptions::default());
        let _ = self.results.send(result.map_err(|e| format!("{e:?}")));
    }
}

#[test]
fn no_connection_opens_once_a_shutdown_began() {
    let far = start_with(Echo, config());
    let (results, answers) = channel();
    let near = start_with(
        Reconnecter {
            target: format!("ws://{}/", far.addr),
            results,
        },
        config(),
    );
    let mut client = rfc6455::client::Client::connect(&format!("ws://{}/", near.addr)).unwrap();
    // A close while running: the connect starts.
    let mut second = rfc6455::client::Client::connect(&format!("ws://{}/", near.addr)).unwrap();
    second.close(CloseCode::NORMAL, "").unwrap();
    assert!(answers.recv_timeout(READ_TIMEOUT).unwrap().is_ok());
    // The server's 1001 at shutdown: the connect is refused.
    near.handle.shutdown();
    assert!(client.recv().unwrap().is_none());
    assert_eq!(
        answers.recv_timeout(READ_TIMEOUT).unwrap(),
        Err("ShuttingDown".to_owned())
    );
}
