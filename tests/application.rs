//! The application API over real sockets: choosing a subprotocol, refusing an upgrade, the
//! request at open, how a connection ended at close, plain HTTP routes, and a handle that sends
//! from another thread.

mod common;

use common::{Client, config, read_response_head, read_to_eof, start_with, tcp, upgrade_request};
use rfc6455::frame::Opcode;
use rfc6455::server::{Context, Handler, Opening, PeerId, Upgrade};
use rfc6455::{CloseCause, CloseCode, Closure, Message, MessageKind, Request, Response};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// What the test application saw.
#[derive(Debug, PartialEq)]
enum Seen {
    Open {
        path: String,
        protocol: Option<String>,
        from_loopback: bool,
    },
    Message(Vec<u8>),
    Close {
        code: u16,
        reason: String,
        clean: bool,
        by_peer: bool,
    },
}

/// Shouts text back in upper case and closes on "bye" (code 4001); upgrades only `/room/...` with `?token=secret`, choosing the
/// `chat` subprotocol when offered; serves `/hello` as plain HTTP; reports opens and closes.
struct App {
    seen: Sender<Seen>,
    handles: Sender<(rfc6455::server::Handle, PeerId)>,
}

impl Handler for App {
    fn on_upgrade(&mut self, request: &Request<'_>, _from: SocketAddr) -> Upgrade {
        if !request.path.starts_with("/room/") {
            return Upgrade::Refuse(Response::text(404, "no such room\n"));
        }
        if !request.path.ends_with("?token=secret") {
            return Upgrade::Refuse(Response::text(401, "token required\n"));
        }
        match request.protocols().find(|p| *p == "chat") {
            Some(protocol) => Upgrade::accept_with(protocol),
            None => Upgrade::accept(),
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        let _ = self.seen.send(Seen::Open {
            path: opening.request.path.to_string(),
            protocol: opening.protocol.map(str::to_string),
            from_loopback: opening.remote_addr.ip().is_loopback(),
        });
        let _ = self.handles.send((ctx.handle(), peer));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        let _ = self.seen.send(Seen::Message(message.as_bytes().to_vec()));
        if message.as_bytes() == b"bye" {
            let _ = ctx.close(peer, CloseCode(4001), "asked to leave");
        } else if let Some(text) = message.as_text() {
            let _ = ctx.send(peer, message.kind(), text.to_uppercase().as_bytes());
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, closure: &Closure) {
        let _ = self.seen.send(Seen::Close {
            code: closure.code.0,
            reason: closure.reason.clone(),
            clean: closure.was_clean(),
            by_peer: closure.cause == CloseCause::ClosedByPeer,
        });
    }

    fn on_http(&mut self, request: &Request<'_>) -> Response {
        match request.path {
            "/hello" => Response::text(200, "hello\n"),
            _ => Response::text(404, "nothing here\n"),
        }
    }
}

fn start_app() -> (
    common::TestServer,
    Receiver<Seen>,
    Receiver<(rfc6455::server::Handle, PeerId)>,
) {
    let (seen, seen_rx) = channel();
    let (handles, handles_rx) = channel();
    let server = start_with(App { seen, handles }, config());
    (server, seen_rx, handles_rx)
}

fn upgrade_to(addr: SocketAddr, path: &str, extra: &str) -> (u16, String) {
    let mut stream = tcp(addr);
    let request = upgrade_request(addr)
        .replace("GET /chat ", &format!("GET {path} "))
        .replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    stream.write_all(request.as_bytes()).unwrap();
    read_response_head(&mut stream)
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_application_refuses_upgrades_with_its_own_status() {
    let (server, seen, _) = start_app();
    let (status, head) = upgrade_to(server.addr, "/lobby", "");
    assert_eq!(status, 404, "{head}");
    let (status, _) = upgrade_to(server.addr, "/room/a?token=wrong", "");
    assert_eq!(status, 401);
    assert!(seen.try_recv().is_err(), "nothing opened");
    let stats = server.stop();
    assert_eq!(
        stats
            .handshake_rejections
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>(),
        2
    );
}

#[test]
fn open_sees_the_request_and_the_chosen_subprotocol() {
    let (server, seen, _) = start_app();
    let (status, head) = upgrade_to(
        server.addr,
        "/room/a?token=secret",
        "Sec-WebSocket-Protocol: superchat, chat\r\n",
    );
    assert_eq!(status, 101);
    assert!(head.contains("Sec-WebSocket-Protocol: chat\r\n"), "{head}");
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Open {
            path: "/room/a?token=secret".into(),
            protocol: Some("chat".into()),
            from_loopback: true,
        }
    );
    let (_, head) = upgrade_to(
        server.addr,
        "/room/b?token=secret",
        "Sec-WebSocket-Protocol: mqtt\r\n",
    );
    assert!(
        !head.contains("Sec-WebSocket-Protocol"),
        "none chosen: {head}"
    );
}

#[test]
fn close_reports_the_peers_code_and_reason_and_a_clean_close() {
    let (server, seen, _) = start_app();
    let (mut client, _) = Client::connect_with_path(server.addr, "/room/a?token=secret", "");
    assert!(matches!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Open { .. }
    ));
    client.send_text("quiet please");
    assert_eq!(client.expect_frame().payload, b"QUIET PLEASE");
    client.send_frame(true, Opcode::Close, b"\x0f\xa0leaving now");
    assert_eq!(client.expect_close(), Some(4000));
    client.expect_eof();
    drop(client);
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Message(b"quiet please".to_vec())
    );
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Close {
            code: 4000,
            reason: "leaving now".into(),
            clean: true,
            by_peer: true,
        }
    );
}

#[test]
fn close_reports_1006_when_tcp_ends_without_a_close() {
    let (server, seen, _) = start_app();
    let (client, _) = Client::connect_with_path(server.addr, "/room/a?token=secret", "");
    assert!(matches!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Open { .. }
    ));
    drop(client);
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Close {
            code: 1006,
            reason: String::new(),
            clean: false,
            by_peer: false,
        }
    );
}

#[test]
fn the_application_serves_its_own_http_routes() {
    let (server, _, _) = start_app();
    let mut stream = tcp(server.addr);
    stream
        .write_all(format!("GET /hello HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes())
        .unwrap();
    let (status, _) = read_response_head(&mut stream);
    assert_eq!(status, 200);
    assert_eq!(read_to_eof(&mut stream), b"hello\n");
}

#[test]
fn a_handle_sends_and_closes_from_another_thread() {
    let (server, _seen, handles) = start_app();
    let (mut client, _) = Client::connect_with_path(server.addr, "/room/a?token=secret", "");
    let (handle, peer) = handles.recv_timeout(WAIT).unwrap();
    std::thread::spawn(move || {
        handle
            .send(peer, MessageKind::Text, &b"from a thread"[..])
            .unwrap();
        handle
            .close(peer, rfc6455::CloseCode::GOING_AWAY, "bye")
            .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(client.expect_frame().payload, b"from a thread");
    assert_eq!(client.expect_close(), Some(1001));
}

/// Answers every message with the number of connections the server holds, and tells everyone
/// that number again when a connection has gone.
struct Counting;

impl Handler for Counting {
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, _message: Message<'_>) {
        let count = ctx.connection_count().to_string();
        let _ = ctx.send(peer, MessageKind::Text, count.as_bytes());
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, _peer: PeerId, _closure: &Closure) {
        let count = ctx.connection_count().to_string();
        ctx.broadcast(MessageKind::Text, count.as_bytes());
    }
}

#[test]
fn the_connection_count_counts_every_connection_and_forgets_a_closed_one() {
    let server = start_with(Counting, config());
    let mut first = Client::connect(server.addr);
    let mut second = Client::connect(server.addr);
    let third = Client::connect(server.addr);
    first.send_text("how many?");
    assert_eq!(first.expect_frame().payload, b"3");
    // A connection is forgotten before the application hears that it closed.
    drop(third);
    assert_eq!(first.expect_frame().payload, b"2");
    assert_eq!(second.expect_frame().payload, b"2");
}

#[test]
fn messages_that_arrived_with_the_one_the_application_closed_on_are_not_delivered() {
    let (server, seen, _) = start_app();
    let (mut client, _) = Client::connect_with_path(server.addr, "/room/a?token=secret", "");
    assert!(matches!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Open { .. }
    ));
    // Four messages in one write: the server reads them together, and the application closes
    // while handling the second.
    let mut burst = Vec::new();
    for text in ["hi", "bye", "after", "more"] {
        burst.extend_from_slice(&Client::encode(true, Opcode::Text, text.as_bytes()));
    }
    client.stream.write_all(&burst).unwrap();
    assert_eq!(client.expect_frame().payload, b"HI");
    assert_eq!(client.expect_close(), Some(4001));
    client.send_frame(true, Opcode::Close, &1000u16.to_be_bytes());
    client.expect_eof();
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Message(b"hi".to_vec())
    );
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Message(b"bye".to_vec())
    );
    // What arrived after the message the application closed on is read but not delivered
    // (RFC 6455 §5.5.1: the application asked to stop).
    // (The closure's code is the one the peer's Close answered with.)
    assert_eq!(
        seen.recv_timeout(WAIT).unwrap(),
        Seen::Close {
            code: 1000,
            reason: String::new(),
            clean: true,
            by_peer: false,
        }
    );
    assert_eq!(server.stop().messages_in, 2);
}
