//! rfc6455: a from-scratch implementation of the WebSocket protocol (RFC 6455) and its
//! compression extension (RFC 7692).
//!
//! # Writing a server
//!
//! Implement [`server::Handler`] and run a [`server::Server`] with it. The handler is called on
//! the event loop's thread for each upgrade request, opened connection, message, plain HTTP
//! request and closed connection, and acts through the [`server::Context`] it is given (send,
//! forward, broadcast, close). A [`server::Handle`] lets other threads do the same.
//!
//! ```no_run
//! use rfc6455::server::{Config, Context, Handler, PeerId, Server};
//! use rfc6455::{Closure, Message};
//!
//! /// A chat relay: every message goes to every connection.
//! struct Relay;
//!
//! impl Handler for Relay {
//!     fn on_message(&mut self, ctx: &mut Context<'_>, _from: PeerId, message: Message<'_>) {
//!         ctx.broadcast(message.kind(), message.as_bytes());
//!     }
//!     fn on_close(&mut self, _ctx: &mut Context<'_>, peer: PeerId, closure: &Closure) {
//!         eprintln!("{peer} left: code {}, clean: {}", closure.code.0, closure.was_clean());
//!     }
//! }
//!
//! let config = Config { addr: "127.0.0.1:3000".parse().unwrap(), ..Config::default() };
//! Server::bind(config).unwrap().run(&mut Relay).unwrap();
//! ```
//!
//! Connections can also join topics (rooms) and messages be published to them:
//! [`server::Context::subscribe`], [`server::Context::publish`] and the rest, after uWebSockets'
//! calls; with [`server::Config`]'s `redis` (feature `redis`), a topic spans every process on that
//! Redis.
//!
//! [`server::Handler`] shows the other callbacks: refusing an upgrade or choosing a subprotocol
//! ([`on_upgrade`](server::Handler::on_upgrade)), the request a connection opened with
//! ([`on_open`](server::Handler::on_open)), plain HTTP routes
//! ([`on_http`](server::Handler::on_http)).
//!
//! # Layers
//!
//! The **protocol core** takes bytes, the peer's end of stream and the current time, and returns
//! events, bytes to write, the next deadline and what to do with the transport. It never touches
//! a socket, a clock or a random source, and builds alone with `--no-default-features`:
//!
//! | module | owns |
//! |---|---|
//! | [`server_connection`] | [`ServerConnection`]: one connection from its first request byte to its TCP close |
//! | [`connection`] | §5, §7: the framing machine both roles share, and the closing handshake |
//! | [`frame`] | §5.2 wire format: [`frame::Opcode`], [`frame::FrameHeader`], `decode_header`, `encode_frame` |
//! | [`mask`] | §5.3 masking, in place, at any offset |
//! | [`utf8`] | §5.6/§8.1 incremental UTF-8 validation across reads and fragments |
//! | [`close`] | §5.5.1/§7.4 close codes and the close payload |
//! | [`closure`] | §7.1.4–§7.1.6 how a connection ended: [`Closure`] |
//! | [`message`] | §5.4 messages, fragment reassembly and the size limits |
//! | [`handshake`] | §4.2 request validation, `accept_key`, `Origin` policy |
//! | [`http`] | [`Response`]: the one HTTP response writer (the 101, refusals, plain HTTP) |
//! | [`deflate`] | RFC 7692 permessage-deflate: negotiation, compression, bounded decompression |
//! | [`prepared`] | [`PreparedFrame`]: a frame encoded (and compressed) once for many recipients |
//! | [`outbox`] | the one output path: every queued byte, counted, and the end of stream |
//! | [`error`] | every error, each written once with its RFC section and its answer |
//! | [`limits`] | every protocol limit with its default |
//!
//! The **IO shell**, [`server`] (feature `server`, on by default), moves bytes between sockets and
//! the core and applies memory policy; it makes no protocol decision. The `rfc6455` binary
//! (feature `cli`) holds the demo applications: echo, broadcast, and the chat page.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod client_connection;
pub mod client_handshake;
pub mod close;
pub mod closure;
pub mod connection;
pub mod deflate;
pub mod entropy;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
mod lifecycle;
pub mod limits;
pub mod mask;
pub mod message;
pub mod outbox;
pub mod prepared;
pub mod server_connection;
mod session;
pub mod utf8;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;

pub use client_connection::{ClientConfig, ClientConnection, ClientError, ClientEvent};
pub use close::{CloseCode, CloseFrame};
pub use closure::{CloseCause, Closure};
pub use error::{AnswerError, Error, HandshakeError, ProtocolError, SendError};
pub use handshake::Request;
pub use http::Response;
pub use message::{Message, MessageKind};
pub use prepared::PreparedFrame;
pub use server_connection::{ServerConfig, ServerConnection, ServerEvent};

/// The README's code examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "server"))]
pub struct ReadmeDoctests;
