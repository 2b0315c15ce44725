//! The application's side of the server: the [`Handler`] trait it implements, and the
//! [`Context`] it acts through during a call.

use super::handle::Handle;
use super::outbound::{self, ConnectError, ConnectOptions};
use super::peers::{PeerId, Peers};
use super::topics::TopicError;
use crate::close::CloseCode;
use crate::closure::Closure;
use crate::error::SendError;
use crate::handshake::Request;
use crate::http::Response;
use crate::message::{Message, MessageKind};
use crate::prepared::PreparedFrame;
use std::net::SocketAddr;

/// What to do with an upgrade request that passed RFC 6455's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upgrade {
    /// Open the connection, with this subprotocol (one the client offered) or none.
    Accept {
        /// The subprotocol, chosen from [`Request::protocols`].
        protocol: Option<String>,
    },
    /// Answer with this response instead (for example 401, 403 or 404) and close.
    Refuse(Response),
}

impl Upgrade {
    /// Accept without a subprotocol.
    pub fn accept() -> Self {
        Upgrade::Accept { protocol: None }
    }

    /// Accept with `protocol`, which must be one the client offered.
    pub fn accept_with(protocol: impl Into<String>) -> Self {
        Upgrade::Accept {
            protocol: Some(protocol.into()),
        }
    }
}

/// A connection that just opened: the request it opened with and what was agreed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Opening<'a> {
    /// The upgrade request: its path (with the query), and its headers. For a connection the
    /// application opened ([`outbound`](Self::outbound)), the request this server sent: its
    /// resource, `Host`, `Origin`, subprotocols and the extra header fields (not its key).
    pub request: &'a Request<'a>,
    /// The subprotocol agreed on, if any.
    pub protocol: Option<&'a str>,
    /// The other end's address: the client's, or for an outbound connection the server's.
    pub remote_addr: SocketAddr,
    /// Whether the application opened this connection ([`Context::connect`]): this server is
    /// then the client, and the other end the server.
    pub outbound: bool,
}

/// What the application does with connections. Every method runs on the event loop's thread and
/// should return quickly.
///
/// ```no_run
/// use rfc6455::server::{Config, Context, Handler, Opening, PeerId, Server, Upgrade};
/// use rfc6455::{Closure, Message, Request, Response};
/// use std::net::SocketAddr;
///
/// /// Upper-cases every text message back to its sender; only `/shout` upgrades.
/// struct Shout;
///
/// impl Handler for Shout {
///     fn on_upgrade(&mut self, request: &Request<'_>, _from: SocketAddr) -> Upgrade {
///         match request.path {
///             "/shout" => Upgrade::accept(),
///             _ => Upgrade::Refuse(Response::text(404, "try /shout\n")),
///         }
///     }
///     fn on_open(&mut self, _ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
///         println!("{peer} opened from {}", opening.remote_addr);
///     }
///     fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
///         if let Some(text) = message.as_text() {
///             let _ = ctx.send(peer, message.kind(), text.to_uppercase().as_bytes());
///         }
///     }
///     fn on_close(&mut self, _ctx: &mut Context<'_>, peer: PeerId, closure: &Closure) {
///         println!("{peer} closed with {} ({:?})", closure.code.0, closure.cause);
///     }
/// }
///
/// let mut server = Server::bind(Config::default()).unwrap();
/// server.run(&mut Shout).unwrap();
/// ```
pub trait Handler {
    /// Decides on an upgrade request that passed RFC 6455 §4.2.1's checks and the `Origin`
    /// policy: accept it (choosing a subprotocol from the client's offer, or none) or refuse it
    /// with an HTTP response. Accepts without a subprotocol by default.
    fn on_upgrade(&mut self, _request: &Request<'_>, _remote_addr: SocketAddr) -> Upgrade {
        Upgrade::accept()
    }
    /// A WebSocket connection opened: a client's upgrade that [`on_upgrade`](Self::on_upgrade)
    /// accepted, or a connection the application opened with [`Context::connect`] that the
    /// server accepted ([`Opening::outbound`] tells them apart).
    fn on_open(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, _opening: &Opening<'_>) {}
    /// A complete text or binary message arrived.
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>);
    /// A connection that was open is gone, and how it ended. Its subscriptions end when this
    /// returns: [`Context::topics`] still lists them here (nothing published reaches it any
    /// more), so that an application can tell its rooms someone left.
    fn on_close(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, _closure: &Closure) {}
    /// A connection the application opened with [`Context::connect`] (or
    /// [`connect_to`](Context::connect_to)) did not open: the TCP connect failed, the server
    /// refused the upgrade ([`ConnectError::Handshake`] with
    /// [`ResponseError::Refused`](crate::client_handshake::ResponseError::Refused) holds its
    /// status), its response broke a rule of RFC 6455 §4.1, or no response came within the
    /// handshake timeout. Every id `connect` returns gets exactly one of `on_open` (and later
    /// `on_close`) or this call, after which the id is stale.
    fn on_connect_failed(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, _error: &ConnectError) {}
    /// The number of connections subscribed to `topic` changed: `count` is the number in every
    /// process on the broker (see [`Context::subscribers_everywhere`]), or on this server
    /// without one. Called once per changed topic at the end of a turn of the loop, for every
    /// topic whose subscribers changed here, and for topics with subscribers here whose number
    /// changed in another process (other processes' counts arrive within
    /// [`COUNTS_PERIOD`](super::COUNTS_PERIOD), and a process not heard of for
    /// [`COUNTS_EXPIRY`](super::COUNTS_EXPIRY) no longer counts). A room's "N people here".
    fn on_subscribers(&mut self, _ctx: &mut Context<'_>, _topic: &str, _count: usize) {}
    /// Answers a plain HTTP request (one that asks for no WebSocket upgrade) on the same port.
    /// The connection closes after the response. Answers 404 by default. `GET /metrics` and
    /// `GET /healthz` never reach it: the server answers them itself (see
    /// [`METRICS_PATH`](super::METRICS_PATH)).
    fn on_http(&mut self, _request: &Request<'_>) -> Response {
        Response::text(404, "not found\n")
    }
}

/// What a [`Handler`] can do during a call: send to connections, broadcast, publish to topics
/// and manage subscriptions, close connections.
pub struct Context<'s> {
    pub(crate) peers: &'s mut Peers,
    pub(crate) handle: &'s Handle,
}

impl Context<'_> {
    /// Queues a message to one connection. It is written at the end of the current pass, with
    /// everything else queued for that connection. If that connection's queue grows past the
    /// outbound high-water mark, the server stops reading from it until the queue drains.
    pub fn send(&mut self, to: PeerId, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        self.peers.send(to, kind, payload)
    }

    /// Sends a received message on to one connection as the same type, without copying a large
    /// payload when it can be avoided.
    #[inline(always)]
    pub fn forward(&mut self, to: PeerId, message: Message<'_>) -> Result<(), SendError> {
        self.peers.forward(to, message)
    }

    /// Sends a message to every open connection (those the application opened too, each of
    /// which masks its own copy), encoded (and compressed) once and shared by all recipients.
    /// It is written at the end of the pass, with everything else published during it (each
    /// recipient's in one write), and before anything sent to a connection after it. The output
    /// limits apply to each recipient as to any connection. Returns the number of connections
    /// open now; those open at the end of the pass get it.
    pub fn broadcast(&mut self, kind: MessageKind, payload: &[u8]) -> usize {
        self.peers.broadcast(PreparedFrame::new(kind, payload))
    }

    /// Subscribes an open connection to `topic` (a room): it receives every message published
    /// to the topic from now on, until it unsubscribes or closes. Returns whether it was not
    /// subscribed already. The name must pass [`validate_topic`](super::validate_topic), and a
    /// connection may be in at most
    /// [`Config::max_topics_per_connection`](super::Config::max_topics_per_connection) topics.
    pub fn subscribe(&mut self, peer: PeerId, topic: &str) -> Result<bool, TopicError> {
        self.peers.subscribe(peer, topic)
    }

    /// Unsubscribes a connection from `topic`. Returns whether it was subscribed.
    pub fn unsubscribe(&mut self, peer: PeerId, topic: &str) -> bool {
        self.peers.unsubscribe(peer, topic)
    }

    /// Whether a connection is subscribed to `topic`.
    pub fn is_subscribed(&self, peer: PeerId, topic: &str) -> bool {
        self.peers.topics.is_subscribed(peer, topic)
    }

    /// The topics a connection is subscribed to, in no particular order.
    pub fn topics(&self, peer: PeerId) -> impl Iterator<Item = &str> {
        self.peers.topics.topics_of(peer)
    }

    /// Sends a message to every subscriber of `topic`, encoded (and compressed) once and shared
    /// by all of them, written as [`broadcast`](Self::broadcast) writes. Returns the number of
    /// its subscribers on this server now (who get it, but for any that close before the end
    /// of the pass): with a broker
    /// ([`Config::redis`](super::Config)) that is 0, as the message goes through Redis and is
    /// delivered here, to every process's subscribers in the same order, when it comes back
    /// (or at once to the local ones, and counted, when Redis cannot take it).
    pub fn publish(&mut self, topic: &str, kind: MessageKind, payload: &[u8]) -> usize {
        self.peers.publish(topic, kind, payload, None)
    }

    /// Like [`publish`](Self::publish), but skips `sender` (which may or may not be
    /// subscribed): a chat message goes to everyone in the room but the one who wrote it.
    pub fn publish_except(
        &mut self,
        topic: &str,
        sender: PeerId,
        kind: MessageKind,
        payload: &[u8],
    ) -> usize {
        self.peers.publish(topic, kind, payload, Some(sender))
    }

    /// Like [`publish`](Self::publish), but only to this server's subscribers, never through a
    /// broker (for what only concerns this process's connections, such as a count of them).
    pub fn publish_local(&mut self, topic: &str, kind: MessageKind, payload: &[u8]) -> usize {
        self.peers.publish_here(topic, kind, payload, None)
    }

    /// How many connections are subscribed to `topic` in every process on the broker, as last
    /// heard from the others (see [`Handler::on_subscribers`]); without a broker, the same as
    /// [`subscribers`](Self::subscribers).
    pub fn subscribers_everywhere(&self, topic: &str) -> usize {
        self.peers.subscribers_everywhere(topic)
    }

    /// How many connections of this server (this process) are subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.peers.topics.count(topic)
    }

    /// Starts the closing handshake with one connection (RFC 6455 §7.1.2). If the peer does not
    /// answer within the close timeout, TCP is closed anyway.
    pub fn close(&mut self, peer: PeerId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.peers.close(peer, code, reason)
    }

    /// Opens a WebSocket connection to another server from this loop: `url` is a `ws://` URL
    /// whose host is an IP address or `localhost` (the loop never waits for DNS; for a name,
    /// resolve it elsewhere and use [`connect_to`](Self::connect_to)). Returns the connection's
    /// id at once; the TCP connect and the opening handshake go on in the loop, and end in
    /// [`Handler::on_open`] (with [`Opening::outbound`] set) or
    /// [`Handler::on_connect_failed`]. Once open it is a peer like any other: `send`,
    /// `forward`, `close`, topics, `broadcast`, keepalive, the output limits and the memory
    /// budget apply to it as to an accepted one, and `on_message` and `on_close` report it.
    ///
    /// This server is the client of that connection: its frames are masked with keys from the
    /// operating system's random source, and after the closing handshake it waits (at most the
    /// close timeout) for the other server to close TCP. `wss://` is not supported
    /// ([`ConnectError::TlsNotSupported`]). The connection counts towards
    /// [`Config::max_connections`](super::Config::max_connections).
    pub fn connect(&mut self, url: &str, options: ConnectOptions) -> Result<PeerId, ConnectError> {
        if self.handle.shutdown_requested() {
            return Err(ConnectError::ShuttingDown);
        }
        self.peers.connect_url(url, options)
    }

    /// Like [`connect`](Self::connect), to the address `addr`: `url`'s host, which may be a
    /// name, is only what the request asks for (its `Host` field).
    pub fn connect_to(
        &mut self,
        addr: SocketAddr,
        url: &str,
        options: ConnectOptions,
    ) -> Result<PeerId, ConnectError> {
        let url = outbound::parse(url)?;
        if self.handle.shutdown_requested() {
            return Err(ConnectError::ShuttingDown);
        }
        self.peers.connect(addr, &url, options)
    }

    /// How many connections the server holds (open, handshaking or closing).
    pub fn connection_count(&self) -> usize {
        self.peers.len()
    }

    /// A handle that other threads can use to send, broadcast and close through the loop.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}
