//! `rfc6455 echo`: every message goes back to its sender as the same type (the
//! Autobahn|Testsuite testee).

use crate::page;
use rfc6455::server::{Context, Handler, PeerId};
use rfc6455::{Message, Request, Response};

/// Echoes every message back to its sender.
#[derive(Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        // Fails only if the connection is closing, when there is nothing to echo to.
        let _ = ctx.forward(peer, message);
    }

    fn on_http(&mut self, request: &Request<'_>) -> Response {
        page::respond(request)
    }
}
