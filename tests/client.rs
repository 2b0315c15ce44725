//! The crate's blocking client against the crate's server over real sockets: echo of text and
//! binary (large, compressed or not), subprotocols, a refused upgrade, and the closing handshake
//! from the client's side.

mod common;

use common::{Mode, config, start, start_with};
use rfc6455::client::{Client, ClientOptions, Error};
use rfc6455::client_handshake::ResponseError;
use rfc6455::server::{Context, Handler, PeerId, Upgrade};
use rfc6455::{CloseCause, CloseCode, Message, MessageKind, Request, Response};
use std::net::SocketAddr;

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

#[test]
fn echoes_text_and_binary_with_and_without_compression() {
    let server = start(Mode::Echo, config());
    for compression in [true, false] {
        let mut options = ClientOptions::default();
        options.config.deflate.enabled = compression;
        let mut client = Client::connect_with(&url(server.addr, "/"), options).unwrap();
        client.send(MessageKind::Text, "héllo".as_bytes()).unwrap();
        let reply = client.recv().unwrap().unwrap();
        assert_eq!(reply.as_text(), Some("héllo"));
        for len in [0, 125, 126, 65_535, 65_536, 16 << 20] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            client.send(MessageKind::Binary, &payload).unwrap();
            let reply = client.recv().unwrap().unwrap();
            assert_eq!(reply.kind(), MessageKind::Binary);
            assert!(
                reply.as_bytes() == payload,
                "{len} bytes, compression {compression}"
            );
        }
        let closure = client.close(CloseCode::NORMAL, "done").unwrap();
        assert!(closure.was_clean());
        assert_eq!(closure.cause, CloseCause::ClosedByUs(CloseCode::NORMAL));
        assert_eq!(closure.code, CloseCode::NORMAL);
    }
}

struct Picky;

impl Handler for Picky {
    fn on_upgrade(&mut self, request: &Request<'_>, _: SocketAddr) -> Upgrade {
        match request.path {
            "/chat" => match request.protocols().find(|p| *p == "chat") {
                Some(p) => Upgrade::accept_with(p),
                None => Upgrade::accept(),
            },
            _ => Upgrade::Refuse(Response::text(404, "no such room\n").header("X-Room", "none")),
        }
    }
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        if message.as_text() == Some("close please") {
            let _ = ctx.close(peer, CloseCode(4001), "as asked");
        }
    }
}

#[test]
fn a_refused_upgrade_keeps_its_status_and_headers() {
    let server = start_with(Picky, config());
    let error = Client::connect(&url(server.addr, "/nowhere")).unwrap_err();
    let Error::Handshake(ResponseError::Refused(refusal)) = error else {
        panic!("a refusal, not {error}")
    };
    assert_eq!(refusal.status, 404);
    assert!(
        refusal
            .headers
            .iter()
            .any(|(n, v)| n == "X-Room" && v == "none")
    );
}

#[test]
fn the_subprotocol_chosen_and_the_servers_close_code() {
    let server = start_with(Picky, config());
    let options = ClientOptions {
        protocols: vec!["superchat".into(), "chat".into()],
        ..ClientOptions::default()
    };
    let mut client = Client::connect_with(&url(server.addr, "/chat"), options).unwrap();
    assert_eq!(client.protocol(), Some("chat"));
    client.send(MessageKind::Text, b"close please").unwrap();
    assert!(client.recv().unwrap().is_none(), "closed by the server");
    let closure = client.closure().unwrap();
    assert_eq!(
        (closure.code.0, closure.reason.as_str()),
        (4001, "as asked")
    );
    assert_eq!(closure.cause, CloseCause::ClosedByPeer);
    assert!(closure.was_clean());
    assert!(!client.is_open());
}
