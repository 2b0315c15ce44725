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

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# When the client is to _Establish a WebSocket Connection_ given a set
//# of (/host/, /port/, /resource name/, and /secure/ flag), along with a
//# list of /protocols/ and /extensions/ to be used, and an /origin/ in
//# the case of web browsers, it MUST open a connection, send an opening
//# handshake, and read the server's handshake in response.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# If the client is not configured to use a proxy, then a direct TCP
//# connection SHOULD be opened to the host given by /host/ and the
//# port given by /port/.
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

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 4.  If the connection could not be opened, either because a direct
//# connection failed or because any proxy used returned an error,
//# then the client MUST _Fail the WebSocket Connection_ and abort
//# the connection attempt.
#[test]
fn a_connection_that_cannot_be_opened_fails() {
    // A port nothing listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = Client::connect(&url(addr, "/")).unwrap_err();
    assert!(matches!(error, Error::Io(_)), "{error}");
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
//= type=test
//# If the
//# requested service is not available, the server MUST send an
//# appropriate HTTP error code (such as 404 Not Found) and abort
//# the WebSocket handshake.
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
