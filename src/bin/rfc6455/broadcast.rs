//! `rfc6455 broadcast`: every message goes to every open connection, the sender included (a
//! chat relay, like `wss.clients.forEach(c => c.send(msg))` in Node's `ws`).

use crate::page;
use crate::subprotocol::Subprotocols;
use rfc6455::server::{Context, Handler, PeerId, Upgrade};
use rfc6455::{Message, Request, Response};
use std::net::SocketAddr;

/// Sends every message to every open connection.
#[derive(Debug, Default)]
pub struct Broadcast {
    /// The subprotocols accepted (`--subprotocol`).
    pub subprotocols: Subprotocols,
}

impl Handler for Broadcast {
    fn on_upgrade(&mut self, request: &Request<'_>, _remote_addr: SocketAddr) -> Upgrade {
        self.subprotocols.answer(request)
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, _peer: PeerId, message: Message<'_>) {
        ctx.broadcast(message.kind(), message.as_bytes());
    }

    fn on_http(&mut self, request: &Request<'_>) -> Response {
        page::respond(request)
    }
}
