//! `rfc6455 echo`: every message goes back to its sender as the same type (the
//! Autobahn|Testsuite testee).

use crate::page;
use crate::subprotocol::Subprotocols;
use rfc6455::server::{Context, Handler, PeerId, Upgrade};
use rfc6455::{Message, Request, Response};
use std::net::SocketAddr;

/// Echoes every message back to its sender.
#[derive(Debug, Default)]
pub struct Echo {
    /// The subprotocols accepted (`--subprotocol`).
    pub subprotocols: Subprotocols,
}

impl Handler for Echo {
    fn on_upgrade(&mut self, request: &Request<'_>, _remote_addr: SocketAddr) -> Upgrade {
        self.subprotocols.answer(request)
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        // Fails only if the connection is closing, when there is nothing to echo to.
        let _ = ctx.forward(peer, message);
    }

    fn on_http(&mut self, request: &Request<'_>) -> Response {
        page::respond(request, false)
    }
}
