//! rfc6455: a from-scratch implementation of the WebSocket protocol (RFC 6455).
//!
//! The crate has two layers. The **protocol core** takes bytes and returns values and never
//! touches a socket or a clock:
//!
//! | module | owns |
//! |---|---|
//! | [`frame`] | §5.2 wire format: [`frame::Opcode`], [`frame::FrameHeader`], `decode_header`, `encode_header` |
//! | [`mask`] | §5.3 masking, in place, at any offset |
//! | [`utf8`] | §5.6/§8.1 incremental UTF-8 validation across reads and fragments |
//! | [`close`] | §5.5.1/§7.4 close codes and the close payload |
//! | [`message`] | §5.4 messages, fragment reassembly and the size limits |
//! | [`handshake`] | §4.2 request validation, `accept_key`, `Origin` policy, response bytes |
//! | [`http`] | HTTP responses: the one writer for the 101, refusals and plain HTTP |
//! | [`connection`] | §5.1/§7 the per-connection state machine |
//! | [`deflate`] | RFC 7692 permessage-deflate: negotiation, compression, bounded decompression |
//! | [`error`] | [`ProtocolError`] (close codes) and [`HandshakeError`] (HTTP statuses) |
//! | [`limits`] | every resource limit with its default |
//! | [`outbox`] | queued output, owned or shared between peers |
//!
//! The **IO shell** moves bytes between sockets and the core and makes no protocol decisions:
//!
//! | module | owns |
//! |---|---|
//! | `peer` | one socket: handshaking, open, draining; read, flush |
//! | [`broadcast`] | encode a frame once, share the bytes with every peer |
//! | [`handler`] | the application's side: [`Handler`], [`Context`], [`Echo`], [`Broadcast`] |
//! | [`server`] | the mio loop: listener, `Slab` of peers, timers, interest changes |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod limits;
pub mod mask;
pub mod message;
pub mod outbox;
pub mod utf8;

#[cfg(feature = "server")]
pub mod broadcast;
#[cfg(feature = "server")]
pub mod handler;
#[cfg(feature = "server")]
pub mod page;
#[cfg(feature = "server")]
mod peer;
#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "server")]
pub use handler::{Broadcast, Context, Echo, Handler, PeerId};
#[cfg(feature = "server")]
pub use server::{Config, Server, ShutdownHandle};

pub use error::{HandshakeError, ProtocolError};

/// The README's code examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "server"))]
pub struct ReadmeDoctests;
