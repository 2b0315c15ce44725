//! A relay on one loop: it connects to an upstream WebSocket server and serves clients of its
//! own; every message from upstream goes to every client, every message from a client goes
//! upstream. The upstream connection is a peer of the same loop as the clients
//! (`Server::connect`).
//!
//! ```text
//! cargo run --example relay -- ws://127.0.0.1:4000/feed 127.0.0.1:3000
//! ```
//!
//! The upstream URL's host must be an IP address or `localhost` (the loop does no DNS lookup).
//! When the upstream connection fails or ends, the relay shuts down.

use rfc6455::server::{
    Config, ConnectError, ConnectOptions, Context, Handler, Opening, PeerId, Server,
};
use rfc6455::{Closure, Message};
use std::net::SocketAddr;
use std::process::ExitCode;

/// The topic every client of the relay is in.
const DOWNSTREAM: &str = "downstream";

struct Relay {
    upstream: PeerId,
}

impl Handler for Relay {
    fn on_open(&mut self, ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        if opening.outbound {
            println!("upstream open ({})", opening.remote_addr);
        } else if let Err(error) = ctx.subscribe(peer, DOWNSTREAM) {
            eprintln!("{peer}: {error}");
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        if peer == self.upstream {
            ctx.publish_local(DOWNSTREAM, message.kind(), message.as_bytes());
        } else if ctx.forward(self.upstream, message).is_err() {
            eprintln!("{peer}: upstream is not open; message dropped");
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, peer: PeerId, closure: &Closure) {
        if peer == self.upstream {
            println!(
                "upstream closed ({} {:?}); shutting down",
                closure.code.0, closure.cause
            );
            ctx.handle().shutdown();
        }
    }

    fn on_connect_failed(&mut self, ctx: &mut Context<'_>, _peer: PeerId, error: &ConnectError) {
        eprintln!("upstream: {error}; shutting down");
        ctx.handle().shutdown();
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(upstream), listen) = (args.next(), args.next()) else {
        eprintln!("usage: relay UPSTREAM_URL [LISTEN_ADDR]");
        return ExitCode::from(2);
    };
    let addr: SocketAddr = match listen.as_deref().unwrap_or("127.0.0.1:3000").parse() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("LISTEN_ADDR: {error}");
            return ExitCode::from(2);
        }
    };
    let mut server = match Server::bind(Config {
        addr,
        ..Config::default()
    }) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("bind {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let id = match server.connect(&upstream, ConnectOptions::default()) {
        Ok(id) => id,
        Err(error) => {
            eprintln!("{upstream}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("relaying {upstream} to ws://{}/", server.local_addr());
    match server.run(&mut Relay { upstream: id }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
