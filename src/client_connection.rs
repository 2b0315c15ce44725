//! One client-side connection, from its opening request to its TCP close: the request (RFC 6455
//! §4.1), the checks on the server's response, the framing machine with masked frames, keepalive,
//! and the closing handshake, after which the client waits for the server to close TCP
//! (§7.1.1).
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-4.1>
//!
//! The twin of [`ServerConnection`](crate::ServerConnection), sans-IO in the same way: received
//! bytes, the peer's end of stream and the current time in; events, the outbox, the next
//! deadline and whether to close the transport out. Its randomness (the key of the request and
//! every masking key) comes from the [`Entropy`] it is given.
//!
//! ```
//! use rfc6455::client_connection::{ClientConfig, ClientConnection, ClientEvent};
//! use rfc6455::client_handshake::{ClientRequest, WsUrl};
//! use rfc6455::deflate::SharedDeflate;
//! use rfc6455::entropy::Sequence;
//! use rfc6455::{CloseCode, MessageKind};
//! use std::{sync::Arc, time::Instant};
//!
//! let (now, mut shared) = (Instant::now(), SharedDeflate::new());
//! let request = ClientRequest::for_url(&WsUrl::parse("ws://example.com/chat").unwrap());
//! let config = Arc::new(ClientConfig::default());
//! let mut conn = ClientConnection::new(config, request, Box::new(Sequence(0)), now).unwrap();
//! let sent = conn.take_output();
//! assert!(sent.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
//! // The key of Sequence(0) is 00 01 .. 0f in base64; the server answers with its accept value.
//! let mut response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Accept: Bz3qJYTGdOe8gUSpLosEdiLKDrk=\r\n\r\n".to_vec();
//! let received = conn.handle_input(&mut response, now, &mut shared).unwrap();
//! assert_eq!(received.event, Some(ClientEvent::Open));
//! conn.send(MessageKind::Text, b"Hi", &mut shared).unwrap();
//! let frame = conn.take_output();
//! assert_eq!(&frame[..2], [0x81, 0x82], "a masked text frame of 2 bytes");
//! conn.close(CloseCode::NORMAL, "", now).unwrap();
//! conn.take_output();
//! // The server answers the Close, then closes TCP first; the client closes after it.
//! let mut reply = [0x88, 0x02, 0x03, 0xe8];
//! conn.handle_input(&mut reply, now, &mut shared).unwrap();
//! assert!(!conn.outbox().take_eof(), "the client waits for the server's FIN");
//! conn.handle_eof(now);
//! assert!(conn.outbox().take_eof());
//! assert!(conn.is_closed() && conn.closure().unwrap().was_clean());
//! ```

use crate::client_handshake::{self, ClientRequest, RequestError, ResponseError};
use crate::close::{CloseCode, CloseFrame};
#[cfg(test)]
use crate::closure::CloseCause;
use crate::closure::Closure;
use crate::connection::{ClientEnd, Connection, Event, Received};
use crate::deflate::{self, Deflate, DeflateConfig, SharedDeflate};
use crate::entropy::Entropy;
use crate::error::{ProtocolError, SendError};
use crate::frame::Status;
use crate::handshake::HeadScanner;
use crate::lifecycle::{FirstToClose, Lifecycle};
use crate::limits::Limits;
use crate::message::{Message, MessageKind};
use crate::outbox::Outbox;
use crate::session::Timeouts;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client's source of randomness, owned by its connection.
pub type Keys = Box<dyn Entropy + Send>;

/// What a client connection is allowed and expected to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Protocol limits for what the server sends (the head limit applies to its response).
    pub limits: Limits,
    /// permessage-deflate: offered when enabled.
    pub deflate: DeflateConfig,
    /// Time from the request to a complete response; zero disables the deadline.
    pub handshake_timeout: Duration,
    /// Silence after which the server is pinged; zero (the default) disables keepalive.
    pub idle_timeout: Duration,
    /// Time after the keepalive ping with no input before the connection is dropped.
    pub pong_timeout: Duration,
    /// Time to wait for the server's Close after ours, and for its TCP close after the closing
    /// handshake.
    pub close_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limits: Limits::default(),
            deflate: DeflateConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::ZERO,
            pong_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(1),
        }
    }
}

impl ClientConfig {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            handshake: self.handshake_timeout,
            idle: self.idle_timeout,
            pong: self.pong_timeout,
            close: self.close_timeout,
        }
    }
}

/// Something the server did that the application may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent<'a> {
    /// The server accepted the upgrade: the connection is open
    /// ([`protocol`](ClientConnection::protocol) says which subprotocol it chose).
    Open,
    /// A complete text or binary message.
    Message(Message<'a>),
    /// A ping; its pong is already queued (§5.5.2).
    Ping(&'a [u8]),
    /// A pong (§5.5.3).
    Pong(&'a [u8]),
    /// The server's Close (§5.5.1); the reply, if one was due, is already queued.
    Close(Option<CloseFrame<'a>>),
}

/// What the server got wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// Its response broke a rule of §4.1 (or refused): the connection never opened.
    Handshake(ResponseError),
    /// Its frames broke a rule: the connection was failed with a close code.
    Protocol(ProtocolError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Handshake(error) => write!(f, "handshake failed: {error}"),
            ClientError::Protocol(error) => {
                write!(f, "connection failed ({}): {error}", error.close_code().0)
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// The request in flight, until the response comes.
#[derive(Debug)]
struct Pending {
    key: String,
    request: ClientRequest,
    keys: Keys,
}

impl fmt::Debug for dyn Entropy + Send {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy")
    }
}

/// The client's side of the opening handshake: the request is queued; reading the response head.
/// Its deadline counts from the connection's start.
#[derive(Debug)]
struct AwaitingResponse {
    scanner: HeadScanner,
    pending: Box<Pending>,
}

/// One client-side connection, sans-IO. See the [module documentation](self).
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
//= type=implication
//= reason=A client connection closes only when its application asks (close, terminate, abort, or
//= reason=dropping it), when it fails the connection, and when a deadline the application set passes
//= reason=(handshake, close, and the keepalive pong timeout; keepalive is off by default). The
//= reason=blocking client and the server's outbound connections add no reason of their own.
//# Except as indicated above or as specified by the application layer
//# (e.g., a script using the WebSocket API), clients SHOULD NOT close
//# the connection.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.1
//= type=implication
//= reason=As for section 7.1.7: a client connection closes on its application's request, on a
//= reason=failure, or at a deadline the application set; never of its own accord.
//# Except as indicated above or as specified by the application layer
//# (e.g., a script using the WebSocket API), clients SHOULD NOT close
//# the connection.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.3
//= type=implication
//= reason=A client connection starts the closing handshake only when its application calls close:
//= reason=nothing in the library does so of its own accord.
//# Clients
//# SHOULD NOT close the WebSocket connection arbitrarily.
#[derive(Debug)]
pub struct ClientConnection {
    config: Arc<ClientConfig>,
    lifecycle: Lifecycle<AwaitingResponse, ClientEnd<Keys>>,
    protocol: Option<Box<str>>,
}

impl ClientConnection {
    /// A connection whose transport was just established at `now`: its opening request is
    /// queued, with a fresh `Sec-WebSocket-Key` drawn from `keys`. Fails, before drawing a key,
    /// when the request offers a subprotocol that is not a token or offers one twice.
    pub fn new(
        config: Arc<ClientConfig>,
        request: ClientRequest,
        mut keys: Keys,
        now: Instant,
    ) -> Result<Self, RequestError> {
        client_handshake::check_request(&request)?;
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# The nonce
        //# MUST be selected randomly for each connection.
        let mut nonce = [0u8; 16];
        keys.fill(&mut nonce);
        let key = client_handshake::new_key(nonce);
        let mut outbox = Outbox::new();
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# Once a connection to the server has been established (including a
        //# connection via a proxy or over a TLS-encrypted tunnel), the client
        //# MUST send an opening handshake to the server.
        outbox.append(|buf| {
            client_handshake::write_request(
                &request,
                &key,
                deflate::client_offer(&config.deflate),
                buf,
            )
        });
        let awaiting = AwaitingResponse {
            scanner: HeadScanner::new(),
            pending: Box::new(Pending { key, request, keys }),
        };
        Ok(ClientConnection {
            config,
            lifecycle: Lifecycle::new(awaiting, outbox, now),
            protocol: None,
        })
    }

    /// Processes bytes received from the server, in place: while the response head is
    /// incomplete, present every byte received so far (nothing is consumed until it is
    /// complete); once open, as [`ServerConnection::handle_input`](crate::ServerConnection::handle_input).
    pub fn handle_input<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
        shared: &mut SharedDeflate,
    ) -> Result<Received<ClientEvent<'a>>, ClientError> {
        match self.lifecycle.handshake() {
            Some(AwaitingResponse { .. }) => self.read_response(input, now),
            None => self.receive_frames(input, now, shared),
        }
    }

    fn read_response<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
    ) -> Result<Received<ClientEvent<'a>>, ClientError> {
        let Some(AwaitingResponse { scanner, .. }) = self.lifecycle.handshake_mut() else {
            unreachable!("called while awaiting the response");
        };
        let limits = &self.config.limits;
        let head_len = match scanner.scan(input, limits.max_head_size) {
            Ok(Status::Partial) => return Ok(Received::nothing()),
            Ok(Status::Complete(head_len)) => head_len,
            Err(_) => return Err(self.fail_handshake(ResponseError::HeadTooLarge)),
        };
        let Some(AwaitingResponse { pending, .. }) = self.lifecycle.take_handshake() else {
            unreachable!("checked above");
        };
        let Pending { key, request, keys } = *pending;
        let accepted = match client_handshake::check_response(
            &input[..head_len],
            &key,
            &request,
            &self.config.deflate,
            limits,
        ) {
            Ok(accepted) => accepted,
            Err(error) => return Err(self.fail_handshake(error)),
        };
        self.protocol = accepted.protocol.map(String::into_boxed_str);
        let mut connection = Connection::new(ClientEnd(keys));
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.8
        //# The endpoints of a connection
        //# MUST negotiate the use of any extensions during the opening
        //# handshake.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
        //# Note that the client is only offering
        //# to use any advertised extensions and MUST NOT use them unless the
        //# server indicates that it wishes to use the extension.
        if let Some(negotiated) = accepted.deflate {
            connection = connection.with_deflate(Deflate::new(negotiated, &self.config.deflate));
        }
        self.lifecycle.open(connection, now);
        Ok(Received::used(head_len, Some(ClientEvent::Open)))
    }

    /// The response broke a rule: the connection never opens.
    fn fail_handshake(&mut self, error: ResponseError) -> ClientError {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# If the server's response does not conform to the requirements for
        //# the server's handshake as defined in this section and in
        //# Section 4.2.2, the client MUST _Fail the WebSocket Connection_.
        //
        // Before the connection is established there is no Close to send: the transport closes
        // at once, and the error goes to the caller.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.1
        //# To do so, the
        //# client MUST _Fail the WebSocket Connection_ as defined in
        //# Section 7.1.7.
        self.lifecycle.end_now();
        ClientError::Handshake(error)
    }

    fn receive_frames<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
        shared: &mut SharedDeflate,
    ) -> Result<Received<ClientEvent<'a>>, ClientError> {
        let limits = &self.config.limits;
        // After a clean close the client waits for the server to close TCP; after failing the
        // connection it closes its side once its Close is written.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //# The server MUST close the underlying TCP
        //# connection immediately; the client SHOULD wait for the server to
        //# close the connection but MAY close the connection at any time after
        //# sending and receiving a Close message, e.g., if it has not received a
        //# TCP Close from the server in a reasonable time period.
        let received = self
            .lifecycle
            .receive(input, now, limits, shared, FirstToClose::Peer)
            .map_err(ClientError::Protocol)?;
        Ok(received.map(|event| match event {
            Event::Message(message) => ClientEvent::Message(message),
            Event::Ping(payload) => ClientEvent::Ping(payload),
            Event::Pong(payload) => ClientEvent::Pong(payload),
            Event::Close(frame) => ClientEvent::Close(frame),
        }))
    }

    /// The server ended its stream (TCP FIN): the client closes its side too, after what is
    /// queued.
    pub fn handle_eof(&mut self, now: Instant) {
        self.lifecycle.handle_eof(now);
    }

    /// Acts on the deadline that passed by `now`, if any.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.lifecycle.handle_timeout(now, &self.config.timeouts());
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lifecycle.poll_timeout(&self.config.timeouts())
    }

    /// Whether the transport should now be closed.
    pub fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    /// Whether the connection is open for sending.
    pub fn is_open(&self) -> bool {
        self.lifecycle.is_open()
    }

    /// Whether work is left that needs no more input (a compressed message being inflated a
    /// step at a time): call [`handle_input`](Self::handle_input) again, with no new bytes if
    /// none came.
    pub fn has_pending_work(&self) -> bool {
        self.lifecycle.has_pending_work()
    }

    /// Whether the response has not arrived yet.
    pub fn is_handshaking(&self) -> bool {
        self.lifecycle.is_handshaking()
    }

    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// How the connection ended, once an open connection has ended (or started to).
    pub fn closure(&self) -> Option<&Closure> {
        self.lifecycle.closure()
    }

    /// Ends the connection at once for a reason of the caller's (an IO error, say).
    pub fn abort(&mut self, reason: &'static str) {
        self.lifecycle.abort(reason);
    }

    /// The bytes to write, and the end of the output stream.
    pub fn outbox(&mut self) -> &mut Outbox {
        self.lifecycle.outbox()
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.lifecycle.queued()
    }

    /// Bytes held for the message being assembled (0 when none is).
    pub fn buffered(&self) -> usize {
        self.lifecycle.buffered()
    }

    /// Ends an open connection now for a reason of the caller's (an IO shell shedding load): a
    /// Close with `code` and `reason` is queued after what is queued, the message being
    /// assembled is dropped, and the client closes its side once that is written, as after a
    /// failure. A connection that is not open is aborted.
    pub fn terminate(&mut self, code: CloseCode, reason: &'static str, now: Instant) {
        self.lifecycle.terminate(code, reason, now);
    }

    /// Takes every queued byte at once.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.lifecycle.take_output()
    }

    /// Queues a data message, masked (and compressed if permessage-deflate is in use and it is
    /// long enough).
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        self.lifecycle.send(kind, payload, shared)
    }

    /// Queues a data message whose payload is an owned buffer, masked in place: no copy when it
    /// goes out uncompressed.
    pub fn send_owned(
        &mut self,
        kind: MessageKind,
        payload: Vec<u8>,
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        self.lifecycle.send_owned(kind, payload, shared)
    }

    /// The window this connection compresses a `len`-byte message with, if it compresses it.
    pub fn compression_window(&self, len: usize) -> Option<u8> {
        self.lifecycle.compression_window(len)
    }

    /// Queues a ping (§5.5.2).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.lifecycle.ping(payload)
    }

    /// Starts the closing handshake (§7.1.2) with `code` and `reason`.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        self.lifecycle.close(code, reason, now)
    }
}

#[cfg(test)]
mod tests;
